"""Database releases across the DB nodes: ``db push | update | rollback | status``.

On every node labelled ``oews/db=true``, beside ``database.path`` (``/opt/k3s/storage/oews.db``):

- ``oews.db``: the live file (0444), never written in place, only replaced by rename(2);
- ``oews.db.v<N>``: kept versions, hard links to earlier live files (no copy, no extra disk),
  ``N`` grows; the newest ``keep_versions`` are kept, older ones pruned after a switch;
- ``.oews.db.incoming``: the uploaded, node-verified (SHA-256), 0444 file waiting for the switch;
- ``.oews.db.releases.json``: what was pushed (SHA-256, release, years) for the live file and each
  version, so ``db status`` can name releases without opening the database on the node.

A push uploads and verifies the file on *every* node before it switches *any*: a failure while
uploading removes the staged files everywhere and leaves every live file as it was. A failure
while switching (node k of n) cannot undo the nodes already switched: the error names which nodes
serve the new file and which still serve the previous one, and no staged file is left. The
ledgers are written once every rename is done, so a ledger that cannot be written never stops
another node's switch.
"""

from __future__ import annotations

import json
import posixpath
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from oewsctl.clients import transfer
from oewsctl.clients.kube import Kube, is_ready, wait_until
from oewsctl.clients.transfer import FREE_KIB, remote_sha256, temp_name
from oewsctl.core.console import interactive
from oewsctl.core.errors import OewsctlError, UsageError
from oewsctl.core.plan import Plan, Step
from oewsctl.runbooks.render import APP_NAME
from oewsctl.runbooks.rollout import Target, restart, wait_step

if TYPE_CHECKING:
    from oewsctl.clients.ssh import SSHPool
    from oewsctl.configuration.schema import Config
    from oewsctl.core.context import RunContext

API_PORT = 8000
HEALTH_TIMEOUT = 120.0
"""Seconds ``db update`` waits for every ready pod to report the new SHA-256 on /health."""
SPACE_MARGIN = 16 * 1024 * 1024
"""Free space demanded beyond the file itself (the filesystem must not end up full)."""

INSPECT = (
    FREE_KIB + 'live=$1; dir=${live%/*}; base=${live##*/}\n'
    'echo "avail_kib $(free_kib "$dir")"\n'
    '[ -f "$live" ] && echo "live $(stat -c \'%i %s\' -- "$live")"\n'
    'for v in "$dir/$base".v*; do n=${v##*.v}; case $n in ""|*[!0-9]*) continue;; esac\n'
    '  [ -f "$v" ] && echo "version $n $(stat -c \'%i %s %Y\' -- "$v")"; done\n'
    '[ -r "$dir/.$base.releases.json" ] && { echo ledger; cat -- "$dir/.$base.releases.json"; }\n'
    'exit 0'
)
"""Run as ``sh -c INSPECT sh LIVE``: free KiB where the file goes (the nearest existing directory:
a fresh node has no storage dir yet), live inode/size, versions, then the ledger (JSON). Reads only."""

SWITCH = (
    'live=$1 staged=$2 keep=$3; dir=${live%/*}; base=${live##*/}\n'
    '[ -f "$staged" ] || { echo "$staged is missing (the upload did not finish)" >&2; exit 66; }\n'
    'versions() { for v in "$dir/$base".v*; do n=${v##*.v}; case $n in ""|*[!0-9]*) continue;; esac; echo "$n"; done | sort -n; }\n'
    'kept=""\n'
    'if [ -f "$live" ]; then\n'
    '  for n in $(versions); do [ "$dir/$base.v$n" -ef "$live" ] && kept=$n; done\n'
    '  if [ -z "$kept" ]; then last=$(versions | tail -n 1); kept=$(( ${last:-0} + 1 )); ln -- "$live" "$dir/$base.v$kept" || exit 1; fi\n'
    '  echo "kept $kept"\n'
    'fi\n'
    'mv -f -- "$staged" "$live" || exit 1\n'
    'total=$(versions | wc -l)\n'
    'if [ "$total" -gt "$keep" ]; then for n in $(versions | head -n $(( total - keep ))); do rm -f -- "$dir/$base.v$n" && echo "pruned $n"; done; fi\n'
    'exit 0'
)
"""Run as ``sh -c SWITCH sh LIVE STAGED KEEP``: keep the live file as the next version (hard link,
unless it already is one), rename the staged file over it (atomic), prune versions beyond KEEP."""

