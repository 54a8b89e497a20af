"""The audit log: one JSON line per state-changing run (who, when, what, result)."""

from __future__ import annotations

import getpass
import json
import os
import socket
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from oewsctl.lock import state_dir

if TYPE_CHECKING:
    from oewsctl.errors import OewsctlError
    from oewsctl.runner import RunContext

AUDIT_ENV = "OEWSCTL_AUDIT_LOG"


def audit_path() -> Path:
    env = os.environ.get(AUDIT_ENV)
    return Path(env).expanduser() if env else state_dir() / "audit.jsonl"


def record_run(ctx: "RunContext", command: str, *, ok: bool, seconds: float, error: "OewsctlError | None" = None) -> None:
    """Append the audit line. Arguments are argv (which never holds secrets by design)."""
    line = {
        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "user": getpass.getuser(),
        "host": socket.gethostname(),
        "cluster": ctx.config.cluster.name if ctx.config is not None else None,
        "command": command,
        "argv": sys.argv[1:],
        "result": "ok" if ok else "failed",
        "error": error.message if error is not None else None,
        "seconds": round(seconds, 3),
    }
    path = audit_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        handle.write(json.dumps(line) + "\n")
