"""Is this SQLite file a usable oews.db? One line per problem, plus facts about it.

Used by ``oewsctl db validate``, by the builder before it renames its temp file, and
by ``db push`` while the file is uploaded (``quick``: ``PRAGMA quick_check``, which reads every
page and b-tree but skips matching each index entry to its row: 0.3 s instead of 2.3 s on the
64 MiB May 2025 file; ``db build`` and ``db validate`` run the full ``integrity_check``).
Never raises for a bad file: a random, truncated or non-SQLite file is reported as a problem.
"""

from __future__ import annotations

import sqlite3
from contextlib import closing
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path
from typing import Any

from oews_api.builder.files import connect_readonly, is_sqlite
from oews_api.checksum import file_sha256
from oews_api.schema import REQUIRED_INDEXES, REQUIRED_TABLES, SCHEMA_VERSION

PERCENTILES = (("h_pct10", "h_pct25", "h_median", "h_pct75", "h_pct90"), ("a_pct10", "a_pct25", "a_median", "a_pct75", "a_pct90"))
NATIONAL, ALL_OCCUPATIONS, CROSS_INDUSTRY = "0000000", "000000", "000000"
CHECKS_VERSION = f"1.{SCHEMA_VERSION}"
"""Bump the first part when a check is added or changed: oewsctl's record of files it validated
(by SHA-256, ``oewsctl.runbooks.validated``) then no longer counts and they are checked again."""


@dataclass
class ValidationReport:
    """``problems`` is empty when the file is usable; ``facts`` describes it either way."""

    path: Path
    problems: list[str] = field(default_factory=list)
    facts: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.problems

    def as_dict(self) -> dict[str, Any]:
        return {"path": str(self.path), "ok": self.ok, "problems": self.problems, **self.facts}


def validate_database(path: Path, *, quick: bool = False) -> ValidationReport:
    """Check ``path`` (integrity, schema, content); see the module docstring for ``quick``."""
    report = ValidationReport(Path(path))
    if not path.is_file():
        report.problems.append(f"{path}: {'not a file' if path.exists() else 'no such file'}")
        return report
    report.facts["size"] = path.stat().st_size
    report.facts["sha256"] = file_sha256(path)
    if not is_sqlite(path):
        report.problems.append(f"{path}: not an SQLite database (wrong file header)")
        return report
    try:
        with closing(connect_readonly(path)) as db:
            _check(db, report, "quick_check" if quick else "integrity_check")
    except sqlite3.DatabaseError as exc:
        report.problems.append(f"{path}: unreadable SQLite file ({exc}); it may be truncated or damaged")
    return report


def _check(db: sqlite3.Connection, report: ValidationReport, pragma: str) -> None:
    problems, facts = report.problems, report.facts
    integrity = [r[0] for r in db.execute(f"PRAGMA {pragma}(5)")]
    if integrity != ["ok"]:
        problems.append(f"{pragma} failed: {'; '.join(integrity)}")
        return
    present = {name for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type IN ('table', 'index')")}
    missing_tables = [t for t in REQUIRED_TABLES if t not in present]
    if missing_tables:
        problems.append(f"missing tables: {', '.join(missing_tables)} (not an oews.db built by oewsctl db build)")
        return
    missing_indexes = [i for i in REQUIRED_INDEXES if i not in present]
    if missing_indexes:
        problems.append(f"missing indexes: {', '.join(missing_indexes)} (lookups would be slow)")
    meta = dict(db.execute("SELECT key, value FROM meta"))
    facts["schema_version"] = int(meta["schema_version"]) if meta.get("schema_version", "").isdigit() else meta.get("schema_version")
    facts["built_at"] = meta.get("built_at")
    if facts["schema_version"] != SCHEMA_VERSION:
        problems.append(f"schema version {facts['schema_version']!r}, this oews-api reads version {SCHEMA_VERSION}")
    releases = db.execute("SELECT year, release_code, description FROM releases ORDER BY year").fetchall()
    facts["releases"] = [{"year": y, "release_code": c, "description": d} for y, c, d in releases]
    facts["years"] = [y for y, _, _ in releases]
    facts["rows"] = {t: db.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in REQUIRED_TABLES}
    if not releases:
        problems.append("no release in table releases")
    for year in facts["years"]:
        found = db.execute(
            "SELECT 1 FROM estimates WHERE occ_code=? AND area_code=? AND year=? AND industry_code=?",
            (ALL_OCCUPATIONS, NATIONAL, year, CROSS_INDUSTRY),
        ).fetchone()
        if found is None:
            problems.append(f"{year}: the national All Occupations row (occ 000000, area 0000000, industry 000000) is missing")
    orphan_years = [y for (y,) in db.execute("SELECT DISTINCT year FROM estimates WHERE year NOT IN (SELECT year FROM releases)")]
    if orphan_years:
        problems.append(f"estimates for years {orphan_years} have no row in releases")
    for columns in PERCENTILES:
        _check_order(db, columns, problems)


def _check_order(db: sqlite3.Connection, columns: tuple[str, ...], problems: list[str]) -> None:
    """p10 <= p25 <= median <= p75 <= p90 wherever both neighbours are published."""
    pairs = " OR ".join(f"({a} > {b})" for a, b in pairwise(columns))
    count, example = db.execute(
        f"SELECT count(*), min(occ_code || ' in ' || area_code || ' ' || year || ' ' || industry_code) FROM estimates WHERE {pairs}"
    ).fetchone()
    if count:
        problems.append(f"{count} rows have {' <= '.join(columns)} out of order (e.g. occupation {example})")
