"""The places a question names, read honestly: "near Houston" is Houston's metro area, and a place
this database does not hold ("Portland, ME" in the sample, "Boise") is reported as missing rather
than replaced by a different area that shares a word with it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from oews_api.aliases import PROXIMITY_PHRASES, STATE_ABBREVIATIONS
from oews_api.names import AreaMention, NameIndex
from oews_api.names.suggestions import place_candidates
from oews_api.text import normalize

_PROXIMITY = sorted((tuple(normalize(p)) for p in PROXIMITY_PHRASES), key=len, reverse=True)
_ABBREVIATION_OF_STATE = {name.lower(): abbrev for abbrev, name in STATE_ABBREVIATIONS.items()}
MAX_MISSING = 5  # missing places named in one answer (``Plan.missing_areas``)
Missing = tuple[str, tuple[int, int]]  # a place as the question wrote it, and its word positions


@dataclass(frozen=True)
class Places:
    """The areas a question's words name, and the places it names that this database lacks."""

    mentions: list[AreaMention]
    missing: list[str]  # as the question wrote them ("Portland, ME")
    used: frozenset[int]  # word positions that name places (found or missing)


def proximity_as_in(words: list[str]) -> list[str]:
    """ "near Houston", "close to Seattle", "the greater Boston area" -> "in ...": the place itself, whose
    metro the area finder picks (and "near" is no longer a typo of "Newark")."""
    out: list[str] = []
    i = 0
    while i < len(words):
        phrase = next((p for p in _PROXIMITY if tuple(words[i : i + len(p)]) == p), None)
        if phrase is None:
            out.append(words[i])
            i += 1
            continue
        if not out or out[-1] not in ("in", "the"):
            out.append("in")
        i += len(phrase)
    return out


def find_places(index: NameIndex, words: list[str], said: list[str], question: str, industry_phrases: list[str]) -> Places:
    """Areas named in ``words`` (normalised, corrected), with missing places taken out and named.

    ``said``: the same words before typo correction, where a place we do not hold is looked for
    ("in Paris" was corrected to "in parts": it is still a place, and missing).
    """
    kept, missing = _without_cities_of_other_states(index.find_areas(words, question), words, question)
    industries = [normalize(p) for p in industry_phrases]
    for unknown in (normalize(p) for p in place_candidates(index, question)):
        if len(missing) >= MAX_MISSING:  # a plan names at most this many; a 500-character question may hold dozens
            break
        if unknown not in industries:
            missing += _without_unknown_place(kept, said, question, unknown, {i for _, (s, e) in missing for i in range(s, e)})
    used = {i for _, (s, e) in missing for i in range(s, e)} | {i for m in kept for i in range(m.start, m.end)}
    return Places(kept, [name for name, _ in missing], frozenset(used))


def _without_cities_of_other_states(mentions: list[AreaMention], words: list[str], question: str) -> tuple[list[AreaMention], list[Missing]]:
    """ "Portland ME" read as a Portland metro followed by Maine: neither is what was asked, so both go."""
    kept: list[AreaMention] = []
    missing: list[Missing] = []
    skip_state = False
    for mention, following in zip(mentions, [*mentions[1:], None], strict=False):
        if skip_state:
            skip_state = False
        elif following is not None and following.start == mention.end and _city_in_other_state(mention, following):
            missing.append((_as_written(question, words[mention.start : following.end]), (mention.start, following.end)))
            skip_state = True
        else:
            kept.append(mention)
    return kept, missing


def _without_unknown_place(kept: list[AreaMention], words: list[str], question: str, unknown: list[str], used: set[int]) -> list[Missing]:
    """A capitalised place after "in", "near", "vs" ... that matched no area ("in Boise"); "Columbus, Ohio" takes its state along."""
    start = _position(words, unknown)
    if start is None or start in used or any(m.start <= start < m.end for m in kept):
        return []
    end = start + len(unknown)
    state = next((m for m in kept if m.start == end and m.area.type == "S"), None)
    if state is not None:  # the state says which Columbus; it is not the place asked about
        kept.remove(state)
        end = state.end
    return [(_as_written(question, words[start:end]), (start, end))]


def _city_in_other_state(city: AreaMention, state: AreaMention) -> bool:
    """ "Portland ME" where this database's Portland is Portland-Vancouver-Hillsboro, OR-WA."""
    if city.area.type != "M" or state.area.type != "S" or city.via not in ("city", "name", "city_state"):
        return False
    metro_states = city.area.name.rpartition(",")[2].strip().split("-")
    return _ABBREVIATION_OF_STATE.get(state.area.name.lower()) not in metro_states


def _position(words: list[str], phrase: list[str]) -> int | None:
    return next((i for i in range(len(words) - len(phrase) + 1) if words[i : i + len(phrase)] == phrase), None)


def _as_written(question: str, words: list[str]) -> str:
    """The words as the question wrote them ("Portland, ME"), found case-insensitively; else title-cased."""
    pattern = r"[\s,.]+".join(re.escape(w) for w in words)
    found = re.search(rf"\b{pattern}\b", question, flags=re.IGNORECASE)
    return found.group(0) if found else " ".join(w.upper() if len(w) == 2 else w.title() for w in words)
