"""Reader for the BLS all-data spreadsheet (``all_data_M_2025.xlsx``) or the same as ``.csv``.

Streams rows: ``csv`` line by line, ``.xlsx`` through openpyxl's read-only mode, so a
400 MB workbook never sits in memory. The survey year comes from a ``YEAR`` column
when there is one, else from the file name (``all_data_M_2024.xlsx``).
"""

from __future__ import annotations

import csv
import zipfile
from collections.abc import Generator, Iterator, Sequence
from pathlib import Path
from typing import IO

from oews_api.builder.alldata import AllDataConverter, column_positions, text, year_from_name
from oews_api.builder.errors import SourceError
from oews_api.builder.model import CellFilter, Located, ReleaseInput, SourceFile

SPREADSHEET_SUFFIXES = (".csv", ".xlsx")


class Spreadsheet:
    """One all-data file; ``_records`` yields (line, cells) including the header as line 1."""

    def __init__(self, path: Path, include: CellFilter | None) -> None:
        self.path, self.include = path, include
        self.read = 0
        records = self._records()
        header = next(records, None)
        if header is None:
            raise SourceError(path, "file is empty")
        self.positions = column_positions(path, header[1])
        first = next(records, None)
        if first is None:
            raise SourceError(path, "file has a header but no data rows")
        self.year = self._year(first)
        self.converter = AllDataConverter(path, self.positions, self.year, include)
        records.close()

    def _year(self, first: tuple[int, Sequence[object]]) -> int:
        index = self.positions.get("survey_year")
        if index is not None and text(first[1][index]).isdigit():
            return int(text(first[1][index]))
        year = year_from_name(self.path)
        if year is None:
            raise SourceError(self.path, "cannot tell the survey year", hint="rename the file like all_data_M_2024.xlsx or add a YEAR column")
        return year

    def _records(self) -> Generator[tuple[int, Sequence[object]], None, None]:
        if self.path.suffix.lower() == ".csv":
            yield from self._csv()
        else:
            yield from self._xlsx()

    def _csv(self) -> Iterator[tuple[int, Sequence[object]]]:
        with open(self.path, "rb") as raw:
            reader = csv.reader(_TextCounter(raw, self))
            try:
                for cells in reader:
                    yield reader.line_num, cells
            except (UnicodeDecodeError, csv.Error) as exc:
                raise SourceError(self.path, f"not a readable CSV file ({exc})", line=reader.line_num + 1) from None

    def _xlsx(self) -> Iterator[tuple[int, Sequence[object]]]:
        from openpyxl import load_workbook

        try:
            book = load_workbook(self.path, read_only=True, data_only=True)
        except (zipfile.BadZipFile, KeyError, OSError, ValueError) as exc:
            raise SourceError(self.path, f"not a readable .xlsx workbook ({exc})", hint="re-download it; BLS ships it inside oesmYYall.zip") from None
        try:
            sheet = book.worksheets[0]
            yield from enumerate(sheet.iter_rows(values_only=True), start=1)
        finally:
            book.close()

    def rows(self) -> Iterator[Located]:
        convert = self.converter.convert
        records = self._records()
        next(records)
        for line, cells in records:
            if not any(c not in (None, "") for c in cells):
                continue
            row = convert(cells, line)
            if row is not None:
                yield line, row
        self.release.skipped = self.converter.skipped

    def as_input(self) -> ReleaseInput:
        xlsx = self.path.suffix.lower() == ".xlsx"
        self.release = ReleaseInput(
            year=self.year,
            release_code=f"{self.year}A01",
            description=f"May {self.year}",
            origin=self.path,
            files=[SourceFile(self.path, "spreadsheet")],
            rows=self.rows,
            size=0 if xlsx else self.path.stat().st_size,  # openpyxl gives no byte offset: progress is indeterminate
            position=lambda: self.read,
            dims=self.converter.dims,
        )
        return self.release


class _TextCounter:
    """Decodes a binary CSV line by line and records bytes read for progress."""

    def __init__(self, raw: IO[bytes], sheet: Spreadsheet) -> None:
        self.raw, self.sheet = raw, sheet

    def __iter__(self) -> Iterator[str]:
        for line in self.raw:
            self.sheet.read += len(line)
            yield line.decode("utf-8-sig")


def read_spreadsheet(path: Path, include: CellFilter | None = None) -> list[ReleaseInput]:
    return [Spreadsheet(path, include).as_input()]
