"""What every input reader produces: one ``ReleaseInput`` per survey year.

A reader yields estimate rows already in ``estimates`` column order and fills the
dimension maps (areas, occupations, industries, footnotes) with the codes its rows
use, so the database never lists a code that has no estimate.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from oews_api.schema import (
    ANNUAL_MEASURES,
    ANNUAL_ONLY,
    HOURLY_MEASURES,
    HOURLY_ONLY,
    MEASURES,
    NOT_AVAILABLE,
    NOT_RELEASED,
    TOP_CODED,
)

ESTIMATE_COLUMNS: tuple[str, ...] = ("occ_code", "area_code", "year", "industry_code", *MEASURES, "unpublished")
MEASURE_INDEX: dict[str, int] = {name: i for i, name in enumerate(MEASURES)}

Row = tuple[object, ...]
"""One ``estimates`` row in ``ESTIMATE_COLUMNS`` order."""

Located = tuple[int, Row]
"""A row with the input line it came from (for error messages)."""

CellFilter = Callable[[str, str], bool]
"""``include(area_code, industry_code)``: keep only some cells (used to make the sample database)."""


@dataclass
class Dimensions:
    """Names and levels for the codes the rows use (small: a few thousand entries)."""

    areas: dict[str, tuple[str, str, str]] = field(default_factory=dict)  # code -> (name, type N/S/M, state FIPS)
    occupations: dict[str, tuple[str, int]] = field(default_factory=dict)  # code -> (title, display_level)
    industries: dict[str, tuple[str, int]] = field(default_factory=dict)  # code -> (name, display_level)
    footnotes: dict[str, str] = field(default_factory=dict)

    def merge(self, newer: Dimensions) -> None:
        """Take ``newer``'s names (a later release renames an occupation; its name wins)."""
        self.areas.update(newer.areas)
        self.occupations.update(newer.occupations)
        self.industries.update(newer.industries)
        self.footnotes.update(newer.footnotes)


@dataclass
class SourceFile:
    """An input file as recorded in ``source_files``."""

    path: Path
    kind: str  # flatfile | spreadsheet | oews_db


@dataclass
class ReleaseInput:
    """One survey year from one input: metadata now, rows when iterated."""

    year: int
    release_code: str
    description: str
    origin: Path
    files: list[SourceFile]
    rows: Callable[[], Iterator[Located]]
    """Streams the rows; ``dims`` is complete once the iterator is exhausted."""
    size: int
    """Bytes to read, for progress (compressed size for .gz)."""
    position: Callable[[], int]
    """Bytes read so far."""
    dims: Dimensions = field(default_factory=Dimensions)
    skipped: int = 0
    """Input rows deliberately not loaded (e.g. ownership-only spreadsheet rows); reported to the user."""


PAID_ONE_WAY = "paid_one_way"
"""Footnote 4, before ``wage_reason`` turns it into annual_only or hourly_only (never stored)."""


def wage_reason(measure: str, base_reason: str) -> str:
    """Footnote 4 means annual-only or hourly-only depending on the measure it sits on."""
    if base_reason != PAID_ONE_WAY:
        return base_reason
    if measure in HOURLY_MEASURES:
        return ANNUAL_ONLY
    if measure in ANNUAL_MEASURES:
        return HOURLY_ONLY
    return NOT_AVAILABLE


FOOTNOTE_REASONS: dict[str, str] = {"5": TOP_CODED, "8": NOT_RELEASED, "4": PAID_ONE_WAY}


def make_row(occ: str, area: str, year: int, industry: str, values: list[object], reasons: dict[str, str]) -> Row:
    """An ``estimates`` row; ``reasons`` becomes the ``unpublished`` JSON (NULL when empty)."""
    return (occ, area, year, industry, *values, json.dumps(reasons, sort_keys=True) if reasons else None)
