"""Database releases across the DB nodes: ``db push | update | rollback | status``.

On every node labelled ``oews/db=true``, beside ``database.path`` (``/opt/k3s/storage/oews.db``):

- ``oews.db``: the live file (0444), never written in place, only replaced by rename(2);
- ``oews.db.v<N>``: kept versions, hard links to earlier live files (no copy, no extra disk),
  ``N`` grows; the newest ``keep_versions`` are kept, older ones pruned after a switch;
- ``.oews.db.incoming``: the uploaded, node-verified (SHA-256), 0444 file waiting for the switch;
- ``.oews.db.releases.json``: what was pushed (SHA-256, release, years) for the live file and each
  version, so ``db status`` can name releases without opening the database on the node.

A push uploads to *every* node at once (OpenSSH, zstd-compressed when the measured link is
slower than 400 Mbit/s) while the file is validated locally, and switches *any* node only once
the validation passed and every node holds the file with the right SHA-256; then all nodes switch
at once. A failure (or Ctrl-C) while uploading removes the staged files everywhere and leaves every
live file as it was. A switch that fails on some nodes cannot undo the nodes that switched: the
error names which nodes serve the new file and which still serve the previous one, and no staged
file is left; after Ctrl-C (the switches under way finish first) the nodes themselves are asked
which file they serve. Per node: one round trip to inspect, the upload (which writes, hashes and
fsyncs the staged file), one round trip to switch (rename, fsync of the directory, prune, ledger).
A ledger that cannot be written is reported, and never stops another node's switch.
"""

from __future__ import annotations

import ipaddress
import json
import posixpath
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from oewsctl.clients.transfer import FREE_KIB, SHA256, temp_name
from oewsctl.core.console import interactive
from oewsctl.core.errors import OewsctlError, UsageError
from oewsctl.core.plan import Needs, Plan, Step
from oewsctl.runbooks.db_artifact import fetched_ref

if TYPE_CHECKING:
    from oews_api.builder.validate import ValidationReport

    from oewsctl.clients.kube import Kube
    from oewsctl.clients.ssh import SSHPool
    from oewsctl.clients.transfer import Sent
    from oewsctl.configuration.schema import Config
    from oewsctl.core.context import RunContext

API_PORT = 8000
HEALTH_TIMEOUT = 120.0
"""Seconds ``db update`` waits for every ready pod to report the new SHA-256 on /health."""
SPACE_MARGIN = 16 * 1024 * 1024
"""Free space demanded beyond the file itself (the filesystem must not end up full)."""

INSPECT = (
    FREE_KIB + 'live=$1 hash=$2 staged=$3; dir=${live%/*}; base=${live##*/}\n'
    'staged_kib=$(( $(stat -c \'%b * %B\' -- "$staged" 2>/dev/null || echo 0) / 1024 ))\n'
    'echo "avail_kib $(( $(free_kib "$dir") + staged_kib ))"\n'
    'if [ -f "$live" ]; then echo "live $(stat -c \'%i %s\' -- "$live")"\n'
    '  [ "$hash" = 1 ] && echo "live_sha $(set -- "$live"; ' + SHA256 + ')"; fi\n'
    'for v in "$dir/$base".v*; do n=${v##*.v}; case $n in ""|*[!0-9]*) continue;; esac\n'
    '  [ -f "$v" ] && echo "version $n $(stat -c \'%i %s %Y\' -- "$v")"; done\n'
    'if command -v zstd >/dev/null 2>&1; then echo "unzstd zstd"\n'
    'elif python3 -c "import compression.zstd" 2>/dev/null || python3 -c "import zstandard" 2>/dev/null; then echo "unzstd python"; fi\n'
    '[ -r "$dir/.$base.releases.json" ] && { echo ledger; cat -- "$dir/.$base.releases.json"; }\n'
    'exit 0'
)
"""Run as ``sh -c INSPECT sh LIVE HASH STAGED``: free KiB where the file goes (the nearest existing directory:
a fresh node has no storage dir yet), counting the blocks of STAGED as free: the upload replaces it, and a
push's own upload is already writing it while the nodes are inspected (measured before df, so a file still
growing is under-counted, never over-counted); live inode/size (and SHA-256 when HASH is 1), versions, which
zstd decompressor the node has, then the ledger (JSON). One round trip; reads only."""

PY_UNZSTD = (
    "import sys, shutil\n"
    "try:\n from compression.zstd import ZstdFile\n src = ZstdFile(sys.stdin.buffer)\n"
    "except ImportError:\n import zstandard\n src = zstandard.ZstdDecompressor().stream_reader(sys.stdin.buffer)\n"
    "shutil.copyfileobj(src, sys.stdout.buffer, 1 << 20)\n"
)
RECEIVE = (
    'set -o pipefail; dest=$1 codec=$2 py=$3; dir=${dest%/*}\n'
    'case $codec in zstd) unpack() { zstd -d -q -c; };; *) unpack() { python3 -c "$py"; };; esac\n'
    'if command -v openssl >/dev/null 2>&1; then digest() { openssl dgst -sha256 -r; }; else digest() { sha256sum; }; fi\n'
    'mkdir -p -- "$dir" && rm -f -- "$dest" && umask 077 || exit 73\n'
    'if [ "$codec" = none ]; then sha=$(tee -- "$dest" | digest | cut -c1-64); else sha=$(unpack | tee -- "$dest" | digest | cut -c1-64); fi \\\n'
    '  || { rc=$?; rm -f -- "$dest"; echo "writing $dest failed (exit $rc)" >&2; exit 74; }\n'
    '{ sync -- "$dest" "$dir" 2>/dev/null || sync; } && chmod 0444 -- "$dest" || { rm -f -- "$dest"; exit 74; }\n'
    'echo "sha256 $sha"; echo "size $(stat -c %s -- "$dest")"'
)
"""Run as ``bash -c RECEIVE bash STAGED CODEC PY_UNZSTD`` with the file (raw or zstd) on stdin: write the
staged file while hashing it, fsync it and its directory, chmod 0444, print its SHA-256 and size.
The caller compares that SHA-256 with its own before any switch. Any failure removes the file."""

