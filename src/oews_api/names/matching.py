"""Matching names against the prebuilt tables: codes, titles, common names, places in a question, typos.

``NameIndex`` answers every name lookup from memory: the planner finds places and
occupations inside a question, the REST endpoints resolve ``?occupation=`` and ``?area=``
values. Matching is word-based (light stemming, common-name aliases, an inverted index from
title words to occupations); spelling is compared with rapidfuzz's C++ scorer first and
difflib only on its short list (see ``spelled_alike``). Results of whole-name lookups are
kept in bounded LRU caches, so a repeated name costs a dictionary lookup.
"""

from __future__ import annotations

import difflib
import re

from rapidfuzz import fuzz, process

from oews_api.caches import BoundedLRU
from oews_api.db import Database
from oews_api.names.building import NameTables, build_tables
from oews_api.names.entities import (
    AREA_CODE,
    MIN_AREA_SCORE,
    MIN_OCCUPATION_SCORE,
    NATIONAL,
    SOC_CODE,
    Area,
    AreaMention,
    Match,
    Occupation,
    PlaceName,
    canonical,
)
from oews_api.text import NOISE_WORDS, STOPWORDS, normalize, stem

MAX_PHRASE_WORDS = 8
SHORTLIST = 100  # candidates rapidfuzz hands to difflib
CACHE_ENTRIES = 16_384
CACHE_BYTES = 8 << 20  # per cache
MATCH_BYTES = 200  # a Match and its slot in a cached list
AREA_SUFFIXES = frozenset({"metro", "metropolitan", "area", "msa", "region", "city", "state"})
METRO_SUFFIXES = frozenset({"metro", "metropolitan", "area", "msa", "region", "city"})
# State abbreviations that are also words or job abbreviations ("PA", "MD", "in", "or"): a state only
# after "in", "for", ... and, in lower case, not even then.
AMBIGUOUS_ABBREVIATIONS = frozenset({"in", "or", "me", "ok", "hi", "oh", "pa", "de", "id", "co", "al", "ma", "la", "mo", "ga", "ne", "md", "mt"})
PLACE_CONTEXT = frozenset({"in", "for", "at", "near", "around", "vs", "versus", "or", "and", "than", "from", "between", "across"})
_PREFERENCE = {"alias": 0, "national": 0, "state": 1, "name": 2, "city_state": 3, "city": 4}


def spelled_alike(
    wanted: str, choices: list[str], cutoff: float, *, wanted_first: bool = False, shortlist: int = SHORTLIST
) -> list[tuple[float, int]]:
    """``(difflib ratio, position in choices)`` of every choice spelled at least ``cutoff`` alike.

    rapidfuzz's normalised Indel similarity (C++, bit-parallel) is never below difflib's ratio
    (difflib's matching blocks are one common subsequence, Indel counts the longest), so its
    short list holds the choices difflib would accept; difflib then scores only that short list
    (the ``shortlist`` best by Indel), at a small fraction of the cost of scoring every name.
    ``wanted_first``: score as ``SequenceMatcher(None, wanted, choice)`` (difflib's ratio is
    not quite symmetric) rather than as ``get_close_matches`` does.
    """
    candidates = process.extract(wanted, choices, scorer=fuzz.ratio, score_cutoff=cutoff * 100, limit=shortlist)
    matcher = difflib.SequenceMatcher(None)
    (matcher.set_seq1 if wanted_first else matcher.set_seq2)(wanted)
    found = []
    for choice, _, position in candidates:
        (matcher.set_seq2 if wanted_first else matcher.set_seq1)(choice)
        ratio = matcher.ratio()
        if ratio >= cutoff:
            found.append((ratio, position))
    return found


def _matches_size(key: str, matches: list[Match]) -> int:
    return len(key) + 100 + MATCH_BYTES * len(matches)


