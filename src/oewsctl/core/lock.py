"""One state-changing oewsctl per cluster at a time.

The local lock is a file created with O_EXCL holding holder, command and start
time; a second run fails at once with exit 3 and shows who holds it.
``--break-lock`` removes a stale lock explicitly.

When the cluster's API is reachable (kubeconfig present), the same holder is also
recorded as the Lease ``kube-system/oewsctl-lock``, so an operator on another machine
is stopped too. An unreachable API (cluster not installed yet, or down) leaves the
local lock alone in charge: the commands that repair a cluster must still run.
"""

from __future__ import annotations

import getpass
import json
import os
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from oewsctl.core.errors import LockHeldError, OewsctlError
from oewsctl.core.state import state_dir

if TYPE_CHECKING:
    from oewsctl.configuration.schema import Config
    from oewsctl.core.context import RunContext

LEASE = ("coordination.k8s.io/v1", "Lease", "oewsctl-lock", "kube-system")
STALE_SECONDS = 6 * 3600
"""A lock, or a run's work folder (a backup's ``.ID.partial``), untouched for this long was left by a
run that died: a live run writes its folder continuously and never holds the lock idle for hours."""


def lock_path(cluster: str) -> Path:
    return state_dir() / f"{cluster}.lock"


def _holder(command: str) -> dict[str, object]:
    return {
        "holder": f"{getpass.getuser()}@{socket.gethostname()}",
        "pid": os.getpid(),
        "command": command,
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


@contextmanager
def cluster_lock(ctx: "RunContext", command: str) -> Iterator[None]:
    """Hold the local cluster lock for the duration of a mutating run."""
    cluster = ctx.config.cluster.name if ctx.config is not None else "local"
    path = lock_path(cluster)
    if ctx.options.break_lock:
        path.unlink(missing_ok=True)
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    except FileExistsError:
        try:
            who = _describe(json.loads(path.read_text()))
        except (OSError, ValueError, KeyError):
            who = "an unknown holder"
        gone = f"it is over {STALE_SECONDS // 3600} h old, so that run is probably gone: " if is_stale(path) else "wait for it to finish; if that run is gone, "
        raise LockHeldError(
            f"cluster {cluster!r} is locked by {who}",
            hint=f"{gone}re-run with --break-lock (lock file {path})",
        ) from None
    holder = _holder(command)
    with os.fdopen(fd, "w") as handle:
        json.dump(holder, handle)
    try:
        with _cluster_lease(ctx.config, holder, break_lock=ctx.options.break_lock):
            yield
    finally:
        path.unlink(missing_ok=True)


def is_stale(path: Path, now: float | None = None) -> bool:
    """True when nothing in ``path`` (a file, or a folder and everything in it) changed for STALE_SECONDS."""
    try:
        paths = [path, *path.rglob("*")] if path.is_dir() else [path]
        newest = max(p.stat().st_mtime for p in paths)
    except OSError:
        return False  # vanished meanwhile: someone is at work on it
    return (now or time.time()) - newest > STALE_SECONDS


def _describe(info: dict[str, object]) -> str:
    return f"{info['holder']} (pid {info['pid']}) running `oewsctl {info['command']}` since {info['started']}"


@contextmanager
def _cluster_lease(config: "Config | None", holder: dict[str, object], *, break_lock: bool) -> Iterator[None]:
    """Hold the in-cluster Lease too, when the API answers (see the module docstring)."""
    api_version, kind, name, namespace = LEASE
    if config is None or not config.cluster.kubeconfig_path.is_file():
        yield
        return
    from oewsctl.clients.kube import Kube  # the Kubernetes client: only when there is a cluster to hold the Lease in

    try:
        kube = Kube.from_config(config)
        live = kube.get(api_version, kind, name, namespace)
    except OewsctlError:
        yield
        return
    try:
        if live is not None and break_lock:
            kube.delete(api_version, kind, name, namespace)
        elif live is not None:
            raw = ((live.get("metadata") or {}).get("annotations") or {}).get("oewsctl/holder", "{}")
            try:
                who = _describe(json.loads(raw))
            except (ValueError, KeyError):
                who = str((live.get("spec") or {}).get("holderIdentity") or "an unknown holder")
            raise LockHeldError(f"cluster {config.cluster.name!r} is locked in the cluster by {who}",
                                hint=f"wait for it to finish; if that run is gone, re-run with --break-lock (Lease {namespace}/{name})")
        try:
            kube.create({
                "apiVersion": api_version, "kind": kind,
                "metadata": {"name": name, "namespace": namespace, "annotations": {"oewsctl/holder": json.dumps(holder)}},
                "spec": {"holderIdentity": str(holder["holder"])},
            })
        except OewsctlError as exc:
            if " 409 " not in exc.message:
                raise
            raise LockHeldError(f"cluster {config.cluster.name!r} was locked in the cluster a moment ago by another oewsctl",
                                hint="wait for it to finish, then run again") from None
        try:
            yield
        finally:
            try:
                kube.delete(api_version, kind, name, namespace)
            except OewsctlError:
                pass  # the cluster went away during the run (uninstall): nothing left to release
    finally:
        kube.close()