SWITCH = (
    'live=$1 staged=$2 kept=$3 ledger=$4; shift 4; dir=${live%/*}\n'
    '[ -f "$staged" ] || { echo "$staged is missing (the upload did not finish)" >&2; exit 66; }\n'
    'if [ "$kept" != - ]; then ln -- "$live" "$live.v$kept" || exit 1; fi\n'
    'mv -f -- "$staged" "$live" || exit 1\n'
    '{ sync -- "$dir" 2>/dev/null || sync; }\n'
    'for n in "$@"; do rm -f -- "$live.v$n"; done\n'
    'if cat > "$ledger.tmp" && chmod 0644 -- "$ledger.tmp" && mv -f -- "$ledger.tmp" "$ledger"; then echo ledger\n'
    'else rm -f -- "$ledger.tmp"; echo "ledger: $ledger could not be written" >&2; fi\n'
    'exit 0'
)
"""Run as ``sh -c SWITCH sh LIVE STAGED KEPT LEDGER [PRUNE...]`` with the new ledger (JSON) on stdin:
hard-link the live file as version KEPT (``-``: it already is a version, or there is none), rename
the staged file over it (atomic; the directory fsynced after), remove the PRUNE versions, replace
the ledger. A ledger that cannot be written is reported (stdout lacks ``ledger``), never fatal:
the rename is done. What to keep and prune is decided by :func:`switch_args` from the inspection."""

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
    live_sha: str | None = None
    """Only when inspected with ``hash_live``."""
    unzstd: str | None = None
    """``zstd`` or ``python`` (a Python that can decompress zstd) when the node can take a compressed upload."""
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

    def live_release(self) -> Release | None:
        """What the live file is: the ledger's entry when its SHA-256 matches, else just its hash and size."""
        if self.live_sha is None or self.live_size is None:
            return None
        if self.ledger_live is not None and self.ledger_live.sha256 == self.live_sha:
            return self.ledger_live
        return Release(self.live_sha, self.live_size)


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
        elif words[:1] == ["live_sha"] and len(words) == 2 and len(words[1]) == 64:
            state.live_sha = words[1]
        elif words[:1] == ["unzstd"] and len(words) == 2:
            state.unzstd = words[1]
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


def inspect_node(pool: "SSHPool", node: str, layout: Layout, hash_live: bool = False) -> NodeState:
    result = pool.check(node, ["sh", "-c", INSPECT, "sh", layout.live, "1" if hash_live else "0", layout.staged], sudo=True, what=f"inspect {layout.dir}")
    return parse_inspect(node, result.stdout)


@dataclass(frozen=True)
class SwitchArgs:
    """What a switch does on one node, decided from its inspection (``SWITCH`` only carries it out)."""

    link: int | None
    """The version number to hard-link the live file as (None: it already is a version, or there is none)."""
    kept: int | None
    """The version the live file is kept as after the switch (None: no live file yet)."""
    prune: list[int]


def switch_args(state: NodeState, keep: int) -> SwitchArgs:
    """Keep the live file as a version (the existing one when it already is one), prune the oldest beyond ``keep``."""
    if state.live_inode is None:
        return SwitchArgs(None, None, [])
    numbers = [v.number for v in state.versions]
    same = [v.number for v in state.versions if v.inode == state.live_inode]
    link = None if same else max(numbers, default=0) + 1
    kept = max(same) if same else link
    after = sorted({*numbers, kept})
    return SwitchArgs(link, kept, after[: max(0, len(after) - keep)])


def switch_node(pool: "SSHPool", node: str, layout: Layout, keep: int, state: NodeState, new: Release | None,
                kept_as: Release | None) -> tuple[str, bool]:
    """One round trip: keep the live file (``kept_as``) as a version, rename the staged file over it,
    prune, and write the ledger naming ``new`` as live. Returns (summary, whether the ledger was written)."""
    plan = switch_args(state, keep)
    versions = dict(state.ledger_versions)
    if plan.kept is not None and plan.kept not in versions and kept_as is not None:
        versions[plan.kept] = kept_as
    for number in plan.prune:
        versions.pop(number, None)
    ledger = json.dumps({"live": asdict(new) if new else None, "versions": {str(n): asdict(r) for n, r in sorted(versions.items())}}, indent=1)
    argv = ["sh", "-c", SWITCH, "sh", layout.live, layout.staged, "-" if plan.link is None else str(plan.link), layout.ledger, *map(str, plan.prune)]
    result = pool.check(node, argv, sudo=True, stdin=ledger.encode(), what=f"switch {layout.live}")
    notes = [f"previous kept as {posixpath.basename(layout.version(plan.kept))}"] if plan.kept is not None else ["first database on this node"]
    notes += [f"pruned v{n}" for n in plan.prune]
    return ", ".join(notes), "ledger" in result.stdout.split()


