"""Write releases into a new oews.db: temp file, bulk load, indexes, metadata, validate, rename.

Speed comes from one transaction with ``journal_mode=OFF`` / ``synchronous=OFF`` (the
temp file is thrown away on any error, so durability mid-build buys nothing),
``executemany`` in large batches, and indexes created after the load.
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Callable
from contextlib import closing
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from itertools import islice
from pathlib import Path
from typing import Any

from oews_api.builder.errors import BuildError, BuildUsageError, SourceError
from oews_api.checksum import file_sha256
from oews_api.builder.model import ESTIMATE_COLUMNS, Dimensions, Located, ReleaseInput
from oews_api.schema import DDL, INDEXES, SCHEMA_VERSION

BATCH = 20_000
CACHE_KIB = 256 * 1024
"""SQLite page cache during the build; bounds memory whatever the input size."""

Progress = Callable[[str, int, int], None]
"""``progress(label, bytes_done, bytes_total)``, called after each batch."""

_INSERT = f"INSERT INTO estimates ({', '.join(ESTIMATE_COLUMNS)}) VALUES ({', '.join('?' * len(ESTIMATE_COLUMNS))})"


@dataclass
class BuildSummary:
    """What a build produced (printed by ``oewsctl db build``)."""

    out: Path
    years: list[int]
    rows: int
    seconds: float
    size: int
    sha256: str
    skipped: int = 0
    counts: dict[str, int] = field(default_factory=dict)
    facts: dict[str, Any] = field(default_factory=dict)
    """What the validation of the written file found (sha256, size, releases, years, rows)."""

    def as_dict(self) -> dict[str, object]:
        return {
            "out": str(self.out),
            "years": self.years,
            "rows": self.rows,
            "seconds": round(self.seconds, 2),
            "size": self.size,
            "sha256": self.sha256,
            "skipped_rows": self.skipped,
            "counts": self.counts,
        }


def builder_version() -> str:
    try:
        return version("oews")
    except PackageNotFoundError:
        return "unknown"


def build_time(default: datetime | None = None) -> datetime:
    """When the database counts as built (``meta.built_at``): ``SOURCE_DATE_EPOCH`` when set (the
    reproducible-builds convention: same inputs, same bytes), else ``default``, else now."""
    epoch = os.environ.get("SOURCE_DATE_EPOCH", "").strip()
    if not epoch:
        return default or datetime.now(UTC)
    if not epoch.isdigit():
        raise BuildUsageError(f"SOURCE_DATE_EPOCH={epoch!r} is not a Unix time in seconds", hint="set it to e.g. $(date +%s) or unset it")
    return datetime.fromtimestamp(int(epoch), UTC)


def write_database(
    releases: list[ReleaseInput], out: Path, progress: Progress | None = None, built_at: datetime | None = None
) -> BuildSummary:
    """Build ``out`` from ``releases``; on any error nothing is left at ``out`` or beside it.

    Nothing else in the file depends on the clock or the process: the same inputs and ``built_at``
    give the same bytes (``python -m oews_api.sample.make`` relies on it)."""
    from oews_api.builder.validate import validate_database

    started = time.monotonic()
    out = out.resolve()
    if not out.parent.is_dir():
        raise BuildError(f"output directory {out.parent} does not exist", hint="create it first or pick another --out")
    if out.is_dir():
        raise BuildUsageError(f"--out {out} is a directory", hint="name the database file, e.g. --out oews.db")
    temp = out.with_name(f".{out.name}.building-{os.getpid()}")
    try:
        temp.unlink(missing_ok=True)
        with closing(sqlite3.connect(temp, isolation_level=None)) as db:
            rows, dims = _load(db, releases, progress)
            _finish(db, releases, dims, built_at or build_time())
            counts = {t: db.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in ("areas", "occupations", "industries", "estimates")}
        report = validate_database(temp)
        if not report.ok:
            raise BuildError(f"the built database failed validation: {'; '.join(report.problems)}", hint="the input data is inconsistent; check the file named above")
        os.replace(temp, out)
    except (OSError, sqlite3.Error) as exc:  # readers turn their own I/O errors into SourceError first
        raise BuildError(f"cannot write {out}: {exc}", hint="check free disk space and the output directory's permissions") from None
    finally:
        temp.unlink(missing_ok=True)
    return BuildSummary(
        out=out,
        years=sorted(r.year for r in releases),
        rows=rows,
        seconds=time.monotonic() - started,
        size=out.stat().st_size,
        sha256=report.facts["sha256"],
        skipped=sum(r.skipped for r in releases),
        counts=counts,
        facts=report.facts,
    )


def _load(db: sqlite3.Connection, releases: list[ReleaseInput], progress: Progress | None) -> tuple[int, Dimensions]:
    db.execute("PRAGMA journal_mode=OFF")
    db.execute("PRAGMA synchronous=OFF")
    db.execute(f"PRAGMA cache_size=-{CACHE_KIB}")
    db.execute("PRAGMA temp_store=MEMORY")
    db.executescript(DDL)
    db.execute("BEGIN")
    total = 0
    dims = Dimensions()
    for release in sorted(releases, key=lambda r: r.year):
        label = f"{release.origin.name} ({release.year})"
        stream = release.rows()
        while batch := list(islice(stream, BATCH)):
            _insert(db, batch, release, total)
            total += len(batch)
            if progress is not None:
                progress(label, release.position(), release.size)
        if progress is not None:
            progress(label, release.size, release.size)
        dims.merge(release.dims)
        db.execute(
            "INSERT INTO releases (year, release_code, description) VALUES (?, ?, ?)",
            (release.year, release.release_code, release.description),
        )
        db.executemany(
            "INSERT INTO source_files (year, name, size, sha256, kind) VALUES (?, ?, ?, ?, ?)",
            [(release.year, f.path.name, f.path.stat().st_size, file_sha256(f.path), f.kind) for f in release.files],
        )
    if total == 0:
        raise BuildError("the inputs hold no estimate rows", hint="check that --from points at the data you meant")
    return total, dims


def _insert(db: sqlite3.Connection, batch: list[Located], release: ReleaseInput, loaded: int) -> None:
    try:
        db.executemany(_INSERT, [row for _, row in batch])
    except sqlite3.IntegrityError:
        _report_duplicate(db, batch, release, loaded)
        raise


def _report_duplicate(db: sqlite3.Connection, batch: list[Located], release: ReleaseInput, loaded: int) -> None:
    """A batch hit the primary key. ``executemany`` stopped at the offending row, and every
    row before it went in (there is no journal to roll back): the row count says which one."""
    line, row = batch[db.execute("SELECT count(*) FROM estimates").fetchone()[0] - loaded]
    occ, area, year, industry = row[:4]
    raise SourceError(
        release.files[-1].path,
        f"duplicate estimate for occupation {occ}, area {area}, year {year}, industry {industry}",
        line=line,
        hint="each occupation × area × industry may appear once per year; remove the repeated rows",
    )


def _finish(db: sqlite3.Connection, releases: list[ReleaseInput], dims: Dimensions, built_at: datetime) -> None:
    db.executemany("INSERT INTO areas VALUES (?, ?, ?, ?)", [(c, *v) for c, v in sorted(dims.areas.items())])
    db.executemany("INSERT INTO occupations VALUES (?, ?, ?)", [(c, *v) for c, v in sorted(dims.occupations.items())])
    db.executemany("INSERT INTO industries VALUES (?, ?, ?)", [(c, *v) for c, v in sorted(dims.industries.items())])
    db.executemany("INSERT INTO footnotes VALUES (?, ?)", sorted(dims.footnotes.items()))
    meta = {
        "schema_version": str(SCHEMA_VERSION),
        "built_at": built_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "builder": "oews_api.builder",
        "builder_version": builder_version(),
        "years": ",".join(str(r.year) for r in sorted(releases, key=lambda r: r.year)),
    }
    db.executemany("INSERT INTO meta VALUES (?, ?)", sorted(meta.items()))
    db.execute("COMMIT")
    db.executescript(INDEXES)
    db.execute("ANALYZE")
    db.execute("VACUUM")  # rows arrive out of key order; repacking the pages saves ~10%