STAGE_VERSION = 'ln -f -- "$1" "$2" && chmod 0444 -- "$2"'
"""Run as ``sh -c STAGE_VERSION sh VERSION STAGED``: a kept version becomes the staged file (rollback)."""


# -- what a node holds -----------------------------------------------------------------------


@dataclass
class Release:
    """What one database file is (from the local validation, or the ledger on the node)."""

    sha256: str
    size: int
    release: str | None = None
    years: list[int] = field(default_factory=list)
    pushed_at: str | None = None

    @classmethod
    def of(cls, facts: dict[str, Any]) -> "Release":
        releases = facts.get("releases") or []
        return cls(str(facts["sha256"]), int(facts["size"]), releases[-1]["description"] if releases else None, list(facts.get("years") or []))

    @classmethod
    def load(cls, data: Any) -> "Release | None":
        try:
            return cls(**data) if isinstance(data, dict) else None
        except TypeError:
            return None

    def label(self) -> str:
        return f"{self.release or 'unknown release'}, sha256 {self.sha256[:12]}…, {mib(self.size)}"


@dataclass
class Version:
    number: int
    inode: int
    size: int
    mtime: int


@dataclass
class NodeState:
    """One DB node as ``INSPECT`` saw it."""

    node: str
    avail: int
    live_inode: int | None = None
    live_size: int | None = None
    versions: list[Version] = field(default_factory=list)
    ledger_live: Release | None = None
    ledger_versions: dict[int, Release] = field(default_factory=dict)

    def release_of_version(self, number: int) -> Release | None:
        return self.ledger_versions.get(number)

    def previous(self) -> Version | None:
        """The newest kept version whose bytes are not the live file's (rollback's default)."""
        others = [v for v in self.versions if v.inode != self.live_inode]
        return max(others, key=lambda v: v.number) if others else None

    def version(self, number: int) -> Version | None:
        return next((v for v in self.versions if v.number == number), None)


def mib(size: int) -> str:
    return f"{size / 1048576:.1f} MiB"


def parse_inspect(node: str, text: str) -> NodeState:
    """The ``INSPECT`` output as a NodeState (a broken ledger is ignored, not fatal)."""
    head, _, ledger_text = text.partition("ledger\n")
    state = NodeState(node, 0)
    for line in head.splitlines():
        words = line.split()
        if words[:1] == ["avail_kib"] and len(words) == 2:
            state.avail = int(words[1]) * 1024
        elif words[:1] == ["live"] and len(words) == 3:
            state.live_inode, state.live_size = int(words[1]), int(words[2])
        elif words[:1] == ["version"] and len(words) == 5:
            state.versions.append(Version(*map(int, words[1:])))
    state.versions.sort(key=lambda v: v.number)
    try:
        ledger = json.loads(ledger_text) if ledger_text.strip() else {}
    except ValueError:
        ledger = {}
    if isinstance(ledger, dict):
        state.ledger_live = Release.load(ledger.get("live"))
        for number, data in (ledger.get("versions") or {}).items():
            found = Release.load(data)
            if found is not None and str(number).isdigit():
                state.ledger_versions[int(number)] = found
    return state


class Layout:
    """The file names beside ``database.path`` on every DB node."""

    def __init__(self, live: str) -> None:
        self.live = live
        self.dir, self.base = posixpath.split(live)
        self.staged = posixpath.join(self.dir, f".{self.base}.incoming")
        self.ledger = posixpath.join(self.dir, f".{self.base}.releases.json")

    def version(self, number: int) -> str:
        return f"{self.live}.v{number}"


def inspect_node(pool: "SSHPool", node: str, layout: Layout) -> NodeState:
    result = pool.check(node, ["sh", "-c", INSPECT, "sh", layout.live], sudo=True, what=f"inspect {layout.dir}")
    return parse_inspect(node, result.stdout)


