"""The oews.db schema shared by the builder (``oews_api.data``) and the service.

One row per estimate cell (occupation × area × year × industry) with every BLS
measure as a column. A measure BLS did not publish is NULL *and* listed in the
row's ``unpublished`` JSON object with its reason, so "not published" never
looks like a number and never looks like "no data".
"""

from __future__ import annotations

from typing import Final

SCHEMA_VERSION: Final = 1

# BLS flat-file datatype code -> column in ``estimates`` (oe.datatype, 01..17).
DATATYPE_COLUMNS: Final[dict[str, str]] = {
    "01": "employment",
    "02": "emp_prse",
    "03": "h_mean",
    "04": "a_mean",
    "05": "mean_prse",
    "06": "h_pct10",
    "07": "h_pct25",
    "08": "h_median",
    "09": "h_pct75",
    "10": "h_pct90",
    "11": "a_pct10",
    "12": "a_pct25",
    "13": "a_median",
    "14": "a_pct75",
    "15": "a_pct90",
    "16": "jobs_1000",
    "17": "loc_quotient",
}
MEASURES: Final[tuple[str, ...]] = tuple(DATATYPE_COLUMNS.values())
HOURLY_MEASURES: Final = ("h_mean", "h_pct10", "h_pct25", "h_median", "h_pct75", "h_pct90")
ANNUAL_MEASURES: Final = ("a_mean", "a_pct10", "a_pct25", "a_median", "a_pct75", "a_pct90")

# Reasons stored in ``estimates.unpublished`` (measure -> reason).
TOP_CODED: Final = "top_coded"  # BLS footnote 5 / spreadsheet '#': >= $115.00/hour or $239,200/year
NOT_RELEASED: Final = "not_released"  # BLS footnote 8: estimate not released
ANNUAL_ONLY: Final = "annual_only"  # footnote 4 on an hourly measure: the occupation is paid annually
HOURLY_ONLY: Final = "hourly_only"  # footnote 4 on an annual measure: the occupation is paid hourly
NOT_AVAILABLE: Final = "not_available"  # '-' without a reason, spreadsheet '*' / '**'
REASONS: Final[dict[str, str]] = {
    TOP_CODED: "BLS does not publish wages at or above $115.00 per hour or $239,200 per year (top-coded)",
    NOT_RELEASED: "BLS did not release this estimate",
    ANNUAL_ONLY: "BLS reports this occupation's wages only as annual salaries, not hourly",
    HOURLY_ONLY: "BLS reports this occupation's wages only as hourly wages, not annual",
    NOT_AVAILABLE: "BLS did not publish this estimate",
}

DDL: Final = """
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE releases (
    year         INTEGER PRIMARY KEY,
    release_code TEXT NOT NULL,          -- e.g. 2025A01
    description  TEXT NOT NULL,          -- e.g. May 2025
    survey_month INTEGER NOT NULL DEFAULT 5
);
CREATE TABLE source_files (
    year   INTEGER NOT NULL,
    name   TEXT NOT NULL,
    size   INTEGER NOT NULL,
    sha256 TEXT NOT NULL,
    kind   TEXT NOT NULL                 -- flatfile | spreadsheet | oews_db
);
CREATE TABLE areas (
    area_code  TEXT PRIMARY KEY,         -- BLS 7-digit code: 0000000 U.S., SS00000 state, 00NNNNN metro, SSNNNNN nonmetro
    area_name  TEXT NOT NULL,
    area_type  TEXT NOT NULL CHECK (area_type IN ('N', 'S', 'M')),  -- national, state/territory, metro or nonmetro
    state_code TEXT NOT NULL             -- 2-digit FIPS ('00' national)
);
CREATE TABLE occupations (
    occ_code      TEXT PRIMARY KEY,      -- 6 digits, no dash: 151252
    occ_title     TEXT NOT NULL,
    display_level INTEGER NOT NULL       -- 0 total/major, 1 minor, 2 broad, 3 detailed
);
CREATE TABLE industries (
    industry_code TEXT PRIMARY KEY,      -- 000000 cross-industry; sectors look like 11--12
    industry_name TEXT NOT NULL,
    display_level INTEGER NOT NULL
);
CREATE TABLE footnotes (
    code TEXT PRIMARY KEY,
    text TEXT NOT NULL
);
CREATE TABLE estimates (
    occ_code      TEXT NOT NULL REFERENCES occupations(occ_code),
    area_code     TEXT NOT NULL REFERENCES areas(area_code),
    year          INTEGER NOT NULL REFERENCES releases(year),
    industry_code TEXT NOT NULL REFERENCES industries(industry_code),
    employment    INTEGER,
    emp_prse      REAL,
    h_mean        REAL,
    a_mean        REAL,
    mean_prse     REAL,
    h_pct10       REAL,
    h_pct25       REAL,
    h_median      REAL,
    h_pct75       REAL,
    h_pct90       REAL,
    a_pct10       REAL,
    a_pct25       REAL,
    a_median      REAL,
    a_pct75       REAL,
    a_pct90       REAL,
    jobs_1000     REAL,
    loc_quotient  REAL,
    unpublished   TEXT,                  -- JSON {measure: reason}; NULL when nothing is withheld
    PRIMARY KEY (occ_code, area_code, year, industry_code)
) WITHOUT ROWID;
"""

# Created after the bulk load (faster than maintaining them during inserts).
INDEXES: Final = """
CREATE INDEX estimates_by_area ON estimates (area_code, year, industry_code);
CREATE INDEX areas_by_name ON areas (area_name COLLATE NOCASE);
CREATE INDEX occupations_by_title ON occupations (occ_title COLLATE NOCASE);
"""

REQUIRED_TABLES: Final = ("meta", "releases", "source_files", "areas", "occupations", "industries", "footnotes", "estimates")
REQUIRED_INDEXES: Final = ("estimates_by_area", "areas_by_name", "occupations_by_title")
