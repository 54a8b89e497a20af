"""The k3s cluster over SSH: install (server first, then agents), kubeconfig, firewall,
readiness, labels and taints, upgrade one node at a time, uninstall.

Plans only; the runner executes them. Every step that changes a node has a ``skip_if``
so a second run on an installed cluster changes nothing and says "already installed (vX)".
The join token is read with sudo on the server, kept in memory, and reaches agents only
inside ``/etc/rancher/k3s/config.yaml`` (0600, written over stdin): never in an argv.
"""

from __future__ import annotations

import os
import re
import shlex
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from oewsctl.clients import kubeconfig, transfer
from oewsctl.clients.kube import is_ready, wait_until
from oewsctl.configuration.schema import Config, NodeConfig
from oewsctl.core.console import err_console
from oewsctl.core.constants import READY_TIMEOUT
from oewsctl.core.context import RunContext
from oewsctl.core.errors import OewsctlError, UsageError
from oewsctl.core.plan import Needs, Plan, Step
from oewsctl.core.runner import run_step
from oewsctl.runbooks import nodes

INSTALLER = "/usr/local/bin/k3s-install.sh"
INSTALLER_URL_ENV = "OEWSCTL_K3S_INSTALL_URL"
K3S_BIN = "/usr/local/bin/k3s"
IMAGES_DIR = "/var/lib/rancher/k3s/agent/images"
K3S_CONFIG = "/etc/rancher/k3s/config.yaml"
NODE_TOKEN = "/var/lib/rancher/k3s/server/node-token"
REMOTE_KUBECONFIG = "/etc/rancher/k3s/k3s.yaml"
UNINSTALL = {"server": "/usr/local/bin/k3s-uninstall.sh", "agent": "/usr/local/bin/k3s-agent-uninstall.sh"}


@dataclass(frozen=True)
class Airgap:
    """A directory with the k3s release files: install.sh, k3s / k3s-arm64, optional image tarballs."""

    path: Path

    def binary(self, arch: str) -> Path:
        return self.path / ("k3s" if arch == "amd64" else f"k3s-{arch}")

    def images(self, arch: str) -> Path | None:
        found = self.path / f"k3s-airgap-images-{arch}.tar.zst"
        return found if found.is_file() else None

    def check(self, config: Config) -> None:
        """UsageError naming every file the inventory's architectures need and the directory lacks."""
        needed = [self.path / "install.sh"] + [self.binary(arch) for arch in sorted({n.arch for n in config.nodes})]
        missing = [p.name for p in needed if not p.is_file()]
        if missing:
            raise UsageError(f"--airgap {self.path}: missing {', '.join(missing)}",
                             hint="put install.sh (https://get.k3s.io) and the k3s binaries of the pinned release there")


def installed_version(ctx: RunContext, node: NodeConfig) -> str | None:
    """The k3s version installed on ``node``; None unless the installer finished there
    (its uninstall script exists: an uploaded binary alone is not an installation)."""
    script = f"[ -x {UNINSTALL[node.role]} ] && [ -x {K3S_BIN} ] && {K3S_BIN} --version"
    result = ctx.ssh.run(node.name, ["sh", "-c", script])
    match = re.search(r"k3s version (\S+)", result.stdout)
    return match[1] if result.ok and match else None


@dataclass
class _Install:
    """What the steps of one install/upgrade plan hand on: each node's k3s state, and the join token."""

    states: dict[str, tuple[bool, str | None]] = field(default_factory=dict)
    token: str | None = None

    def node_state(self, ctx: RunContext, node: NodeConfig) -> tuple[bool, str | None]:
        """(up to date, installed version), looked up once per run: the node's later steps must
        not change their minds after its first step replaced the binary."""
        if node.name not in self.states:
            pinned = ctx.config.cluster.k3s_version if ctx.config else ""
            version = installed_version(ctx, node)
            self.states[node.name] = (version is not None and (not pinned or version == pinned), version)
        return self.states[node.name]