def write_ledger(pool: "SSHPool", node: str, layout: Layout, live: Release | None, versions: dict[int, Release]) -> None:
    body = {"live": asdict(live) if live else None, "versions": {str(n): asdict(r) for n, r in sorted(versions.items())}}
    transfer.write_file(pool, node, layout.ledger, json.dumps(body, indent=1).encode(), mode=0o644, sudo=True)


def switch_node(pool: "SSHPool", node: str, layout: Layout, keep: int, state: NodeState, kept_as: Release | None) -> tuple[dict[int, Release], str]:
    """Keep the live file (``kept_as``) as a version, rename the staged file over it, prune.

    Returns the versions the node's ledger should now list, and a summary line; the ledger itself
    is written by the record step, once every node has switched.
    """
    result = pool.check(node, ["sh", "-c", SWITCH, "sh", layout.live, layout.staged, str(keep)], sudo=True,
                        what=f"switch {layout.live}")
    versions = dict(state.ledger_versions)
    kept: list[str] = []
    for line in result.stdout.splitlines():
        word, _, number = line.partition(" ")
        if word == "kept" and number.isdigit():
            if int(number) not in versions and kept_as is not None:
                versions[int(number)] = kept_as
            kept.append(f"previous kept as {posixpath.basename(layout.version(int(number)))}")
        elif word == "pruned" and number.isdigit():
            versions.pop(int(number), None)
            kept.append(f"pruned v{number}")
    return versions, ", ".join(kept) or "first database on this node"


def cleanup_staged(pool: "SSHPool", nodes: Sequence[str], layout: Layout) -> list[str]:
    """Remove staged and partial files on ``nodes``; the nodes where that failed."""
    failed = []
    for node in nodes:
        try:
            pool.check(node, ["rm", "-f", "--", layout.staged, temp_name(layout.staged)], sudo=True)
        except OewsctlError:
            failed.append(node)
    return failed


@dataclass
class _DbRun:
    """What the steps of one ``db push`` / ``db rollback`` plan hand on (one per plan)."""

    nodes: dict[str, NodeState] = field(default_factory=dict)
    """Each DB node as inspected by the first steps."""
    live_sha: dict[str, str] = field(default_factory=dict)
    """SHA-256 of each node's live file (push)."""
    switched: dict[str, tuple[Release | None, dict[int, Release]]] = field(default_factory=dict)
    """Node -> (its new live release, the versions its ledger lists): switched, ledger not yet written."""
    serving: set[str] = field(default_factory=set)
    """The nodes whose live file is the one this run puts in place (switched, or already it)."""
    rollback: dict[str, Choice] | None = None
    """Rollback: the version each node goes back to, chosen once by the staging step."""


def _record(ctx: "RunContext", run: _DbRun, layout: Layout) -> list[str]:
    """Write the ledger of every switched node; one "node: error" line per node where that failed."""
    failed = []
    for node, (live, versions) in run.switched.items():
        try:
            write_ledger(ctx.ssh, node, layout, live, versions)
        except Exception as exc:  # noqa: BLE001 - bookkeeping: one node's failure (even a raw socket error) must not skip the others
            message = exc.message if isinstance(exc, OewsctlError) else str(exc) or type(exc).__name__
            failed.append(message if message.startswith(node) else f"{node}: {message}")
    run.switched.clear()
    return failed


