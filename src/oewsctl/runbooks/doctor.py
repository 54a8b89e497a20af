"""``oewsctl doctor``: is every node ready for the runbook? One row per node and check.

Checks per node: SSH reachable with a known host key, sudo without a password,
architecture as in the inventory, free disk at the database path (>= 2.5x the current
database: the new file, the kept version and headroom), memory (k3s minimums), clock
skew, and the k3s ports not taken by another program. Plus the Kubernetes API when a
kubeconfig exists. Read-only, except that ``--accept-new-host-keys`` records the keys of
hosts not yet in known_hosts (a changed key is never accepted).
"""

from __future__ import annotations

import posixpath
import re
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from typing import Literal

from oewsctl.clients.known_hosts import fingerprint
from oewsctl.clients.kube import Kube
from oewsctl.clients.ssh import SSHPool, SudoPasswordRequired
from oewsctl.clients.transfer import FREE_KIB
from oewsctl.configuration.schema import Config, NodeConfig
from oewsctl.core.errors import OewsctlError

Status = Literal["ok", "fail", "skip"]

DISK_FACTOR = 2.5
MIN_MEMORY = {"server": 2 * 1024**3, "agent": 512 * 1024**2}
"""k3s's documented minimums (server 2 GB, agent 512 MB)."""
MAX_SKEW_SECONDS = 2.0
SERVER_PORTS = (6443, 10250, 80, 443)
AGENT_PORTS = (10250, 80, 443)
ARCHES = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}


@dataclass(frozen=True)
class CheckResult:
    node: str
    check: str
    status: Status
    detail: str
    hint: str | None = None

    def as_dict(self) -> dict[str, str | None]:
        return asdict(self)


def gib(n: float) -> str:
    return f"{n / 1024**3:.1f} GiB"


class NodeDoctor:
    """The checks for one node over one SSH connection (each returns status, detail, hint)."""

    def __init__(self, pool: SSHPool, config: Config, node: NodeConfig) -> None:
        self.pool = pool
        self.config = config
        self.node = node
        self.sudo_ok = False

    def out(self, argv: list[str], sudo: bool = False) -> str:
        result = self.pool.run(self.node.name, argv, sudo=sudo)
        if not result.ok:
            raise OewsctlError(f"`{' '.join(argv)}` failed: {(result.stderr or result.stdout).strip() or f'exit {result.exit_code}'}")
        return result.stdout

    def ssh(self) -> tuple[Status, str, str | None]:
        transport = self.pool.connect(self.node.name).get_transport()
        assert transport is not None
        key = transport.get_remote_server_key()
        return "ok", f"{self.node.user}@{self.node.host}, host key {key.get_name()} {fingerprint(key)} known", None

    def sudo(self) -> tuple[Status, str, str | None]:
        if self.node.user == "root":
            self.sudo_ok = True
            return "ok", "logged in as root", None
        try:
            self.out(["true"], sudo=True)
        except SudoPasswordRequired as exc:
            return "fail", exc.message, exc.hint
        self.sudo_ok = True
        return "ok", f"{self.node.user} may run sudo -n", None

    def arch(self) -> tuple[Status, str, str | None]:
        machine = self.out(["uname", "-m"]).strip()
        found = ARCHES.get(machine, machine)
        if found != self.node.arch:
            return "fail", f"{machine} ({found}), inventory says {self.node.arch}", f"set arch: {found} for {self.node.name} in oewsctl.yaml"
        return "ok", f"{machine} ({found})", None

    def disk(self) -> tuple[Status, str, str | None]:
        path = self.config.database.path
        holders = self.config.db_nodes or [self.config.server_node]
        if self.node.name not in {n.name for n in holders}:
            return "skip", "does not hold the database", None
        script = FREE_KIB + 'free_kib "$1"; stat -c %s "$1" 2>/dev/null || echo 0'
        free_kib, size = self.out(["sh", "-c", script, "sh", path]).split()
        free, current = int(free_kib) * 1024, int(size)
        where = posixpath.dirname(path)
        if current == 0:
            return "ok", f"{gib(free)} free at {where}; no database yet", None
        need = DISK_FACTOR * current
        detail = f"{gib(free)} free at {where}, database {gib(current)} (needs {gib(need)})"
        if free < need:
            return "fail", detail, f"free {gib(need - free)} on {self.node.name} at {where} (old versions: `oewsctl db status`)"
        return "ok", detail, None

    def memory(self) -> tuple[Status, str, str | None]:
        info = dict(re.findall(r"^(\w+):\s+(\d+) kB", self.out(["cat", "/proc/meminfo"]), re.M))
        total, available = int(info["MemTotal"]) * 1024, int(info.get("MemAvailable", 0)) * 1024
        minimum = MIN_MEMORY[self.node.role]
        detail = f"{gib(total)} total, {gib(available)} available"
        if total < minimum:
            return "fail", f"{detail}; a k3s {self.node.role} needs {gib(minimum)}", f"use a node with more memory as {self.node.role}"
        return "ok", detail, None

    def clock(self) -> tuple[Status, str, str | None]:
        before = time.time()
        remote = float(self.out(["date", "+%s.%N"]))
        after = time.time()
        skew = remote - (before + after) / 2
        allowed = MAX_SKEW_SECONDS + (after - before) / 2
        detail = f"{skew:+.2f}s from this machine"
        if abs(skew) > allowed:
            return "fail", detail, f"enable time sync on {self.node.name} (timedatectl set-ntp true); TLS and tokens need clocks within {MAX_SKEW_SECONDS:g}s"
        return "ok", detail, None

    def ports(self) -> tuple[Status, str, str | None]:
        wanted = SERVER_PORTS if self.node.role == "server" else AGENT_PORTS
        listing = self.out(["ss", "-Hltnp"], sudo=self.sudo_ok and self.node.user != "root")
        taken = [f"{port} by {owner}" for port, owner in listeners(listing, self.node.host) if port in wanted and not owner.startswith("k3s")]
        if taken:
            return "fail", "taken: " + ", ".join(sorted(set(taken))), f"stop or move what listens there on {self.node.name}: k3s needs {', '.join(map(str, wanted))}"
        return "ok", f"{', '.join(map(str, wanted))} free (or k3s's own)", None

    def run(self) -> list[CheckResult]:
        results: list[CheckResult] = []
        checks: list[tuple[str, Callable[[], tuple[Status, str, str | None]]]] = [
            ("ssh", self.ssh), ("sudo", self.sudo), ("arch", self.arch), ("disk", self.disk),
            ("memory", self.memory), ("clock", self.clock), ("ports", self.ports),
        ]
        for name, check in checks:
            try:
                status, detail, hint = check()
            except OewsctlError as exc:
                status, detail, hint = "fail", exc.message.removeprefix(f"{self.node.name}: "), exc.hint
            except Exception as exc:  # noqa: BLE001 - odd output from one node fails one row, not the doctor
                status, detail, hint = "fail", f"unexpected answer from the node ({type(exc).__name__}: {exc})", f"`oewsctl -v doctor` shows what {self.node.name} printed"
            results.append(CheckResult(self.node.name, name, status, detail, hint))
            if name == "ssh" and status == "fail":
                results += [CheckResult(self.node.name, rest, "skip", "not checked (no SSH)") for rest, _ in checks[1:]]
                break
        return results