def _skip_installed(run: _Install, node: NodeConfig, upgrade: bool) -> Any:
    def check(ctx: RunContext) -> str | None:
        current, version = run.node_state(ctx, node)
        if current:
            return f"already installed ({version})"
        if version is not None and not upgrade:
            pinned = ctx.config.cluster.k3s_version if ctx.config else ""
            return f"installed {version}, pinned {pinned}: run with --upgrade to change"
        return None

    return check


def _k3s_config(config: Config, node: NodeConfig, token: str | None) -> bytes:
    """/etc/rancher/k3s/config.yaml: agents get the server URL and token; the server its TLS name."""
    data: dict[str, Any] = {"node-name": node.name}
    if node.role == "server":
        data.update({"write-kubeconfig-mode": "0600", "tls-san": [node.host]})
    else:
        data.update({"server": f"https://{config.server_node.host}:6443", "token": token})
    return yaml.safe_dump(data, sort_keys=False).encode()


def _install_env(config: Config, node: NodeConfig, airgap: Airgap | None) -> list[str]:
    env = [f"INSTALL_K3S_EXEC={node.role}"]
    if config.cluster.k3s_version:
        env.append(f"INSTALL_K3S_VERSION={config.cluster.k3s_version}")
    if airgap is not None:
        env.append("INSTALL_K3S_SKIP_DOWNLOAD=true")
    return env


def installer_url() -> str:
    """https://get.k3s.io, or a mirror of it from $OEWSCTL_K3S_INSTALL_URL."""
    return os.environ.get(INSTALLER_URL_ENV) or "https://get.k3s.io"


def _node_steps(run: _Install, config: Config, node: NodeConfig, airgap: Airgap | None, upgrade: bool) -> list[Step]:
    skip = _skip_installed(run, node, upgrade)
    steps: list[Step] = []
    if airgap is not None:
        uploads = [(airgap.path / "install.sh", INSTALLER, 0o755), (airgap.binary(node.arch), K3S_BIN, 0o755)]
        images = airgap.images(node.arch)
        if images is not None:
            uploads.append((images, f"{IMAGES_DIR}/{images.name}", 0o644))
        for local, remote, mode in uploads:
            steps.append(Step(
                f"upload {local.name} → {remote}", node=node.name, skip_if=skip, detail=f"{local} (SHA-256 verified, mode {mode:o})",
                action=lambda ctx, n=node.name, lp=local, rp=remote, m=mode: transfer.upload(ctx.ssh, n, lp, rp, mode=m, sudo=True)[:12] + "… verified",
            ))
    else:
        url = installer_url()
        steps.append(Step(f"download the k3s installer from {url}", node=node.name, skip_if=skip, sudo=True,
                          command=["sh", "-c", 'mkdir -p "${2%/*}" && curl -sfL "$1" -o "$2" && chmod 0755 "$2"', "sh", url, INSTALLER],
                          remediation=f"{node.name} needs HTTPS access to get.k3s.io and github.com, or use --airgap DIR"))
    role = "agent config (server URL, join token)" if node.role == "agent" else "server config"

    def write_config(ctx: RunContext) -> None:
        assert ctx.config is not None
        transfer.write_file(ctx.ssh, node.name, K3S_CONFIG, _k3s_config(ctx.config, node, run.token), mode=0o600, sudo=True)

    steps.append(Step(f"write {role} → {K3S_CONFIG} (0600)", node=node.name, skip_if=skip, action=write_config,
                      detail="written over stdin; the token never appears in argv"))
    steps.append(Step(
        f"install k3s {node.role} {config.cluster.k3s_version or '(installer default)'}", node=node.name, skip_if=skip, sudo=True,
        command=["env", *_install_env(config, node, airgap), "sh", INSTALLER],
        remediation=f"see `sudo journalctl -u k3s{'-agent' if node.role == 'agent' else ''}` on {node.name}; nodes already joined keep running",
    ))
    return steps


def _read_token(ctx: RunContext, run: _Install) -> str:
    assert ctx.config is not None
    token = ctx.ssh.read_file(ctx.config.cluster.server, NODE_TOKEN, sudo=True).decode().strip()
    if not token:
        raise OewsctlError(f"{ctx.config.cluster.server}: {NODE_TOKEN} is empty", hint="is the k3s server running? `sudo systemctl status k3s`")
    run.token = token
    return "read into memory (not shown)"