def _switch_action(run: _DbRun, layout: Layout, node: str, nodes: Sequence[str], keep: int, retry: str,
                release: "Callable[[RunContext], tuple[Release | None, Release | None]]") -> "Callable[[RunContext], str]":
    """The body of a switch step on ``node``; ``release(ctx)`` gives (the new live release, what the current file is).

    When the switch fails, the nodes switched before stay switched (a rename cannot be taken back
    safely on a node that may be serving it): the error names which nodes serve which file,
    removes the staged files left, records the switched nodes' ledgers, and says to ``retry``.
    """
    def switch(ctx: "RunContext") -> str:
        new, kept_as = release(ctx)
        try:
            versions, summary = switch_node(ctx.ssh, node, layout, keep, run.nodes[node], kept_as)
        except OewsctlError as exc:
            serving = [n for n in nodes if n in run.serving]
            behind = [n for n in nodes if n not in serving]
            left = cleanup_staged(ctx.ssh, behind, layout)
            unrecorded = _record(ctx, run, layout)
            notes = [f"switched: {', '.join(serving) or 'no node'}", f"not switched (still on the previous file): {', '.join(behind)}",
                     f"could not remove {layout.staged} on {', '.join(left)}" if left else f"staged files removed on {', '.join(behind)}"]
            notes += [f"ledger not written on {line}" for line in unrecorded]
            where = "the DB nodes now hold different files" if serving else "no live file was changed"
            raise OewsctlError(f"{exc.message}; " + "; ".join(notes),
                               hint=f"{where}. Fix {node}, then {retry}; `oewsctl db status` shows each node") from None
        run.switched[node] = (new, versions)
        run.serving.add(node)
        return summary

    return switch


def _record_step(run: _DbRun, layout: Layout) -> Step:
    """After every switch: write each switched node's ledger (what ``db status`` names releases from)."""
    def record(ctx: "RunContext") -> str:
        nodes = ", ".join(run.switched)
        failed = _record(ctx, run, layout)
        if failed:
            raise OewsctlError(f"every DB node switched, but {layout.ledger} could not be written: " + "; ".join(failed),
                               hint="the new file is live; `oewsctl db status` shows its release as unknown there until the next push")
        return f"written on {nodes}"

    return Step(f"record the new live file in {layout.ledger}", action=record,
                skip_if=lambda ctx: None if run.switched else "no node was switched",
                detail="on every switched node, only after every rename succeeded")


# -- db push ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class PushOptions:
    force: bool = False
    node: str | None = None
    """Only this DB node (``restore --node``); all DB nodes otherwise."""


def db_node_names(config: "Config", only: str | None = None) -> list[str]:
    """The nodes labelled ``oews/db=true`` (just ``only`` if given, which must be one of them)."""
    names = [n.name for n in config.db_nodes]
    if not names:
        raise UsageError("no node is labelled oews/db=true in the inventory, so no node holds the database",
                         hint=f"add `labels: {{oews/db: \"true\"}}` to the server node ({config.cluster.server}) in oewsctl.yaml")
    if only is not None:
        config.node(only)
        if only not in names:
            raise UsageError(f"node {only!r} is not a DB node (label oews/db=true)", hint=f"DB nodes: {', '.join(names)}")
        return [only]
    return names


def validate_local(path: Path) -> Release:
    """Refuse a missing or invalid database file before any node is touched."""
    from oews_api.builder.validate import validate_database

    if not path.is_file():
        raise UsageError(f"{path}: no such file", hint="pass the oews.db written by `oewsctl db build`")
    report = validate_database(path)
    if not report.ok:
        raise UsageError(f"{path} is not a usable oews.db, no node was touched: " + "; ".join(report.problems),
                         hint=f"rebuild it (`oewsctl db build`) and check it with `oewsctl db validate {path}`")
    return Release.of(report.facts)


def _same(run: _DbRun, node: str, new: Release, force: bool) -> str | None:
    state = run.nodes.get(node)
    if force or state is None or state.live_inode is None:
        return None
    live_sha = run.live_sha.get(node)
    if live_sha == new.sha256:
        return f"already serves sha256 {new.sha256[:12]}… (--force resends)"
    return None


def _live_release(state: NodeState, live_sha: str | None) -> Release | None:
    """What the live file is: the ledger's entry when its SHA-256 matches, else just its hash and size."""
    if live_sha is None or state.live_size is None:
        return None
    if state.ledger_live is not None and state.ledger_live.sha256 == live_sha:
        return state.ledger_live
    return Release(live_sha, state.live_size)


