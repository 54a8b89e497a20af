"""Files on the operator's machine replaced atomically, the previous version kept beside them."""

from __future__ import annotations

import os
import stat
import time
from pathlib import Path


def backup_name(path: Path) -> Path:
    """``<file>.bak-YYYYmmdd-HHMMSS`` beside ``path``, never the name of an existing backup."""
    stem = f"{path.name}.bak-{time.strftime('%Y%m%d-%H%M%S')}"
    candidate, n = path.with_name(stem), 1
    while candidate.exists():
        candidate, n = path.with_name(f"{stem}-{n}"), n + 1
    return candidate


def replace_with_backup(path: Path, text: str, mode: int) -> Path | None:
    """Write ``text`` to ``path`` with ``mode`` through a temp file and one rename (a crash leaves
    the old file or the new one, never half of either). A previous file is first copied to a
    fresh timestamped backup, no more readable than either version; that backup is returned."""
    path.parent.mkdir(parents=True, exist_ok=True)
    backup = None
    if path.exists():
        backup = backup_name(path)
        old = path.read_bytes()
        fd = os.open(backup, os.O_WRONLY | os.O_CREAT | os.O_EXCL, stat.S_IMODE(path.stat().st_mode) & mode)
        with os.fdopen(fd, "wb") as handle:
            handle.write(old)
    tmp = path.with_name(f".{path.name}.oewsctl-tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
        os.chmod(tmp, mode)  # os.open's mode is filtered by the umask
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return backup