def cleanup_staged(pool: "SSHPool", nodes: Sequence[str], layout: Layout) -> list[str]:
    """Remove staged and partial files on ``nodes``; the nodes where that failed."""
    failed = []
    for node in nodes:
        try:
            pool.check(node, ["rm", "-f", "--", layout.staged, temp_name(layout.staged)], sudo=True)
        except OewsctlError:
            failed.append(node)
    return failed


def _cleanup_note(pool: "SSHPool", nodes: Sequence[str], layout: Layout) -> str:
    left = cleanup_staged(pool, nodes, layout)
    return f"could not remove {layout.staged} on {', '.join(left)}" if left else f"staged files removed on {', '.join(nodes)}"


@dataclass
class _DbRun:
    """What the steps of one ``db push`` / ``db rollback`` plan hand on (one per plan)."""

    nodes: dict[str, NodeState] = field(default_factory=dict)
    """Each DB node as inspected by the first step."""
    serving: set[str] = field(default_factory=set)
    """The nodes whose live file is the one this run puts in place (switched, or already it)."""
    unrecorded: list[str] = field(default_factory=list)
    """Switched nodes whose ledger could not be written."""
    rollback: dict[str, Choice] | None = None
    """Rollback: the version each node goes back to, chosen once by the staging step."""
    local_sha: str | None = None
    """Push: the SHA-256 of the local file (hashed while the nodes are inspected)."""
    new: Release | None = None
    """Push: the release being pushed, once validated."""
    codec: dict[str, str] = field(default_factory=dict)
    """Push: how each node receives the file (``none``, ``zstd``, ``python``), and why, for the step line."""
    why: dict[str, str] = field(default_factory=dict)
    early: dict[str, tuple[Any, _Background]] = field(default_factory=dict)
    """Push: uploads started while the nodes are inspected (FileSender, its job), when the way to send is
    known beforehand (uncompressed); the upload step waits for them, the inspect step stops the unneeded."""
    validated_before: str | None = None
    """Push: how and when this machine validated the file before (its SHA-256 was recorded), if it did."""
    checking: _Background | None = None
    """Push: the local validation (a ValidationReport, or the known Release), started with the inspection
    so that it is done by the time the uploads are; the upload step waits for it."""


def _switch_all(run: _DbRun, layout: Layout, nodes: Sequence[str], keep: int, retry: str,
                release: "Callable[[RunContext, str], tuple[Release | None, Release | None]]",
                skipped: "Callable[[str], str]") -> "Callable[[RunContext], str]":
    """The body of the switch step: every node not yet on the target file switches at once (one round
    trip each); ``release(ctx, node)`` gives (the new live release, what the node's current file is),
    ``skipped(node)`` says why a node already on it is left alone.

    A node whose switch fails stays on its previous file and the others stay switched (a rename cannot
    be taken back safely on a node that may be serving it): the error names which nodes serve which
    file, removes the staged files left, and says to ``retry``. On Ctrl-C the switches already under
    way finish first, so that asking the nodes afterwards tells the truth.
    """
    def switch(ctx: "RunContext") -> str:
        todo = [n for n in nodes if n not in run.serving]
        already = [n for n in nodes if n in run.serving]
        args = {n: release(ctx, n) for n in todo}
        jobs = {n: _Background(lambda n=n: switch_node(ctx.ssh, n, layout, keep, run.nodes[n], *args[n])) for n in todo}
        try:
            for job in jobs.values():
                job.wait()
        except BaseException:
            for job in jobs.values():
                job.wait()
            raise
        failed: list[str] = []
        summaries: list[str] = []
        for node, job in jobs.items():
            if job.error is None:
                summary, recorded = job.value
                run.serving.add(node)
                if not recorded:
                    run.unrecorded.append(node)
                    summary += f"; {layout.ledger} NOT written"
                summaries.append(f"{node}: {summary}")
            elif isinstance(job.error, OewsctlError):
                message = job.error.message
                failed.append(message if message.startswith(node) else f"{node}: {message}")
        for job in jobs.values():
            if job.error is not None and not isinstance(job.error, OewsctlError):
                raise job.error
        if failed:
            bad = [n for n in todo if n not in run.serving]
            serving = [n for n in nodes if n in run.serving]
            notes = [f"switched: {', '.join(serving) or 'no node'}", f"not switched (still on the previous file): {', '.join(bad)}",
                     _cleanup_note(ctx.ssh, bad, layout)]
            notes += [f"ledger not written on {n}" for n in run.unrecorded]
            where = "the DB nodes now hold different files" if serving else "no live file was changed"
            raise OewsctlError("; ".join([*failed, *notes]), hint=f"{where}. Fix {', '.join(bad)}, then {retry}; `oewsctl db status` shows each node")
        return "; ".join(summaries + [f"{n}: {skipped(n)}" for n in already])

    return switch


def _ledger_step(run: _DbRun, layout: Layout) -> Step:
    """After every switch: fail (exit 1) when a node's ledger could not be written, without having stopped any switch."""
    def check(ctx: "RunContext") -> str:
        raise OewsctlError(f"every DB node switched, but {layout.ledger} could not be written on {', '.join(run.unrecorded)}",
                           hint="the new file is live; `oewsctl db status` shows its release as unknown there until the next push")

    return Step(f"confirm {layout.ledger} names the new live file on every switched node", action=check,
                skip_if=lambda ctx: None if run.unrecorded else "written by each switch",
                detail="each switch writes its node's ledger in the same round trip, after the rename")