def _inspect_step(run: _DbRun, layout: Layout, node: str, new: Release, force: bool) -> Step:
    def inspect(ctx: "RunContext") -> str:
        state = run.nodes[node] = inspect_node(ctx.ssh, node, layout)
        if state.live_inode is not None:
            run.live_sha[node] = remote_sha256(ctx.ssh, node, layout.live, sudo=True)
        if _same(run, node, new, force):
            run.serving.add(node)
            return "live file already has this SHA-256"
        need = new.size + SPACE_MARGIN
        if state.avail < need:
            raise OewsctlError(
                f"{node}: only {mib(state.avail)} free in {layout.dir}, the new database needs {mib(need)} (file + {mib(SPACE_MARGIN)} margin); no node was changed",
                hint=f"free space on {node} (old versions: {layout.live}.v*, or lower database.keep_versions) or grow the disk, then push again",
            )
        live = f"live {mib(state.live_size or 0)}" if state.live_inode is not None else "no live file yet"
        return f"{mib(state.avail)} free, {live}, {len(state.versions)} kept version(s)"

    return Step(f"check free disk and the live file in {layout.dir}", node=node, action=inspect,
                detail=f"df, stat, sha256 of {layout.live} (needs {mib(new.size + SPACE_MARGIN)} free)")


def _upload_step(run: _DbRun, layout: Layout, node: str, nodes: Sequence[str], local: Path, new: Release, force: bool) -> Step:
    def upload(ctx: "RunContext") -> str:
        show = ctx.options.output == "text" and interactive()
        try:
            got = transfer.upload(ctx.ssh, node, local, layout.staged, mode=0o444, sudo=True, progress=show)
        except OewsctlError as exc:
            left = cleanup_staged(ctx.ssh, nodes, layout)
            note = f"; could not remove {layout.staged} on {', '.join(left)}" if left else f"; staged files removed on {', '.join(nodes)}"
            raise OewsctlError(f"{exc.message}{note}; no live database was switched", hint=exc.hint) from None
        if got != new.sha256:
            cleanup_staged(ctx.ssh, nodes, layout)
            raise OewsctlError(f"{local} changed while it was uploaded (sha256 {got[:12]}…, validated {new.sha256[:12]}…); nothing switched",
                               hint="do not modify the file during a push; run it again")
        return f"sha256 verified on {node}, mode 0444"

    return Step(f"upload {local.name} ({mib(new.size)}) → {layout.staged}", node=node, action=upload,
                skip_if=lambda ctx: _same(run, node, new, force),
                detail="stream over SSH to a temp name, verify SHA-256 on the node, chmod 0444, rename to the staged name",
                remediation="run the push again; nothing was switched")


def _switch_step(run: _DbRun, layout: Layout, node: str, nodes: Sequence[str], keep: int, new: Release, force: bool) -> Step:
    def release(ctx: "RunContext") -> tuple[Release | None, Release | None]:
        new.pushed_at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        return new, _live_release(run.nodes[node], run.live_sha.get(node))

    retry = "re-run the same command (nodes already on the new file are skipped), or go back with `oewsctl db rollback`"
    return Step(f"switch {layout.live} to sha256 {new.sha256[:12]}… (keep the previous as a version, keep {keep})", node=node,
                action=_switch_action(run, layout, node, nodes, keep, retry, release), skip_if=lambda ctx: _same(run, node, new, force),
                detail=f"ln {layout.live} {layout.live}.v<N>; mv -f {layout.staged} {layout.live} (atomic rename); prune beyond {keep}",
                remediation="check the node's disk and permissions; `oewsctl db status` shows what each node holds")


def push_steps(config: "Config", local: Path, new: Release, options: PushOptions) -> list[Step]:
    """Inspect every DB node, upload+verify to all of them, switch each, then record (see the module docstring)."""
    layout = Layout(config.database.path)
    nodes = db_node_names(config, options.node)
    run = _DbRun()
    steps = [_inspect_step(run, layout, n, new, options.force) for n in nodes]
    steps += [_upload_step(run, layout, n, nodes, local, new, options.force) for n in nodes]
    steps += [_switch_step(run, layout, n, nodes, config.database.keep_versions, new, options.force) for n in nodes]
    return [*steps, _record_step(run, layout)]


