"""What to offer when a name does not resolve: close titles and areas, places we do not hold, corrected words."""

from __future__ import annotations

import re
from collections.abc import Iterable

from oews_api.names.entities import Area, Match, Occupation, canonical, joined
from oews_api.names.matching import NameIndex, spelled_alike
from oews_api.text import normalize

SUGGESTION_SHORTLIST = 20  # titles difflib re-scores for a name that shares no word with any title (long titles cost ~0.1 ms each)
# Capitalised words after "in" that name no place: "in May 2025", "in BLS data" ("NPs", "Dental Hygienists": occupation words).
_DATES_AND_SOURCES = frozenset("january february march april may june july august september october november december bls oews".split())
_PLACE_AFTER_PREPOSITION = re.compile(r"\b(?:in|near|around|at|vs|versus|or|and)\s+(?:the\s+)?([A-Z][\w.'-]*(?:\s+[A-Z][\w.'-]*)*)")


def occupation_suggestions(index: NameIndex, text: str, limit: int = 5) -> list[str]:
    """Close occupation titles for a name we could not resolve."""
    matches = [m.item.title for m in index.resolve_occupation(text)[:limit] if isinstance(m.item, Occupation)]
    if matches:
        return matches
    titles = list(index.tables.titles)
    alike = sorted(((ratio, titles[i]) for ratio, i in spelled_alike(text.lower(), titles, 0.4, shortlist=SUGGESTION_SHORTLIST)), reverse=True)[:limit]
    return [index.occupations[index.tables.titles[title]].title for _, title in alike]


def area_suggestions(index: NameIndex, text: str, limit: int = 5) -> list[str]:
    """Close area names for a place we could not resolve."""
    return [m.item.name for m in index.resolve_area(text)[:limit] if isinstance(m.item, Area)]


def place_candidates(index: NameIndex, raw: str) -> list[str]:
    """Capitalised names after "in", "near", "vs", "or" ... that are no occupation words ("in Texas and in Boise":
    both); the caller keeps those that matched no area."""
    tables = index.tables
    phrases = (match.group(1) for match in _PLACE_AFTER_PREPOSITION.finditer(raw))
    return [
        phrase
        for phrase in phrases
        if not all(w in tables.occupation_words or w in tables.alias_words or w in _DATES_AND_SOURCES for w in canonical(normalize(phrase)))
    ]


def similar_areas(index: NameIndex, phrase: str, limit: int = 3) -> list[Area]:
    """Areas whose name starts like, or is spelled close to, a place we do not know ("Calfi" -> California)."""
    wanted = joined(phrase)
    names = index.tables.near_area_names
    found = [n for n in names if len(wanted) >= 3 and n.startswith(wanted)]
    prefixed = set(found)
    others = [n for n in names if n not in prefixed]
    found += [name for _, name in sorted(((ratio, others[i]) for ratio, i in spelled_alike(wanted, others, 0.6)), reverse=True)[:limit]]
    return list(dict.fromkeys(names[n] for n in found))[:limit]


def with_substring_matches(matches: list[Match], items: Iterable[Occupation | Area], names: dict[str, str], query: str) -> list[Match]:
    """The resolved matches, then every other item whose normalised name (``names[code]``) contains the query's words (score 0.5)."""
    words = joined(query)
    if not words:
        return matches
    seen = {m.item.code for m in matches}
    extra = [Match(i, 0.5, "substring") for i in items if i.code not in seen and words in names[i.code]]
    return [*matches, *extra]


def corrections(index: NameIndex, question: str, places_missing: list[str]) -> str:
    """The typo corrections made in a question, as a phrase ("“califronia” as “california”"), or "".

    Words of ``places_missing`` were read as written ("Paris" is named as not in the database, not read as "parts").
    """
    words = normalize(question)
    as_written = {word for place in places_missing for word in normalize(place)}
    changed = [(a, b) for a, b in zip(words, index.correct(words), strict=True) if a != b and a not in as_written]
    return ", ".join(f"\u201c{a}\u201d as \u201c{b}\u201d" for a, b in changed)
