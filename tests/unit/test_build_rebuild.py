"""Adding a year to a database oewsctl built: `db build --from current.db --from new-release --out next.db`."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from oews_api.builder import BuildUsageError, SourceError, build_database
from tests.fixtures.oewsdata import CliRun, query, write_all_data_csv

EVERYTHING = "SELECT * FROM estimates WHERE year=? ORDER BY occ_code, area_code, industry_code"


def test_existing_years_carry_over_unchanged(sample_db: Path, tmp_path: Path, oewsctl_proc: CliRun) -> None:
    newer = write_all_data_csv(tmp_path / "all_data_M_2026.csv")  # the 2025 rows labelled 2026: the carry-over is what is tested
    out = tmp_path / "next.db"
    result = oewsctl_proc("db", "build", "--from", sample_db, "--from", newer, "--out", out)
    assert result.returncode == 0, result.stderr
    assert query(out, "SELECT year, release_code FROM releases") == [(2025, "2025A01"), (2026, "2026A01")]
    assert query(out, EVERYTHING, 2025) == query(sample_db, EVERYTHING, 2025)
    assert query(out, "SELECT * FROM areas WHERE area_code='0100001'") == query(sample_db, "SELECT * FROM areas WHERE area_code='0100001'")
    assert query(out, "SELECT kind FROM source_files WHERE year=2025") == [("oews_db",)]


def test_same_year_from_the_current_db_needs_replace_year(sample_db: Path, tmp_path: Path) -> None:
    again = write_all_data_csv(tmp_path / "all_data_M_2025.csv")
    with pytest.raises(BuildUsageError, match="year 2025 is in both"):
        build_database([sample_db, again], tmp_path / "next.db")
    build_database([sample_db, again], tmp_path / "next.db", replace_year=True)
    assert query(tmp_path / "next.db", "SELECT count(*) FROM estimates")[0][0] == 8  # the spreadsheet's rows replaced the year


def test_an_unusable_db_is_refused(tmp_path: Path) -> None:
    half = tmp_path / "half.db"
    build_database([write_all_data_csv(tmp_path / "all_data_M_2025.csv")], half)
    half.write_bytes(half.read_bytes()[: os.path.getsize(half) // 2])
    with pytest.raises(SourceError, match="half.db"):
        build_database([half], tmp_path / "next.db")
    assert not (tmp_path / "next.db").exists()


def test_dry_run_says_where_each_year_comes_from_and_writes_nothing(sample_db: Path, tmp_path: Path, oewsctl_proc: CliRun) -> None:
    newer = write_all_data_csv(tmp_path / "all_data_M_2026.csv")
    result = oewsctl_proc("--dry-run", "db", "build", "--from", sample_db, "--from", newer, "--out", tmp_path / "next.db")
    assert result.returncode == 0
    assert f"2025 (May 2025) from {sample_db} [oews_db]" in result.stderr
    assert f"2026 (May 2026) from {newer} [spreadsheet]" in result.stderr
    assert not (tmp_path / "next.db").exists()
