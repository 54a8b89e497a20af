"""Reader for a database this builder wrote: carry its years into a new build.

Adding next May's release to what is deployed is then one command:
``oewsctl db build --from current.db --from bls-oe-may2026/ --out next.db``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import TypeVar

from oews_api.builder.errors import SourceError
from oews_api.builder.files import connect_readonly, fetch
from oews_api.builder.model import ESTIMATE_COLUMNS, CellFilter, Dimensions, Located, ReleaseInput, SourceFile

T = TypeVar("T")


def read_built(path: Path, include: CellFilter | None = None) -> list[ReleaseInput]:
    """One release per year in ``path``; the file must pass ``validate_database`` first."""
    from oews_api.builder.validate import validate_database

    report = validate_database(path)
    if not report.ok:
        raise SourceError(path, f"cannot build from an unusable oews.db: {report.problems[0]}", hint=f"run `oewsctl db validate {path}` for every problem")
    with closing(connect_readonly(path)) as db:
        everything = Dimensions(
            areas={code: tuple(rest) for code, *rest in db.execute("SELECT area_code, area_name, area_type, state_code FROM areas")},
            occupations={code: tuple(rest) for code, *rest in db.execute("SELECT occ_code, occ_title, display_level FROM occupations")},
            industries={code: tuple(rest) for code, *rest in db.execute("SELECT industry_code, industry_name, display_level FROM industries")},
            footnotes=dict(db.execute("SELECT code, text FROM footnotes")),
        )
        releases = db.execute("SELECT year, release_code, description FROM releases ORDER BY year").fetchall()
    return [_release(path, everything, year, code, description, include) for year, code, description in releases]


def _release(path: Path, everything: Dimensions, year: int, code: str, description: str, include: CellFilter | None) -> ReleaseInput:
    dims = Dimensions(footnotes=dict(everything.footnotes))
    done = [0]

    def rows() -> Iterator[Located]:
        with closing(connect_readonly(path)) as db:
            cursor = db.execute(f"SELECT {', '.join(ESTIMATE_COLUMNS)} FROM estimates WHERE year = ?", (year,))
            while chunk := fetch(cursor, path):
                for row in chunk:
                    occ, area, _, industry = row[:4]
                    done[0] += 1
                    if include is not None and not include(area, industry):
                        continue
                    where = f"estimate row {done[0]:,} of {year}"
                    _carry(everything.areas, dims.areas, area, path, where)
                    _carry(everything.occupations, dims.occupations, occ, path, where)
                    _carry(everything.industries, dims.industries, industry, path, where)
                    yield done[0], row

    return ReleaseInput(
        year=year,
        release_code=code,
        description=description,
        origin=path,
        files=[SourceFile(path, "oews_db")],
        rows=rows,
        size=0,
        position=lambda: done[0],
        dims=dims,
    )


def _carry(names: dict[str, T], used: dict[str, T], code: str, path: Path, where: str) -> None:
    """Copy one code's name into the new build (once), failing if the old file lacks it."""
    if code in used:
        return
    if code not in names:
        raise SourceError(path, f"{where} uses code {code!r}, which has no name in the database")
    used[code] = names[code]
