"""The BLS "all data" layout (one row per cell), shared by the .xlsx/.csv and legacy oews.db readers.

Differences from the flat files this module bridges: area codes (``AREA`` ``99``/``06``/``42660``
with ``AREA_TYPE`` 1..6 become the 7-character BLS codes), ``OCC_CODE`` written ``15-1252``,
sector NAICS ``31-33`` (flat files: ``31--34``), markers (``*``/``**`` not available, ``#``
top-coded, ``~`` under 0.5 percent) and the ``ANNUAL``/``HOURLY`` flags that mark
annual-only and hourly-only occupations.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

from oews_api.builder.errors import SourceError
from oews_api.builder.model import CellFilter, Dimensions, Row, make_row
from oews_api.schema import ANNUAL_MEASURES, ANNUAL_ONLY, HOURLY_MEASURES, HOURLY_ONLY, MEASURES, NOT_AVAILABLE, TOP_CODED

# canonical column -> accepted spellings (compared after normalising: lower case, spaces and dashes as '_')
ALIASES: dict[str, tuple[str, ...]] = {
    "area": ("area",),
    "area_title": ("area_title", "area_name"),
    "area_type": ("area_type",),
    "prim_state": ("prim_state", "st", "state"),
    "naics": ("naics",),
    "naics_title": ("naics_title",),
    "i_group": ("i_group",),
    "own_code": ("own_code",),
    "occ_code": ("occ_code",),
    "occ_title": ("occ_title", "occ_titl"),
    "o_group": ("o_group", "occ_group", "group"),
    "tot_emp": ("tot_emp",),
    "emp_prse": ("emp_prse",),
    "jobs_1000": ("jobs_1000", "jobs_1000_orig"),
    "loc_quotient": ("loc_quotient", "loc_q"),
    "pct_total": ("pct_total",),
    "pct_rpt": ("pct_rpt",),
    "h_mean": ("h_mean",),
    "a_mean": ("a_mean",),
    "mean_prse": ("mean_prse",),
    **{m: (m,) for m in HOURLY_MEASURES + ANNUAL_MEASURES if m not in ("h_mean", "a_mean")},
    "annual": ("annual",),
    "hourly": ("hourly",),
    "survey_year": ("survey_year", "year"),
    "survey_month": ("survey_month",),
    "source_file": ("source_file",),
    "source_folder": ("source_folder",),
    "imported_at": ("imported_at",),
    "id": ("id",),  # a surrogate key some legacy oews_data tables carry
}
REQUIRED = ("area", "area_title", "area_type", "occ_code", "occ_title", "tot_emp", "a_median")
MEASURE_COLUMNS: dict[str, str] = {m: ("tot_emp" if m == "employment" else m) for m in MEASURES}
MARKERS: dict[str, str] = {"*": NOT_AVAILABLE, "**": NOT_AVAILABLE, "#": TOP_CODED, "~": NOT_AVAILABLE}
O_GROUP_LEVELS = {"total": 0, "major": 0, "minor": 1, "broad": 2, "detailed": 3}
I_GROUP_LEVELS = {"cross-industry": 0, "sector": 2, "3-digit": 3, "4-digit": 4, "5-digit": 5, "6-digit": 6}
CROSS_OWNERSHIP = {"1235": "000000", "5": "000001"}  # OWN_CODE on NAICS 000000 -> flat-file industry
STATE_FIPS: dict[str, str] = {  # PRIM_STATE -> FIPS, for metro areas' state_code
    "AL": "01", "AK": "02", "AZ": "04", "AR": "05", "CA": "06", "CO": "08", "CT": "09", "DE": "10", "DC": "11",
    "FL": "12", "GA": "13", "HI": "15", "ID": "16", "IL": "17", "IN": "18", "IA": "19", "KS": "20", "KY": "21",
    "LA": "22", "ME": "23", "MD": "24", "MA": "25", "MI": "26", "MN": "27", "MS": "28", "MO": "29", "MT": "30",
    "NE": "31", "NV": "32", "NH": "33", "NJ": "34", "NM": "35", "NY": "36", "NC": "37", "ND": "38", "OH": "39",
    "OK": "40", "OR": "41", "PA": "42", "RI": "44", "SC": "45", "SD": "46", "TN": "47", "TX": "48", "UT": "49",
    "VT": "50", "VA": "51", "WA": "53", "WV": "54", "WI": "55", "WY": "56", "GU": "66", "PR": "72", "VI": "78",
}
_NORMAL = re.compile(r"[\s\-]+")
_YEAR_IN_NAME = re.compile(r"(?<!\d)((?:19|20)\d\d)(?!\d)")


def normalise(name: object) -> str:
    return _NORMAL.sub("_", str(name or "").strip().lower())


def column_positions(path: Path, header: Sequence[object]) -> dict[str, int]:
    """Canonical column -> position; unknown or missing columns fail loudly (schema drift)."""
    lookup = {alias: canonical for canonical, aliases in ALIASES.items() for alias in aliases}
    positions: dict[str, int] = {}
    for index, raw in enumerate(header):
        name = normalise(raw)
        if not name:
            continue
        canonical = lookup.get(name)
        if canonical is None:
            raise SourceError(path, f"unknown column {raw!r}", line=1, field=str(raw), hint="this does not look like a BLS all-data file; check the header row")
        positions[canonical] = index
    missing = [c.upper() for c in REQUIRED if c not in positions]
    if missing:
        raise SourceError(path, f"missing columns {', '.join(missing)}", line=1, hint="this does not look like a BLS all-data file; check the header row")
    return positions


def year_from_name(path: Path) -> int | None:
    found = _YEAR_IN_NAME.findall(path.stem)
    return int(found[-1]) if found else None


def text(value: object) -> str:
    """A cell as text: numbers from xlsx without a trailing '.0', everything stripped."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return "" if value is None else str(value).strip()


