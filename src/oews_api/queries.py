"""Plain query functions over the read-only database; each returns rows as dicts.

A row dict holds the estimate's codes and names, every measure (None when BLS
published no number) and ``unpublished``: ``{measure: {"reason", "detail"}}``.
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from oews_api.db import Database
from oews_api.schema import MEASURES, REASONS

CROSS_INDUSTRY = "000000"
ALL_OCCUPATIONS = "000000"
DETAILED_LEVEL = 3

_SELECT = f"""
SELECT e.occ_code, o.occ_title, o.display_level, e.area_code, a.area_name, a.area_type,
       e.year, e.industry_code, i.industry_name, {", ".join("e." + m for m in MEASURES)}, e.unpublished
FROM estimates e
JOIN occupations o ON o.occ_code = e.occ_code
JOIN areas a ON a.area_code = e.area_code
JOIN industries i ON i.industry_code = e.industry_code
"""
# Built once: sqlite3 keeps compiled statements per connection keyed by the SQL text.
_ESTIMATE = _SELECT + "WHERE e.occ_code = ? AND e.area_code = ? AND e.year = ? AND e.industry_code = ?"
_TREND = _SELECT + "WHERE e.occ_code = ? AND e.area_code = ? AND e.industry_code = ? ORDER BY e.year"


def row_dict(row: sqlite3.Row) -> dict[str, Any]:
    """One estimate row as JSON-ready data, with unpublished measures explained."""
    data = dict(row)
    raw = data.pop("unpublished")
    reasons: dict[str, str] = json.loads(raw) if raw else {}
    data["unpublished"] = {
        measure: {"reason": reason, "detail": REASONS.get(reason, REASONS["not_available"])} for measure, reason in reasons.items()
    }
    return data


def estimate(db: Database, occ_code: str, area_code: str, year: int, industry_code: str = CROSS_INDUSTRY) -> dict[str, Any] | None:
    """The estimate cell for one occupation × area × year × industry, or None if BLS has none."""
    row = db.one(_ESTIMATE, (occ_code, area_code, year, industry_code))
    return row_dict(row) if row else None


def trend(db: Database, occ_code: str, area_code: str, industry_code: str = CROSS_INDUSTRY) -> list[dict[str, Any]]:
    """Every year's estimate for one occupation × area × industry, oldest first."""
    rows = db.all(_TREND, (occ_code, area_code, industry_code))
    return [row_dict(row) for row in rows]


def ranked(
    db: Database,
    area_code: str,
    measure: str,
    year: int,
    *,
    industry_code: str = CROSS_INDUSTRY,
    limit: int = 10,
    ascending: bool = False,
    occ_prefix: str = "",
) -> list[dict[str, Any]]:
    """Detailed occupations in an area (optionally within a SOC group) ranked by a published measure."""
    if measure not in MEASURES:
        raise ValueError(f"unknown measure {measure!r}")
    order = "ASC" if ascending else "DESC"
    rows = db.all(
        _SELECT + f"WHERE e.area_code = ? AND e.year = ? AND e.industry_code = ? AND o.display_level = {DETAILED_LEVEL} "
        f"AND e.{measure} IS NOT NULL AND e.occ_code LIKE ? ORDER BY e.{measure} {order}, e.occ_code LIMIT ?",
        (area_code, year, industry_code, occ_prefix + "%", limit),
    )
    return [row_dict(row) for row in rows]


def ranked_areas(
    db: Database,
    occ_code: str,
    measure: str,
    year: int,
    area_type: str,
    *,
    industry_code: str = CROSS_INDUSTRY,
    limit: int = 10,
    ascending: bool = False,
) -> list[dict[str, Any]]:
    """States (``S``) or metro areas (``M``) ranked by one occupation's published measure."""
    if measure not in MEASURES:
        raise ValueError(f"unknown measure {measure!r}")
    order = "ASC" if ascending else "DESC"
    rows = db.all(
        _SELECT + f"WHERE e.occ_code = ? AND e.year = ? AND e.industry_code = ? AND a.area_type = ? "
        f"AND e.{measure} IS NOT NULL ORDER BY e.{measure} {order}, e.area_code LIMIT ?",
        (occ_code, year, industry_code, area_type, limit),
    )
    return [row_dict(row) for row in rows]


def unpublished_titles(
    db: Database, area_code: str, measure: str, year: int, reason: str, *, industry_code: str = CROSS_INDUSTRY, occ_prefix: str = ""
) -> list[str]:
    """Detailed occupations in an area (optionally within a SOC group) whose ``measure`` is withheld for ``reason``."""
    rows = db.all(
        "SELECT o.occ_title FROM estimates e JOIN occupations o ON o.occ_code = e.occ_code "
        "WHERE e.area_code = ? AND e.year = ? AND e.industry_code = ? AND o.display_level = ? AND e.occ_code LIKE ? "
        "AND json_extract(e.unpublished, '$.' || ?) = ? ORDER BY e.employment DESC",
        (area_code, year, industry_code, DETAILED_LEVEL, occ_prefix + "%", measure, reason),
    )
    return [row[0] for row in rows]


def area_employment(db: Database, year: int) -> dict[str, int]:
    """Total employment (all occupations, cross-industry) per area: ranks ambiguous city names."""
    rows = db.all(
        "SELECT area_code, employment FROM estimates WHERE occ_code = ? AND industry_code = ? AND year = ?",
        (ALL_OCCUPATIONS, CROSS_INDUSTRY, year),
    )
    return {row["area_code"]: row["employment"] or 0 for row in rows}