def listeners(ss_output: str, node_address: str) -> list[tuple[int, str]]:
    """(port, program) of TCP listeners that block k3s on this node, from ``ss -Hltnp``.

    Listeners on a wildcard, loopback 127.0.0.1/::1 or the node's own address count; one
    bound to some other specific address does not (test nodes share one network namespace).
    """
    found = []
    for line in ss_output.splitlines():
        fields = line.split()
        if len(fields) < 4:
            continue
        address, _, port = fields[3].rpartition(":")
        address = address.strip("[]").split("%")[0]
        if address not in ("0.0.0.0", "*", "::", "127.0.0.1", "::1", node_address):
            continue
        program = re.search(r'users:\(\("([^"]+)"', line)
        found.append((int(port), program.group(1) if program else "another program"))
    return found


def kube_check(config: Config) -> CheckResult:
    """The Kubernetes API through cluster.kubeconfig, when that file exists."""
    path = config.cluster.kubeconfig_path
    if not path.is_file():
        return CheckResult("cluster", "kube-api", "skip", f"no kubeconfig at {path} yet (`oewsctl cluster install` writes it)")
    try:
        kube = Kube.from_config(config)
        try:
            nodes = kube.list("v1", "Node")
        finally:
            kube.close()
    except OewsctlError as exc:
        return CheckResult("cluster", "kube-api", "fail", exc.message, exc.hint)
    return CheckResult("cluster", "kube-api", "ok", f"{kube.host} answers (context {config.cluster.name!r}, {len(nodes)} nodes)")


def run_doctor(config: Config, pool: SSHPool) -> list[CheckResult]:
    """Every check on every node (nodes in parallel, so a dead node costs one timeout), then the API."""
    with ThreadPoolExecutor(max_workers=min(8, len(config.nodes))) as executor:
        per_node = list(executor.map(lambda node: NodeDoctor(pool, config, node).run(), config.nodes))
    return [result for results in per_node for result in results] + [kube_check(config)]
