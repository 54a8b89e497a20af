"""Where oewsctl keeps local state on the operator's machine (lock, audit log, image digests, API discovery cache)."""

from __future__ import annotations

import os
from pathlib import Path

STATE_ENV = "OEWSCTL_STATE_DIR"


def state_dir() -> Path:
    """``$OEWSCTL_STATE_DIR``, else ``$XDG_STATE_HOME/oewsctl`` (``~/.local/state/oewsctl``); created if missing."""
    env = os.environ.get(STATE_ENV)
    base = Path(env) if env else Path(os.environ.get("XDG_STATE_HOME", "~/.local/state")).expanduser() / "oewsctl"
    base.mkdir(parents=True, exist_ok=True)
    return base
