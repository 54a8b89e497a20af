"""Bad input a tired operator would feed `oewsctl db build`: one clear line naming file/line/field, non-zero exit, nothing left behind."""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import pytest

from oews_api.builder import BuildError, BuildUsageError, SourceError, build_database
from tests.fixtures.oewsdata import ALL_DATA_HEADER, ALL_DATA_ROWS, BLS_SAMPLE, CliRun, write_all_data_csv, write_all_data_xlsx


def data_lines(directory: Path) -> list[bytes]:
    return gzip.decompress((directory / "oe.data.0.Current.gz").read_bytes()).splitlines(keepends=True)


def write_data(directory: Path, lines: list[bytes]) -> None:
    (directory / "oe.data.0.Current.gz").write_bytes(gzip.compress(b"".join(lines), compresslevel=1))


def fails(sources: list[Path], out: Path, kind: type[BuildError] = SourceError) -> str:
    """Build, expect ``kind``; check nothing (output or temp file) was left in ``out``'s directory."""
    before = sorted(out.parent.iterdir())
    with pytest.raises(kind) as caught:
        build_database(sources, out)
    assert sorted(out.parent.iterdir()) == before
    assert "\n" not in caught.value.message
    return caught.value.message


@pytest.fixture
def out(tmp_path: Path) -> Path:
    directory = tmp_path / "out"
    directory.mkdir()
    return directory / "oews.db"


def test_missing_mapping_file(flatfile_copy: Path, out: Path) -> None:
    (flatfile_copy / "oe.occupation").unlink()
    assert "oe.occupation: mapping file is missing" in fails([flatfile_copy], out)


