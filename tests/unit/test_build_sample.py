"""The sample database bundled in the package: valid, real, and covering what the brief promises."""

from __future__ import annotations

from pathlib import Path

import pytest

from oews_api.builder.validate import validate_database
from oews_api.sample import SAMPLE_DB, make
from tests.fixtures.oewsdata import BLS_SAMPLE, query


def test_bundled_sample_is_valid_and_small() -> None:
    report = validate_database(SAMPLE_DB)
    assert report.ok, report.problems
    assert report.facts["years"] == [2025]
    assert SAMPLE_DB.stat().st_size < 15_000_000


def test_bundled_sample_covers_nation_states_and_largest_metros() -> None:
    kinds = dict(query(SAMPLE_DB, "SELECT area_type, count(*) FROM areas GROUP BY area_type"))
    assert kinds["N"] == 1 and kinds["S"] == 54 and kinds["M"] >= 25
    names = {name for (name,) in query(SAMPLE_DB, "SELECT area_name FROM areas")}
    assert {"Austin-Round Rock-San Marcos, TX", "Seattle-Tacoma-Bellevue, WA", "Los Angeles-Long Beach-Anaheim, CA"} <= names
    assert query(SAMPLE_DB, "SELECT DISTINCT industry_code FROM estimates") == [("000000",)]
    assert query(SAMPLE_DB, "SELECT count(*) FROM occupations")[0][0] > 800


def test_bundled_sample_has_real_figures() -> None:
    row = "SELECT a_median FROM estimates WHERE occ_code=? AND area_code=?"
    assert query(SAMPLE_DB, row, "151252", "0600000") == [(174410,)]  # Software Developers, California
    assert query(SAMPLE_DB, row, "151254", "0042660") == [(130440,)]  # Web Developers, Seattle


def test_make_rebuilds_a_sample_from_a_release(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "sample.db"
    make.main([str(BLS_SAMPLE), "--out", str(out)])
    assert "5 areas" in capsys.readouterr().out
    assert make.largest_metros(BLS_SAMPLE, 25) == ["0042660"]  # the only metro in the trimmed test release
    assert query(out, "SELECT DISTINCT industry_code FROM estimates") == [("000000",)]
    assert validate_database(out).ok
