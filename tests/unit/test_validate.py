"""`oewsctl db validate`: exit 0 only for a usable oews.db, one line per problem, never a traceback."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
from collections.abc import Callable
from contextlib import closing
from pathlib import Path

import pytest

from oews_api.builder.validate import validate_database
from oews_api.schema import SCHEMA_VERSION
from tests.fixtures.oewsdata import CliRun


def damaged(sample_db: Path, tmp_path: Path, *sql: str) -> Path:
    """A copy of the built sample database with ``sql`` applied."""
    copy = tmp_path / "damaged.db"
    shutil.copy(sample_db, copy)
    with closing(sqlite3.connect(copy)) as db:
        for statement in sql:
            db.execute(statement)
        db.commit()
    return copy


def test_built_database_is_valid_with_facts(sample_db: Path) -> None:
    report = validate_database(sample_db)
    assert report.ok, report.problems
    assert report.facts["schema_version"] == SCHEMA_VERSION
    assert report.facts["releases"] == [{"year": 2025, "release_code": "2025A01", "description": "May 2025"}]
    assert report.facts["rows"]["estimates"] > 3000 and report.facts["rows"]["areas"] == 5
    assert len(report.facts["sha256"]) == 64


CASES: dict[str, tuple[Callable[[Path, Path], Path], str]] = {
    "random bytes": (lambda db, tmp: _write(tmp / "r.db", os.urandom(8192)), "not an SQLite database (wrong file header)"),
    "empty file": (lambda db, tmp: _write(tmp / "e.db", b""), "not an SQLite database"),
    "truncated": (lambda db, tmp: _write(tmp / "t.db", db.read_bytes()[: db.stat().st_size // 3]), "it may be truncated or damaged"),
    "other sqlite": (lambda db, tmp: _other_sqlite(tmp / "o.db"), "missing tables: meta, releases"),
    "schema version": (lambda db, tmp: damaged(db, tmp, "UPDATE meta SET value='99' WHERE key='schema_version'"), "schema version 99, this oews-api reads version 1"),
    "no index": (lambda db, tmp: damaged(db, tmp, "DROP INDEX estimates_by_area"), "missing indexes: estimates_by_area"),
    "no release": (lambda db, tmp: damaged(db, tmp, "DELETE FROM releases"), "no release in table releases"),
    "no national total": (
        lambda db, tmp: damaged(db, tmp, "DELETE FROM estimates WHERE occ_code='000000' AND area_code='0000000'"),
        "2025: the national All Occupations row",
    ),
    "percentiles out of order": (
        lambda db, tmp: damaged(db, tmp, "UPDATE estimates SET a_pct25 = a_pct75 + 1 WHERE occ_code='151252' AND area_code='0600000'"),
        "1 rows have a_pct10 <= a_pct25 <= a_median <= a_pct75 <= a_pct90 out of order (e.g. occupation 151252 in 0600000 2025 000000)",
    ),
}


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def _other_sqlite(path: Path) -> Path:
    with closing(sqlite3.connect(path)) as db:
        db.execute("CREATE TABLE oews_data (AREA TEXT)")
        db.commit()
    return path


@pytest.mark.parametrize("case", list(CASES))
def test_unusable_files_are_reported_not_raised(case: str, sample_db: Path, tmp_path: Path) -> None:
    make, expected = CASES[case]
    report = validate_database(make(sample_db, tmp_path))
    assert not report.ok
    assert any(expected in p for p in report.problems), report.problems


def test_cli_exit_codes_and_lines(oewsctl_proc: CliRun, sample_db: Path, tmp_path: Path) -> None:
    good = oewsctl_proc("db", "validate", sample_db)
    assert good.returncode == 0 and good.stdout.startswith(f"ok: {sample_db}") and "years 2025" in good.stdout
    bad = damaged(sample_db, tmp_path, "DROP INDEX areas_by_name", "DELETE FROM releases")
    result = oewsctl_proc("db", "validate", bad)
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        "problem: missing indexes: areas_by_name (lookups would be slow)",
        "problem: no release in table releases",
        "problem: estimates for years [2025] have no row in releases",
    ]
    junk = _write(tmp_path / "junk.db", os.urandom(100))
    result = oewsctl_proc("db", "validate", junk)
    assert result.returncode == 1 and "Traceback" not in result.stderr and result.stderr.count("\n") == 1
    missing = oewsctl_proc("db", "validate", tmp_path / "nope.db")
    assert missing.returncode == 2 and "no such file" in missing.stderr


def test_cli_json(oewsctl_proc: CliRun, sample_db: Path, tmp_path: Path) -> None:
    report = json.loads(oewsctl_proc("--output", "json", "db", "validate", sample_db).stdout)
    assert report["ok"] is True and report["years"] == [2025] and report["problems"] == []
    bad = damaged(sample_db, tmp_path, "UPDATE meta SET value='0' WHERE key='schema_version'")
    result = oewsctl_proc("-o", "json", "db", "validate", bad)
    assert result.returncode == 1 and json.loads(result.stdout)["problems"] == ["schema version 0, this oews-api reads version 1"]
