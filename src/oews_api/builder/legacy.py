"""Reader for an existing deployment's ``oews.db``: table ``oews_data`` = all-data columns + ``SURVEY_YEAR``.

Such files reach 2+ GB for 10+ years, so each year is streamed with its own cursor
(one ``ReleaseInput`` per ``SURVEY_YEAR``); the row's ``rowid`` stands in for a line number.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

from oews_api.builder.alldata import AllDataConverter, column_positions
from oews_api.builder.errors import SourceError
from oews_api.builder.files import connect_readonly, fetch
from oews_api.builder.model import CellFilter, Located, ReleaseInput, SourceFile

LEGACY_TABLE = "oews_data"


def read_legacy(path: Path, include: CellFilter | None = None) -> list[ReleaseInput]:
    """One release per survey year found in ``oews_data``."""
    try:
        with closing(connect_readonly(path)) as db:
            header = [d[0] for d in db.execute(f"SELECT * FROM {LEGACY_TABLE} LIMIT 0").description]
            positions = column_positions(path, header)
            if "survey_year" not in positions:
                raise SourceError(path, f"table {LEGACY_TABLE} has no SURVEY_YEAR column", field="SURVEY_YEAR")
            year_column = header[positions["survey_year"]]
            years = [y for (y,) in db.execute(f'SELECT DISTINCT CAST("{year_column}" AS INTEGER) FROM {LEGACY_TABLE} ORDER BY 1')]
    except sqlite3.DatabaseError as exc:
        raise SourceError(path, f"unreadable SQLite file ({exc})") from None
    if not years:
        raise SourceError(path, f"table {LEGACY_TABLE} is empty")
    return [_release(path, positions, year_column, year, include) for year in years]


def _release(path: Path, positions: dict[str, int], year_column: str, year: int, include: CellFilter | None) -> ReleaseInput:
    converter = AllDataConverter(path, positions, year, include)
    progress = [0]

    def rows() -> Iterator[Located]:
        with closing(connect_readonly(path)) as db:
            cursor = db.execute(f'SELECT rowid, * FROM {LEGACY_TABLE} WHERE CAST("{year_column}" AS INTEGER) = ?', (year,))
            while chunk := fetch(cursor, path):
                for rowid, *cells in chunk:
                    row = converter.convert(cells, rowid)
                    if row is not None:
                        yield rowid, row
                progress[0] += len(chunk)
        release.skipped = converter.skipped

    release = ReleaseInput(
        year=year,
        release_code=f"{year}A01",
        description=f"May {year}",
        origin=path,
        files=[SourceFile(path, "oews_db")],
        rows=rows,
        size=0,  # row count unknown without a second full scan: progress is indeterminate
        position=lambda: progress[0],
        dims=converter.dims,
    )
    return release

