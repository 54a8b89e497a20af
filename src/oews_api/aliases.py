"""Names people use that BLS titles don't, loaded from the reviewed data file ``aliases.toml``.

Occupation common names and abbreviations, industry words, place nicknames and the state
abbreviation styles are data, not code: edit ``aliases.toml`` (each entry carries the BLS
title it points to as a comment) and the tests check every code against the database.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Final

ALIASES_FILE: Final[Path] = Path(__file__).with_name("aliases.toml")
_DATA = tomllib.loads(ALIASES_FILE.read_text(encoding="utf-8"))
_WORDS = _DATA["words"]

OCCUPATION_ALIASES: Final[dict[str, str]] = _DATA["occupations"]
INDUSTRY_ALIASES: Final[dict[str, str]] = _DATA["industries"]
AREA_ALIASES: Final[dict[str, str]] = _DATA["areas"]
STATE_ABBREVIATIONS: Final[dict[str, str]] = _DATA["state_abbreviations"]
STATE_STYLE_ABBREVIATIONS: Final[dict[str, str]] = _DATA["state_style_abbreviations"]
AMBIGUOUS_STYLE_ABBREVIATIONS: Final[frozenset[str]] = frozenset(_WORDS["ambiguous_style_abbreviations"])
NATIONAL_PHRASES: Final[tuple[str, ...]] = tuple(_WORDS["national_phrases"])
COMMON_WORD_CITIES: Final[frozenset[str]] = frozenset(_WORDS["common_word_cities"])
PROXIMITY_PHRASES: Final[tuple[str, ...]] = tuple(_WORDS["proximity_phrases"])
INDUSTRY_CONTEXT: Final[frozenset[str]] = frozenset(_WORDS["industry_context"])
INDUSTRY_SUFFIXES: Final[frozenset[str]] = frozenset(_WORDS["industry_suffixes"])
WORKFORCE_WORDS: Final[frozenset[str]] = frozenset(_WORDS["workforce_words"])
UNSUPPORTED_QUALIFIERS: Final[dict[str, str]] = _DATA["unsupported"]