# -- db push ---------------------------------------------------------------------------------


PUSH_RETRY = "re-run the same command (nodes already on the new file are skipped), or go back with `oewsctl db rollback`"
COMPRESS_BELOW_MBIT = 400.0
"""``--compress auto`` compresses (zstd) when the measured link is slower than this."""


@dataclass(frozen=True)
class PushOptions:
    force: bool = False
    node: str | None = None
    """Only this DB node (``restore --node``); all DB nodes otherwise."""
    compress: Literal["auto", "zstd", "none"] = "auto"


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


def _not_usable(path: Path, problems: Sequence[str], touched: str = "no node was touched") -> UsageError:
    return UsageError(f"{path} is not a usable oews.db, {touched}: " + "; ".join(problems),
                      hint=f"rebuild it (`oewsctl db build`) and check it with `oewsctl db validate {path}`")


def validated_facts(path: Path) -> dict[str, Any]:
    """The validation facts (sha256, size, releases, rows...) of a usable file; refuses a missing or
    invalid one before anything leaves this machine (full integrity_check)."""
    from oews_api.builder.validate import validate_database

    precheck_local(path)
    report = validate_database(path)
    if not report.ok:
        raise _not_usable(path, report.problems)
    return report.facts


def validate_local(path: Path) -> Release:
    """``validated_facts`` as the Release a push records."""
    return Release.of(validated_facts(path))


def precheck_local(path: Path) -> int:
    """What can be refused in microseconds before any node is touched: no file, not SQLite, truncated
    (the header's page count times page size is not the file size). Returns the size."""
    if not path.is_file():
        raise UsageError(f"{path}: no such file", hint="pass the oews.db written by `oewsctl db build`")
    size = path.stat().st_size
    with path.open("rb") as handle:
        header = handle.read(100)
    if len(header) < 100 or not header.startswith(b"SQLite format 3\x00"):
        raise _not_usable(path, [f"{path}: not an SQLite database (wrong file header)"])
    page_size = int.from_bytes(header[16:18], "big")
    page_size = 65536 if page_size == 1 else page_size
    pages = int.from_bytes(header[28:32], "big")
    valid = header[24:28] == header[92:96]  # the page count is only meaningful when these match (SQLite file format 1.3.7)
    if valid and pages and pages * page_size != size:
        raise _not_usable(path, [f"{path}: {mib(size)} on disk, but its header says {pages} pages of {page_size} bytes "
                                 f"({mib(pages * page_size)}): truncated or damaged"])
    return size


def _same(run: _DbRun, node: str, force: bool) -> str | None:
    state = run.nodes.get(node)
    if force or state is None or state.live_sha is None or run.local_sha is None:
        return None
    if state.live_sha == run.local_sha:
        return f"already serves sha256 {run.local_sha[:12]}… (--force resends)"
    return None


class _Background:
    """A function running on a daemon thread (never holds up the exit after Ctrl-C); ``result()`` waits.
    After ``wait()``: ``value``, or ``error`` (whatever it raised)."""

    def __init__(self, fn: "Callable[[], Any]") -> None:
        self.value: Any = None
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(fn,), daemon=True)
        self._thread.start()

    def _run(self, fn: "Callable[[], Any]") -> None:
        try:
            self.value = fn()
        except BaseException as exc:  # noqa: BLE001 - handed to the waiting thread
            self.error = exc

    def wait(self) -> None:
        self._thread.join()

    def result(self) -> Any:
        self.wait()
        if self.error is not None:
            raise self.error
        return self.value


def _loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def _uncompressed_anyway(ctx: "RunContext", node: str, compress: str) -> bool:
    """True when the node gets the raw file whatever its inspection says (--compress none, or auto on loopback)."""
    return compress == "none" or (compress == "auto" and _loopback(ctx.ssh.config.node(node).host))


def _link_rate(ctx: "RunContext", node: str, compress: str) -> float | None:
    """``--compress auto``: the measured upload rate to ``node`` in Mbit/s (None: not measured, loopback or not auto)."""
    from oewsctl.clients.transfer import link_mbit

    return None if compress != "auto" or _loopback(ctx.ssh.config.node(node).host) else link_mbit(ctx.ssh, node)


def _choose_codec(state: NodeState, compress: str, rate: float | None) -> tuple[str, str]:
    """(codec, why) for one node: zstd when asked, or (auto) when the link measured slower than 400 Mbit/s."""
    if compress == "none":
        return "none", "--compress none"
    if compress == "auto" and rate is None:
        return "none", "loopback: not compressed"
    if compress == "auto" and rate is not None and rate >= COMPRESS_BELOW_MBIT:
        return "none", f"link {rate:.0f} Mbit/s: not compressed"
    why = "--compress zstd" if compress == "zstd" else f"link {rate:.0f} Mbit/s"
    if state.unzstd is None:
        return "none", "no zstd (nor Python zstd) on the node: not compressed"
    return state.unzstd, f"{why}: zstd"


def _in_parallel(nodes: Sequence[str], fn: "Callable[[str], Any]") -> dict[str, Any]:
    """``fn(node)`` for every node at once; raises one error naming every node that failed."""
    jobs = {node: _Background(lambda node=node: fn(node)) for node in nodes}
    results, failures = {}, []
    for node, job in jobs.items():
        try:
            results[node] = job.result()
        except OewsctlError as exc:
            failures.append(exc.message if exc.message.startswith(node) else f"{node}: {exc.message}")
    if failures:
        raise OewsctlError("; ".join(failures))
    return results