def push_plan(config: "Config", local: Path, new: Release, options: PushOptions = PushOptions()) -> Plan:
    return Plan(f"db push {local.name}", push_steps(config, local, new, options))


# -- db update: push + restart + every pod serves the new file --------------------------------


@dataclass(frozen=True)
class PodServes:
    pod: str
    node: str
    ready: bool
    sha256: str | None
    release: str | None
    problem: str | None = None

    def line(self) -> str:
        what = f"sha256 {self.sha256[:12]}… ({self.release})" if self.sha256 else f"unknown ({self.problem})"
        return f"pod {self.pod} on {self.node}: {what}{'' if self.ready else ' [not ready]'}"


def pods_serving(kube: Kube, config: "Config") -> list[PodServes]:
    """Each API pod's database as its /health reports it (through the API server's pod proxy)."""
    namespace = config.app.namespace
    pods = [p for p in kube.list("v1", "Pod", namespace, label_selector=f"app.kubernetes.io/name={APP_NAME}")
            if (p["metadata"].get("labels") or {}).get("app.kubernetes.io/name") == APP_NAME and not p["metadata"].get("deletionTimestamp")]
    found = []
    for pod in sorted(pods, key=lambda p: p["metadata"]["name"]):
        name, node, ready = pod["metadata"]["name"], (pod.get("spec") or {}).get("nodeName") or "(unscheduled)", is_ready(pod)
        try:
            body = json.loads(kube.proxy_get("pods", name, namespace, "/health", port=API_PORT))
            db = body.get("database") or {}
            found.append(PodServes(name, node, ready, str(db.get("sha256") or "") or None, db.get("release")))
        except (OewsctlError, ValueError, AttributeError) as exc:
            found.append(PodServes(name, node, ready, None, None, getattr(exc, "message", None) or str(exc)))
    return found


def confirm_pods(kube: Kube, config: "Config", sha256: str, timeout: float | None = None) -> str:
    """Wait until every ready API pod reports ``sha256``; fail naming each pod and what it serves."""
    last: list[PodServes] = []

    def check() -> tuple[bool, str]:
        last[:] = [p for p in pods_serving(kube, config) if p.ready]
        stale = [p for p in last if p.sha256 != sha256]
        return bool(last) and not stale, f"{len(last) - len(stale)}/{len(last)} ready pods serve sha256 {sha256[:12]}…"

    try:
        return wait_until(check, what="every API pod to serve the new database", timeout=HEALTH_TIMEOUT if timeout is None else timeout)
    except OewsctlError:
        stale = "".join(f"\n  {p.line()}" for p in last if p.sha256 != sha256) or "\n  no ready oews-api pod"
        raise OewsctlError(
            f"not every ready pod serves the new database sha256 {sha256[:12]}…; still serving something else:{stale}",
            hint="the nodes hold the new file (see `oewsctl db status`); check those pods' DB mount, then `oewsctl rollout restart`, "
            "or go back with `oewsctl db rollback`",
        ) from None


def restart_and_confirm(config: "Config", sha256: str) -> list[Step]:
    """Restart the API pods (skipped when every ready pod already serves ``sha256``), wait, confirm."""
    target = Target.of(config)

    def already(ctx: "RunContext") -> str | None:
        pods = [p for p in pods_serving(ctx.kube, config) if p.ready]
        if pods and all(p.sha256 == sha256 for p in pods):
            return f"every ready pod already serves sha256 {sha256[:12]}…"
        return None

    return [
        Step(f"restart the pods of {target} so they open the new file", action=lambda ctx: restart(ctx.kube, target), skip_if=already,
             detail="patch spec.template annotation kubectl.kubernetes.io/restartedAt (kubectl rollout restart)"),
        wait_step(target),
        Step(f"check every ready pod reports sha256 {sha256[:12]}… on /health", action=lambda ctx: confirm_pods(ctx.kube, config, sha256),
             detail=f"GET /api/v1/namespaces/{config.app.namespace}/pods/<pod>:{API_PORT}/proxy/health for each ready pod"),
    ]


