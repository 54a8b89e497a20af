"""What names resolve to (occupations, areas, matches) and the word rules shared by index building and matching."""

from __future__ import annotations

import re
from dataclasses import dataclass

from oews_api.text import STOPWORDS, normalize, stem, stems

NATIONAL = "0000000"
SOC_CODE = re.compile(r"\b(\d{2})-?(\d{4})\b")
AREA_CODE = re.compile(r"^\d{7}$")
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
class PlaceName:
    """One way of naming an area (``kind``: alias | national | state | name | city_state | city)."""

    code: str
    kind: str
    primary: bool = True
    needs_context: bool = False


def title_words(title: str) -> tuple[frozenset[str], frozenset[str]]:
    """The words of a title before ", Except", and the words of its except clause."""
    parts = re.split(r",?\s+except\b", title, maxsplit=1, flags=re.IGNORECASE)
    main, excluded = parts[0], parts[1] if len(parts) > 1 else ""
    return content_words(stems(normalize(main))), content_words(stems(normalize(excluded)))


def content_words(words: list[str]) -> frozenset[str]:
    """The words that are not stopwords."""
    return frozenset(w for w in words if w not in STOPWORDS)


def canonical(words: list[str]) -> list[str]:
    """Stem and expand shorthand (``techs`` -> ``technician``)."""
    return [WORD_SYNONYMS.get(word) or WORD_SYNONYMS.get(stem(word)) or stem(word) for word in words]


def joined(text: str) -> str:
    """A name as its normalised words joined by spaces (what fuzzy and substring matching compare)."""
    return " ".join(normalize(text))
