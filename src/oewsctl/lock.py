"""One state-changing oewsctl per cluster at a time.

The local lock is a file created with O_EXCL holding holder, command and start
time; a second run fails at once with exit 3 and shows who holds it.
``--break-lock`` removes a stale lock explicitly.
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

from oewsctl.errors import LockHeldError

if TYPE_CHECKING:
    from oewsctl.runner import RunContext

STATE_ENV = "OEWSCTL_STATE_DIR"


def state_dir() -> Path:
    """Where oewsctl keeps local state (lock, audit log, recorded image digests)."""
    env = os.environ.get(STATE_ENV)
    base = Path(env) if env else Path(os.environ.get("XDG_STATE_HOME", "~/.local/state")).expanduser() / "oewsctl"
    base.mkdir(parents=True, exist_ok=True)
    return base


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
            info = json.loads(path.read_text())
            who = f"{info['holder']} (pid {info['pid']}) running `oewsctl {info['command']}` since {info['started']}"
        except (OSError, ValueError, KeyError):
            who = "an unknown holder"
        raise LockHeldError(
            f"cluster {cluster!r} is locked by {who}",
            hint=f"wait for it to finish; if that run is gone, re-run with --break-lock (lock file {path})",
        ) from None
    with os.fdopen(fd, "w") as handle:
        json.dump(_holder(command), handle)
    try:
        yield
    finally:
        path.unlink(missing_ok=True)
