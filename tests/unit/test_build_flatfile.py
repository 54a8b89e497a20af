"""Building oews.db from real BLS flat files: figures as BLS published them, reasons for what it did not."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from tests.fixtures.oewsdata import BLS_SAMPLE, CliRun, query

CELL = "SELECT {} FROM estimates WHERE occ_code=? AND area_code=? AND year=2025 AND industry_code='000000'"


def test_software_developers_california_as_published(sample_db: Path) -> None:
    employment, h_median, a_median, a_pct90, lq, unpublished = query(
        sample_db, CELL.format("employment, h_median, a_median, a_pct90, loc_quotient, unpublished"), "151252", "0600000"
    )[0]
    assert (employment, h_median, a_median, a_pct90, lq) == (284390, 83.85, 174410, 272670, 1.44)
    assert unpublished is None


def test_top_coded_cell_is_a_reason_not_a_number(sample_db: Path) -> None:
    # Athletes in California: a_pct90 is '-' with footnote 5; hourly is '-' with footnote 4 (paid annually).
    a_median, a_pct90, h_median, unpublished = query(sample_db, CELL.format("a_median, a_pct90, h_median, unpublished"), "272021", "0600000")[0]
    reasons = json.loads(unpublished)
    assert a_median == 79040 and a_pct90 is None and h_median is None
    assert reasons["a_pct90"] == "top_coded"
    assert reasons["h_median"] == "annual_only"
    assert "a_median" not in reasons


def test_wholly_top_coded_and_not_released_cells(sample_db: Path) -> None:
    # Radiologists in Washington: every wage top-coded, employment published.
    employment, a_median, unpublished = query(sample_db, CELL.format("employment, a_median, unpublished"), "291224", "5300000")[0]
    assert employment == 1480 and a_median is None
    assert json.loads(unpublished)["a_median"] == "top_coded"
    not_released = query(sample_db, "SELECT count(*) FROM estimates WHERE unpublished LIKE '%not_released%'")[0][0]
    assert not_released > 0


def test_national_rows_have_no_location_quotient_and_no_reason_for_it(sample_db: Path) -> None:
    employment, lq, unpublished = query(sample_db, CELL.format("employment, loc_quotient, unpublished"), "000000", "0000000")[0]
    assert employment == 155495730 and lq is None and unpublished is None


def test_names_levels_and_area_types_are_queryable(sample_db: Path) -> None:
    areas = {code: (name, kind, state) for code, name, kind, state in query(sample_db, "SELECT * FROM areas")}
    assert areas["0000000"] == ("National", "N", "00")
    assert areas["0600000"] == ("California", "S", "06")
    assert areas["0042660"] == ("Seattle-Tacoma-Bellevue, WA", "M", "53")
    assert areas["0100001"][1] == "M"
    assert query(sample_db, "SELECT occ_title, display_level FROM occupations WHERE occ_code='151252'") == [("Software Developers", 3)]
    assert query(sample_db, "SELECT industry_code FROM industries") == [("000000",)]


def test_metadata_records_release_and_every_source_file(sample_db: Path) -> None:
    assert query(sample_db, "SELECT year, release_code, description FROM releases") == [(2025, "2025A01", "May 2025")]
    meta = dict(query(sample_db, "SELECT key, value FROM meta"))
    assert meta["schema_version"] == "1" and meta["built_at"].endswith("Z")
    files = {name: (size, sha, kind) for _, name, size, sha, kind in query(sample_db, "SELECT * FROM source_files")}
    data = BLS_SAMPLE / "oe.data.0.Current.gz"
    assert files[data.name] == (data.stat().st_size, hashlib.sha256(data.read_bytes()).hexdigest(), "flatfile")
    assert {"oe.area", "oe.occupation", "oe.industry", "oe.datatype", "oe.footnote", "oe.release"} <= set(files)


def test_lookups_use_an_index(sample_db: Path) -> None:
    by_occupation = " ".join(str(r) for r in query(sample_db, "EXPLAIN QUERY PLAN " + CELL.format("*"), "151252", "0600000"))
    by_area = " ".join(str(r) for r in query(sample_db, "EXPLAIN QUERY PLAN SELECT * FROM estimates WHERE area_code='0600000' AND year=2025"))
    assert "PRIMARY KEY" in by_occupation and "estimates_by_area" in by_area


def test_plain_data_file_gives_the_same_database(flatfile_copy: Path, tmp_path: Path, sample_db: Path) -> None:
    import gzip

    packed = flatfile_copy / "oe.data.0.Current.gz"
    (flatfile_copy / "oe.data.0.Current").write_bytes(gzip.decompress(packed.read_bytes()))
    packed.unlink()
    out = tmp_path / "plain.db"
    from oews_api.builder import build_database

    build_database([flatfile_copy], out)
    compare = "SELECT * FROM estimates ORDER BY occ_code, area_code"
    assert query(out, compare) == query(sample_db, compare)


def test_cli_build_then_validate(oewsctl_proc: CliRun, tmp_path: Path, oewsctl_state: Path) -> None:
    out = tmp_path / "oews.db"
    built = oewsctl_proc("db", "build", "--from", BLS_SAMPLE, "--out", out)
    assert built.returncode == 0, built.stderr
    assert "years 2025" in built.stdout and "sha256" in built.stdout
    assert "\x1b[" not in built.stdout + built.stderr  # no colours or progress bars without a TTY
    assert sorted(p.name for p in tmp_path.iterdir()) == ["oews.db"]  # no temp file left beside it
    record = json.loads((oewsctl_state / "validated-databases.json").read_text())[hashlib.sha256(out.read_bytes()).hexdigest()]
    assert record["check"] == "integrity_check" and record["facts"]["years"] == [2025]  # `db push` of it skips the validation
    checked = oewsctl_proc("db", "validate", out)
    assert checked.returncode == 0 and checked.stdout.startswith("ok:")


def test_cli_build_json(oewsctl_proc: CliRun, tmp_path: Path) -> None:
    out = tmp_path / "oews.db"
    result = oewsctl_proc("--output", "json", "db", "build", "--from", BLS_SAMPLE, "--out", out)
    summary = json.loads(result.stdout)
    assert summary["years"] == [2025] and summary["rows"] == query(out, "SELECT count(*) FROM estimates")[0][0]
    assert summary["sha256"] == hashlib.sha256(out.read_bytes()).hexdigest()


def test_progress_reports_bytes_read_up_to_the_file_size(tmp_path: Path) -> None:
    from oews_api.builder import build_database

    calls: list[tuple[str, int, int]] = []
    build_database([BLS_SAMPLE], tmp_path / "oews.db", progress=lambda label, done, total: calls.append((label, done, total)))
    size = (BLS_SAMPLE / "oe.data.0.Current.gz").stat().st_size
    assert calls[-1] == ("bls-sample (2025)", size, size)
    done = [d for _, d, _ in calls]
    assert done == sorted(done) and done[0] > 0
