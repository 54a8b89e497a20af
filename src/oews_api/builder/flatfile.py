"""Reader for a BLS time-series flat-file directory (``download.bls.gov/pub/time.series/oe/``).

Files are tab-separated with CRLF line ends, one header line, and padded fields.
The data file (``oe.data.0.Current``, plain or ``.gz``) is sorted by series id, so
the 17 datatypes of one estimate cell arrive together and become one row.
Series id: ``OEU`` + areatype (1) + area (7) + industry (6) + occupation (6) + datatype (2).
"""

from __future__ import annotations

import gzip
import io
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import IO, TypeVar

from oews_api.builder.errors import SourceError
from oews_api.builder.model import (
    FOOTNOTE_REASONS,
    MEASURE_INDEX,
    CellFilter,
    Dimensions,
    Located,
    ReleaseInput,
    Row,
    SourceFile,
    make_row,
    wage_reason,
)
from oews_api.schema import DATATYPE_COLUMNS, MEASURES, NOT_AVAILABLE

MAPPING_HEADERS: dict[str, tuple[str, ...]] = {
    "oe.area": ("state_code", "area_code", "areatype_code", "area_name"),
    "oe.occupation": ("occupation_code", "occupation_name", "occupation_description", "display_level"),
    "oe.industry": ("industry_code", "industry_name", "display_level"),
    "oe.datatype": ("datatype_code", "datatype_name"),
    "oe.footnote": ("footnote_code", "footnote_text"),
    "oe.release": ("release_date", "description"),
}
DATA_HEADER = ("series_id", "year", "period", "value", "footnote_codes")
DATA_NAMES = ("oe.data.0.Current", "oe.data.0.Current.gz")
FLATFILE_HINT = "download the missing file from https://download.bls.gov/pub/time.series/oe/ into the same directory"

# datatype code -> (index among MEASURES, measure name)
_DATATYPES: dict[str, tuple[int, str]] = {code: (MEASURE_INDEX[name], name) for code, name in DATATYPE_COLUMNS.items()}
_EMPLOYMENT = MEASURE_INDEX["employment"]
T = TypeVar("T")


def is_flatfile_dir(path: Path) -> bool:
    return path.is_dir() and ((path / "oe.area").exists() or any((path / n).exists() for n in DATA_NAMES))


def read_table(path: Path, header: tuple[str, ...]) -> list[tuple[int, list[str]]]:
    """A mapping file's rows (stripped fields) with their line numbers; the header must start with ``header``."""
    if not path.exists():
        raise SourceError(path, "mapping file is missing", hint=FLATFILE_HINT)
    with open(path, encoding="utf-8", errors="strict", newline=None) as f:
        try:
            lines = f.read().splitlines()
        except UnicodeDecodeError as exc:
            raise SourceError(path, f"not a text file ({exc.reason} at byte {exc.start})", hint=FLATFILE_HINT) from None
    if not lines:
        raise SourceError(path, "file is empty", hint=FLATFILE_HINT)
    got = tuple(f.strip() for f in lines[0].split("\t"))
    if got[: len(header)] != header:
        raise SourceError(path, f"unexpected header {list(got)!r}, expected it to start with {list(header)!r}", line=1)
    rows = []
    for number, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        fields = [f.strip() for f in line.split("\t")]
        if len(fields) < len(header):
            raise SourceError(path, f"expected {len(header)} tab-separated fields, found {len(fields)}", line=number)
        rows.append((number, fields))
    return rows