def _stop_early(ctx: "RunContext", run: _DbRun, layout: Layout, nodes: Sequence[str]) -> None:
    """Stop the early uploads to ``nodes`` and remove what they staged."""
    for node in nodes:
        sender, job = run.early.pop(node)
        sender.abort()
        try:
            job.result()
        except Exception:  # noqa: BLE001, S110 - stopped on purpose: how it ended does not matter
            pass
    if nodes:
        cleanup_staged(ctx.ssh, nodes, layout)


def _inspect_step(run: _DbRun, layout: Layout, nodes: Sequence[str], local: Path, known: Release | None, options: PushOptions) -> Step:
    def inspect(ctx: "RunContext") -> str:
        from oews_api.checksum import file_sha256

        from oewsctl.clients.transfer import FileSender

        hashing = _Background(lambda: known.sha256 if known else file_sha256(local))
        run.checking = _Background(lambda: known or _validate_unless_recorded(run, local, hashing))
        size = local.stat().st_size

        def one(node: str) -> str:
            if _uncompressed_anyway(ctx, node, options.compress):  # no need to wait for the inspection: start sending
                sender = FileSender(ctx.ssh, node, local, _receive_command(ctx, node, layout, "none"), compress=False, advance=lambda _n: None)
                run.early[node] = (sender, _Background(sender.run))
            rate = _Background(lambda: _link_rate(ctx, node, options.compress))  # a second channel, while the node hashes its file
            state = run.nodes[node] = inspect_node(ctx.ssh, node, layout, hash_live=True)
            run.codec[node], run.why[node] = _choose_codec(state, options.compress, rate.result())
            live = f"live {mib(state.live_size or 0)}" if state.live_inode is not None else "no live file yet"
            return f"{node}: {mib(state.avail)} free, {live}, {len(state.versions)} kept version(s), {run.why[node]}"

        try:
            try:
                lines = _in_parallel(nodes, one)
            except OewsctlError as exc:
                raise OewsctlError(f"{exc.message}; no node was changed", hint="check the nodes with `oewsctl doctor`, then push again") from None
            run.local_sha = hashing.result()
            short = [f"{n}: only {mib(run.nodes[n].avail)} free in {layout.dir}" for n in nodes if not _same(run, n, options.force)
                     and run.nodes[n].avail < size + SPACE_MARGIN]
            if short:
                raise OewsctlError(
                    "; ".join(short) + f", the new database needs {mib(size + SPACE_MARGIN)} (file + {mib(SPACE_MARGIN)} margin); no node was changed",
                    hint=f"free space there (old versions: {layout.live}.v*, or lower database.keep_versions) or grow the disk, then push again",
                )
        except BaseException:  # a failed check or Ctrl-C: stop what was started, leave no staged file
            _stop_early(ctx, run, layout, list(run.early))
            raise
        run.serving.update(n for n in nodes if _same(run, n, options.force))
        _stop_early(ctx, run, layout, [n for n in run.early if n in run.serving])
        return "; ".join(lines[n] + (" (already serves this file)" if n in run.serving else "") for n in nodes)

    alongside = f"hashing {local.name}" if known else f"hashing and validating {local.name}"
    return Step(f"inspect {', '.join(nodes)} (free disk, live file, link) while {alongside}", action=inspect,
                detail=f"in parallel, one SSH round trip each: df, stat, sha256 of {layout.live}, zstd present; "
                f"--compress {options.compress}" + (" (auto: zstd below 400 Mbit/s measured with 2 MiB)" if options.compress == "auto" else ""))


def _validate_unless_recorded(run: _DbRun, local: Path, hashing: _Background) -> "Release | ValidationReport":
    """The push's validation (quick_check, schema, content), skipped for a file this machine validated
    before (same SHA-256: see :mod:`oewsctl.runbooks.validated`); a file that passes is recorded."""
    from oews_api.builder.validate import validate_database

    from oewsctl.runbooks import validated

    recorded = validated.recall(hashing.result())
    if recorded is not None:
        facts, how = recorded
        run.validated_before = how
        return Release.of(facts)
    report = validate_database(local, quick=True)
    if report.ok:
        validated.remember(report.facts, "quick_check")
    return report


def _receive_command(ctx: "RunContext", node: str, layout: Layout, codec: str) -> str:
    from oewsctl.clients.ssh import remote_command

    user = ctx.ssh.config.node(node).user
    return remote_command(["bash", "-c", RECEIVE, "bash", layout.staged, codec, PY_UNZSTD], sudo=True, user=user)


def _check_sent(node: str, layout: Layout, sent: "Sent", local_sha: str, size: int) -> str | None:
    """Why the upload to ``node`` is not the file, or None when the node wrote exactly it (the SHA-256
    the node computed while writing equals the one hashed here before the upload)."""
    if sent.code in (-1, 255):
        tail = sent.stderr.strip().splitlines()[-1:] or ["connection lost"]
        return f"{node}: upload to {layout.staged} interrupted ({tail[0]})"
    if sent.code != 0:
        return f"{node}: cannot write {layout.staged}: {sent.stderr.strip() or f'exit {sent.code}'}"
    told = dict(line.split(" ", 1) for line in sent.stdout.splitlines() if " " in line)
    if told.get("sha256") != local_sha or told.get("size") != str(size):
        return (f"{node}: the staged file has sha256 {told.get('sha256', '?')[:12]}… ({told.get('size', '?')} bytes), the local file "
                f"{local_sha[:12]}… ({size} bytes): it changed while it was uploaded, or the transfer was damaged")
    return None


