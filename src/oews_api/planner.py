"""Question -> structured plan: what to look up, never how (no SQL anywhere near here).

``Plan`` is the only thing an LLM may produce too (see ``llm.py``); both planners'
plans are validated by the same model and answered by the same code.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from itertools import takewhile
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from oews_api.aliases import UNSUPPORTED_QUALIFIERS, WORKFORCE_WORDS
from oews_api.caches import BoundedLRU
from oews_api.industries import IndustryIndex, IndustryMention
from oews_api.names import MIN_OCCUPATION_SCORE, Match, NameIndex
from oews_api.question_places import find_places, proximity_as_in
from oews_api.text import NOISE_WORDS, QUESTION_WORDS, STOPWORDS, normalize, stem, stems

Statistic = Literal["employment", "mean", "median", "pct10", "pct25", "pct75", "pct90", "jobs_1000", "loc_quotient"]
Term = Annotated[str, StringConstraints(min_length=1, max_length=120)]
PLAN_CACHE_SIZE = 4096
PLAN_CACHE_BYTES = 8 << 20
MAX_TERMS = 5  # occupations or areas in one plan
MAX_LIST_WORDS = 6  # "electricians plumbers carpenters" (commas are gone): longer runs are not tried as lists
STRONG_MATCH = MIN_OCCUPATION_SCORE + 0.15
Intent = Literal["value", "compare", "difference", "top", "top_areas", "trend"]

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
_SEPARATORS = {"or", "vs", "versus", "than", "compared", "and"}
_UNSUPPORTED = [(tuple(normalize(phrase)), what) for phrase, what in UNSUPPORTED_QUALIFIERS.items()]
_DIFFERENCE = re.compile(r"\bhow (?:much|many) (?:more|less|fewer|higher|lower)\b|\bdifference (?:in|between)\b|\b(?:pay )?gap between\b")


class Plan(BaseModel):
    """What a question asks for. Terms are SOC/area codes or names; names are resolved later."""

    model_config = ConfigDict(extra="forbid")

    intent: Intent = Field(
        "value",
        description="value: one figure; compare: across occupations and/or areas (up to 4 x 4); difference: how much more "
        "the first of two occupations (or one occupation in the first of two areas) earns; top: rank occupations in an area; "
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
    industry: Term | None = Field(None, description="BLS industry code, title or industry words (hospitals); null = all industries")
    missing_areas: list[Term] = Field(
        default_factory=list, max_length=MAX_TERMS, description="places the question names that this database does not hold (named in the answer)"
    )
    not_honoured: list[Term] = Field(
        default_factory=list, max_length=MAX_TERMS, description="other parts of the question this plan cannot answer (named in the answer)"
    )
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
    wage_words = re.search(r"\b(pay|paid|salar(y|ies)|wages?|earn\w*|make|income)\b", text)
    if re.search(
        r"\bhow many\b|\bnumber of\b|\bemployment\b|\bworkforce\b|\bheadcount\b|\bmost common\b|\bmost (jobs|workers)\b|\blargest (jobs?|occupations?)\b",
        text,
    ) or (re.search(r"\bemploy(ed|s)?\b", text) and not wage_words):
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
    """The built-in planner: industries and places, then what is asked, then the occupation(s) in what remains."""
    text = question.lower()
    words = proximity_as_in(normalize(question))
    industries = [m for m in IndustryIndex.of(index).find(words) if _names_an_industry(m, words, index)]
    in_industry = {i for m in industries for i in range(m.start, m.end)}
    said = [w for i, w in enumerate(words) if i not in in_industry]
    words = index.correct(said)
    places = find_places(index, words, said, question, [m.phrase for m in industries])
    rest = [word for i, word in enumerate(words) if i not in places.used]
    named_areas = list(dict.fromkeys(m.area.code for m in places.mentions))
    areas = named_areas[:MAX_TERMS]
    not_honoured = [f"{index.areas[code].name} (at most {MAX_TERMS} places per question)" for code in named_areas[MAX_TERMS:]]
    not_honoured += [f"{m.phrase} (one industry per question)" for m in industries[1:] if m.code != industries[0].code]
    not_honoured += _unsupported(words)
    statistic = detect_statistic(text)
    occupations = _occupation_terms(rest, index)
    recognised = areas or places.missing or industries or set(words) & QUESTION_WORDS or _names_a_workforce(rest)
    if not occupations and not recognised:
        occupations = [question.strip()[:120] or "?"]  # nothing recognisable: answered as "could not match"
    year_match = [int(y) for y in _YEAR.findall(question)]
    intent, occupations, top_areas = _intent(text, rest, occupations, areas, index)
    top_n = _TOP_N.search(text)
    limit = int(next(g for g in top_n.groups() if g)) if top_n else 10
    return Plan(
        intent=intent,
        statistic=statistic,
        basis=detect_basis(text),
        occupations=occupations,
        areas=areas,
        industry=_industry_term(industries[0], index) if industries else None,
        missing_areas=places.missing[:MAX_TERMS],
        not_honoured=[part[:120] for part in not_honoured[:MAX_TERMS]],
        year=year_match[0] if year_match and intent != "trend" else None,
        area_type="S" if not top_areas or "state" in top_areas.group(0) else "M",
        limit=max(1, min(limit, 50)),
        ascending=bool(re.search(r"\b(lowest|least|worst)\b", text)),
    )


def _intent(
    text: str, rest: list[str], occupations: list[str], areas: list[str], index: NameIndex
) -> tuple[Intent, list[str], re.Match[str] | None]:
    """What kind of question it is (and, for "top N healthcare jobs", the group to rank within)."""
    top_areas = _TOP_AREAS.search(text)
    if _TREND.search(text):
        return "trend", occupations, top_areas
    if top_areas and occupations and not areas:
        return "top_areas", occupations, top_areas
    if _TOP.search(text) and len(occupations) <= 1 and len(areas) <= 1:
        group = index.group_for_words(rest)
        if group is not None or not _is_specific(occupations, index):
            return "top", [group.code] if group is not None else occupations, top_areas
    if _DIFFERENCE.search(text) and sorted((len(occupations), max(1, len(areas)))) == [1, 2]:
        return "difference", occupations, top_areas
    if len(areas) > 1 or len(occupations) > 1:
        return "compare", occupations, top_areas
    return "value", occupations, top_areas


@dataclass
class Planner:
    """The built-in planner with its plans kept per question (they depend only on the text and the names)."""

    index: NameIndex
    _cache: BoundedLRU[str, Plan] = field(default_factory=lambda: BoundedLRU(PLAN_CACHE_SIZE, PLAN_CACHE_BYTES), repr=False)

    def plan(self, question: str) -> Plan:
        """``build_plan`` for this question, computed once (while it stays in the bounded cache)."""
        return self._cache.get_or_compute(question, lambda: build_plan(question, self.index))


def _is_specific(occupations: list[str], index: NameIndex) -> bool:
    """True when the one occupation named is a detailed one (then 'highest paying' is not a ranking)."""
    return bool(occupations) and occupations[0] in index.occupations and index.occupations[occupations[0]].level == 3


def _occupation_terms(words: list[str], index: NameIndex) -> list[str]:
    """One term per occupation named: a code when matched well, else the words themselves.

    The words split at "and", "or", "vs" ... (and runs like "rns lpns cnas") win only when every part
    names a distinct occupation clearly and better than the whole does: "nurses and dental hygienists"
    is two, "paralegals and legal assistants" one (its title). Words for a whole workforce alone ("utility
    workers", "hospital staff") name no occupation: the figure is All Occupations.
    """
    if _names_a_workforce(words):
        return []
    whole = index.occupations_for_words(words)
    parts = [piece for part in _split(words, _SEPARATORS) for piece in _split_list(part, index)]
    if len(parts) > 1:
        matches = [index.occupations_for_words(part) for part in parts]
        best = [m[0] for m in matches if m]
        codes = [m.item.code for m in best]
        if (
            len(best) == len(parts)
            and len(set(codes)) == len(codes)
            and all(m.score >= STRONG_MATCH for m in best)
            and (not whole or _beats(min(m.score for m in best), whole[0], codes))
        ):
            return codes[:MAX_TERMS]
    if whole and whole[0].score >= MIN_OCCUPATION_SCORE:
        return [whole[0].item.code]
    leftover = " ".join(_content(words))
    return [leftover[:120]] if leftover else []


def _unsupported(words: list[str]) -> list[str]:
    """Qualifiers OEWS publishes nothing for ("female nurses", "part time"), each with what is missing."""
    found = {
        f"\u201c{' '.join(phrase)}\u201d (OEWS publishes no {what})"
        for phrase, what in _UNSUPPORTED
        if any(tuple(words[i : i + len(phrase)]) == phrase for i in range(len(words) - len(phrase) + 1))
    }
    return sorted(found)


def _beats(weakest: float, whole: Match, codes: list[str]) -> bool:
    """Split parts win over the whole run if each matches better, or as well when the whole found one of them."""
    return weakest > whole.score or (weakest >= whole.score and whole.item.code in codes)


def _names_an_industry(mention: IndustryMention, words: list[str], index: NameIndex) -> bool:
    """An industry word found in the question that is not part of a place's or (said bare) an occupation's name."""
    return not _starts_a_place(mention, words, index) and not (mention.bare and _owned_by_occupation(mention, words, index))


def _starts_a_place(mention: IndustryMention, words: list[str], index: NameIndex) -> bool:
    """ "College Station", "in College Station": the industry word begins a place name, and is no industry."""
    phrase = words[mention.end - len(mention.phrase.split()) : mention.end]
    rest = words[mention.end : mention.end + 3]
    return any(tuple(phrase + rest[:n]) in index.tables.places for n in range(1, len(rest) + 1))


def _owned_by_occupation(mention: IndustryMention, words: list[str], index: NameIndex) -> bool:
    """True when an industry word without "in" belongs to the occupation named right after it: "restaurant cooks" is
    Cooks, Restaurant, "school teachers" Elementary School Teachers; but "hospital nurses" are Registered Nurses in hospitals.

    It belongs to the occupation when the best occupation for the words around it and it holds it in its title
    ("bus drivers, school"), or when the words around it alone mean a different occupation ("warehouse workers").
    """

    def named(run: list[str]) -> list[str]:
        return list(takewhile(lambda w: w not in NOISE_WORDS, run[:MAX_LIST_WORDS]))

    before, after = named(words[: mention.start][::-1])[::-1], named(words[mention.end :])  # "bus drivers, school", "hospital nurses"
    if not before and not after or _names_a_workforce(before + after):  # "hospital workers": everyone hospitals employ
        return False
    together = index.occupations_for_words(before + words[mention.start : mention.end] + after)
    if not together or together[0].score < MIN_OCCUPATION_SCORE:
        return False
    alone = index.occupations_for_words(before + after)
    industry_words = set(stems(words[mention.start : mention.end])) - STOPWORDS
    return industry_words <= together[0].item.words or not alone or alone[0].item.code != together[0].item.code


def _industry_term(mention: IndustryMention, index: NameIndex) -> str:
    """The industry's code when this database holds it, else the words (so the answer can name what it lacks)."""
    return mention.code if mention.code in IndustryIndex.of(index).industries else mention.phrase


def _split_list(part: list[str], index: NameIndex) -> list[list[str]]:
    """A list whose commas normalising removed ("rns lpns cnas", "truck drivers electricians"): the cut whose
    pieces each name an occupation clearly better than the run as a whole does, else the run itself."""
    words = tuple(_content(part))
    if not 2 <= len(words) <= MAX_LIST_WORDS:
        return [part]
    scores: dict[tuple[str, ...], float] = {}

    def score(piece: tuple[str, ...]) -> float:
        if piece not in scores:
            found = index.occupations_for_words(list(piece))
            scores[piece] = found[0].score if found else 0.0
        return scores[piece]

    best: dict[int, tuple[float, list[tuple[str, ...]]]] = {}  # from word i on: (weakest piece, pieces), pieces >= 1
    for i in range(len(words) - 1, -1, -1):
        options = [(score(words[i:]), [words[i:]])]
        options += [(min(score(words[i:cut]), best[cut][0]), [words[i:cut], *best[cut][1]]) for cut in range(i + 1, len(words))]
        best[i] = max(options, key=lambda option: (option[0], -len(option[1])))
    weakest, pieces = max(
        ((min(score(words[:cut]), best[cut][0]), [words[:cut], *best[cut][1]]) for cut in range(1, len(words))), key=lambda o: o[0]
    )
    if weakest >= STRONG_MATCH and weakest > score(words) + 0.1:
        return [list(piece) for piece in pieces]
    return [part]


def _split(words: list[str], separators: set[str]) -> list[list[str]]:
    parts: list[list[str]] = [[]]
    for word in words:
        if word in separators:
            parts.append([])
        else:
            parts[-1].append(word)
    return [part for part in parts if _content(part)]


def _names_a_workforce(words: list[str]) -> bool:
    """True when the words name a whole workforce and no occupation: "workers", "staff", "personnel"."""
    named = _content(words)
    return bool(named) and all(stem(w) in WORKFORCE_WORDS for w in named)


def _content(words: list[str]) -> list[str]:
    return [w for w in words if w not in NOISE_WORDS and not any(c.isdigit() for c in w)]