class FlatFileRelease:
    """Parses the mapping files eagerly (small) and streams the data file."""

    def __init__(self, directory: Path, include: CellFilter | None = None) -> None:
        self.directory = directory
        self.include = include
        data = [directory / n for n in DATA_NAMES if (directory / n).exists()]
        if not data:
            raise SourceError(directory / DATA_NAMES[0], "data file is missing (looked for oe.data.0.Current and oe.data.0.Current.gz)", hint=FLATFILE_HINT)
        self.data_path = data[0]
        t = {name: read_table(directory / name, header) for name, header in MAPPING_HEADERS.items()}
        self.areas = {f[1]: (f[3], f[2], f[0]) for _, f in t["oe.area"]}
        self.occupations = {f[0]: (f[1], _int(directory / "oe.occupation", n, "display_level", f[3])) for n, f in t["oe.occupation"]}
        self.industries = {f[0]: (f[1], _int(directory / "oe.industry", n, "display_level", f[2])) for n, f in t["oe.industry"]}
        self.footnotes = {f[0]: f[1] for _, f in t["oe.footnote"]}
        for number, (code, *_rest) in t["oe.datatype"]:
            if code not in DATATYPE_COLUMNS:
                raise SourceError(directory / "oe.datatype", f"unknown datatype {code!r} (this builder knows 01..17)", line=number, field="datatype_code")
        releases = t["oe.release"]
        if len(releases) != 1:
            raise SourceError(directory / "oe.release", f"expected exactly one release line, found {len(releases)}")
        number, (code, description, *_rest) = releases[0]
        if len(code) < 4 or not code[:4].isdigit():
            raise SourceError(directory / "oe.release", f"release code {code!r} does not start with a year", line=number, field="release_date")
        self.release_code, self.description, self.year = code, description, int(code[:4])
        self.dims = Dimensions(footnotes=self.footnotes)
        self._raw: IO[bytes] | None = None

    def as_input(self) -> ReleaseInput:
        files = [SourceFile(self.directory / n, "flatfile") for n in MAPPING_HEADERS] + [SourceFile(self.data_path, "flatfile")]
        return ReleaseInput(
            year=self.year,
            release_code=self.release_code,
            description=self.description,
            origin=self.directory,
            files=files,
            rows=self.rows,
            size=self.data_path.stat().st_size,
            position=self._position,
            dims=self.dims,
        )

    def _position(self) -> int:
        """Compressed bytes read so far (all of them once the data file is closed)."""
        if self._raw is None:
            return 0
        return self.data_path.stat().st_size if self._raw.closed else self._raw.tell()

    def rows(self) -> Iterator[Located]:
        path = self.data_path
        try:
            with open(path, "rb") as raw:
                self._raw = raw
                # BufferedReader: C-level readline over GzipFile (whose own readline costs a Python call per line)
                lines: IO[bytes] = io.BufferedReader(gzip.GzipFile(fileobj=raw), 1 << 20) if path.suffix == ".gz" else raw
                yield from self._parse(lines)
        except (EOFError, gzip.BadGzipFile, zlib.error) as exc:
            raise SourceError(path, f"compressed data is damaged or truncated ({exc})", hint="download the file again; compare its size with the BLS listing") from None

    def _parse(self, lines: IO[bytes]) -> Iterator[Located]:
        """Group consecutive series of one cell into a row; validate as we go.

        Works on bytes and leans on ``int``/``float`` accepting padded input: 6 M lines,
        so every avoided call counts. Codes are decoded once per cell, not per line.
        """
        path, year, include = self.data_path, self.year, self.include
        got = tuple(_text(f).strip() for f in next(lines, b"").split(b"\t"))
        if got != DATA_HEADER:
            raise SourceError(path, f"unexpected header {list(got)!r}, expected {list(DATA_HEADER)!r}", line=1)
        year_bytes, period = str(year).encode(), b"A01"
        datatypes = {code.encode(): where for code, where in _DATATYPES.items()}
        employment = _EMPLOYMENT  # a local: looked up 6 M times
        key = b""
        keep = False
        values: list[object] = []
        reasons: dict[str, str] = {}
        start = number = 1
        for number, line in enumerate(lines, start=2):
            parts = line.split(b"\t")
            if len(parts) != 5:
                if not line.strip():
                    continue
                raise SourceError(path, f"expected 5 tab-separated fields, found {len(parts)}", line=number)
            series = parts[0]
            cell = series[3:23]
            if cell != key:
                if keep:
                    yield start, self._row(key.decode(), values, reasons, start)
                if not series.startswith(b"OEU") or len(series.rstrip()) != 25 or not cell.isascii():
                    raise SourceError(path, f"malformed series id {_text(series).strip()!r} (expected OEU + 22 characters)", line=number, field="series_id")
                key, start = cell, number
                keep = include is None or include(cell[1:8].decode(), cell[8:14].decode())
                if keep:
                    values = [None] * len(MEASURES)
                    reasons = {}
            if not keep:
                continue
            try:
                index, measure = datatypes[series[23:25]]
            except KeyError:
                raise SourceError(path, f"unknown datatype {_text(series[23:25])!r} in series {_text(series).strip()}", line=number, field="series_id") from None
            if parts[1] != year_bytes or parts[2] != period:
                raise SourceError(path, f"period {_text(parts[1])} {_text(parts[2])} does not match release {self.release_code}", line=number, field="year")
            if values[index] is not None or measure in reasons:
                raise SourceError(path, f"duplicate series {_text(series).strip()}", line=number, field="series_id", hint="each series may appear once; the file may have been concatenated twice")
            try:
                values[index] = int(parts[3]) if index == employment else float(parts[3])
            except ValueError:
                value = parts[3].strip()
                if value != b"-":
                    raise SourceError(path, f"value {_text(value)!r} is not a number or '-'", line=number, field="value") from None
                footnote = _text(parts[4]).strip().split(",")[0].strip()
                reasons[measure] = wage_reason(measure, FOOTNOTE_REASONS.get(footnote, NOT_AVAILABLE))
        if keep:
            yield start, self._row(key.decode(), values, reasons, start)
        if number == 1:
            raise SourceError(path, "data file has a header but no data rows")

    def _row(self, cell: str, values: list[object], reasons: dict[str, str], line: int) -> Row:
        area, industry, occ = cell[1:8], cell[8:14], cell[14:20]
        dims = self.dims
        if area not in dims.areas:
            dims.areas[area] = self._lookup(self.areas, area, "oe.area", line)
        if industry not in dims.industries:
            dims.industries[industry] = self._lookup(self.industries, industry, "oe.industry", line)
        if occ not in dims.occupations:
            dims.occupations[occ] = self._lookup(self.occupations, occ, "oe.occupation", line)
        return make_row(occ, area, self.year, industry, values, reasons)

    def _lookup(self, table: dict[str, T], code: str, mapping: str, line: int) -> T:
        """Schema drift check: every code in a series id must be in its mapping file."""
        try:
            return table[code]
        except KeyError:
            raise SourceError(
                self.data_path,
                f"code {code!r} is not in {mapping}",
                line=line,
                field="series_id",
                hint="the mapping files and the data file come from different releases; download them together",
            ) from None


def _text(raw: bytes) -> str:
    """Bytes from the data file as text for messages (never fails: binary junk shows as escapes)."""
    return raw.decode("ascii", errors="backslashreplace")


def _int(path: Path, line: int, field: str, text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise SourceError(path, f"{text!r} is not a whole number", line=line, field=field) from None


def read_flatfile(directory: Path, include: CellFilter | None = None) -> list[ReleaseInput]:
    """The release in a flat-file directory (always one year)."""
    return [FlatFileRelease(directory, include).as_input()]
