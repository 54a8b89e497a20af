"""The audit log: one JSON line per state-changing run (who, when, what, result)."""

from __future__ import annotations

import getpass
import json
import os
import re
import socket
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from oewsctl.core.state import state_dir

if TYPE_CHECKING:
    from oewsctl.core.context import RunContext
    from oewsctl.core.errors import OewsctlError

AUDIT_ENV = "OEWSCTL_AUDIT_LOG"
REDACTED = "<redacted>"
# Options whose values may carry credentials. Secret values never come from argv by design, but a
# build argument (`--build-arg TOKEN=...`) or a future flag could: the audit line keeps only the name.
# A Healthchecks ping URL (`--ping-url`, `PING_KEY`) is a credential too: its path is the check's key.
_SECRET_NAME = re.compile(r"token|secret|passw|api[-_]?key|private[-_]?key|credential|ping[-_]?(?:url|key)", re.IGNORECASE)
_VALUE_OPTIONS = ("--build-arg",)


def looks_secret(name: str) -> bool:
    """True for names like ``GITHUB_TOKEN``, ``--db-password``, ``API_KEY``: their values are never shown."""
    return bool(_SECRET_NAME.search(name))


def withhold_secret_build_args(argv: Sequence[str]) -> list[str]:
    """A docker argv as a plan shows it: ``--build-arg NAME=VALUE`` keeps its value unless the
    name looks secret (the audit log, stricter, withholds every build-arg value)."""
    out = list(argv)
    for index in range(1, len(out)):
        name, sep, _ = out[index].partition("=")
        if out[index - 1] == "--build-arg" and sep and looks_secret(name):
            out[index] = f"{name}={REDACTED}"
    return out

Result = Literal["ok", "failed", "interrupted"]


def redact_argv(argv: Sequence[str]) -> list[str]:
    """argv for the audit log: values of secret-looking options and of ``--build-arg`` withheld."""
    out: list[str] = []
    withhold_next = False
    for arg in argv:
        if withhold_next:
            name, sep, _ = arg.partition("=")
            out.append(f"{name}={REDACTED}" if sep else REDACTED)
            withhold_next = False
            continue
        option, sep, value = arg.partition("=")
        if option.startswith("--") and (option in _VALUE_OPTIONS or looks_secret(option)):
            if sep:
                inner = value.partition("=")[0] + f"={REDACTED}" if option in _VALUE_OPTIONS and "=" in value else REDACTED
                out.append(f"{option}={inner}")
            else:
                out.append(arg)
                withhold_next = True
            continue
        out.append(arg)
    return out


def audit_path() -> Path:
    env = os.environ.get(AUDIT_ENV)
    return Path(env).expanduser() if env else state_dir() / "audit.jsonl"


def record_run(ctx: "RunContext", command: str, *, result: Result, seconds: float, error: "OewsctlError | None" = None) -> None:
    """Append the audit line (argv with secret-looking option values withheld)."""
    line = {
        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "user": getpass.getuser(),
        "host": socket.gethostname(),
        "cluster": ctx.config.cluster.name if ctx.config is not None else None,
        "command": command,
        "argv": redact_argv(sys.argv[1:]),
        "result": result,
        "error": error.message if error is not None else None,
        "seconds": round(seconds, 3),
    }
    path = audit_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        handle.write(json.dumps(line) + "\n")
