"""File helpers shared by the readers, the writer and the validator."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path
from typing import Any

from oews_api.builder.errors import SourceError
from oews_api.db import connect_readonly

SQLITE_MAGIC = b"SQLite format 3\x00"
FETCH = 5_000


def is_sqlite(path: Path) -> bool:
    with open(path, "rb") as f:
        return f.read(len(SQLITE_MAGIC)) == SQLITE_MAGIC


def sqlite_tables(path: Path) -> set[str]:
    """The table names when ``path`` is a readable SQLite file, else an empty set."""
    if not is_sqlite(path):
        return set()
    try:
        with closing(connect_readonly(path)) as db:
            return {name for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    except sqlite3.DatabaseError as exc:
        raise SourceError(path, f"unreadable SQLite file ({exc}); it may be truncated or damaged") from None


def fetch(cursor: sqlite3.Cursor, path: Path) -> list[Any]:
    """The next rows; a damaged file mid-read is a SourceError naming it, not a write error."""
    try:
        return cursor.fetchmany(FETCH)
    except sqlite3.DatabaseError as exc:
        raise SourceError(path, f"unreadable SQLite file ({exc}); it may be truncated or damaged") from None