def test_truncated_gz(flatfile_copy: Path, out: Path) -> None:
    data = flatfile_copy / "oe.data.0.Current.gz"
    data.write_bytes(data.read_bytes()[: data.stat().st_size // 2])
    assert "oe.data.0.Current.gz: compressed data is damaged or truncated" in fails([flatfile_copy], out)


def test_wrong_data_header(flatfile_copy: Path, out: Path) -> None:
    lines = data_lines(flatfile_copy)
    lines[0] = lines[0].replace(b"footnote_codes", b"footnotes")
    write_data(flatfile_copy, lines)
    assert "line 1: unexpected header" in fails([flatfile_copy], out)


def test_duplicate_series_names_its_line(flatfile_copy: Path, out: Path) -> None:
    lines = data_lines(flatfile_copy)
    lines.insert(101, lines[100])
    write_data(flatfile_copy, lines)
    message = fails([flatfile_copy], out)
    assert "line 102, field series_id: duplicate series " + lines[100].split(b"\t")[0].strip().decode() in message


def test_repeated_cell_out_of_order_names_its_line(flatfile_copy: Path, out: Path) -> None:
    lines = data_lines(flatfile_copy)
    lines.extend(lines[1:18])  # the first cell (Seattle, all occupations) again at the end
    write_data(flatfile_copy, lines)
    message = fails([flatfile_copy], out)
    assert f"line {len(lines) - 16:,}: duplicate estimate for occupation 000000, area 0042660" in message


def test_bad_value_names_line_and_field(flatfile_copy: Path, out: Path) -> None:
    lines = data_lines(flatfile_copy)
    series, year, period, _value, footnote = lines[5].split(b"\t")
    lines[5] = b"\t".join([series, year, period, b"  12,x4", footnote])
    write_data(flatfile_copy, lines)
    assert "line 6, field value: value '12,x4' is not a number or '-'" in fails([flatfile_copy], out)


def test_code_missing_from_a_mapping_file(flatfile_copy: Path, out: Path) -> None:
    area = flatfile_copy / "oe.area"
    area.write_text("".join(l for l in area.read_text().splitlines(keepends=True) if "\t5300000\t" not in l))
    message = fails([flatfile_copy], out)
    assert "oe.data.0.Current.gz" in message and "field series_id: code '5300000' is not in oe.area" in message


def test_unknown_datatype_is_schema_drift(flatfile_copy: Path, out: Path) -> None:
    with open(flatfile_copy / "oe.datatype", "a") as f:
        f.write("18\tMedian hours\r\n")
    assert "oe.datatype, line 19, field datatype_code: unknown datatype '18'" in fails([flatfile_copy], out)


def test_random_binary_file(tmp_path: Path, out: Path) -> None:
    junk = tmp_path / "oews.bin"
    junk.write_bytes(os.urandom(4096))
    assert "not a format this builder reads" in fails([junk], out, BuildUsageError)


def test_random_binary_data_file(flatfile_copy: Path, out: Path) -> None:
    (flatfile_copy / "oe.data.0.Current.gz").unlink()
    (flatfile_copy / "oe.data.0.Current").write_bytes(os.urandom(4096))
    message = fails([flatfile_copy], out)
    assert "oe.data.0.Current" in message and ("not a BLS text data file" in message or "unexpected header" in message)


def test_random_binary_xlsx(tmp_path: Path, out: Path) -> None:
    junk = tmp_path / "all_data_M_2025.xlsx"
    junk.write_bytes(os.urandom(4096))
    assert "not a readable .xlsx workbook" in fails([junk], out)


def test_empty_directory(tmp_path: Path, out: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    assert "directory has no BLS flat files" in fails([empty], out, BuildUsageError)


def test_unknown_spreadsheet_column(tmp_path: Path, out: Path) -> None:
    header = [*ALL_DATA_HEADER[:-1], "HOURLY_FLAG"]
    source = write_all_data_csv(tmp_path / "all_data_M_2025.csv", header=header)
    assert "line 1, field HOURLY_FLAG: unknown column 'HOURLY_FLAG'" in fails([source], out)


def test_bad_spreadsheet_value_names_row_and_column(tmp_path: Path, out: Path) -> None:
    rows = list(ALL_DATA_ROWS)
    rows[4] = (*rows[4][:27], "174,41O", *rows[4][28:])  # letter O for zero in A_MEDIAN
    source = write_all_data_xlsx(tmp_path / "all_data_M_2025.xlsx", rows=rows)
    assert "line 6, field A_MEDIAN: '174,41O' is not a number" in fails([source], out)


def test_spreadsheet_without_a_year(tmp_path: Path, out: Path) -> None:
    source = write_all_data_csv(tmp_path / "export.csv")
    assert "cannot tell the survey year" in fails([source], out)


def test_failed_build_keeps_the_existing_output(flatfile_copy: Path, out: Path) -> None:
    out.write_bytes(b"previous database")
    (flatfile_copy / "oe.release").unlink()
    fails([flatfile_copy], out)
    assert out.read_bytes() == b"previous database"


def test_cli_one_line_error_and_exit_codes(oewsctl_proc: CliRun, flatfile_copy: Path, tmp_path: Path) -> None:
    (flatfile_copy / "oe.industry").unlink()
    broken = oewsctl_proc("db", "build", "--from", flatfile_copy, "--out", tmp_path / "oews.db")
    assert broken.returncode == 1
    assert broken.stderr.splitlines()[0].startswith("error: ") and "oe.industry: mapping file is missing" in broken.stderr
    assert "hint: " in broken.stderr and "Traceback" not in broken.stderr
    missing = oewsctl_proc("db", "build", "--from", tmp_path / "nope", "--out", tmp_path / "oews.db")
    assert missing.returncode == 2 and "no such file or directory" in missing.stderr
    no_dir = oewsctl_proc("db", "build", "--from", BLS_SAMPLE, "--out", tmp_path / "missing-dir" / "oews.db")
    assert no_dir.returncode == 1 and "output directory" in no_dir.stderr


def test_out_is_a_directory(tmp_path: Path, out: Path) -> None:
    assert "is a directory" in fails([BLS_SAMPLE], out.parent, BuildUsageError)