def _upload_step(run: _DbRun, layout: Layout, nodes: Sequence[str], local: Path, known: Release | None, force: bool) -> Step:
    def upload(ctx: "RunContext") -> str:
        from oewsctl.clients.transfer import FileSender, progress_bars

        targets = [n for n in nodes if not _same(run, n, force)]
        size = local.stat().st_size
        validation = run.checking
        assert validation is not None, "the inspect step starts the validation"
        started = time.monotonic()
        show = ctx.options.output == "text" and interactive()
        with progress_bars([f"{n}: {local.name}" for n in targets], size, show) as advances:
            senders: dict[str, FileSender] = {}
            jobs: dict[str, _Background] = {}
            for node, advance in zip(targets, advances, strict=True):
                if node in run.early:  # already under way since the inspection
                    senders[node], jobs[node] = run.early.pop(node)
                    senders[node].follow(advance)
                    continue
                senders[node] = FileSender(ctx.ssh, node, local, _receive_command(ctx, node, layout, run.codec[node]),
                                           compress=run.codec[node] != "none", advance=advance)
                jobs[node] = _Background(senders[node].run)
            try:
                sent = {n: job.result() for n, job in jobs.items()}
                report = validation.result()
            except BaseException:  # Ctrl-C (or a bug): stop every transfer, leave no staged file
                for sender in senders.values():
                    sender.abort()
                cleanup_staged(ctx.ssh, nodes, layout)
                raise
        seconds = time.monotonic() - started
        assert run.local_sha is not None
        problems = [p for n in targets if (p := _check_sent(n, layout, sent[n], run.local_sha, size))]
        if problems:
            raise OewsctlError("; ".join(problems) + f"; {_cleanup_note(ctx.ssh, nodes, layout)}; no live database was switched",
                               hint="check the node is up and has room (`oewsctl doctor`), then run the push again: it restarts from the beginning")
        if isinstance(report, Release):
            run.new = replace(report)
        elif not report.ok:
            raise _not_usable(local, report.problems, f"{_cleanup_note(ctx.ssh, nodes, layout)}; no live database was switched")
        else:
            run.new = Release.of(report.facts)
        if run.new.sha256 != run.local_sha:
            note = _cleanup_note(ctx.ssh, nodes, layout)
            raise OewsctlError(f"{local} changed while it was pushed (sha256 {run.new.sha256[:12]}…, hashed before {(run.local_sha or '?')[:12]}…); {note}; nothing switched",
                               hint="do not modify the file during a push; run it again")
        parts = [f"{n} {mib(sent[n].wire_bytes)} sent ({run.codec[n]})" for n in targets]
        if known:
            checked = "validated before the push"
        elif run.validated_before:
            checked = f"validated earlier on this machine ({run.validated_before}, same sha256)"
        else:
            checked = "validated (quick_check, schema, content)"
        return f"{', '.join(parts) or 'nothing to send'} in {seconds:.1f}s, sha256 verified on each node, {checked}"

    which = "" if known else "; validate it locally meanwhile"
    return Step(f"upload {local.name} ({mib(local.stat().st_size) if local.exists() else '?'}) to {', '.join(nodes)} in parallel → {layout.staged}{which}",
                action=upload,
                skip_if=lambda ctx: "every node already serves this file" if all(n in run.serving for n in nodes) and not force else None,
                detail="stream over SSH (zstd when chosen) into the staged name; each node hashes what it writes, fsyncs it and its directory, chmod 0444",
                remediation="run the push again; nothing was switched")


def _switch_step(run: _DbRun, layout: Layout, nodes: Sequence[str], keep: int, force: bool) -> Step:
    def release(ctx: "RunContext", node: str) -> tuple[Release | None, Release | None]:
        assert run.new is not None
        run.new.pushed_at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        return run.new, run.nodes[node].live_release()

    def skip(ctx: "RunContext") -> str | None:
        if all(_same(run, n, force) for n in nodes):
            return "; ".join(f"{n}: {_same(run, n, force)}" for n in nodes)
        return None

    return Step(f"switch {layout.live} to the new file on {', '.join(nodes)} at once (keep the previous as a version, keep {keep}), write the ledgers",
                action=_switch_all(run, layout, nodes, keep, PUSH_RETRY, release, lambda n: _same(run, n, force) or "already on the new file"),
                skip_if=skip,
                detail=f"in parallel, one round trip each: ln {layout.live} {layout.live}.v<N>; mv -f {layout.staged} {layout.live} (atomic rename); "
                f"fsync {layout.dir}; prune beyond {keep}; write {layout.ledger}. A node that fails is named with the nodes switched and not",
                remediation="check the node's disk and permissions; `oewsctl db status` shows what each node holds")