class NameIndex:
    """Every occupation and area name, held in memory for fast lookups."""

    def __init__(self, tables: NameTables) -> None:
        self.tables = tables
        self.occupations = tables.occupations
        self.areas = tables.areas
        self.industries = tables.industries
        self._corrections: BoundedLRU[str, str] = BoundedLRU(CACHE_ENTRIES, CACHE_BYTES, lambda k, v: len(k) + len(v) + 120)
        self._occupation_matches: BoundedLRU[str, list[Match]] = BoundedLRU(CACHE_ENTRIES, CACHE_BYTES, _matches_size)
        self._area_matches: BoundedLRU[str, list[Match]] = BoundedLRU(CACHE_ENTRIES, CACHE_BYTES, _matches_size)
        self._area_codes = list(tables.areas)
        self._area_name_list = [tables.area_names[code] for code in self._area_codes]

    @classmethod
    def build(cls, db: Database) -> NameIndex:
        """The index over the database's occupations, areas and industries."""
        return cls(build_tables(db))

    # ----- words ------------------------------------------------------------------------------
    def correct(self, words: list[str]) -> list[str]:
        """Replace words we don't know by the closest known word (typos: ``califronia``)."""
        return [self._correct_word(word) for word in words]

    def _correct_word(self, word: str) -> str:
        known = self.tables.known
        if len(word) < 4 or word.isdigit() or word in known or stem(word) in known:
            return word
        return self._corrections.get_or_compute(word, lambda: self._closest_word(word))

    def _closest_word(self, word: str) -> str:
        # Typos keep the first letter and about the length: compare with those words only.
        vocabulary = self.tables.vocabulary
        candidates = [w for n in range(len(word) - 2, len(word) + 3) for w in vocabulary.get((word[0], n), ())]
        found = [(ratio, candidates[i]) for ratio, i in spelled_alike(word, candidates, 0.8)]
        return max(found)[1] if found else word

    # ----- places -----------------------------------------------------------------------------
    def find_areas(self, words: list[str], raw: str, *, whole_is_place: bool = False) -> list[AreaMention]:
        """Every place named in a question's (normalised, corrected) words, left to right.

        ``whole_is_place``: the text is only a place name (``?area=portland``), so
        words like "portland" or "mobile" need no "in" before them.
        """
        upper_words = set(re.findall(r"\b([A-Z]{2})\b", raw))
        said_us = bool(re.search(r"\bU\.?S\.?A?\b", raw))
        mentions: list[AreaMention] = []
        i = 0
        while i < len(words):
            mention = self._place_at(words, i, upper_words, said_us, mentions, whole_is_place)
            if mention is None:
                i += 1
                continue
            mentions.append(mention)
            i = mention.end
        return self._metros_beside_metros(mentions)

    def _metros_beside_metros(self, mentions: list[AreaMention]) -> list[AreaMention]:
        """ "Chicago vs New York": a bare state name compared with a metro means that state's big metro."""
        if not any(m.area.type == "M" for m in mentions):
            return mentions
        metro_of = self.tables.metro_of_state_name
        return [
            AreaMention(m.start, m.end, self.areas[metro_of[m.phrase]], "city", m.phrase) if m.via == "state" and m.phrase in metro_of else m
            for m in mentions
        ]

    def _place_at(
        self, words: list[str], i: int, upper_words: set[str], said_us: bool, found: list[AreaMention], whole_is_place: bool
    ) -> AreaMention | None:
        before = i - 1 if i > 0 and words[i - 1] != "the" else i - 2
        previous = words[before] if before >= 0 else ""
        in_context = whole_is_place or previous in PLACE_CONTEXT or (bool(found) and found[-1].end == i)
        for length in range(min(MAX_PHRASE_WORDS, len(words) - i), 0, -1):
            phrase = tuple(words[i : i + length])
            suffixed = i + length < len(words) and words[i + length] in METRO_SUFFIXES
            places = [p for p in self.tables.places.get(phrase, []) if in_context or suffixed or not p.needs_context]
            if places:
                place = self._choose(places)
                if self._city_named_for_state(words, i + length, place, phrase):
                    return None
                return self._with_suffix(words, i, i + length, place, phrase)
        word = words[i]
        if word == "us" and said_us and NATIONAL in self.areas:
            return AreaMention(i, i + 1, self.areas[NATIONAL], "national")
        written_upper = word.upper() in upper_words
        last_word = i == len(words) - 1 and word not in self.tables.alias_words  # "... hourly wage OR", but not "salary of a PA"
        state_by_abbrev = self.tables.state_by_abbrev
        if word in state_by_abbrev and (
            (in_context and (written_upper or word not in AMBIGUOUS_ABBREVIATIONS))
            or (written_upper and (last_word or word not in AMBIGUOUS_ABBREVIATIONS))
        ):
            return self._with_suffix(words, i, i + 1, PlaceName(state_by_abbrev[word], "state"), (word,))
        return None

    def _city_named_for_state(self, words: list[str], end: int, place: PlaceName, phrase: tuple[str, ...]) -> bool:
        """ "Kansas City", "Iowa City" where this database has no such metro: a city, not the state ("Kansas")."""
        return place.kind == "state" and end < len(words) and words[end] == "city" and phrase not in self.tables.metro_of_state_name

    def _choose(self, places: list[PlaceName]) -> PlaceName:
        return min(places, key=lambda p: (_PREFERENCE[p.kind], not p.primary, -self.areas[p.code].employment))

    def _with_suffix(self, words: list[str], start: int, end: int, place: PlaceName, phrase: tuple[str, ...]) -> AreaMention:
        code, via = place.code, place.kind
        metro_of = self.tables.metro_of_state_name
        if end < len(words) and words[end] in METRO_SUFFIXES and phrase in metro_of and place.kind in ("state", "alias"):
            code, via = metro_of[phrase], "city"
        explicit_state = start >= 2 and words[start - 2 : start] == ["state", "of"]
        while end < len(words) and words[end] in AREA_SUFFIXES:
            explicit_state = explicit_state or words[end] == "state"
            end += 1
        return AreaMention(start, end, self.areas[code], "state named" if explicit_state and via == "state" else via, phrase)

    def area(self, text: str) -> Area | None:
        """The area a code or place name means, or None when no match is good enough."""
        matches = self.resolve_area(text)
        if matches and matches[0].score >= MIN_AREA_SCORE and isinstance(matches[0].item, Area):
            return matches[0].item
        return None

    def resolve_area(self, text: str) -> list[Match]:
        """Areas a user-supplied name or code may mean, best first (empty when nothing fits)."""
        text = text.strip()
        if AREA_CODE.match(text):
            return [Match(self.areas[text], 1.0, "code")] if text in self.areas else []
        return self._area_matches.get_or_compute(text, lambda: self._rank_areas(text))

    def _rank_areas(self, text: str) -> list[Match]:
        words = self.correct(normalize(text))
        mentions = self.find_areas(words, text.upper() if len(words) == 1 else text, whole_is_place=True)
        if mentions:
            return [Match(mentions[0].area, 1.0, mentions[0].via)]
        if len(words) == 1 and words[0] in self.tables.state_by_abbrev:
            return [Match(self.areas[self.tables.state_by_abbrev[words[0]]], 1.0, "state")]
        alike = sorted(spelled_alike(" ".join(words), self._area_name_list, 0.6, wanted_first=True), key=lambda found: (-found[0], found[1]))
        return [Match(self.areas[self._area_codes[i]], ratio, "fuzzy") for ratio, i in alike[:10]]

    # ----- occupations ------------------------------------------------------------------------
    def occupation(self, text: str) -> Occupation | None:
        """The occupation a code, exact title or name means, or None when no match is good enough."""
        wanted = text.strip()
        code = self.tables.titles.get(wanted.lower(), wanted)  # an exact title ("All Occupations") or a code
        if code in self.occupations:
            return self.occupations[code]
        matches = self.resolve_occupation(text)
        if matches and matches[0].score >= MIN_OCCUPATION_SCORE and isinstance(matches[0].item, Occupation):
            return matches[0].item
        return None

    def resolve_occupation(self, text: str) -> list[Match]:
        """Occupations a user-supplied name or SOC code may mean, best first."""
        code = SOC_CODE.search(text)
        if code and code.group(1) + code.group(2) in self.occupations:
            return [Match(self.occupations[code.group(1) + code.group(2)], 1.0, "code")]
        return self._occupation_matches.get_or_compute(text, lambda: self.occupations_for_words(self.correct(normalize(text))))

    def occupations_for_words(self, words: list[str]) -> list[Match]:
        """Rank occupations for the words of a name (aliases first, then title words)."""
        canonical_words = canonical(words)
        wants_all_other = "all other" in " ".join(canonical_words)
        if "except" in canonical_words:  # "teachers, except special education": the rest names what is left out
            cut = canonical_words.index("except")
            canonical_words, excluded = canonical_words[:cut], {w for w in canonical_words[cut + 1 :] if w not in STOPWORDS}
        else:
            excluded = set()
        content = {w for w in canonical_words if w not in NOISE_WORDS and not any(c.isdigit() for c in w)}
        scores: dict[str, Match] = {}
        alias = self._longest_alias(canonical_words)
        if alias is not None:
            code, length = alias
            coverage = min(1.0, length / max(1, len(content)))
            scores[code] = Match(self.occupations[code], 0.6 * coverage + 0.45, "alias")
        for occupation in self._sharing_a_word(content):
            hits = content & occupation.words
            score = 0.6 * len(hits) / len(content) + 0.4 * len(hits) / max(1, len(occupation.words))
            score += 0.03 if occupation.level == 3 else 0.0
            if "all other" in occupation.title.lower():
                score += 0.1 if wants_all_other else -0.1
            if excluded:
                score += 0.1 * len(excluded & occupation.except_words) / len(excluded)
            if occupation.code not in scores or scores[occupation.code].score < score:
                scores[occupation.code] = Match(occupation, score, "title")
        ranked = sorted(scores.values(), key=lambda m: (-round(m.score, 6), -m.item.employment))
        return self._prefer_detailed(ranked, content)

    def _sharing_a_word(self, words: set[str]) -> list[Occupation]:
        """Occupations whose title holds at least one of ``words``, in table order (the inverted index)."""
        by_word = self.tables.occupations_by_word
        codes = {code for word in words for code in by_word.get(word, ())}
        rank = self.tables.occupation_rank
        return [self.occupations[code] for code in sorted(codes, key=rank.__getitem__)]

    def _longest_alias(self, words: list[str]) -> tuple[str, int] | None:
        best: tuple[str, int] | None = None
        for i in range(len(words)):
            for length in range(min(4, len(words) - i), 0, -1):
                code = self.tables.aliases.get(tuple(words[i : i + length]))
                if code and (best is None or length > best[1]):
                    best = (code, length)
                    break
        return best

    def _prefer_detailed(self, ranked: list[Match], content: set[str]) -> list[Match]:
        """A broad group whose one real detailed occupation matches as well: answer with the detailed one."""
        if not ranked or not isinstance(ranked[0].item, Occupation) or ranked[0].item.level == 3 or ranked[0].via == "alias":
            return ranked
        top = ranked[0].item
        children = [
            m
            for m in ranked[1:]
            if isinstance(m.item, Occupation)
            and m.item.level == 3
            and m.item.code.startswith(top.code.rstrip("0"))
            and content <= m.item.words
            and "all other" not in m.item.title.lower()
        ]
        if len(children) == 1:
            return [Match(children[0].item, ranked[0].score, ranked[0].via), *[m for m in ranked if m is not children[0]]]
        return ranked

    def group_for_words(self, words: list[str]) -> Occupation | None:
        """The largest SOC group (not a detailed occupation) whose title holds every word: "healthcare jobs"."""
        content = {w for w in canonical(words) if w not in NOISE_WORDS and not any(c.isdigit() for c in w)}
        groups = [o for o in self._sharing_a_word(content) if o.level < 3 and content <= o.words and o.code != "000000"]
        return max(groups, key=lambda o: o.employment, default=None)