def update_plan(config: "Config", local: Path, new: Release, options: PushOptions = PushOptions()) -> Plan:
    return Plan(f"db update {local.name}", push_steps(config, local, new, options) + restart_and_confirm(config, new.sha256))


# -- db rollback -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Choice:
    """The version a node rolls back to; ``live`` when that version already is the live file (nothing to do)."""

    version: Version
    release: Release | None
    live: bool


def _choose(state: NodeState, to: int | None, layout: Layout) -> Choice:
    if to is not None:
        found = state.version(to)
        if found is None:
            known = ", ".join(f"v{v.number}" for v in state.versions) or "none"
            raise OewsctlError(f"{state.node}: no kept version v{to} of {layout.live} (kept: {known})", hint="see them with: oewsctl db status")
        # Versions are hard links: right after a rollback to vN, vN *is* the live file.
        return Choice(found, state.release_of_version(to), found.inode == state.live_inode)
    found = state.previous()
    if found is None:
        raise OewsctlError(f"{state.node}: no kept version of {layout.live} differs from the live file; nothing to roll back to",
                           hint="push the database you want instead: oewsctl db update FILE")
    return Choice(found, state.release_of_version(found.number), False)


def _choices(ctx: "RunContext", run: _DbRun, layout: Layout, nodes: Sequence[str], to: int | None) -> dict[str, Choice]:
    """Inspect every DB node once and pick its version; refuse when they would end up on different files."""
    if run.rollback is None:
        chosen: dict[str, Choice] = {}
        for node in nodes:
            state = run.nodes[node] = inspect_node(ctx.ssh, node, layout)
            chosen[node] = _choose(state, to, layout)
        shas = {c.release.sha256 for c in chosen.values() if c.release is not None}
        if len(shas) > 1:
            lines = "; ".join(f"{n}: v{c.version.number} sha256 {c.release.sha256[:12] if c.release else '?'}…" for n, c in chosen.items())
            raise OewsctlError(f"the DB nodes would roll back to different databases ({lines})",
                               hint="pick one explicitly with --to N (see `oewsctl db status`)")
        run.rollback = chosen
        run.serving.update(n for n, c in chosen.items() if c.live)
    return run.rollback


def _to_switch(run: _DbRun) -> dict[str, Choice]:
    return {n: c for n, c in (run.rollback or {}).items() if not c.live}


def _rollback_prepare(run: _DbRun, layout: Layout, nodes: Sequence[str], to: int | None) -> Step:
    def already(ctx: "RunContext") -> str | None:
        chosen = _choices(ctx, run, layout, nodes, to)
        if _to_switch(run):
            return None
        return f"v{to} is already the live file on {', '.join(chosen)}; nothing changed (`oewsctl db status` shows what the pods serve)"

    def stage(ctx: "RunContext") -> str:
        chosen = _to_switch(run)
        try:
            for node, choice in chosen.items():
                ctx.ssh.check(node, ["sh", "-c", STAGE_VERSION, "sh", layout.version(choice.version.number), layout.staged], sudo=True,
                              what=f"stage {layout.version(choice.version.number)}")
        except OewsctlError as exc:
            left = cleanup_staged(ctx.ssh, nodes, layout)
            note = f"could not remove {layout.staged} on {', '.join(left)}" if left else f"staged files removed on {', '.join(nodes)}"
            raise OewsctlError(f"{exc.message}; {note}; no live database was switched", hint=exc.hint) from None
        lines = [f"{n}: v{c.version.number} ({c.release.label() if c.release else mib(c.version.size)})" for n, c in chosen.items()]
        lines += [f"{n}: v{c.version.number} already live" for n, c in (run.rollback or {}).items() if c.live]
        return ", ".join(lines)

    which = f"v{to}" if to is not None else "the newest kept version that differs from the live file"
    return Step(f"stage {which} on {', '.join(nodes)}", action=stage, skip_if=already,
                detail=f"hard-link {layout.live}.v<N> to {layout.staged} on every DB node before any switch "
                "(a node where v<N> already is the live file is left alone)")


