"""Building the name tables once at start: every way people name an occupation or an area, precomputed.

Everything matching needs is computed here (normalised names, an inverted index from title
words to occupations, the typo vocabulary bucketed by first letter and length), so that no
lookup scans every name with a Python loop and no lookup touches SQLite.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from oews_api import queries
from oews_api.aliases import (
    AMBIGUOUS_STYLE_ABBREVIATIONS,
    AREA_ALIASES,
    COMMON_WORD_CITIES,
    INDUSTRY_ALIASES,
    INDUSTRY_SUFFIXES,
    NATIONAL_PHRASES,
    OCCUPATION_ALIASES,
    PROXIMITY_PHRASES,
    STATE_ABBREVIATIONS,
    STATE_STYLE_ABBREVIATIONS,
    UNSUPPORTED_QUALIFIERS,
    WORKFORCE_WORDS,
)
from oews_api.db import Database
from oews_api.names.entities import NATIONAL, WORD_SYNONYMS, Area, Occupation, PlaceName, canonical, joined, title_words
from oews_api.text import NOISE_WORDS, QUESTION_WORDS, STOPWORDS, normalize, stem

MIN_TYPO_WORD = 3  # vocabulary words shorter than this are never offered as corrections


@dataclass
class NameTables:
    """Every occupation, area and industry name with the lookup tables built from them (read-only once built)."""

    occupations: dict[str, Occupation]
    areas: dict[str, Area]
    industries: dict[str, str]  # code -> name
    aliases: dict[tuple[str, ...], str] = field(default_factory=dict)  # canonical alias words -> occupation code
    alias_words: frozenset[str] = frozenset()
    titles: dict[str, str] = field(default_factory=dict)  # lower-case official title -> code
    places: dict[tuple[str, ...], list[PlaceName]] = field(default_factory=dict)
    metro_of_state_name: dict[tuple[str, ...], str] = field(default_factory=dict)
    state_by_abbrev: dict[str, str] = field(default_factory=dict)
    vocabulary: dict[tuple[str, int], list[str]] = field(default_factory=dict)  # (first letter, length) -> words
    known: frozenset[str] = frozenset()
    occupation_words: frozenset[str] = frozenset()
    occupations_by_word: dict[str, list[str]] = field(default_factory=dict)  # stemmed title word -> codes, in table order
    occupation_rank: dict[str, int] = field(default_factory=dict)  # code -> position in the table
    occupation_names: dict[str, str] = field(default_factory=dict)  # code -> normalised title
    area_names: dict[str, str] = field(default_factory=dict)  # code -> normalised name
    near_area_names: dict[str, Area] = field(default_factory=dict)  # normalised names and metro first cities -> area


def build_tables(db: Database) -> NameTables:
    """Read occupations and areas (with employment, used to break ties) from the database and index them."""
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
        words, excluded = title_words(row["occ_title"])
        occupations[row["occ_code"]] = Occupation(
            row["occ_code"], row["occ_title"], row["display_level"], words, excluded, national.get(row["occ_code"], 0)
        )
    areas = {
        row["area_code"]: Area(row["area_code"], row["area_name"], row["area_type"], row["state_code"], area_jobs.get(row["area_code"], 0))
        for row in db.all("SELECT area_code, area_name, area_type, state_code FROM areas")
    }
    industries = {row["industry_code"]: row["industry_name"] for row in db.all("SELECT industry_code, industry_name FROM industries")}
    tables = NameTables(occupations=occupations, areas=areas, industries=industries)
    _index_occupations(tables)
    _index_places(tables)
    _index_vocabulary(tables)
    return tables


def _index_occupations(tables: NameTables) -> None:
    for phrase, code in OCCUPATION_ALIASES.items():
        if code in tables.occupations:
            tables.aliases[tuple(canonical(normalize(phrase)))] = code
    tables.alias_words = frozenset(w for phrase in OCCUPATION_ALIASES for w in normalize(phrase))
    tables.titles = {o.title.lower(): o.code for o in tables.occupations.values()}
    for rank, occupation in enumerate(tables.occupations.values()):
        tables.occupation_rank[occupation.code] = rank
        tables.occupation_names[occupation.code] = joined(occupation.title)
        for word in occupation.words:
            tables.occupations_by_word.setdefault(word, []).append(occupation.code)


def _add_place(tables: NameTables, words: list[str], place: PlaceName) -> None:
    if words and place.code in tables.areas:
        tables.places.setdefault(tuple(words), []).append(place)


def _index_places(tables: NameTables) -> None:
    state_names = {}
    for area in tables.areas.values():
        tables.area_names[area.code] = joined(area.name)
        if area.type == "S":
            state_names[area.name.lower()] = area.code
            _add_place(tables, normalize(area.name), PlaceName(area.code, "state"))
        elif area.type == "M":
            _add_metro(tables, area)
        if area.type != "N":
            tables.near_area_names[joined(area.name)] = area
            tables.near_area_names.setdefault(joined(re.split(r"[,-]", area.name)[0]), area)  # a metro's first city
    for abbrev, name in STATE_ABBREVIATIONS.items():
        if name.lower() in state_names:
            tables.state_by_abbrev[abbrev.lower()] = state_names[name.lower()]
    for phrase, name in STATE_STYLE_ABBREVIATIONS.items():
        words = normalize(phrase)
        if name.lower() in state_names:
            needs_context = " ".join(words) in AMBIGUOUS_STYLE_ABBREVIATIONS
            _add_place(tables, words, PlaceName(state_names[name.lower()], "state", needs_context=needs_context))
    for phrase, code in AREA_ALIASES.items():
        _add_place(tables, normalize(phrase), PlaceName(code, "alias"))
    for phrase in NATIONAL_PHRASES:
        _add_place(tables, normalize(phrase), PlaceName(NATIONAL, "national"))
    # "New York metro area", "Washington area": a state name followed by a metro word.
    for area in tables.areas.values():
        if area.type == "M" and "nonmetropolitan" not in area.name:
            first_city = normalize(area.name.split(",")[0].split("-")[0])
            if " ".join(first_city) in state_names:
                tables.metro_of_state_name[tuple(first_city)] = area.code
                if first_city == ["washington"]:  # "DC metro", "Washington DC area"
                    tables.metro_of_state_name.update({("dc",): area.code, ("washington", "dc"): area.code})


def _add_metro(tables: NameTables, area: Area) -> None:
    full = normalize(area.name)
    _add_place(tables, full, PlaceName(area.code, "name"))
    if "nonmetropolitan" in full:
        _add_place(tables, [w for w in full if w != "area"], PlaceName(area.code, "name"))
        _add_place(tables, ["nonmetro" if w == "nonmetropolitan" else w for w in full], PlaceName(area.code, "name"))
        return
    cities_part, _, states_part = area.name.partition(",")
    states = [s.strip() for s in states_part.split("-") if s.strip()]
    _add_place(tables, normalize(cities_part), PlaceName(area.code, "name"))
    for position, city in enumerate(c for c in re.split(r"-+", cities_part) if c.strip()):
        words = [w for w in normalize(city) if w != "town"] or normalize(city)
        single_common = len(words) == 1 and words[0] in COMMON_WORD_CITIES
        _add_place(tables, words, PlaceName(area.code, "city", primary=position == 0, needs_context=single_common))
        for abbrev in states:
            _add_place(tables, [*words, abbrev.lower()], PlaceName(area.code, "city_state", primary=position == 0))
            state_name = STATE_ABBREVIATIONS.get(abbrev.upper())
            if state_name:
                _add_place(tables, [*words, *normalize(state_name)], PlaceName(area.code, "city_state", primary=position == 0))


def _index_vocabulary(tables: NameTables) -> None:
    words: set[str] = set(QUESTION_WORDS)
    for occupation in tables.occupations.values():
        words.update(normalize(occupation.title))
    for phrase in [*tables.places, *(tuple(normalize(p)) for p in OCCUPATION_ALIASES)]:
        words.update(phrase)
    words = {w for w in words if len(w) >= MIN_TYPO_WORD and not w.isdigit()}
    for word in sorted(words):
        tables.vocabulary.setdefault((word[0], len(word)), []).append(word)
    tables.occupation_words = frozenset({w for o in tables.occupations.values() for w in o.words} | NOISE_WORDS)
    tables.known = frozenset(words | {stem(w) for w in words} | STOPWORDS | set(WORD_SYNONYMS) | _planner_words(tables))


def _planner_words(tables: NameTables) -> set[str]:
    """Words the planner reads as industries, "near"-type words or qualifiers: known, so never "corrected" ("near" is no Newark)."""
    phrases = [*tables.industries.values(), *INDUSTRY_ALIASES, *INDUSTRY_SUFFIXES, *PROXIMITY_PHRASES, *UNSUPPORTED_QUALIFIERS, *WORKFORCE_WORDS]
    return {word for phrase in phrases for word in normalize(phrase)}