class AllDataConverter:
    """Turns all-data rows of one year into ``estimates`` rows, filling ``dims`` as it goes."""

    def __init__(self, path: Path, positions: dict[str, int], year: int, include: CellFilter | None = None) -> None:
        self.path, self.pos, self.year, self.include = path, positions, year, include
        self.dims = Dimensions()
        self.skipped = 0
        self._measures = [(m, positions.get(MEASURE_COLUMNS[m])) for m in MEASURES]

    def field(self, values: Sequence[object], name: str) -> str:
        index = self.pos.get(name)
        return text(values[index]) if index is not None and index < len(values) else ""

    def convert(self, values: Sequence[object], line: int) -> Row | None:
        """The row, or None when it is deliberately not loaded (other filter, ownership-only cell)."""
        if "survey_year" in self.pos and self.field(values, "survey_year") != str(self.year):
            raise SourceError(self.path, f"year {self.field(values, 'survey_year')!r} in a file read as {self.year}", line=line, field="YEAR", hint="split the file by year, one --from each")
        industry = self._industry(values, line)
        if industry is None:
            self.skipped += 1
            return None
        area = self._area(values, line)
        if self.include is not None and not self.include(area, industry):
            return None
        occ = self._occupation(values, line)
        numbers: list[object] = []
        reasons: dict[str, str] = {}
        for measure, index in self._measures:
            raw = values[index] if index is not None and index < len(values) else None
            number, reason = self._value(raw, measure, line)
            numbers.append(number)
            if reason:
                reasons[measure] = reason
        self._flags(values, numbers, reasons)
        return make_row(occ, area, self.year, industry, numbers, reasons)

    def _value(self, raw: object, measure: str, line: int) -> tuple[object, str | None]:
        if raw is None or isinstance(raw, (int, float)):
            return (int(raw) if measure == "employment" and raw is not None else raw), None
        cell = str(raw).strip()
        if not cell:
            return None, None
        if cell in MARKERS:
            return None, MARKERS[cell]
        try:
            number = float(cell.replace(",", ""))
        except ValueError:
            raise SourceError(self.path, f"{cell!r} is not a number or a BLS marker (* ** # ~)", line=line, field=MEASURE_COLUMNS[measure].upper()) from None
        return (int(number) if measure == "employment" else number), None

    def _flags(self, values: Sequence[object], numbers: list[object], reasons: dict[str, str]) -> None:
        """ANNUAL=TRUE: no hourly wages (annual-only); HOURLY=TRUE: no annual wages (hourly-only)."""
        for flag, measures, reason in (("annual", HOURLY_MEASURES, ANNUAL_ONLY), ("hourly", ANNUAL_MEASURES, HOURLY_ONLY)):
            if self.field(values, flag).upper() not in ("TRUE", "1", "YES", "T"):
                continue
            for measure in measures:
                if numbers[MEASURES.index(measure)] is None:
                    reasons[measure] = reason

    def _area(self, values: Sequence[object], line: int) -> str:
        raw, kind, title = self.field(values, "area"), self.field(values, "area_type"), self.field(values, "area_title")
        if not raw.isdigit():
            raise SourceError(self.path, f"AREA {raw!r} is not numeric", line=line, field="AREA")
        if kind == "1":
            code, area_type, state = "0000000", "N", "00"
        elif kind in ("2", "3"):
            state = raw.zfill(2)
            code, area_type = f"{state}00000", "S"
        elif kind in ("4", "5", "6"):
            code, area_type = raw.zfill(7), "M"
            state = code[:2] if kind == "6" else STATE_FIPS.get(self.field(values, "prim_state").upper(), "00")
        else:
            raise SourceError(self.path, f"AREA_TYPE {kind!r} is not 1 (U.S.), 2 (state), 3 (territory), 4/5 (metro) or 6 (nonmetro)", line=line, field="AREA_TYPE")
        if code not in self.dims.areas:
            self.dims.areas[code] = (title, area_type, state)
        return code

    def _occupation(self, values: Sequence[object], line: int) -> str:
        raw = self.field(values, "occ_code")
        code = raw.replace("-", "")
        if len(code) != 6 or not code.isdigit():
            raise SourceError(self.path, f"OCC_CODE {raw!r} is not a SOC code like 15-1252", line=line, field="OCC_CODE")
        if code not in self.dims.occupations:
            group = self.field(values, "o_group").lower()
            level = O_GROUP_LEVELS.get(group, _soc_level(code))
            self.dims.occupations[code] = (self.field(values, "occ_title"), level)
        return code

    def _industry(self, values: Sequence[object], line: int) -> str | None:
        raw = self.field(values, "naics") or "000000"
        if raw.strip("0") == "":
            code = CROSS_OWNERSHIP.get(self.field(values, "own_code") or "1235")
            if code is None:
                return None  # an ownership-only total (federal, state, local); flat files carry these elsewhere
        else:
            code = _naics(raw)
            if code is None:
                raise SourceError(self.path, f"NAICS {raw!r} is not an industry code", line=line, field="NAICS")
        if code not in self.dims.industries:
            group = self.field(values, "i_group").lower()
            level = 1 if code == "000001" else I_GROUP_LEVELS.get(group, 0 if code == "000000" else 2 if "-" in code else len(code.rstrip("0")))
            self.dims.industries[code] = (self.field(values, "naics_title") or code, level)
        return code


def _naics(raw: str) -> str | None:
    """``31-33`` -> ``31--34`` and ``99`` -> ``99-100`` (flat-file sector codes); ``3254`` -> ``325400``."""
    sector = re.fullmatch(r"(\d\d)(?:-(\d\d))?", raw)
    if sector:
        first, last = sector.group(1), int(sector.group(2) or sector.group(1))
        code = f"{first}--{last + 1}"
        return code if len(code) <= 6 else f"{first}-{last + 1}"
    if re.fullmatch(r"[0-9A-Z]{2,6}", raw):
        return raw.ljust(6, "0")
    return None


def _soc_level(code: str) -> int:
    """SOC hierarchy when O_GROUP is absent: 15-0000 major, 15-1200 minor, 15-1250 broad, else detailed."""
    if code.endswith("0000"):
        return 0
    if code.endswith("00"):
        return 1
    return 2 if code.endswith("0") else 3