def _agents_current(run: _Install, agents: list[NodeConfig]) -> Any:
    def check(ctx: RunContext) -> str | None:
        return "not needed: every agent is installed" if all(run.node_state(ctx, a)[0] for a in agents) else None

    return check


def merged_kubeconfig(ctx: RunContext) -> dict[str, Any]:
    """The operator's kubeconfig with this cluster's context fetched from the server and merged in."""
    config = ctx.config
    assert config is not None
    fetched = yaml.safe_load(ctx.ssh.read_file(config.cluster.server, REMOTE_KUBECONFIG, sudo=True))
    entry = kubeconfig.adapt(fetched, config.cluster.name, config.server_node.host)
    return kubeconfig.merge(kubeconfig.read(config.cluster.kubeconfig_path), entry, config.cluster.name)


def kubeconfig_step(config: Config) -> Step:
    path = config.cluster.kubeconfig_path
    name = config.cluster.name

    merged: dict[str, Any] = {}  # filled by the check, written by the action

    def unchanged(ctx: RunContext) -> str | None:
        merged.clear()
        merged.update(merged_kubeconfig(ctx))
        return f"{path} already has context {name!r}" if kubeconfig.read(path) == merged else None

    def write(ctx: RunContext) -> str:
        backup = kubeconfig.write(path, merged)
        return f"context {name!r} merged (mode 0600)" + (f"; previous file kept as {backup}" if backup else "")

    return Step(f"fetch {REMOTE_KUBECONFIG}, merge it into {path} as context {name!r}", node=config.cluster.server,
                skip_if=unchanged, action=write, detail=f"127.0.0.1 → {config.server_node.host}; backup of the old file kept")


def _kubelet_version(node: dict[str, Any]) -> str:
    return str(((node.get("status") or {}).get("nodeInfo") or {}).get("kubeletVersion", ""))


def wait_ready_step(config: Config, timeout: float, names: list[str] | None = None, version: str | None = None) -> Step:
    """Wait for Ready nodes (and, after an upgrade, for their kubelet to report ``version``)."""
    wanted = names or [n.name for n in config.nodes]

    def done(node: dict[str, Any] | None) -> bool:
        return node is not None and is_ready(node) and (not version or _kubelet_version(node) == version)

    def check(ctx: RunContext) -> tuple[bool, str]:
        live = {n["metadata"]["name"]: n for n in ctx.kube.list("v1", "Node")}
        waiting = [name for name in wanted if not done(live.get(name))]
        return not waiting, f"{len(wanted) - len(waiting)}/{len(wanted)} nodes Ready" + (f" (waiting for {', '.join(waiting)})" if waiting else "")

    def already(ctx: RunContext) -> str | None:
        done, message = check(ctx)
        return message if done else None

    def wait(ctx: RunContext) -> str:
        echo = None if ctx.options.output == "json" else (lambda line: err_console.print(f"    {line}", markup=False))
        return wait_until(lambda: check(ctx), what=f"nodes {', '.join(wanted)} to be Ready", timeout=timeout, echo=echo)

    return Step(f"wait until {', '.join(wanted)} {'is' if len(wanted) == 1 else 'are'} Ready in the Kubernetes API", action=wait, skip_if=already,
                detail=f"polls GET /api/v1/nodes for up to {timeout:.0f}s", remediation="check the node's k3s service: `sudo journalctl -u k3s-agent -e`")


def _wanted_metadata(node: NodeConfig) -> tuple[dict[str, str], list[dict[str, str]]]:
    taints = []
    for text in node.taints:
        key_value, _, effect = text.partition(":")
        key, _, value = key_value.partition("=")
        taints.append({"key": key, "value": value, "effect": effect or "NoSchedule"})
    return dict(node.labels), taints


