"""The sample database bundled in the package: valid, real, and covering what the brief promises."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from oews_api.builder.validate import validate_database
from oews_api.checksum import file_sha256
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


def test_make_gives_the_same_bytes_from_the_same_release(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Rebuilding the sample does not dirty the tree: no clock, pid or random value reaches the file."""
    monkeypatch.delenv("SOURCE_DATE_EPOCH", raising=False)
    first, second = tmp_path / "first.db", tmp_path / "second.db"
    make.main([str(BLS_SAMPLE), "--out", str(first)])
    time.sleep(1.05 - time.time() % 1)  # the next build runs in a later second of the clock
    make.main([str(BLS_SAMPLE), "--out", str(second)])
    assert file_sha256(first) == file_sha256(second)
    newest = max(int(f.stat().st_mtime) for f in BLS_SAMPLE.iterdir())
    built_at = query(first, "SELECT value FROM meta WHERE key='built_at'")[0][0]
    assert built_at == datetime.fromtimestamp(newest, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def test_source_date_epoch_sets_the_build_time(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1767225600")
    out = tmp_path / "sample.db"
    make.main([str(BLS_SAMPLE), "--out", str(out)])
    assert query(out, "SELECT value FROM meta WHERE key='built_at'") == [("2026-01-01T00:00:00Z",)]