class DbPlan(Plan):
    """A push or rollback plan that can say, after Ctrl-C, which nodes switched (asking the nodes themselves)."""

    def __init__(self, title: str, config: "Config", nodes: Sequence[str], run: _DbRun, retry: str, *, kube: bool = False) -> None:
        # `kube`: the pods are restarted afterwards. No `nodes`: the plan's first step is that check
        # already (every node at once, with sudo, reading only), without one more round trip per node.
        super().__init__(title, needs=Needs(kube=kube))
        self.layout = Layout(config.database.path)
        self.db_nodes = list(nodes)
        self.run = run
        self.retry = retry

    def _on_target(self, node: str, state: NodeState) -> bool:
        if self.run.rollback is not None:
            choice = self.run.rollback.get(node)
            return choice is not None and state.live_inode == choice.version.inode
        return self.run.local_sha is not None and state.live_sha == self.run.local_sha

    def interrupted(self, ctx: "RunContext") -> OewsctlError:
        """After Ctrl-C: remove staged files everywhere and name the nodes on the new file and the others."""
        switched, behind, unknown = [], [], []
        for node in self.db_nodes:
            try:
                state = inspect_node(ctx.ssh, node, self.layout, hash_live=self.run.rollback is None)
            except OewsctlError:
                unknown.append(node)
                continue
            (switched if self._on_target(node, state) else behind).append(node)
        note = _cleanup_note(ctx.ssh, [n for n in self.db_nodes if n not in unknown], self.layout) if len(unknown) < len(self.db_nodes) else ""
        parts = [f"switched: {', '.join(switched) or 'no node'}", f"not switched (still on the previous file): {', '.join(behind) or 'no node'}"]
        parts += [f"unknown (unreachable): {', '.join(unknown)}"] if unknown else []
        parts += [note] if note else []
        where = "the DB nodes now hold different files" if switched and (behind or unknown) else "each node's ledger names its live file"
        return OewsctlError(f"{self.title} interrupted (Ctrl-C); " + "; ".join(parts), hint=f"{where}; {self.retry}; `oewsctl db status` shows each node")


def push_steps(config: "Config", local: Path, new: Release | None, options: PushOptions, run: _DbRun | None = None) -> list[Step]:
    """Inspect every DB node, upload to all of them at once (validating meanwhile unless ``new`` is already
    known), then switch each (see the module docstring)."""
    layout = Layout(config.database.path)
    nodes = db_node_names(config, options.node)
    run = run if run is not None else _DbRun()
    steps = [_inspect_step(run, layout, nodes, local, new, options), _upload_step(run, layout, nodes, local, new, options.force)]
    return [*steps, _switch_step(run, layout, nodes, config.database.keep_versions, options.force), _ledger_step(run, layout)]


def push_plan(config: "Config", local: Path, new: Release | None = None, options: PushOptions = PushOptions()) -> DbPlan:
    """``db push``: ``new`` None validates the file while it travels (the command's path); a Release skips that."""
    plan = DbPlan(f"db push {local.name}", config, db_node_names(config, options.node), _DbRun(), PUSH_RETRY)
    plan.extend(push_steps(config, local, new, options, plan.run))
    return plan


# -- db update: push + restart + every pod serves the new file --------------------------------


@dataclass(frozen=True)
class PodServes:
    pod: str
    node: str
    ready: bool
    sha256: str | None
    release: str | None
    problem: str | None = None
    ref: str | None = None
    """delivery image: the artifact the pod's fetch-db init container pulled."""

    def line(self) -> str:
        what = f"sha256 {self.sha256[:12]}… ({self.release})" if self.sha256 else f"unknown ({self.problem})"
        source = f" from {self.ref}" if self.ref else ""
        return f"pod {self.pod} on {self.node}: {what}{source}{'' if self.ready else ' [not ready]'}"


def pods_serving(kube: "Kube", config: "Config") -> list[PodServes]:
    """Each API pod's database as its /health reports it (through the API server's pod proxy)."""
    from oewsctl.clients.kube import is_ready
    from oewsctl.runbooks.render import APP_NAME
    namespace = config.app.namespace
    pods = [p for p in kube.list("v1", "Pod", namespace, label_selector=f"app.kubernetes.io/name={APP_NAME}")
            if (p["metadata"].get("labels") or {}).get("app.kubernetes.io/name") == APP_NAME and not p["metadata"].get("deletionTimestamp")]
    found = []
    for pod in sorted(pods, key=lambda p: p["metadata"]["name"]):
        name, node, ready = pod["metadata"]["name"], (pod.get("spec") or {}).get("nodeName") or "(unscheduled)", is_ready(pod)
        ref = fetched_ref(pod.get("spec") or {})
        try:
            body = json.loads(kube.proxy_get("pods", name, namespace, "/health", port=API_PORT))
            db = body.get("database") or {}
            found.append(PodServes(name, node, ready, str(db.get("sha256") or "") or None, db.get("release"), ref=ref))
        except (OewsctlError, ValueError, AttributeError) as exc:
            found.append(PodServes(name, node, ready, None, None, getattr(exc, "message", None) or str(exc), ref))
    return found


def confirm_pods(kube: "Kube", config: "Config", sha256: str, timeout: float | None = None, which: str = "new") -> str:
    """Wait until every ready API pod reports ``sha256``; fail naming each pod and what it serves.
    ``which`` names the database in the error (``new`` after a push, ``restored`` after a rollback)."""
    from oewsctl.clients.kube import wait_until
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
            f"not every ready pod serves the {which} database sha256 {sha256[:12]}…; still serving something else:{stale}",
            hint=f"the nodes hold the {which} file (see `oewsctl db status`); check those pods' DB mount, then `oewsctl rollout restart`"
            + (", or go back with `oewsctl db rollback`" if which == "new" else ""),
        ) from None


