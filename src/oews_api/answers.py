"""Plan -> answer: the sentence, the rows it used, and chart specs a front end can draw."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import orjson

from oews_api import queries
from oews_api.charts import bar_chart, grouped_bar_chart, line_chart, range_chart
from oews_api.caches import EncodedLRU
from oews_api.db import Database
from oews_api.formatting import MEASURE_LABELS, format_value
from oews_api.industries import Industry, IndustryIndex
from oews_api.names import NATIONAL, Area, NameIndex, Occupation
from oews_api.names.suggestions import area_suggestions, occupation_suggestions, similar_areas
from oews_api.planner import Plan, measure_column
from oews_api.schema import ANNUAL_ONLY, HOURLY_ONLY, REASONS, TOP_CODED

Row = dict[str, Any]
Basis = Literal["annual", "hourly"]
ANSWER_CACHE_SIZE = 4096
ANSWER_CACHE_BYTES = 64 << 20
MAX_WITHHELD_NAMED = 5
MAX_TABLE_SIDE = 4  # occupations x places in one answer table


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
    _cache: EncodedLRU[str, Answer] = field(
        default_factory=lambda: EncodedLRU(ANSWER_CACHE_SIZE, ANSWER_CACHE_BYTES, orjson.dumps, lambda data: Answer(**orjson.loads(data))), repr=False
    )

    @property
    def release(self) -> str:
        return self.db.info.release

    def answer(self, plan: Plan, *, charts: bool) -> Answer:
        """Answer a plan (a sentence is always returned, even when nothing matched).

        The database never changes while it is served, so answers are kept per plan
        (rankings read ~800 rows; a repeated question then costs no SQL at all), in a cache
        bounded by entries and by bytes.
        """
        return self._cache.get_or_compute(f"{charts}:{plan.model_dump_json()}", lambda: self._answer(plan, charts=charts))

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
        notes = self._missing_area_notes(plan)
        industry, industry_note, areas = self._industry(plan, occupations, areas, year)
        notes += [industry_note] if industry_note else []
        notes += [f"Not answered here: {'; '.join(plan.not_honoured)}."] if plan.not_honoured else []
        resolved = {
            "occupations": [o.public() for o in occupations],
            "areas": [a.public() for a in areas],
            "year": year,
            "industry": industry.public() if industry else None,
        }
        result = self._dispatch(plan, occupations, areas, year, industry)
        result.text = " ".join([*notes, result.text])
        result.resolved = resolved
        if not charts:
            result.charts = []
        return result

    def _dispatch(self, plan: Plan, occupations: list[Occupation], areas: list[Area], year: int, industry: Industry | None) -> Answer:
        if plan.intent == "top":
            return self._top(plan, areas[0], occupations[0] if occupations else None, year, industry)
        if plan.intent == "top_areas" and occupations:
            return self._top_areas(plan, occupations[0], year, industry)
        occupations = occupations or [self.index.occupations[queries.ALL_OCCUPATIONS]]
        if plan.intent == "trend":
            return self._trend(plan, occupations[0], areas[0], industry)
        if len(occupations) > 1 and len(areas) > 1:
            return self._table(plan, occupations, areas, year, industry)
        if plan.intent == "difference" and len(occupations) + len(areas) == 3:
            return self._difference(plan, occupations, areas, year, industry)
        if len(occupations) > 1 or len(areas) > 1:
            return self._compare(plan, occupations, areas, year, industry)
        return self._value(plan, occupations[0], areas[0], year, industry)

    # ----- what the answer cannot honour ------------------------------------------------------
    def _missing_area_notes(self, plan: Plan) -> list[str]:
        """Places the question named that this database does not hold: said, never replaced by another."""
        if not plan.missing_areas:
            return []
        names = " or ".join(f"\u201c{p}\u201d" for p in plan.missing_areas)
        metros = sum(1 for a in self.index.areas.values() if a.type == "M")
        national = "" if plan.areas else ", so these are national figures"
        note = f"This database has no area named {names} (it holds the U.S., the states and {metros} metro or nonmetro areas; see GET /api/v1/areas){national}."
        # A lone name may be a misspelling ("Sanfrancisco"); "Portland, ME" names its state, so another Portland is no hint;
        # with several missing places a list of guesses would not say which one it is for.
        lone = plan.missing_areas[0] if len(plan.missing_areas) == 1 and "," not in plan.missing_areas[0] else None
        similar = [a.name for a in similar_areas(self.index, lone)] if lone else []
        return [note + (f" Did you mean {' or '.join(similar)}? Ask again with that name." if similar else "")]

    def _industry(
        self, plan: Plan, occupations: list[Occupation], areas: list[Area], year: int
    ) -> tuple[Industry | None, str, list[Area]]:
        """The industry asked for, a note when it is not honoured (or only nationally), and the areas to answer for."""
        if plan.industry is None:
            return None, "", areas
        industries = IndustryIndex.of(self.index)
        industry = industries.resolve(plan.industry)
        if industry is None or industry.code == queries.CROSS_INDUSTRY:
            held = "cross-industry figures only" if len(industries.industries) <= 2 else "no figures for that industry"
            return None, f"This database has {held}, so these figures are for all industries, not only \u201c{plan.industry}\u201d.", areas
        probe = occupations[0].code if occupations else queries.ALL_OCCUPATIONS
        if plan.intent == "top_areas":
            if queries.ranked_areas(self.db, probe, "employment", year, plan.area_type, industry_code=industry.code, limit=1):
                return industry, "", areas
            return None, f"BLS publishes {industry.label} figures for the U.S. as a whole only, so this ranking covers all industries.", areas
        local = [a for a in areas if a.code != NATIONAL]
        if all(queries.estimate(self.db, probe, a.code, year, industry.code) for a in local):
            return industry, "", areas
        places = " or ".join(a.label for a in local)
        national_only = f"BLS publishes {industry.label} figures for the U.S. as a whole in this release, not for {places}"
        if len(local) > 1:  # a comparison of places ("Texas hospitals vs California hospitals"): keep the places, name the industry
            return None, f"{national_only}, so these figures are for all industries in each place, not for {industry.name} only.", areas
        return industry, f"{national_only}, so these are national figures for that industry.", [self.index.areas[NATIONAL]]

    # ----- resolution -------------------------------------------------------------------
    def _occupation(self, term: str) -> Occupation:
        occupation = self.index.occupation(term)
        if occupation is not None:
            return occupation
        close = "; ".join(occupation_suggestions(self.index, term, 5))
        hint = f" Close matches: {close}." if close else ""
        raise Unresolved(f"I could not match \u201c{term}\u201d to a BLS occupation.{hint} Try the official title or a SOC code like 15-1252.")

    def _area(self, term: str) -> Area:
        area = self.index.area(term)
        if area is not None:
            return area
        close = "; ".join(area_suggestions(self.index, term, 5))
        hint = f" Close matches: {close}." if close else ""
        raise Unresolved(f"I could not match \u201c{term}\u201d to a BLS area (the U.S., a state, or a metro area).{hint}")

    # ----- one figure -------------------------------------------------------------------------
    def _value(self, plan: Plan, occupation: Occupation, area: Area, year: int, industry: Industry | None) -> Answer:
        row = queries.estimate(self.db, occupation.code, area.code, year, _code(industry))
        if row is None:
            return self._missing(plan, occupation, area, year, industry)
        measure, note = _pick_measure(plan, row)
        value = row[measure]
        where = f"{occupation.title}{_working_in(industry)} in {area.label} ({self._release(year)}, BLS OEWS)"
        if value is None:
            return Answer(f"The {MEASURE_LABELS[measure]} for {where} is not published: {_reason(row, measure)}.", [row])
        if measure == "employment":
            text = f"BLS counted {format_value(measure, value)} jobs for {where}.{note}"
        else:
            text = f"The {MEASURE_LABELS[measure]} for {where} was {format_value(measure, value)}.{note}"
        text += _context_sentence(row, measure)
        charts = [range_chart(row, measure, f"{occupation.title} in {area.label}")] if measure.startswith(("a_", "h_")) else []
        return Answer(text, [row], [c for c in charts if c])

    def _missing(self, plan: Plan, occupation: Occupation, area: Area, year: int, industry: Industry | None) -> Answer:
        where = f"{occupation.title}{_working_in(industry)} in {area.label} ({self._release(year)})"
        if occupation.level < 3:
            ranking = self._top(plan.model_copy(update={"ascending": False}), area, occupation, year, industry)
            return Answer(
                f"BLS publishes no estimate for the group {where}, only for its detailed occupations. " + ranking.text, ranking.rows, ranking.charts
            )
        scope = "industry and area" if industry else "area"
        return Answer(f"BLS published no estimate for {where}: the occupation is not reported separately in that {scope}.")

    # ----- comparisons ------------------------------------------------------------------------
    def _compare(self, plan: Plan, occupations: list[Occupation], areas: list[Area], year: int, industry: Industry | None) -> Answer:
        rows = self._cells(occupations, areas, year, industry)
        found = [r for _, _, r in rows if r]
        basis = _common_basis(plan, found)
        measure = measure_column(plan.statistic, basis)
        by_area = len(areas) > 1
        label = (lambda o, a: a.label) if by_area else (lambda o, a: o.title)
        subject = occupations[0].title if by_area else areas[0].label
        published = sorted(((label(o, a), r[measure], r) for o, a, r in rows if r and r[measure] is not None), key=lambda item: -item[1])
        parts = [f"{name} {format_value(measure, value)}" for name, value, _ in published]
        missing = [f"{label(o, a)}: {_reason(r, measure) if r else 'no estimate published'}" for o, a, r in rows if not r or r[measure] is None]
        head = f"{MEASURE_LABELS[measure].capitalize()} for {subject}{_working_in(industry)} ({self._release(year)}, BLS OEWS)"
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
        chart = bar_chart(f"{head}", [p[0] for p in published], [p[1] for p in published], measure)
        return Answer(text, found, [chart] if published else [])

    def _cells(
        self, occupations: list[Occupation], areas: list[Area], year: int, industry: Industry | None
    ) -> list[tuple[Occupation, Area, Row | None]]:
        """Every occupation x area estimate (None where BLS has none), occupations first, in the order asked."""
        return [(o, a, queries.estimate(self.db, o.code, a.code, year, _code(industry))) for o in occupations for a in areas]

    def _table(self, plan: Plan, occupations: list[Occupation], areas: list[Area], year: int, industry: Industry | None) -> Answer:
        """Several occupations in several places: each figure next to its own occupation and place, and a grouped chart."""
        if len(occupations) > MAX_TABLE_SIDE or len(areas) > MAX_TABLE_SIDE:
            return Answer(
                f"That asks for {len(occupations)} occupations in {len(areas)} places; I answer up to {MAX_TABLE_SIDE} occupations in "
                f"{MAX_TABLE_SIDE} places at a time. Please narrow it down, for example: "
                f"\u201c{occupations[0].title} in {' vs '.join(a.label for a in areas[:2])}\u201d."
            )
        cells = self._cells(occupations, areas, year, industry)
        found = [r for _, _, r in cells if r]
        measure = measure_column(plan.statistic, _common_basis(plan, found))
        stated = [f"{o.title} in {a.label} {format_value(measure, r[measure])}" for o, a, r in cells if r and r[measure] is not None]
        missing = [f"{o.title} in {a.label}: {_reason(r, measure) if r else 'no estimate published'}" for o, a, r in cells if not r or r[measure] is None]
        head = f"{MEASURE_LABELS[measure].capitalize()}{_working_in(industry)} ({self._release(year)}, BLS OEWS)"
        text = f"{head}: {'; '.join(stated)}." if stated else f"{head}: no published figures for these occupations and places."
        published = [(o, a, r[measure]) for o, a, r in cells if r and r[measure] is not None]
        if len(published) >= 2:
            o, a, value = max(published, key=lambda p: p[2])
            text += f" Highest {'count' if measure == 'employment' else 'figure'} is {o.title} in {a.label} ({format_value(measure, value)})."
        if missing:
            text += " Not published: " + "; ".join(missing) + "."
        by_cell = {(o.code, a.code): r[measure] if r else None for o, a, r in cells}
        series = {o.title: [by_cell[(o.code, a.code)] for a in areas] for o in occupations}
        chart = grouped_bar_chart(head, [a.label for a in areas], series, measure)
        return Answer(text, found, [chart] if published else [])

    def _difference(self, plan: Plan, occupations: list[Occupation], areas: list[Area], year: int, industry: Industry | None) -> Answer:
        """ "How much more do X earn than Y": the gap first, then both figures, each with its own name."""
        (o1, a1, r1), (o2, a2, r2) = self._cells(occupations, areas, year, industry)
        found = [r for r in (r1, r2) if r]
        measure = measure_column(plan.statistic, _common_basis(plan, found))
        if not (r1 and r2 and r1[measure] is not None and r2[measure] is not None):
            return self._compare(plan, occupations, areas, year, industry)
        gap = r1[measure] - r2[measure]
        more = ("more" if gap >= 0 else "fewer") if measure == "employment" else ("more" if gap >= 0 else "less")
        amount = format_value(measure, abs(gap))
        share = f", {abs(gap) / r2[measure] * 100:.0f}% {more}" if r2[measure] else ""
        scope = _working_in(industry)
        same_occupation = o1.code == o2.code
        if measure == "employment":
            first, second = (f"{o1.title}{scope} in {a1.label}", f"in {a2.label}") if same_occupation else (f"{o1.title}", f"for {o2.title}{scope} in {a1.label}")
            subject = f"BLS counted {amount} {more} jobs for {first} than {second}"
        elif same_occupation:
            subject = f"{o1.title}{scope} earn {amount} {more} in {a1.label} than in {a2.label}"
        else:
            subject = f"{o1.title} earn {amount} {more} than {o2.title}{scope} in {a1.label}"
        if same_occupation:
            pair = f"{o1.title} in {a1.label} {format_value(measure, r1[measure])} vs {a2.label} {format_value(measure, r2[measure])}"
        else:
            pair = f"{o1.title} {format_value(measure, r1[measure])} vs {o2.title} {format_value(measure, r2[measure])}"
        text = f"{subject} \u2014 {MEASURE_LABELS[measure]} {pair}{share} ({self._release(year)}, BLS OEWS)."
        labels = [a1.label, a2.label] if same_occupation else [o1.title, o2.title]
        chart = bar_chart(f"{MEASURE_LABELS[measure].capitalize()}{scope}", labels, [r1[measure], r2[measure]], measure)
        return Answer(text, found, [chart])

    # ----- rankings ---------------------------------------------------------------------------
    def _top(self, plan: Plan, area: Area, group: Occupation | None, year: int, industry: Industry | None) -> Answer:
        statistic = plan.statistic if plan.statistic in ("employment", "mean", "median", "pct10", "pct25", "pct75", "pct90") else "median"
        measure = measure_column(statistic, plan.basis or "annual")
        prefix = group.code.rstrip("0") if group and group.level < 3 else ""
        rows = queries.ranked(
            self.db, area.code, measure, year, industry_code=_code(industry), limit=plan.limit, ascending=plan.ascending, occ_prefix=prefix
        )
        scope = (f" in the group {group.title}" if prefix and group else "") + (f" in {industry.label}" if industry else "")
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
            withheld = queries.unpublished_titles(self.db, area.code, measure, year, TOP_CODED, industry_code=_code(industry), occ_prefix=prefix)
            text += _withheld_sentence(withheld, label)
        chart = bar_chart(f"{kind} in {area.label}", [r["occ_title"] for r in rows], [r[measure] for r in rows], measure)
        chart["options"]["orientation"] = "horizontal"
        return Answer(text, rows, [chart])

    def _top_areas(self, plan: Plan, occupation: Occupation, year: int, industry: Industry | None) -> Answer:
        measure = measure_column(plan.statistic, plan.basis or "annual")
        # Metro rankings leave out BLS's nonmetropolitan areas (type M too, codes not starting 00): ask for enough rows.
        ranked = [a for a in self.index.areas.values() if a.type == plan.area_type and (plan.area_type == "S" or a.code.startswith("00"))]
        skipped = sum(1 for a in self.index.areas.values() if a.type == plan.area_type) - len(ranked)
        rows = queries.ranked_areas(
            self.db, occupation.code, measure, year, plan.area_type, industry_code=_code(industry), limit=plan.limit + skipped, ascending=plan.ascending
        )
        rows = [r for r in rows if plan.area_type == "S" or r["area_code"].startswith("00")][: plan.limit]
        kind = f"the {len(ranked)} {'states and territories' if plan.area_type == 'S' else 'metro areas'} in this database"
        if not rows:
            return Answer(
                f"BLS published no {MEASURE_LABELS[measure]} for {occupation.title} in any of this database's {kind} ({self._release(year)})."
            )
        order = "lowest" if plan.ascending else "highest"
        listing = "; ".join(f"{n}. {r['area_name']} {format_value(measure, r[measure])}" for n, r in enumerate(rows, 1))
        text = (
            f"{rows[0]['area_name']} has the {order} {MEASURE_LABELS[measure]} for {occupation.title}{_working_in(industry)} among {kind} "
            f"({self._release(year)}, BLS OEWS): {format_value(measure, rows[0][measure])}. Top {len(rows)}: {listing}."
        )
        chart = bar_chart(
            f"{MEASURE_LABELS[measure].capitalize()}: {occupation.title} by area", [r["area_name"] for r in rows], [r[measure] for r in rows], measure
        )
        chart["options"]["orientation"] = "horizontal"
        return Answer(text, rows, [chart])

    # ----- trends -----------------------------------------------------------------------------
    def _trend(self, plan: Plan, occupation: Occupation, area: Area, industry: Industry | None) -> Answer:
        rows = queries.trend(self.db, occupation.code, area.code, _code(industry))
        if not rows:
            return self._missing(plan, occupation, area, self.db.info.years[-1], industry)
        measure = measure_column(plan.statistic, _common_basis(plan, rows))
        points = [(r["year"], r[measure]) for r in rows]
        shown = "; ".join(f"{y}: {format_value(measure, v) if v is not None else 'not published'}" for y, v in points)
        text = f"{MEASURE_LABELS[measure].capitalize()} for {occupation.title}{_working_in(industry)} in {area.label} by year (BLS OEWS): {shown}."
        if len(rows) == 1:
            text += f" This database holds one release ({self.release}), so there is no trend to show yet."
        known = [(y, v) for y, v in points if v is not None]
        if len(known) >= 2 and known[0][1]:
            change = (known[-1][1] - known[0][1]) / known[0][1] * 100
            text += f" Change {known[0][0]}\u2013{known[-1][0]}: {change:+.1f}%."
        chart = line_chart(
            f"{MEASURE_LABELS[measure].capitalize()}: {occupation.title}, {area.label}", [y for y, _ in points], [v for _, v in points], measure
        )
        return Answer(text, rows, [chart])

    def _release(self, year: int) -> str:
        return self.release if year == self.db.info.years[-1] else f"May {year}"


def _code(industry: Industry | None) -> str:
    return industry.code if industry else queries.CROSS_INDUSTRY


def _working_in(industry: Industry | None) -> str:
    """How a sentence names the industry a figure is for ("" for all industries)."""
    return f" working in {industry.label}" if industry else ""


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
