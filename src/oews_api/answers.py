"""Plan -> answer: the sentence, the rows it used, and chart specs a front end can draw."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from oews_api import queries
from oews_api.db import Database
from oews_api.formatting import MEASURE_LABELS, format_value
from oews_api.names import NATIONAL, Area, NameIndex, Occupation
from oews_api.planner import Plan, measure_column
from oews_api.schema import ANNUAL_ONLY, HOURLY_ONLY, REASONS, TOP_CODED

Row = dict[str, Any]
Basis = Literal["annual", "hourly"]
PERCENTILE_LABELS = ("10th", "25th", "median", "75th", "90th")
PERCENTILE_STATS = ("pct10", "pct25", "median", "pct75", "pct90")
ANSWER_CACHE_SIZE = 4096
MAX_WITHHELD_NAMED = 5


@dataclass
class Answer:
    """What ``POST /api/v1/query`` returns besides timing and the plan."""

    text: str
    rows: list[Row] = field(default_factory=list)
    charts: list[dict[str, Any]] = field(default_factory=list)
    resolved: dict[str, Any] = field(default_factory=dict)


class Unresolved(Exception):
    """A plan term matched no occupation or area; the message says so and suggests names."""


@dataclass
class Answerer:
    """Answers plans from one database and its name index."""

    db: Database
    index: NameIndex
    _cache: dict[str, Answer] = field(default_factory=dict, repr=False)

    @property
    def release(self) -> str:
        return self.db.info.release

    def answer(self, plan: Plan, *, charts: bool) -> Answer:
        """Answer a plan (a sentence is always returned, even when nothing matched).

        The database never changes while it is served, so answers are kept per plan
        (rankings read ~800 rows; a repeated question then costs no SQL at all).
        """
        key = f"{charts}:{plan.model_dump_json()}"
        cached = self._cache.get(key)
        if cached is None:
            cached = self._answer(plan, charts=charts)
            if len(self._cache) >= ANSWER_CACHE_SIZE:
                self._cache.pop(next(iter(self._cache)))  # drop the oldest
            self._cache[key] = cached
        return cached

    def _answer(self, plan: Plan, *, charts: bool) -> Answer:
        try:
            occupations = [self._occupation(term) for term in plan.occupations]
            areas = [self._area(term) for term in plan.areas] or [self.index.areas[NATIONAL]]
        except Unresolved as exc:
            return Answer(str(exc))
        year = plan.year or self.db.info.years[-1]
        if year not in self.db.info.years:
            years = ", ".join(str(y) for y in self.db.info.years)
            return Answer(f"This database holds OEWS estimates for {years} only; there is no {year} data.")
        resolved = {"occupations": [o.public() for o in occupations], "areas": [a.public() for a in areas], "year": year}
        if plan.intent == "top":
            result = self._top(plan, areas[0], occupations[0] if occupations else None, year)
        elif plan.intent == "top_areas" and occupations:
            result = self._top_areas(plan, occupations[0], year)
        else:
            occupations = occupations or [self.index.occupations[queries.ALL_OCCUPATIONS]]
            if plan.intent == "trend":
                result = self._trend(plan, occupations[0], areas[0])
            elif len(occupations) > 1 or len(areas) > 1:
                result = self._compare(plan, occupations, areas, year)
            else:
                result = self._value(plan, occupations[0], areas[0], year)
        result.resolved = resolved
        if not charts:
            result.charts = []
        return result

    # ----- resolution -------------------------------------------------------------------
    def _occupation(self, term: str) -> Occupation:
        occupation = self.index.occupation(term)
        if occupation is not None:
            return occupation
        close = "; ".join(self.index.suggestions(term, 5))
        hint = f" Close matches: {close}." if close else ""
        raise Unresolved(f"I could not match \u201c{term}\u201d to a BLS occupation.{hint} Try the official title or a SOC code like 15-1252.")

    def _area(self, term: str) -> Area:
        area = self.index.area(term)
        if area is not None:
            return area
        close = "; ".join(self.index.area_suggestions(term, 5))
        hint = f" Close matches: {close}." if close else ""
        raise Unresolved(f"I could not match \u201c{term}\u201d to a BLS area (the U.S., a state, or a metro area).{hint}")

    # ----- one figure -------------------------------------------------------------------------
    def _value(self, plan: Plan, occupation: Occupation, area: Area, year: int) -> Answer:
        row = queries.estimate(self.db, occupation.code, area.code, year)
        if row is None:
            return self._missing(plan, occupation, area, year)
        measure, note = _pick_measure(plan, row)
        value = row[measure]
        where = f"{occupation.title} in {area.label} ({self._release(year)}, BLS OEWS)"
        if value is None:
            return Answer(f"The {MEASURE_LABELS[measure]} for {where} is not published: {_reason(row, measure)}.", [row])
        if measure == "employment":
            text = f"BLS counted {format_value(measure, value)} jobs for {where}.{note}"
        else:
            text = f"The {MEASURE_LABELS[measure]} for {where} was {format_value(measure, value)}.{note}"
        text += _context_sentence(row, measure)
        charts = [_range_chart(row, measure, occupation, area)] if measure.startswith(("a_", "h_")) else []
        return Answer(text, [row], [c for c in charts if c])

    def _missing(self, plan: Plan, occupation: Occupation, area: Area, year: int) -> Answer:
        where = f"{occupation.title} in {area.label} ({self._release(year)})"
        if occupation.level < 3:
            ranking = self._top(plan.model_copy(update={"ascending": False}), area, occupation, year)
            return Answer(
                f"BLS publishes no estimate for the group {where}, only for its detailed occupations. " + ranking.text, ranking.rows, ranking.charts
            )
        return Answer(f"BLS published no estimate for {where}: the occupation is not reported separately in that area.")

    # ----- comparisons ------------------------------------------------------------------------
    def _compare(self, plan: Plan, occupations: list[Occupation], areas: list[Area], year: int) -> Answer:
        pairs = [(o, a) for o in occupations for a in areas]
        rows = [(o, a, queries.estimate(self.db, o.code, a.code, year)) for o, a in pairs]
        found = [r for _, _, r in rows if r]
        basis = _common_basis(plan, found)
        measure = measure_column(plan.statistic, basis)
        by_area = len(areas) > 1
        label = (lambda o, a: a.label) if by_area else (lambda o, a: o.title)
        subject = occupations[0].title if by_area else areas[0].label
        published = sorted(((label(o, a), r[measure], r) for o, a, r in rows if r and r[measure] is not None), key=lambda item: -item[1])
        parts = [f"{name} {format_value(measure, value)}" for name, value, _ in published]
        missing = [f"{label(o, a)}: {_reason(r, measure) if r else 'no estimate published'}" for o, a, r in rows if not r or r[measure] is None]
        head = f"{MEASURE_LABELS[measure].capitalize()} for {subject} ({self._release(year)}, BLS OEWS)"
        if len(published) >= 2:
            (top_name, top_value, _), (_, second_value, _) = published[0], published[1]
            more = "employs more" if measure == "employment" else "is higher"
            text = (
                f"{head}: {'; '.join(parts)}. {top_name} {more} ({format_value(measure, top_value)} vs "
                f"{format_value(measure, second_value)}, a difference of {format_value(measure, top_value - second_value)})."
            )
        elif published:
            text = f"{head}: {'; '.join(parts)}."
        else:
            text = f"{head}: no published figures to compare."
        if missing:
            text += " Not published: " + "; ".join(missing) + "."
        chart = _bar_chart(f"{head}", [p[0] for p in published], [p[1] for p in published], measure)
        return Answer(text, found, [chart] if published else [])

    # ----- rankings ---------------------------------------------------------------------------
    def _top(self, plan: Plan, area: Area, group: Occupation | None, year: int) -> Answer:
        statistic = plan.statistic if plan.statistic in ("employment", "mean", "median", "pct10", "pct25", "pct75", "pct90") else "median"
        measure = measure_column(statistic, plan.basis or "annual")
        prefix = group.code.rstrip("0") if group and group.level < 3 else ""
        rows = queries.ranked(self.db, area.code, measure, year, limit=plan.limit, ascending=plan.ascending, occ_prefix=prefix)
        scope = f" in the group {group.title}" if prefix and group else ""
        if not rows:
            return Answer(f"BLS published no {MEASURE_LABELS[measure]} figures for occupations{scope} in {area.label} ({self._release(year)}).")
        label = MEASURE_LABELS[measure]
        first = f"{rows[0]['occ_title']} ranks {'lowest' if plan.ascending else 'highest'} at {format_value(measure, rows[0][measure])}"
        if measure == "employment":
            kind = "Occupations with the fewest jobs" if plan.ascending else "Occupations with the most jobs"
            lead = f"Among occupations{scope} in {area.label}, {first} jobs"
        else:
            kind = "Lowest paying occupations" if plan.ascending else "Highest paying occupations"
            lead = f"Among occupations{scope} with a published {label} in {area.label}, {first}"
        listing = "; ".join(f"{n}. {r['occ_title']} {format_value(measure, r[measure])}" for n, r in enumerate(rows, 1))
        text = f"{lead} ({self._release(year)}, BLS OEWS). {kind} by {label}, top {len(rows)}: {listing}."
        if not plan.ascending and measure != "employment":
            text += _withheld_sentence(queries.unpublished_titles(self.db, area.code, measure, year, TOP_CODED, occ_prefix=prefix), label)
        chart = _bar_chart(f"{kind} in {area.label}", [r["occ_title"] for r in rows], [r[measure] for r in rows], measure)
        chart["options"]["orientation"] = "horizontal"
        return Answer(text, rows, [chart])

    def _top_areas(self, plan: Plan, occupation: Occupation, year: int) -> Answer:
        measure = measure_column(plan.statistic, plan.basis or "annual")
        rows = queries.ranked_areas(self.db, occupation.code, measure, year, plan.area_type, limit=plan.limit, ascending=plan.ascending)
        kind = "states and territories" if plan.area_type == "S" else "metro and nonmetro areas"
        if not rows:
            return Answer(
                f"BLS published no {MEASURE_LABELS[measure]} for {occupation.title} in any of this database's {kind} ({self._release(year)})."
            )
        order = "lowest" if plan.ascending else "highest"
        listing = "; ".join(f"{n}. {r['area_name']} {format_value(measure, r[measure])}" for n, r in enumerate(rows, 1))
        text = (
            f"{rows[0]['area_name']} has the {order} {MEASURE_LABELS[measure]} for {occupation.title} among {kind} "
            f"({self._release(year)}, BLS OEWS): {format_value(measure, rows[0][measure])}. Top {len(rows)}: {listing}."
        )
        chart = _bar_chart(
            f"{MEASURE_LABELS[measure].capitalize()}: {occupation.title} by area", [r["area_name"] for r in rows], [r[measure] for r in rows], measure
        )
        chart["options"]["orientation"] = "horizontal"
        return Answer(text, rows, [chart])

    # ----- trends -----------------------------------------------------------------------------
    def _trend(self, plan: Plan, occupation: Occupation, area: Area) -> Answer:
        rows = queries.trend(self.db, occupation.code, area.code)
        if not rows:
            return self._missing(plan, occupation, area, self.db.info.years[-1])
        measure = measure_column(plan.statistic, _common_basis(plan, rows))
        points = [(r["year"], r[measure]) for r in rows]
        shown = "; ".join(f"{y}: {format_value(measure, v) if v is not None else 'not published'}" for y, v in points)
        text = f"{MEASURE_LABELS[measure].capitalize()} for {occupation.title} in {area.label} by year (BLS OEWS): {shown}."
        if len(rows) == 1:
            text += f" This database holds one release ({self.release}), so there is no trend to show yet."
        known = [(y, v) for y, v in points if v is not None]
        if len(known) >= 2 and known[0][1]:
            change = (known[-1][1] - known[0][1]) / known[0][1] * 100
            text += f" Change {known[0][0]}\u2013{known[-1][0]}: {change:+.1f}%."
        chart = {
            "type": "line",
            "title": f"{MEASURE_LABELS[measure].capitalize()}: {occupation.title}, {area.label}",
            "data": {"labels": [y for y, _ in points], "values": [v for _, v in points]},
            "options": {"measure": measure, "unit": _unit(measure)},
        }
        return Answer(text, rows, [chart])

    def _release(self, year: int) -> str:
        return self.release if year == self.db.info.years[-1] else f"May {year}"


def _pick_measure(plan: Plan, row: Row) -> tuple[str, str]:
    """The column to state, switching basis only when BLS publishes just the other one (never converting)."""
    basis: Basis = plan.basis or "annual"
    measure = measure_column(plan.statistic, basis)
    reason = row["unpublished"].get(measure, {}).get("reason")
    if reason in (HOURLY_ONLY, ANNUAL_ONLY):
        other: Basis = "hourly" if basis == "annual" else "annual"
        alternative = measure_column(plan.statistic, other)
        if row[alternative] is not None:
            return alternative, f" ({REASONS[reason]}.)"
    return measure, ""


def _common_basis(plan: Plan, rows: list[Row]) -> Basis:
    if plan.basis:
        return plan.basis
    annual = measure_column(plan.statistic, "annual")
    hourly_only = rows and all(r["unpublished"].get(annual, {}).get("reason") == HOURLY_ONLY for r in rows)
    return "hourly" if hourly_only else "annual"


def _reason(row: Row, measure: str) -> str:
    info = row["unpublished"].get(measure)
    return info["detail"] if info else REASONS["not_available"]


def _context_sentence(row: Row, measure: str) -> str:
    """The other published figures for the same cell, so one answer covers the usual follow-ups."""
    if measure.startswith(("a_", "h_")):
        prefix = measure[:2]
        other = ("h_" if prefix == "a_" else "a_") + measure[2:]
        extras = []
        if row.get(other) is not None:
            extras.append(f"{MEASURE_LABELS[other]} {format_value(other, row[other])}")
        mean = prefix + "mean"
        if mean != measure and row.get(mean) is not None:
            extras.append(f"{MEASURE_LABELS[mean]} {format_value(mean, row[mean])}")
        if row.get("employment") is not None:
            extras.append(f"employment {format_value('employment', row['employment'])}")
        return f" Also: {'; '.join(extras)}." if extras else ""
    if measure == "employment":
        extras = [f"{MEASURE_LABELS[m]} {format_value(m, row[m])}" for m in ("jobs_1000", "loc_quotient", "a_median") if row.get(m) is not None]
        return f" Also: {'; '.join(extras)}." if extras else ""
    return ""


def _withheld_sentence(titles: list[str], label: str) -> str:
    """Top-coded occupations are left out of a ranking but may well belong at its top: name them."""
    if not titles:
        return ""
    shown = "; ".join(titles[:MAX_WITHHELD_NAMED]) + ("; \u2026" if len(titles) > MAX_WITHHELD_NAMED else "")
    verb = "are" if len(titles) != 1 else "is"
    return (
        f" {len(titles)} occupation{'s' if len(titles) != 1 else ''} ({shown}) {verb} withheld as top-coded (BLS publishes no "
        f"{label} for {'them' if len(titles) != 1 else 'it'}, only that it is very high) and could rank above the published ones."
    )


def _unit(measure: str) -> str:
    if measure.startswith("a_"):
        return "USD per year"
    if measure.startswith("h_"):
        return "USD per hour"
    return "jobs" if measure == "employment" else "ratio"


def _bar_chart(title: str, labels: list[str], values: list[Any], measure: str) -> dict[str, Any]:
    return {"type": "bar", "title": title, "data": {"labels": labels, "values": values}, "options": {"measure": measure, "unit": _unit(measure)}}


def _range_chart(row: Row, measure: str, occupation: Occupation, area: Area) -> dict[str, Any] | None:
    """The 10th-90th percentile spread of one occupation's wages (null where BLS did not publish)."""
    prefix = measure[:2]
    columns = [prefix + s for s in PERCENTILE_STATS]
    values = [row[c] for c in columns]
    if all(v is None for v in values):
        return None
    return {
        "type": "range",
        "title": f"{occupation.title} in {area.label}: {'hourly' if prefix == 'h_' else 'annual'} wage percentiles",
        "data": {"labels": list(PERCENTILE_LABELS), "values": values, "mean": row[prefix + "mean"]},
        "options": {
            "measure": measure,
            "unit": _unit(measure),
            "highlight": PERCENTILE_LABELS[PERCENTILE_STATS.index(measure[2:])] if measure[2:] in PERCENTILE_STATS else None,
        },
    }
