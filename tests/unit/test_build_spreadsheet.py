"""Building from the all-data spreadsheet (.csv, .xlsx) and a legacy oews.db gives the flat files' numbers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from oews_api.builder import build_database
from tests.fixtures.oewsdata import ALL_DATA_HEADER, ALL_DATA_ROWS, BLS_SAMPLE, CliRun, query, write_all_data_csv, write_all_data_xlsx, write_legacy_db

CELLS = [("000000", "0000000"), ("151252", "0600000"), ("272021", "0600000"), ("291224", "5300000"), ("151254", "0042660"), ("252021", "0100001")]
ROW = "SELECT * FROM estimates WHERE occ_code=? AND area_code=? AND industry_code='000000'"


@pytest.fixture(params=["csv", "xlsx", "legacy"])
def alldata_db(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    """A database built from the same real rows in each all-data form."""
    source = {
        "csv": lambda: write_all_data_csv(tmp_path / "all_data_M_2025.csv"),
        "xlsx": lambda: write_all_data_xlsx(tmp_path / "all_data_M_2025.xlsx"),
        "legacy": lambda: write_legacy_db(tmp_path / "old-oews.db", {2025: ALL_DATA_ROWS}),
    }[request.param]()
    out = tmp_path / "oews.db"
    build_database([source], out)
    return out


def test_same_figures_and_reasons_as_the_flat_files(alldata_db: Path, sample_db: Path) -> None:
    for occ, area in CELLS:
        assert query(alldata_db, ROW, occ, area) == query(sample_db, ROW, occ, area), (occ, area)


def test_top_coded_and_annual_only_from_markers(alldata_db: Path) -> None:
    a_median, a_pct90, unpublished = query(alldata_db, "SELECT a_median, a_pct90, unpublished FROM estimates WHERE occ_code='272021'")[0]
    reasons = json.loads(unpublished)
    assert (a_median, a_pct90) == (79040, None)
    assert reasons["a_pct90"] == "top_coded" and reasons["h_median"] == "annual_only"


def test_area_codes_types_and_industries_are_mapped(alldata_db: Path) -> None:
    areas = {code: (kind, state) for code, _, kind, state in query(alldata_db, "SELECT * FROM areas")}
    assert areas == {"0000000": ("N", "00"), "0600000": ("S", "06"), "5300000": ("S", "53"), "0042660": ("M", "53"), "0100001": ("M", "01")}
    industries = dict(query(alldata_db, "SELECT industry_code, display_level FROM industries"))
    assert industries == {"000000": 0, "000001": 1, "31--34": 2}
    sector = query(alldata_db, "SELECT a_median FROM estimates WHERE occ_code='151252' AND industry_code='31--34'")
    assert sector == [(136330,)]
    assert query(alldata_db, "SELECT occ_title, display_level FROM occupations WHERE occ_code='000000'") == [("All Occupations", 0)]


def test_ownership_only_rows_are_skipped_and_reported(tmp_path: Path) -> None:
    summary = build_database([write_all_data_csv(tmp_path / "all_data_M_2025.csv")], tmp_path / "oews.db")
    assert summary.skipped == 1 and summary.rows == len(ALL_DATA_ROWS) - 1


def test_older_lower_case_headers(tmp_path: Path, sample_db: Path) -> None:
    header = [h.lower() for h in ALL_DATA_HEADER]
    header[header.index("loc_quotient")] = "loc quotient"
    source = write_all_data_csv(tmp_path / "all_data_M_2025.csv", header=header)
    build_database([source], tmp_path / "oews.db")
    assert query(tmp_path / "oews.db", ROW, "151252", "0600000") == query(sample_db, ROW, "151252", "0600000")


def test_merge_years_and_replace_year(tmp_path: Path, oewsctl_proc: CliRun) -> None:
    older = write_all_data_csv(tmp_path / "all_data_M_2024.csv")  # the 2025 rows labelled 2024: the merge is what is tested
    out = tmp_path / "oews.db"
    merged = oewsctl_proc("db", "build", "--from", BLS_SAMPLE, "--from", older, "--out", out)
    assert merged.returncode == 0, merged.stderr
    assert query(out, "SELECT year FROM releases") == [(2024,), (2025,)]
    assert query(out, "SELECT DISTINCT year FROM source_files ORDER BY 1") == [(2024,), (2025,)]

    again = write_all_data_csv(tmp_path / "all_data_M_2025.csv")
    twice = oewsctl_proc("db", "build", "--from", BLS_SAMPLE, "--from", again, "--out", tmp_path / "twice.db")
    assert twice.returncode == 2
    assert "year 2025 is in both" in twice.stderr and "--replace-year" in twice.stderr
    assert not (tmp_path / "twice.db").exists()

    replaced = oewsctl_proc("db", "build", "--from", BLS_SAMPLE, "--from", again, "--replace-year", "--out", tmp_path / "replaced.db")
    assert replaced.returncode == 0, replaced.stderr
    assert query(tmp_path / "replaced.db", "SELECT kind FROM source_files") == [("spreadsheet",)]


def test_legacy_db_with_several_years(tmp_path: Path) -> None:
    source = write_legacy_db(tmp_path / "old.db", {2024: ALL_DATA_ROWS, 2025: ALL_DATA_ROWS})
    summary = build_database([source], tmp_path / "oews.db")
    assert summary.years == [2024, 2025]
    assert query(tmp_path / "oews.db", "SELECT year, release_code, description FROM releases") == [(2024, "2024A01", "May 2024"), (2025, "2025A01", "May 2025")]