def labels_step(config: Config) -> Step:
    def live_nodes(ctx: RunContext) -> dict[str, dict[str, Any]]:
        return {n["metadata"]["name"]: n for n in ctx.kube.list("v1", "Node")}

    def missing(ctx: RunContext) -> list[tuple[NodeConfig, dict[str, Any]]]:
        live = live_nodes(ctx)
        out = []
        for node in config.nodes:
            labels, taints = _wanted_metadata(node)
            current = live.get(node.name, {})
            have_labels = (current.get("metadata") or {}).get("labels") or {}
            have_taints = [{k: t.get(k, "") for k in ("key", "value", "effect")} for t in (current.get("spec") or {}).get("taints") or []]
            if any(have_labels.get(k) != v for k, v in labels.items()) or any(t not in have_taints for t in taints):
                patch: dict[str, Any] = {"metadata": {"labels": labels}}
                if taints:
                    patch["spec"] = {"taints": have_taints + [t for t in taints if t not in have_taints]}
                out.append((node, patch))
        return out

    def apply(ctx: RunContext) -> str:
        todo = missing(ctx)
        for node, patch in todo:
            ctx.kube.patch("v1", "Node", node.name, None, patch)
        return "set on " + ", ".join(n.name for n, _ in todo)

    summary = "; ".join(f"{n.name}: {', '.join([f'{k}={v}' for k, v in n.labels.items()] + n.taints)}" for n in config.nodes if n.labels or n.taints)
    return Step("label and taint nodes as the inventory says", action=apply, detail=summary or "(none in the inventory)",
                skip_if=lambda ctx: None if missing(ctx) else "labels and taints already set")


POD_CIDR = "10.42.0.0/16"
SERVICE_CIDR = "10.43.0.0/16"
"""k3s's default cluster and service CIDRs: pods reach node ports (kubelet, node-exporter, DNS) from them."""
UFW_ENABLE = ("default deny incoming", "default allow outgoing", "--force enable")
"""After the allow rules: deny anything else coming in, then switch ufw on."""


@dataclass(frozen=True)
class SshSeen:
    """The SSH session oewsctl holds to a node: its port there (kept open) and this machine's address."""

    port: int | str
    operator: str


def _firewall_rules(config: Config, node: NodeConfig, seen: SshSeen) -> list[str]:
    """The allow rules of ``node``, the SSH port in use first: enabling ufw can never cut the session."""
    rules = [f"allow {seen.port}/tcp"]
    if node.role == "server":
        rules += ["allow 80/tcp", "allow 443/tcp", f"allow from {seen.operator} to any port 6443 proto tcp"]
    for peer in config.nodes:
        if peer.name != node.name:
            rules += [f"allow from {peer.host} to any port 10250 proto tcp", f"allow from {peer.host} to any port 8472 proto udp"]
    return rules + [f"allow from {POD_CIDR} to any", f"allow from {SERVICE_CIDR} to any"]


def firewall_policy(config: Config, node: NodeConfig, seen: SshSeen | None = None) -> list[str]:
    """Every ufw command that gives ``node`` its firewall, in order (the plan and the prompt show these).
    Without ``seen`` (a dry run): the inventory's SSH port and ``<this machine>`` for the operator."""
    seen = seen or SshSeen(config.ssh_port(node), "<this machine>")
    return [f"ufw {command}" for command in (*_firewall_rules(config, node, seen), *UFW_ENABLE)]


def _ssh_seen(ctx: RunContext, node: NodeConfig) -> SshSeen:
    """From ``$SSH_CONNECTION`` on the node: the port sshd answered on (behind NAT it differs from the inventory's)."""
    fields = ctx.ssh.run(node.name, ["sh", "-c", 'echo "$SSH_CONNECTION"']).stdout.split()
    if len(fields) != 4:
        raise OewsctlError(f"{node.name}: cannot tell which SSH port this session uses ($SSH_CONNECTION is {' '.join(fields)!r})",
                           hint="firewall left unchanged; check the node's sshd (AcceptEnv is not needed: sshd sets SSH_CONNECTION)")
    return SshSeen(fields[3], fields[0])


