"""Read-only access to the oews.db file.

The file is opened with a ``file:...?mode=ro&immutable=1`` URI: SQLite then
never writes, never takes locks and never looks for a journal, which is right
for a file that is mode 0444 and replaced only by an atomic rename followed by
a pod restart. Each thread gets its own connection. The SHA-256 of the file is
computed once when the service starts (``/health`` reports it; ``db update``
compares it with the file it pushed).
"""

from __future__ import annotations

import sqlite3
import threading
from contextlib import closing
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from oews_api.checksum import file_sha256
from oews_api.schema import REQUIRED_TABLES

MMAP_BYTES = 4 << 30  # up to the whole file; pages are shared by every worker through the OS cache
CACHE_KIB = 8 * 1024  # per connection, and there is one per thread: reads go through the memory map anyway


class DatabaseUnavailable(Exception):
    """The database file is missing, unreadable or not an oews.db.

    ``str()`` names the full path and the underlying error (for the operator: logs, the CLI);
    ``public`` names the file only and no SQLite or OS error text (for HTTP bodies and metrics,
    which the internet may read).
    """

    def __init__(self, problem: str, path: Path, cause: str = "") -> None:
        self.public = problem.replace("{file}", path.name)
        super().__init__(problem.replace("{file}", str(path)) + (f" ({cause})" if cause else ""))


@dataclass(frozen=True)
class DatabaseInfo:
    """What ``/health`` reports about the file being served."""

    path: str
    sha256: str
    release: str
    years: list[int]
    rows: int
    reference_date: date
    """The survey reference date of the newest release (BLS surveys the pay period including the 12th)."""


def connect_readonly(path: Path, *, immutable: bool = False) -> sqlite3.Connection:
    """Open ``path`` with no chance of writing (``mode=ro``).

    ``immutable``: also skip locks and journal checks; only for a file nobody writes while it is
    open (the served oews.db). Builder inputs and files under validation keep normal locking.
    """
    uri = f"{path.resolve().as_uri()}?mode=ro" + ("&immutable=1" if immutable else "")
    return sqlite3.connect(uri, uri=True, check_same_thread=False)


def _connect(path: Path) -> sqlite3.Connection:
    connection = connect_readonly(path, immutable=True)
    connection.row_factory = sqlite3.Row
    # Read through a memory map (no read() syscall per page) and keep hot pages cached: rankings
    # touch ~800 scattered rows per area.
    connection.execute(f"PRAGMA mmap_size = {MMAP_BYTES}")
    connection.execute(f"PRAGMA cache_size = -{CACHE_KIB}")
    return connection


@dataclass
class Database:
    """A read-only oews.db with one connection per thread and its facts read once."""

    path: Path
    info: DatabaseInfo
    _local: threading.local = field(default_factory=threading.local, repr=False)

    @classmethod
    def open(cls, path: Path) -> Database:
        """Open and check the file; raise DatabaseUnavailable with the reason if it can't be served."""
        if not path.exists():
            raise DatabaseUnavailable("database file {file} does not exist", path)
        if not path.is_file():
            raise DatabaseUnavailable("database path {file} is not a file", path)
        try:
            with closing(_connect(path)) as connection:
                tables = {row[0] for row in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
                missing = [name for name in REQUIRED_TABLES if name not in tables]
                if missing:
                    raise DatabaseUnavailable(f"{{file}} is not an oews.db (missing tables: {', '.join(missing)})", path)
                releases = connection.execute("SELECT year, description, survey_month FROM releases ORDER BY year").fetchall()
                rows = connection.execute("SELECT count(*) FROM estimates").fetchone()[0]
            sha256 = file_sha256(path)
        except sqlite3.DatabaseError as exc:
            raise DatabaseUnavailable("{file} is not a readable SQLite database", path, str(exc)) from exc
        except OSError as exc:
            raise DatabaseUnavailable("cannot read {file}", path, str(exc.strerror or exc)) from exc
        if not releases:
            raise DatabaseUnavailable("{file} holds no release (table releases is empty)", path)
        newest = releases[-1]
        try:
            reference_date = date(newest["year"], newest["survey_month"], 12)
        except (TypeError, ValueError) as exc:
            raise DatabaseUnavailable(f"{{file}} has an invalid survey month {newest['survey_month']!r} for {newest['year']}", path, str(exc)) from exc
        info = DatabaseInfo(
            path=str(path),
            sha256=sha256,
            release=newest["description"],
            years=[row["year"] for row in releases],
            rows=rows,
            reference_date=reference_date,
        )
        return cls(path=path, info=info)

    @property
    def connection(self) -> sqlite3.Connection:
        """This thread's connection (opened on first use)."""
        connection = getattr(self._local, "connection", None)
        if connection is None:
            connection = _connect(self.path)
            self._local.connection = connection
        return connection

    def all(self, sql: str, params: tuple[Any, ...] | list[Any] = ()) -> list[sqlite3.Row]:
        """Run a read query and return every row."""
        return self.connection.execute(sql, params).fetchall()

    def one(self, sql: str, params: tuple[Any, ...] | list[Any] = ()) -> sqlite3.Row | None:
        """Run a read query and return its first row (or None)."""
        return self.connection.execute(sql, params).fetchone()