def restart_and_confirm(config: "Config", sha256: "str | Callable[[], str]") -> list[Step]:
    """Restart the API pods (skipped when every ready pod already serves ``sha256``), wait, confirm.
    ``sha256`` may be a callable: a push learns the file's SHA-256 only when it runs."""
    from oewsctl.runbooks.rollout import Target, restart, wait_step

    target = Target.of(config)
    want = sha256 if callable(sha256) else lambda: sha256
    which = f"sha256 {sha256[:12]}…" if isinstance(sha256, str) else "the new database's sha256"

    def already(ctx: "RunContext") -> str | None:
        pods = [p for p in pods_serving(ctx.kube, config) if p.ready]
        if pods and all(p.sha256 == want() for p in pods):
            return f"every ready pod already serves sha256 {want()[:12]}…"
        return None

    return [
        Step(f"restart the pods of {target} so they open the new file", action=lambda ctx: restart(ctx.kube, target), skip_if=already,
             detail="patch spec.template annotation kubectl.kubernetes.io/restartedAt (kubectl rollout restart)"),
        wait_step(target),
        Step(f"check every ready pod reports {which} on /health", action=lambda ctx: confirm_pods(ctx.kube, config, want()),
             detail=f"GET /api/v1/namespaces/{config.app.namespace}/pods/<pod>:{API_PORT}/proxy/health for each ready pod"),
    ]


def update_plan(config: "Config", local: Path, new: Release | None = None, options: PushOptions = PushOptions()) -> DbPlan:
    """``db update``: push (validating while uploading unless ``new`` is given), restart, every pod serves it."""
    plan = DbPlan(f"db update {local.name}", config, db_node_names(config, options.node), _DbRun(), PUSH_RETRY, kube=True)
    plan.extend(push_steps(config, local, new, options, plan.run))

    def pushed() -> str:  # hashed by the inspect step (also when every node already had the file)
        if plan.run.local_sha is None:
            raise OewsctlError("the database was not hashed: the push did not run")
        return plan.run.local_sha

    plan.extend(restart_and_confirm(config, new.sha256 if new is not None else pushed))
    return plan


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


def _rollback_switch(run: _DbRun, layout: Layout, nodes: Sequence[str], keep: int) -> Step:
    def release(ctx: "RunContext", node: str) -> tuple[Release | None, Release | None]:
        return (run.rollback or {})[node].release, run.nodes[node].ledger_live

    def live_already(node: str) -> str:
        return f"v{(run.rollback or {})[node].version.number} is already the live file"

    def skip(ctx: "RunContext") -> str | None:
        return None if _to_switch(run) else "; ".join(f"{n}: {live_already(n)}" for n in nodes)

    return Step(f"switch {layout.live} back on {', '.join(nodes)} at once (keep the current file as a version), write the ledgers",
                action=_switch_all(run, layout, nodes, keep, ROLLBACK_RETRY, release, live_already), skip_if=skip,
                detail=f"in parallel, one round trip each: mv -f {layout.staged} {layout.live} (atomic rename); fsync {layout.dir}; write {layout.ledger}")


ROLLBACK_RETRY = "re-run `oewsctl db rollback --to N` with the N `db status` lists for the file you want (a node already on it is left alone)"


def rollback_plan(config: "Config", to: int | None = None) -> DbPlan:
    from oewsctl.runbooks.rollout import Target, restart, wait_step

    layout = Layout(config.database.path)
    nodes = db_node_names(config)
    target = Target.of(config)
    plan = DbPlan("db rollback" + (f" --to {to}" if to is not None else ""), config, nodes, _DbRun(), ROLLBACK_RETRY, kube=True)
    run = plan.run

    def nothing_switched(ctx: "RunContext") -> str | None:
        return None if _to_switch(run) else "no node was switched"

    plan.add(_rollback_prepare(run, layout, nodes, to))
    plan.add(_rollback_switch(run, layout, nodes, config.database.keep_versions))
    plan.add(_ledger_step(run, layout))
    plan.add(Step(f"restart the pods of {target} so they open the restored file", action=lambda ctx: restart(ctx.kube, target),
                  skip_if=nothing_switched, detail="patch spec.template annotation kubectl.kubernetes.io/restartedAt"))
    plan.add(replace(wait_step(target), skip_if=nothing_switched))

    def restored() -> str | None:
        releases = {c.release.sha256 for c in _to_switch(run).values() if c.release is not None}
        return releases.pop() if len(releases) == 1 else None

    def unknown(ctx: "RunContext") -> str | None:
        if skipped := nothing_switched(ctx):
            return skipped
        return None if restored() else "the ledger names no single SHA-256 for the restored versions (`oewsctl db status` shows what the pods serve)"

    plan.add(Step("check every ready pod reports the restored file's sha256 on /health", skip_if=unknown,
                  action=lambda ctx: confirm_pods(ctx.kube, config, restored() or "", which="restored"),
                  detail=f"GET /api/v1/namespaces/{config.app.namespace}/pods/<pod>:{API_PORT}/proxy/health for each ready pod"))
    return plan


# -- db status -------------------------------------------------------------------------------


def node_status(pool: "SSHPool", config: "Config", node: str) -> dict[str, Any]:
    """What one DB node holds: live SHA-256, size, release, kept versions."""
    layout = Layout(config.database.path)
    state = inspect_node(pool, node, layout, hash_live=True)
    live: dict[str, Any] | None = None
    current = state.live_release()
    if current is not None:
        live = {"sha256": current.sha256, "size": state.live_size, "release": current.release}
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