def firewall_step(config: Config, node: NodeConfig) -> Step:
    pending: list[str] = []  # the ufw commands still to run, found by the check, run by the action

    def skip(ctx: RunContext) -> str | None:
        if not ctx.ssh.run(node.name, ["sh", "-c", "command -v ufw"]).ok:
            return "ufw not installed: this node has no firewall (install ufw, then re-run)"
        added = ctx.ssh.run(node.name, ["ufw", "show", "added"], sudo=True).stdout
        status = ctx.ssh.run(node.name, ["ufw", "status", "verbose"], sudo=True).stdout
        enabled = "Status: active" in status and "deny (incoming)" in status
        rules = [f"ufw {rule}" for rule in _firewall_rules(config, node, _ssh_seen(ctx, node))]
        pending[:] = [rule for rule in rules if rule not in added] + ([] if enabled else [f"ufw {c}" for c in UFW_ENABLE])
        return None if pending else f"ufw active, default deny incoming, {len(rules)} rules in place"

    def apply(ctx: RunContext) -> str:
        for command in pending:
            ctx.ssh.check(node.name, shlex.split(command), sudo=True)
        return f"{len(pending)} ufw command(s) run: " + ("enabled, default deny incoming" if "ufw --force enable" in pending else "rules added")

    ports = "80, 443, 6443 from this machine; " if node.role == "server" else ""
    return Step(f"firewall (ufw): deny incoming but SSH, {ports}10250/tcp and 8472/udp between nodes, pods; enable", node=node.name,
                skip_if=skip, action=apply, detail="; ".join(firewall_policy(config, node)))


def _ordered(config: Config) -> list[NodeConfig]:
    return [config.server_node] + [n for n in config.nodes if n.name != config.cluster.server]


def _cordon_steps(run: _Install, node: NodeConfig, upgrade: bool, drain_timeout: float) -> tuple[Step, Step] | None:
    """For --upgrade of an agent: cordon + drain before, uncordon after (skipped when current).

    The drain is ``kubectl drain``'s: evictions through the Eviction API, so the app's
    PodDisruptionBudget (minAvailable 1) holds a pod on the node until another replica is ready;
    refusals (429) are retried until ``drain_timeout``, then the upgrade stops with the node
    uncordoned again and nothing on it changed."""
    if not upgrade or node.role != "agent":
        return None
    name = node.name
    held = False  # True while this run keeps the node cordoned

    def cordon(ctx: RunContext) -> str:
        nonlocal held
        kube = ctx.kube
        cordoned = nodes.cordon(kube, name)
        held = True
        return f"{cordoned}; {nodes.drain(kube, name, timeout=drain_timeout, echo=lambda line: err_console.print(f'    {line}', markup=False))}"

    def uncordon(ctx: RunContext) -> str:
        nonlocal held
        done = nodes.uncordon(ctx.kube, name)
        held = False
        return done

    def not_cordoned(ctx: RunContext) -> str | None:
        return None if held else "not cordoned by this run"

    return (Step("cordon and drain before the upgrade", node=name, action=cordon, skip_if=_skip_installed(run, node, upgrade=True),
                 detail=f"PATCH node {name} unschedulable; POST pods/NAME/eviction for each of its pods but DaemonSets' "
                 f"(PodDisruptionBudgets honoured, refusals retried for up to {drain_timeout:.0f}s)"),
            Step("uncordon", node=name, action=uncordon, skip_if=not_cordoned, detail=f"PATCH node {name} schedulable"))


def _uncordon_on_failure(step: Step, uncordon: Step) -> Step:
    """``step`` run so that, if it fails while this run holds its node cordoned, the node is
    made schedulable again before the error ends the plan (a failed upgrade must leave a
    working node behind, on its old or new version)."""

    def guarded(ctx: RunContext) -> str | None:
        try:
            return run_step(replace(step, skip_if=None), ctx)[1]
        except Exception:
            if uncordon.skip_if is not None and uncordon.skip_if(ctx) is None:
                try:
                    assert uncordon.action is not None
                    uncordon.action(ctx)
                    err_console.print(f"    {step.node}: uncordoned again after the failure below", markup=False)
                except Exception as exc:  # noqa: BLE001 - never hide the step's own error
                    err_console.print(f"    {step.node}: could not uncordon ({exc}); run `kubectl uncordon {step.node}`", markup=False)
            raise

    return replace(step, command=None, sudo=False, stdin=None, action=guarded, detail=step.detail or step.shown())


