"""Question -> structured plan: what to look up, never how (no SQL anywhere near here).

``Plan`` is the only thing an LLM may produce too (see ``llm.py``); both planners'
plans are validated by the same model and answered by the same code.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from oews_api.names import MIN_OCCUPATION_SCORE, NameIndex
from oews_api.text import NOISE_WORDS, QUESTION_WORDS, normalize

Statistic = Literal["employment", "mean", "median", "pct10", "pct25", "pct75", "pct90", "jobs_1000", "loc_quotient"]
Term = Annotated[str, StringConstraints(min_length=1, max_length=120)]
PLAN_CACHE_SIZE = 4096
MAX_TERMS = 5  # occupations or areas in one plan

_PERCENTILE = re.compile(r"\b(\d{1,2})(?:st|nd|rd|th)?[\s-]*(?:percentile|pct|%ile)")
_PERCENTILES: dict[int, Statistic] = {10: "pct10", 25: "pct25", 50: "median", 75: "pct75", 90: "pct90"}
_SHARES: dict[tuple[str, bool], Statistic] = {("10", True): "pct90", ("25", True): "pct75", ("10", False): "pct10", ("25", False): "pct25"}
_YEAR = re.compile(r"\b((?:19|20)\d\d)\b")
_TOP = re.compile(
    r"\b(highest|top|best|most|lowest|least|worst)[\s-]*(paying|paid|pay|salar\w*|wages?|earning)\b|\btop\s+\d+\b"
    r"|\bmost lucrative\b|\bpays? the (most|least)\b|\b(most common|largest|biggest)\s+(jobs?|occupations?)\b"
    r"|\bmost (jobs|workers|employment)\b|\bwhich (jobs?|occupations?)\b"
)
_TOP_AREAS = re.compile(
    r"\b(which|what|best|top|highest[\s-]paying|lowest[\s-]paying|\d+)\s+(states?|cit(?:y|ies)|metros?|metro areas?|areas?|places?)\b"
    r"|\b(states?|cit(?:y|ies)|metros?|places?) (?:that )?(?:pays?|paying|has|have|with) (?:the )?(?:most|highest|best|lowest|least|more)\b"
)
_TOP_N = re.compile(r"\b(?:top|best|highest|lowest)\s+(\d{1,2})\b|\b(\d{1,2})\s+(?:highest|best|top|lowest|most)\b")
_TREND = re.compile(
    r"\btrends?\b|over time|over the years|\bsince (?:19|20)\d\d\b|\bhistorical\b|\bhistory of (?:pay|wages?|salar|employment)"
    r"|\bchanged?\b|\bgrowth\b|year over year|by year"
)
_COMPARE_CUES = re.compile(r"\bcompare|\bvs\b|\bversus\b|\bwhich\b|\bmore\b|\bhigher\b|\blower\b|\bdifference\b|\bbetween\b|\bbetter\b")
_SEPARATORS = {"or", "vs", "versus", "than", "compared", "and"}


class Plan(BaseModel):
    """What a question asks for. Terms are SOC/area codes or names; names are resolved later."""

    model_config = ConfigDict(extra="forbid")

    intent: Literal["value", "compare", "top", "top_areas", "trend"] = Field(
        "value",
        description="value: one figure; compare: across occupations or areas; top: rank occupations in an area; "
        "top_areas: rank states or metro areas for one occupation; trend: across years",
    )
    statistic: Statistic = Field("median", description="which BLS measure; wages default to the median")
    basis: Literal["annual", "hourly"] | None = Field(
        None, description="annual salary or hourly wage; null = annual unless BLS publishes only hourly"
    )
    occupations: list[Term] = Field(
        default_factory=list, max_length=MAX_TERMS, description="SOC codes (15-1252) or occupation names; empty = all occupations"
    )
    areas: list[Term] = Field(default_factory=list, max_length=MAX_TERMS, description="BLS area codes or place names; empty = the whole U.S.")
    year: int | None = Field(None, ge=1900, le=2100, description="survey year; null = latest")
    area_type: Literal["S", "M"] = Field("S", description="top_areas: rank states (S) or metro areas (M)")
    limit: int = Field(10, ge=1, le=50, description="rows for top and top_areas")
    ascending: bool = Field(False, description="top: lowest first")


def measure_column(statistic: Statistic, basis: Literal["annual", "hourly"]) -> str:
    """The ``estimates`` column for a statistic on an annual or hourly basis."""
    if statistic in ("employment", "jobs_1000", "loc_quotient"):
        return statistic
    prefix = "h_" if basis == "hourly" else "a_"
    return prefix + statistic


def detect_statistic(text: str) -> Statistic:
    """Which measure the words ask for (median unless they say otherwise)."""
    percentile = _PERCENTILE.search(text)
    if percentile:
        wanted = int(percentile.group(1))
        return _PERCENTILES[min(_PERCENTILES, key=lambda p: abs(p - wanted))]
    if re.search(r"location quotient|\blq\b|concentrat", text):
        return "loc_quotient"
    if re.search(r"per (1,?000|thousand)|jobs? per", text):
        return "jobs_1000"
    if re.search(
        r"\bhow many\b|\bnumber of\b|\bemploy(ment|ed|s)?\b|\bworkforce\b|\bheadcount\b|\bmost common\b|\bmost (jobs|workers)\b|\blargest (jobs?|occupations?)\b",
        text,
    ):
        return "employment"
    if re.search(r"\bmedian\b|\btypical(ly)?\b|\bmidpoint\b", text):
        return "median"
    if re.search(r"\bmean\b|\baverage\b|\bavg\b", text):
        return "mean"
    share = re.search(r"\b(top|highest[\s-]paid|best[\s-]paid|bottom|lowest[\s-]paid)\s+(10|25)\s*(?:%|percent)", text)
    if share:
        high = share.group(1).startswith(("top", "highest", "best"))
        return _SHARES[(share.group(2), high)]
    if re.search(r"\bentry[\s-]level\b|\bstarting\b|\blow end\b", text):
        return "pct10"
    if re.search(r"\btop earners\b|\bhigh end\b|\btop 10 ?%", text):
        return "pct90"
    return "median"


def detect_basis(text: str) -> Literal["annual", "hourly"] | None:
    """Hourly or annual if the words say so."""
    if re.search(r"\bhourly\b|per hour|an hour|/\s*h(ou)?r\b|\bhour\b", text):
        return "hourly"
    if re.search(r"\bannual(ly)?\b|\byearly\b|per year|a year|\bsalar(y|ies)\b|/\s*yr\b", text):
        return "annual"
    return None


def build_plan(question: str, index: NameIndex) -> Plan:
    """The built-in planner: places, then what is asked, then the occupation(s) in what remains."""
    text = question.lower()
    words = index.correct(normalize(question))
    mentions = index.find_areas(words, question)
    used = {i for m in mentions for i in range(m.start, m.end)}
    rest = [word for i, word in enumerate(words) if i not in used]
    areas = list(dict.fromkeys(m.area.code for m in mentions))[:MAX_TERMS]
    statistic = detect_statistic(text)
    occupations = _occupation_terms(rest, index, split_on_and=bool(_COMPARE_CUES.search(text)))
    if not occupations and not areas and not set(words) & QUESTION_WORDS:
        occupations = [question.strip()[:120] or "?"]  # nothing recognisable: answered as "could not match"
    year_match = [int(y) for y in _YEAR.findall(question)]
    intent: Literal["value", "compare", "top", "top_areas", "trend"] = "value"
    top_areas = _TOP_AREAS.search(text)
    if _TREND.search(text):
        intent = "trend"
    elif top_areas and occupations and not areas:
        intent = "top_areas"
    elif _TOP.search(text) and len(occupations) <= 1 and len(areas) <= 1:
        group = index.group_for_words(rest)
        if group is not None or not _is_specific(occupations, index):
            intent = "top"
            occupations = [group.code] if group is not None else occupations
    elif len(areas) > 1 or len(occupations) > 1:
        intent = "compare"
    top_n = _TOP_N.search(text)
    limit = int(next(g for g in top_n.groups() if g)) if top_n else 10
    return Plan(
        intent=intent,
        statistic=statistic,
        basis=detect_basis(text),
        occupations=occupations,
        areas=areas,
        year=year_match[0] if year_match and intent != "trend" else None,
        area_type="S" if not top_areas or "state" in top_areas.group(0) else "M",
        limit=max(1, min(limit, 50)),
        ascending=bool(re.search(r"\b(lowest|least|worst)\b", text)),
    )


@dataclass
class Planner:
    """The built-in planner with its plans kept per question (they depend only on the text and the names)."""

    index: NameIndex
    _cache: dict[str, Plan] = field(default_factory=dict, repr=False)

    def plan(self, question: str) -> Plan:
        """``build_plan`` for this question, computed once."""
        plan = self._cache.get(question)
        if plan is None:
            plan = build_plan(question, self.index)
            if len(self._cache) >= PLAN_CACHE_SIZE:
                self._cache.pop(next(iter(self._cache)))
            self._cache[question] = plan
        return plan


def _is_specific(occupations: list[str], index: NameIndex) -> bool:
    """True when the one occupation named is a detailed one (then 'highest paying' is not a ranking)."""
    return bool(occupations) and occupations[0] in index.occupations and index.occupations[occupations[0]].level == 3


def _occupation_terms(words: list[str], index: NameIndex, *, split_on_and: bool) -> list[str]:
    """One term per occupation named: a code when matched well, else the words themselves."""
    whole = index.occupations_for_words(words)
    separators = _SEPARATORS if split_on_and else _SEPARATORS - {"and"}
    parts = _split(words, separators)
    if len(parts) > 1:
        matches = [index.occupations_for_words(part) for part in parts]
        best = [m[0] for m in matches if m]
        codes = [m.item.code for m in best]
        if (
            len(best) == len(parts)
            and len(set(codes)) == len(codes)
            and all(m.score >= MIN_OCCUPATION_SCORE + 0.15 for m in best)
            and (not whole or min(m.score for m in best) > whole[0].score)
        ):
            return codes[:MAX_TERMS]
    if whole and whole[0].score >= MIN_OCCUPATION_SCORE:
        return [whole[0].item.code]
    leftover = " ".join(_content(words))
    return [leftover[:120]] if leftover else []


def _split(words: list[str], separators: set[str]) -> list[list[str]]:
    parts: list[list[str]] = [[]]
    for word in words:
        if word in separators:
            parts.append([])
        else:
            parts[-1].append(word)
    return [part for part in parts if _content(part)]


def _content(words: list[str]) -> list[str]:
    return [w for w in words if w not in NOISE_WORDS and not any(c.isdigit() for c in w)]
