"""Database files this machine has already validated, by SHA-256, so that a push need not check them again.

``db build`` and ``db validate`` run SQLite's full ``integrity_check`` plus the schema and content
checks, and ``db push`` the same with ``quick_check``. Each records the file's SHA-256 with what the
checks found (size, releases, years) in ``<state dir>/validated-databases.json``. Same SHA-256, same
bytes, same verdict: a later push of that file (the usual ``db build`` then ``db push``) only hashes
it, which it does anyway, and skips the 0.3 s quick_check of the May 2025 file (seconds on a slow
laptop). A record counts only for the checks' version it was made with (``CHECKS_VERSION``); newer
checks validate again. Losing the file costs one validation, nothing else.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

from oews_api.builder.validate import CHECKS_VERSION

from oewsctl.core.state import state_dir

RECORD_FILE = "validated-databases.json"
KEEP = 32
"""Newest records kept (a record is ~300 bytes)."""
_FACTS = ("sha256", "size", "releases", "years")


def _load() -> dict[str, dict[str, Any]]:
    try:
        data = json.loads((state_dir() / RECORD_FILE).read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def remember(facts: dict[str, Any], check: str) -> None:
    """Record a file that passed ``check`` (``integrity_check`` or ``quick_check``) with its facts."""
    records = _load()
    records[str(facts["sha256"])] = {"checks": CHECKS_VERSION, "check": check, "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                                     "facts": {k: facts[k] for k in _FACTS if k in facts}}
    newest = dict(sorted(records.items(), key=lambda item: str(item[1].get("at", "")))[-KEEP:])
    path = state_dir() / RECORD_FILE
    temp = path.with_name(f".{RECORD_FILE}.{os.getpid()}")
    try:
        temp.write_text(json.dumps(newest, indent=1))
        os.replace(temp, path)  # two runs at once: the last one wins, each file stays whole
    except OSError:
        temp.unlink(missing_ok=True)  # a record we cannot write only costs a validation next time


def recall(sha256: str) -> tuple[dict[str, Any], str] | None:
    """The facts recorded for ``sha256`` by the current checks, and how it was checked (``integrity_check on 2026-12-02T01:30:00Z``)."""
    record = _load().get(sha256)
    if not isinstance(record, dict) or record.get("checks") != CHECKS_VERSION or not isinstance(record.get("facts"), dict):
        return None
    if record["facts"].get("sha256") != sha256 or not isinstance(record["facts"].get("size"), int):
        return None
    return record["facts"], f"{record.get('check', 'checked')} on {record.get('at', '?')}"