def _rollback_switch(run: _DbRun, layout: Layout, node: str, nodes: Sequence[str], keep: int) -> Step:
    def release(ctx: "RunContext") -> tuple[Release | None, Release | None]:
        return (run.rollback or {})[node].release, run.nodes[node].ledger_live

    def already(ctx: "RunContext") -> str | None:
        choice = (run.rollback or {})[node]
        return f"v{choice.version.number} is already the live file" if choice.live else None

    retry = "re-run `oewsctl db rollback --to N` with the N `db status` lists for the file you want (a node already on it is left alone)"
    return Step(f"switch {layout.live} back (keep the current file as a version)", node=node,
                action=_switch_action(run, layout, node, nodes, keep, retry, release), skip_if=already,
                detail=f"mv -f {layout.staged} {layout.live} (atomic rename)")


def rollback_plan(config: "Config", to: int | None = None) -> Plan:
    layout = Layout(config.database.path)
    nodes = db_node_names(config)
    target = Target.of(config)
    plan = Plan("db rollback" + (f" --to {to}" if to is not None else ""))
    run = _DbRun()

    def nothing_switched(ctx: "RunContext") -> str | None:
        return None if _to_switch(run) else "no node was switched"

    plan.add(_rollback_prepare(run, layout, nodes, to))
    plan.extend([_rollback_switch(run, layout, n, nodes, config.database.keep_versions) for n in nodes])
    plan.add(_record_step(run, layout))
    plan.add(Step(f"restart the pods of {target} so they open the restored file", action=lambda ctx: restart(ctx.kube, target),
                  skip_if=nothing_switched, detail="patch spec.template annotation kubectl.kubernetes.io/restartedAt"))
    plan.add(replace(wait_step(target), skip_if=nothing_switched))
    return plan


# -- db status -------------------------------------------------------------------------------


def node_status(pool: "SSHPool", config: "Config", node: str) -> dict[str, Any]:
    """What one DB node holds: live SHA-256, size, release, kept versions."""
    layout = Layout(config.database.path)
    state = inspect_node(pool, node, layout)
    live: dict[str, Any] | None = None
    if state.live_inode is not None:
        sha = remote_sha256(pool, node, layout.live, sudo=True)
        known = state.ledger_live if state.ledger_live and state.ledger_live.sha256 == sha else None
        live = {"sha256": sha, "size": state.live_size, "release": known.release if known else None}
    versions = []
    for v in state.versions:
        release = state.release_of_version(v.number)
        versions.append({"version": v.number, "size": v.size, "is_live": v.inode == state.live_inode,
                         "sha256": release.sha256 if release else None, "release": release.release if release else None,
                         "since": time.strftime("%Y-%m-%d %H:%M", time.gmtime(v.mtime))})
    return {"node": node, "path": layout.live, "live": live, "versions": versions, "free": state.avail}


def node_status_or_error(pool: "SSHPool", config: "Config", node: str) -> dict[str, Any]:
    """``node_status``, or the reason it is unknown: one unreachable node does not hide the others."""
    try:
        return node_status(pool, config, node)
    except OewsctlError as exc:
        return {"node": node, "path": config.database.path, "error": exc.message}


def status_lines(nodes: list[dict[str, Any]], pods: list[PodServes]) -> list[str]:
    lines = []
    for item in nodes:
        live = item.get("live")
        if "error" in item:
            lines.append(f"{item['node']}: unknown ({item['error']})")
            continue
        if live is None:
            lines.append(f"{item['node']}: no database at {item['path']}")
        else:
            lines.append(f"{item['node']}: {item['path']} sha256 {live['sha256']}, {mib(live['size'])}, release {live['release'] or 'unknown (not pushed by oewsctl)'}")
        for v in item["versions"]:
            sha = f"sha256 {v['sha256'][:12]}…" if v["sha256"] else "sha256 unknown"
            lines.append(f"    v{v['version']}: {sha}, {mib(v['size'])}, {v['release'] or 'release unknown'}, since {v['since']}{' (= live)' if v['is_live'] else ''}")
    lines.extend(p.line() for p in pods)
    return lines