def _upgrade_steps(run: _Install, config: Config, node: NodeConfig, steps: list[Step], upgrade: bool, timeout: float) -> list[Step]:
    """``steps`` of one node; for an agent under --upgrade: cordon + drain, the steps, Ready on
    the new version, uncordon, where every step after the cordon uncordons the node if it fails."""
    cordon = _cordon_steps(run, node, upgrade, timeout)
    if cordon is None:
        return steps
    before, uncordon = cordon
    wait = replace(wait_ready_step(config, READY_TIMEOUT, [node.name], version=config.cluster.k3s_version or None), skip_if=uncordon.skip_if)
    return [_uncordon_on_failure(before, uncordon)] + [_uncordon_on_failure(s, uncordon) for s in (*steps, wait)] + [uncordon]


def install_plan(config: Config, *, airgap: Path | None = None, upgrade: bool = False, ready_timeout: float = READY_TIMEOUT) -> Plan:
    """Server first (installer, token), then each agent (config with token, installer), kubeconfig,
    firewall, wait for Ready, labels. ``upgrade`` replaces other versions one node at a time."""
    release = Airgap(airgap) if airgap is not None else None
    if release is not None:
        release.check(config)
    plan = Plan("cluster upgrade" if upgrade else "cluster install", needs=Needs(nodes=tuple(n.name for n in _ordered(config))))
    agents = [n for n in config.nodes if n.role == "agent"]
    run = _Install()
    for node in _ordered(config):
        plan.extend(_upgrade_steps(run, config, node, _node_steps(run, config, node, release, upgrade), upgrade, ready_timeout))
        if node.role == "server" and agents:
            plan.add(Step(f"read the join token ({NODE_TOKEN}, sudo)", node=node.name, action=lambda ctx: _read_token(ctx, run), skip_if=_agents_current(run, agents),
                          detail="kept in memory; reaches agents only inside their 0600 config file"))
    plan.add(kubeconfig_step(config))
    if config.cluster.firewall:
        plan.extend([firewall_step(config, n) for n in _ordered(config)])
    plan.add(wait_ready_step(config, ready_timeout))
    plan.add(labels_step(config))
    return plan


def kubeconfig_plan(config: Config) -> Plan:
    return Plan("cluster kubeconfig", [kubeconfig_step(config)], needs=Needs(nodes=(config.cluster.server,)))


def uninstall_plan(config: Config, node: str | None = None) -> Plan:
    """Run the k3s uninstall script on one node, or on every node (agents first, server last)."""
    targets = [config.node(node)] if node else list(reversed(_ordered(config)))
    plan = Plan("cluster uninstall", needs=Needs(nodes=tuple(t.name for t in targets)))
    for target in targets:
        script = UNINSTALL[target.role]
        plan.add(Step(
            f"uninstall k3s {target.role} ({script})", node=target.name, sudo=True, command=[script],
            skip_if=lambda ctx, n=target.name, s=script: None if ctx.ssh.run(n, ["test", "-x", s]).ok else "k3s not installed",
            remediation=f"log in to {target.name} and run `sudo {script}` by hand",
        ))
    return plan


def node_rows(nodes: list[dict[str, Any]], config: Config) -> list[dict[str, Any]]:
    """What `cluster status` shows per node: roles, version, readiness, oews labels, schedulable."""
    rows = []
    for node in sorted(nodes, key=lambda n: n["metadata"]["name"]):
        labels = node["metadata"].get("labels") or {}
        roles = sorted(k.split("/", 1)[1] for k in labels if k.startswith("node-role.kubernetes.io/")) or ["agent"]
        rows.append({
            "name": node["metadata"]["name"],
            "roles": ",".join(roles),
            "version": _kubelet_version(node) or "?",
            "ready": is_ready(node),
            "schedulable": not (node.get("spec") or {}).get("unschedulable", False),
            "labels": {k: v for k, v in labels.items() if k.startswith("oews/")},
            "in_inventory": any(n.name == node["metadata"]["name"] for n in config.nodes),
        })
    return rows
