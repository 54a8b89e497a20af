"""Occupation and area names: official titles, common names, abbreviations, typos.

``NameIndex`` is built once at start from the database (about 1,100
occupations and 600 areas) and answers every name lookup from memory: the
planner finds places and occupations inside a question, the REST endpoints
resolve ``?occupation=`` and ``?area=`` values, and the search endpoints rank
candidates. Matching is word-based (light stemming, common-name aliases, typo
correction against the known vocabulary with difflib); no lookup touches SQLite.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field

from oews_api import queries
from oews_api.aliases import (
    AMBIGUOUS_STYLE_ABBREVIATIONS,
    AREA_ALIASES,
    COMMON_WORD_CITIES,
    NATIONAL_PHRASES,
    OCCUPATION_ALIASES,
    STATE_ABBREVIATIONS,
    STATE_STYLE_ABBREVIATIONS,
)
from oews_api.db import Database
from oews_api.text import NOISE_WORDS, QUESTION_WORDS, STOPWORDS, normalize, stem, stems

NATIONAL = "0000000"
SOC_CODE = re.compile(r"\b(\d{2})-?(\d{4})\b")
AREA_CODE = re.compile(r"^\d{7}$")
MAX_PHRASE_WORDS = 8
MIN_OCCUPATION_SCORE = 0.6  # below this a name is not taken to mean the best-scoring occupation
MIN_AREA_SCORE = 0.8  # below this (fuzzy spelling only) a name is not taken to mean an area
# Shorthand people write inside occupation names.
WORD_SYNONYMS: dict[str, str] = {
    "tech": "technician",
    "techs": "technician",
    "rep": "representative",
    "mgr": "manager",
    "asst": "assistant",
    "admin": "administrative",
    "prep": "preparation",
    "engr": "engineer",
    "eng": "engineer",
    "dev": "developer",
    "ed": "education",
    "sw": "software",
    "doc": "physician",
    "doctor": "physician",
    "vet": "veterinarian",
    "auto": "automotive",
    "car": "automotive",
    "med": "medical",
    "hr": "human",
    "ai": "computer",
}
AREA_SUFFIXES = frozenset({"metro", "metropolitan", "area", "msa", "region", "city", "state"})
METRO_SUFFIXES = frozenset({"metro", "metropolitan", "area", "msa", "region", "city"})
# State abbreviations that are also words or job abbreviations ("PA", "MD", "in", "or"): a state only
# after "in", "for", ... and, in lower case, not even then.
AMBIGUOUS_ABBREVIATIONS = frozenset({"in", "or", "me", "ok", "hi", "oh", "pa", "de", "id", "co", "al", "ma", "la", "mo", "ga", "ne", "md", "mt"})
PLACE_CONTEXT = frozenset({"in", "for", "at", "near", "around", "vs", "versus", "or", "and", "than", "from", "between", "across"})
_PLACE_AFTER_PREPOSITION = re.compile(r"\b(?:in|near|around|at)\s+(?:the\s+)?([A-Z][\w.'-]*(?:\s+[A-Z][\w.'-]*)*)")
_PREFERENCE = {"alias": 0, "national": 0, "state": 1, "name": 2, "city_state": 3, "city": 4}


@dataclass(frozen=True)
class Occupation:
    """One BLS occupation with the stemmed words of its title."""

    code: str
    title: str
    level: int
    words: frozenset[str]  # stemmed title words before ", Except ..."
    except_words: frozenset[str]  # the words of the except clause
    employment: int

    def public(self) -> dict[str, object]:
        """The JSON form used by every endpoint."""
        return {"occ_code": self.code, "soc_code": f"{self.code[:2]}-{self.code[2:]}", "title": self.title, "display_level": self.level}


@dataclass(frozen=True)
class Area:
    """One BLS area (national, state or territory, metro or nonmetro area)."""

    code: str
    name: str
    type: str
    state_code: str
    employment: int

    def public(self) -> dict[str, object]:
        """The JSON form used by every endpoint."""
        return {"area_code": self.code, "area_name": self.name, "area_type": self.type}

    @property
    def label(self) -> str:
        """How answers name the area (BLS calls the whole country "National")."""
        return "the U.S. (national)" if self.type == "N" else self.name


@dataclass(frozen=True)
class Match:
    """A resolved name with how sure we are (0..1+) and how it was found."""

    item: Occupation | Area
    score: float
    via: str


@dataclass(frozen=True)
class AreaMention:
    """A place found inside a question: which words (``start:end``) and which area."""

    start: int
    end: int
    area: Area
    via: str
    phrase: tuple[str, ...] = ()


@dataclass(frozen=True)
class _PlaceName:
    code: str
    kind: str  # alias | national | state | name | city_state | city
    primary: bool = True
    needs_context: bool = False


def _title_words(title: str) -> tuple[frozenset[str], frozenset[str]]:
    """The words of a title before ", Except", and the words of its except clause."""
    parts = re.split(r",?\s+except\b", title, maxsplit=1, flags=re.IGNORECASE)
    main, excluded = parts[0], parts[1] if len(parts) > 1 else ""
    return _content_words(stems(normalize(main))), _content_words(stems(normalize(excluded)))


def _content_words(words: list[str]) -> frozenset[str]:
    return frozenset(w for w in words if w not in STOPWORDS)


def _canonical(words: list[str]) -> list[str]:
    """Stem and expand shorthand (``techs`` -> ``technician``)."""
    return [WORD_SYNONYMS.get(word) or WORD_SYNONYMS.get(stem(word)) or stem(word) for word in words]


@dataclass
class NameIndex:
    """Every occupation and area name, held in memory for fast lookups."""

    occupations: dict[str, Occupation]
    areas: dict[str, Area]
    industries: dict[str, str]  # code -> name
    _aliases: dict[tuple[str, ...], str] = field(default_factory=dict)
    _places: dict[tuple[str, ...], list[_PlaceName]] = field(default_factory=dict)
    _metro_of_state_name: dict[tuple[str, ...], str] = field(default_factory=dict)
    _state_by_abbrev: dict[str, str] = field(default_factory=dict)
    _by_initial: dict[str, list[str]] = field(default_factory=dict)
    _known: frozenset[str] = frozenset()
    _corrections: dict[str, str] = field(default_factory=dict)
    _occupation_words: frozenset[str] = frozenset()
    _alias_words: frozenset[str] = frozenset()
    _titles: dict[str, str] = field(default_factory=dict)  # lower-case official title -> code

    # ----- building -------------------------------------------------------------------------
    @classmethod
    def build(cls, db: Database) -> NameIndex:
        """Read occupations and areas (with employment, used to break ties) from the database."""
        year = db.info.years[-1]
        area_jobs = queries.area_employment(db, year)
        national = {
            row["occ_code"]: row["employment"] or 0
            for row in db.all(
                "SELECT occ_code, employment FROM estimates WHERE area_code = ? AND industry_code = ? AND year = ?",
                (NATIONAL, queries.CROSS_INDUSTRY, year),
            )
        }
        occupations = {}
        for row in db.all("SELECT occ_code, occ_title, display_level FROM occupations"):
            words, excluded = _title_words(row["occ_title"])
            occupations[row["occ_code"]] = Occupation(
                row["occ_code"], row["occ_title"], row["display_level"], words, excluded, national.get(row["occ_code"], 0)
            )
        areas = {
            row["area_code"]: Area(row["area_code"], row["area_name"], row["area_type"], row["state_code"], area_jobs.get(row["area_code"], 0))
            for row in db.all("SELECT area_code, area_name, area_type, state_code FROM areas")
        }
        industries = {row["industry_code"]: row["industry_name"] for row in db.all("SELECT industry_code, industry_name FROM industries")}
        index = cls(occupations=occupations, areas=areas, industries=industries)
        index._build_aliases()
        index._build_places()
        index._build_vocabulary()
        return index

    def _build_aliases(self) -> None:
        for phrase, code in OCCUPATION_ALIASES.items():
            if code in self.occupations:
                self._aliases[tuple(_canonical(normalize(phrase)))] = code
        self._alias_words = frozenset(w for phrase in OCCUPATION_ALIASES for w in normalize(phrase))
        self._titles = {o.title.lower(): o.code for o in self.occupations.values()}

    def _add_place(self, words: list[str], place: _PlaceName) -> None:
        if words and place.code in self.areas:
            self._places.setdefault(tuple(words), []).append(place)

    def _build_places(self) -> None:
        state_names = {}
        for area in self.areas.values():
            if area.type == "S":
                state_names[area.name.lower()] = area.code
                self._add_place(normalize(area.name), _PlaceName(area.code, "state"))
            elif area.type == "M":
                self._add_metro(area)
        for abbrev, name in STATE_ABBREVIATIONS.items():
            if name.lower() in state_names:
                self._state_by_abbrev[abbrev.lower()] = state_names[name.lower()]
        for phrase, name in STATE_STYLE_ABBREVIATIONS.items():
            words = normalize(phrase)
            if name.lower() in state_names:
                needs_context = " ".join(words) in AMBIGUOUS_STYLE_ABBREVIATIONS
                self._add_place(words, _PlaceName(state_names[name.lower()], "state", needs_context=needs_context))
        for phrase, code in AREA_ALIASES.items():
            self._add_place(normalize(phrase), _PlaceName(code, "alias"))
        for phrase in NATIONAL_PHRASES:
            self._add_place(normalize(phrase), _PlaceName(NATIONAL, "national"))
        # "New York metro area", "Washington area": a state name followed by a metro word.
        for area in self.areas.values():
            if area.type == "M" and "nonmetropolitan" not in area.name:
                first_city = normalize(area.name.split(",")[0].split("-")[0])
                if " ".join(first_city) in state_names:
                    self._metro_of_state_name[tuple(first_city)] = area.code
                    if first_city == ["washington"]:  # "DC metro", "Washington DC area"
                        self._metro_of_state_name.update({("dc",): area.code, ("washington", "dc"): area.code})

    def _add_metro(self, area: Area) -> None:
        full = normalize(area.name)
        self._add_place(full, _PlaceName(area.code, "name"))
        if "nonmetropolitan" in full:
            self._add_place([w for w in full if w != "area"], _PlaceName(area.code, "name"))
            self._add_place(["nonmetro" if w == "nonmetropolitan" else w for w in full], _PlaceName(area.code, "name"))
            return
        cities_part, _, states_part = area.name.partition(",")
        states = [s.strip() for s in states_part.split("-") if s.strip()]
        self._add_place(normalize(cities_part), _PlaceName(area.code, "name"))
        for position, city in enumerate(c for c in re.split(r"-+", cities_part) if c.strip()):
            words = [w for w in normalize(city) if w != "town"] or normalize(city)
            single_common = len(words) == 1 and words[0] in COMMON_WORD_CITIES
            self._add_place(words, _PlaceName(area.code, "city", primary=position == 0, needs_context=single_common))
            for abbrev in states:
                self._add_place([*words, abbrev.lower()], _PlaceName(area.code, "city_state", primary=position == 0))
                state_name = STATE_ABBREVIATIONS.get(abbrev.upper())
                if state_name:
                    self._add_place([*words, *normalize(state_name)], _PlaceName(area.code, "city_state", primary=position == 0))

    def _build_vocabulary(self) -> None:
        words: set[str] = set(QUESTION_WORDS)
        for occupation in self.occupations.values():
            words.update(normalize(occupation.title))
        for phrase in [*self._places, *(tuple(normalize(p)) for p in OCCUPATION_ALIASES)]:
            words.update(phrase)
        words = {w for w in words if len(w) >= 3 and not w.isdigit()}
        for word in sorted(words):
            self._by_initial.setdefault(word[0], []).append(word)
        self._occupation_words = frozenset({w for o in self.occupations.values() for w in o.words} | NOISE_WORDS)
        self._known = frozenset(words | {stem(w) for w in words} | STOPWORDS | set(WORD_SYNONYMS))

    # ----- lookups ----------------------------------------------------------------------------
    def correct(self, words: list[str]) -> list[str]:
        """Replace words we don't know by the closest known word (typos: ``califronia``)."""
        return [self._correct_word(word) for word in words]

    def _correct_word(self, word: str) -> str:
        if len(word) < 4 or word.isdigit() or word in self._known or stem(word) in self._known:
            return word
        if word not in self._corrections:
            # Typos keep the first letter and about the length: compare with those words only (fast, and
            # bounded for a 500-character question full of noise).
            candidates = [w for w in self._by_initial.get(word[0], ()) if abs(len(w) - len(word)) <= 2]
            found = difflib.get_close_matches(word, candidates, n=1, cutoff=0.8)
            if len(self._corrections) < 100_000:
                self._corrections[word] = found[0] if found else word
            return found[0] if found else word
        return self._corrections[word]

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
        return [
            AreaMention(m.start, m.end, self.areas[self._metro_of_state_name[m.phrase]], "city", m.phrase)
            if m.via == "state" and m.phrase in self._metro_of_state_name
            else m
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
            places = [p for p in self._places.get(phrase, []) if in_context or suffixed or not p.needs_context]
            if places:
                return self._with_suffix(words, i, i + length, self._choose(places), phrase)
        word = words[i]
        if word == "us" and said_us and NATIONAL in self.areas:
            return AreaMention(i, i + 1, self.areas[NATIONAL], "national")
        written_upper = word.upper() in upper_words
        last_word = i == len(words) - 1 and word not in self._alias_words  # "... hourly wage OR", but not "salary of a PA"
        if word in self._state_by_abbrev and (
            (in_context and (written_upper or word not in AMBIGUOUS_ABBREVIATIONS))
            or (written_upper and (last_word or word not in AMBIGUOUS_ABBREVIATIONS))
        ):
            return self._with_suffix(words, i, i + 1, _PlaceName(self._state_by_abbrev[word], "state"), (word,))
        return None

    def _choose(self, places: list[_PlaceName]) -> _PlaceName:
        return min(places, key=lambda p: (_PREFERENCE[p.kind], not p.primary, -self.areas[p.code].employment))

    def _with_suffix(self, words: list[str], start: int, end: int, place: _PlaceName, phrase: tuple[str, ...]) -> AreaMention:
        code, via = place.code, place.kind
        if end < len(words) and words[end] in METRO_SUFFIXES and phrase in self._metro_of_state_name and place.kind in ("state", "alias"):
            code, via = self._metro_of_state_name[phrase], "city"
        explicit_state = start >= 2 and words[start - 2 : start] == ["state", "of"]
        while end < len(words) and words[end] in AREA_SUFFIXES:
            explicit_state = explicit_state or words[end] == "state"
            end += 1
        return AreaMention(start, end, self.areas[code], "state named" if explicit_state and via == "state" else via, phrase)

    def occupation(self, text: str) -> Occupation | None:
        """The occupation a code, exact title or name means, or None when no match is good enough."""
        wanted = text.strip()
        code = self._titles.get(wanted.lower(), wanted)  # an exact title ("All Occupations") or a code
        if code in self.occupations:
            return self.occupations[code]
        matches = self.resolve_occupation(text)
        if matches and matches[0].score >= MIN_OCCUPATION_SCORE and isinstance(matches[0].item, Occupation):
            return matches[0].item
        return None

    def area(self, text: str) -> Area | None:
        """The area a code or place name means, or None when no match is good enough."""
        matches = self.resolve_area(text)
        if matches and matches[0].score >= MIN_AREA_SCORE and isinstance(matches[0].item, Area):
            return matches[0].item
        return None

    def area_suggestions(self, text: str, limit: int = 5) -> list[str]:
        """Close area names for a place we could not resolve."""
        return [m.item.name for m in self.resolve_area(text)[:limit] if isinstance(m.item, Area)]

    def resolve_area(self, text: str) -> list[Match]:
        """Areas a user-supplied name or code may mean, best first (empty when nothing fits)."""
        text = text.strip()
        if AREA_CODE.match(text):
            return [Match(self.areas[text], 1.0, "code")] if text in self.areas else []
        words = self.correct(normalize(text))
        mentions = self.find_areas(words, text.upper() if len(words) == 1 else text, whole_is_place=True)
        if mentions:
            return [Match(mentions[0].area, 1.0, mentions[0].via)]
        if len(words) == 1 and words[0] in self._state_by_abbrev:
            return [Match(self.areas[self._state_by_abbrev[words[0]]], 1.0, "state")]
        wanted = " ".join(words)
        scored = [Match(area, difflib.SequenceMatcher(None, wanted, " ".join(normalize(area.name))).ratio(), "fuzzy") for area in self.areas.values()]
        return sorted((m for m in scored if m.score >= 0.6), key=lambda m: -m.score)[:10]

    def resolve_occupation(self, text: str) -> list[Match]:
        """Occupations a user-supplied name or SOC code may mean, best first."""
        code = SOC_CODE.search(text)
        if code and code.group(1) + code.group(2) in self.occupations:
            return [Match(self.occupations[code.group(1) + code.group(2)], 1.0, "code")]
        return self.occupations_for_words(self.correct(normalize(text)))

    def occupations_for_words(self, words: list[str]) -> list[Match]:
        """Rank occupations for the words of a name (aliases first, then title words)."""
        canonical = _canonical(words)
        wants_all_other = "all other" in " ".join(canonical)
        if "except" in canonical:  # "teachers, except special education": the rest names what is left out
            cut = canonical.index("except")
            canonical, excluded = canonical[:cut], {w for w in canonical[cut + 1 :] if w not in STOPWORDS}
        else:
            excluded = set()
        content = {w for w in canonical if w not in NOISE_WORDS and not any(c.isdigit() for c in w)}
        scores: dict[str, Match] = {}
        alias = self._longest_alias(canonical)
        if alias is not None:
            code, length = alias
            coverage = min(1.0, length / max(1, len(content)))
            scores[code] = Match(self.occupations[code], 0.6 * coverage + 0.45, "alias")
        if content:
            for occupation in self.occupations.values():
                hits = content & occupation.words
                if not hits:
                    continue
                score = 0.6 * len(hits) / len(content) + 0.4 * len(hits) / max(1, len(occupation.words))
                score += 0.03 if occupation.level == 3 else 0.0
                if "all other" in occupation.title.lower():
                    score += 0.1 if wants_all_other else -0.1
                if excluded:
                    score += 0.1 * len(excluded & occupation.except_words) / len(excluded)
                if occupation.code not in scores or scores[occupation.code].score < score:
                    scores[occupation.code] = Match(occupation, score, "title")
        ranked = sorted(scores.values(), key=lambda m: (-round(m.score, 6), -m.item.employment))  # type: ignore[union-attr]
        return self._prefer_detailed(ranked, content)

    def _longest_alias(self, words: list[str]) -> tuple[str, int] | None:
        best: tuple[str, int] | None = None
        for i in range(len(words)):
            for length in range(min(4, len(words) - i), 0, -1):
                code = self._aliases.get(tuple(words[i : i + length]))
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

    def unknown_place(self, raw: str) -> str | None:
        """A capitalised name after "in"/"near" that is no area here and no occupation word ("in Boise")."""
        for match in _PLACE_AFTER_PREPOSITION.finditer(raw):
            phrase = match.group(1)
            words = _canonical(normalize(phrase))
            if words and not set(words) <= self._occupation_words:
                return phrase
        return None

    def similar_areas(self, phrase: str, limit: int = 3) -> list[Area]:
        """Areas whose name starts like, or is spelled close to, a place we do not know ("Calfi" -> California)."""
        wanted = " ".join(normalize(phrase))
        names: dict[str, Area] = {}
        for area in (a for a in self.areas.values() if a.type != "N"):
            names[" ".join(normalize(area.name))] = area
            names.setdefault(" ".join(normalize(re.split(r"[,-]", area.name)[0])), area)  # a metro's first city
        found = [n for n in names if len(wanted) >= 3 and n.startswith(wanted)]
        found += difflib.get_close_matches(wanted, [n for n in names if n not in found], n=limit, cutoff=0.6)
        return list(dict.fromkeys(names[n] for n in found))[:limit]

    def industry_code(self, text: str) -> str | None:
        """An industry code given its code or its exact name (any case), else None."""
        code = text.strip()
        if code in self.industries:
            return code
        wanted = code.lower()
        return next((c for c, name in self.industries.items() if name.lower() == wanted), None)

    def group_for_words(self, words: list[str]) -> Occupation | None:
        """The largest SOC group (not a detailed occupation) whose title holds every word: "healthcare jobs"."""
        content = {w for w in _canonical(words) if w not in NOISE_WORDS and not any(c.isdigit() for c in w)}
        groups = [o for o in self.occupations.values() if o.level < 3 and content and content <= o.words and o.code != "000000"]
        return max(groups, key=lambda o: o.employment, default=None)

    def suggestions(self, text: str, limit: int = 5) -> list[str]:
        """Close occupation titles for a name we could not resolve."""
        matches = [m.item.title for m in self.resolve_occupation(text)[:limit]]
        if matches:
            return matches
        titles = {o.title.lower(): o.title for o in self.occupations.values()}
        return [titles[t] for t in difflib.get_close_matches(text.lower(), list(titles), n=limit, cutoff=0.4)]
