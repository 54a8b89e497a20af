"""Industries named in a question: "nurses in hospitals", "lawyers working for the federal government".

Phrases come from the database's own industry table (BLS titles without the "Sector 52 - "
prefix and the "(OEWS Designation)" suffix) and the reviewed industry words in
``aliases.toml``. An industry word counts only where it names an industry: after "in", "at",
"for", "by" ... or before "industry", "sector", "companies" ..., and not where it starts an
occupation title ("construction laborers", "home health aides", "information security analysts")
or lies inside an occupation title or alias the question says in full ("director of finance",
"meter readers, utilities"): there the occupation wins.
Used as an adjective or a noun on its own ("hospital nurses", "federal government lawyers", "Texas
hospitals vs California hospitals") a reviewed industry word or a title of two words or more counts
too, as a *bare* mention: the planner keeps it unless the occupation named next to it owns the
word ("restaurant cooks" is Cooks, Restaurant; "construction manager" is Construction Managers).
A phrase whose code this database does not hold (the cross-industry sample) is still found,
so the answer can say that part of the question was not honoured.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache

from oews_api.aliases import INDUSTRY_ALIASES, INDUSTRY_CONTEXT, INDUSTRY_SUFFIXES, OCCUPATION_ALIASES, WORKFORCE_WORDS
from oews_api.names import NameIndex
from oews_api.text import NOISE_WORDS, normalize, stems

CROSS_INDUSTRY = "000000"
MAX_PHRASE_WORDS = 6
_SECTOR = re.compile(r"^Sectors? ([\d, and]+) - ")
_DESIGNATION = re.compile(r"\s*\(OEWS Designation\)$")
_ARTICLES = frozenset({"the", "a", "an"})
_LIST_WORDS = frozenset({"vs", "versus", "or", "and", "than"})


@dataclass(frozen=True)
class Industry:
    """One BLS industry as answers name it."""

    code: str
    name: str  # as BLS writes it

    @property
    def breadth(self) -> int:
        """Smaller is broader: sectors 0, then by NAICS digits (two industries may share a title)."""
        return 0 if "-" in self.code else len(self.code.rstrip("0"))

    @property
    def label(self) -> str:
        """The name in a sentence: "Construction (NAICS sector 23)", "Hospitals (NAICS 622000)"."""
        sector = _SECTOR.match(self.name)
        if sector:
            numbers = re.findall(r"\d+", sector.group(1))
            return f"{_SECTOR.sub('', self.name)} (NAICS sector{'s' if len(numbers) > 1 else ''} {'-'.join(numbers[:: max(1, len(numbers) - 1)])})"
        if self.code.startswith(("00", "99")):  # cross-industry variants and OEWS ownership designations
            return self.name
        return f"{self.name} (NAICS {self.code})"

    def public(self) -> dict[str, object]:
        """The JSON form in ``metadata.resolved``."""
        return {"industry_code": self.code, "industry_name": self.name}


@dataclass(frozen=True)
class IndustryMention:
    """An industry found in a question's words: ``start:end`` covers the words that name it (preposition included)."""

    start: int
    end: int
    phrase: str  # as the question said it ("hospitals")
    code: str  # may be absent from this database
    bare: bool = False  # no "in"/"at" before it, no "industry" after it: an adjective ("hospital nurses") or a noun on its own


class IndustryIndex:
    """Industry titles and words, held in memory; built once at start (~450 industries)."""

    def __init__(self, industries: Iterable[Industry], occupation_titles: Iterable[str]) -> None:
        self.industries = {i.code: i for i in industries}
        self._by_name = {i.name.lower(): i for i in reversed(self.industries.values())}  # first code wins a shared name
        self._phrases: dict[tuple[str, ...], str] = {}
        for industry in sorted(self.industries.values(), key=lambda i: (-i.breadth, i.code)):  # broadest last: it wins a shared title
            if industry.code != CROSS_INDUSTRY:
                self._phrases[tuple(stems(normalize(_SECTOR.sub("", _DESIGNATION.sub("", industry.name)))))] = industry.code
        for phrase, code in INDUSTRY_ALIASES.items():
            self._phrases.setdefault(tuple(stems(normalize(phrase))), code)
        # Bare use needs a reviewed word or a title of two words or more: a one-word BLS title such as
        # "Information" or "Logging" is too common a word to mean an industry without "in" before it.
        self._bare = {tuple(stems(normalize(phrase))) for phrase in INDUSTRY_ALIASES} | {p for p in self._phrases if len(p) > 1}
        names = [stems(normalize(title)) for title in [*occupation_titles, *OCCUPATION_ALIASES]]
        self._title_starts = {tuple(words[:n]) for words in names for n in range(2, len(words) + 1)}
        self._occupation_names = frozenset(tuple(words) for words in names if len(words) > 1)
        self._longest_name = max(map(len, self._occupation_names), default=0)
        self._occupation_words = ({w for words in names for w in words} | WORKFORCE_WORDS) - NOISE_WORDS

    @staticmethod
    @lru_cache(maxsize=4)
    def of(names: NameIndex) -> IndustryIndex:
        """The industries of the database a name index was built from (built once per index)."""
        return IndustryIndex((Industry(code, name) for code, name in names.industries.items()), (o.title for o in names.occupations.values()))

    def find(self, words: list[str]) -> list[IndustryMention]:
        """Every industry named in a question's normalised words, left to right."""
        found: list[IndustryMention] = []
        stemmed = stems(words)
        i = 0
        while i < len(words):
            mention = self._industry_at(words, stemmed, i, listing=bool(found))
            if mention is None:
                i += 1
            else:
                found.append(mention)
                i = mention.end
        return found

    def _industry_at(self, words: list[str], stemmed: list[str], i: int, *, listing: bool) -> IndustryMention | None:
        """The industry named from word ``i`` on; after a first one, "vs", "or", "and", "than" also introduce one."""
        context = words[i] in INDUSTRY_CONTEXT or (listing and words[i] in _LIST_WORDS)
        start = i + 1 if context else i
        if context and start < len(words) and words[start] in _ARTICLES:
            start += 1
        ahead = stemmed[start : start + MAX_PHRASE_WORDS + 1]
        for length in range(min(MAX_PHRASE_WORDS, len(ahead)), 0, -1):
            code = self._phrases.get(tuple(ahead[:length]))
            if code is None:
                continue
            end = start + length
            suffixed = end < len(words) and words[end] in INDUSTRY_SUFFIXES
            starts_a_title = tuple(ahead[: length + 1]) in self._title_starts and length < len(ahead)
            if starts_a_title or self._inside_an_occupation_name(stemmed, start, end):
                continue
            if context or suffixed:
                return IndustryMention(i, end + suffixed, " ".join(words[start:end]), code)
            if self._stands_bare(tuple(ahead[:length]), words[end : end + 1]):
                return IndustryMention(i, end, " ".join(words[start:end]), code, bare=True)
        return None

    def _inside_an_occupation_name(self, stemmed: list[str], start: int, end: int) -> bool:
        """True when words ``start:end`` lie inside a longer occupation title or alias said in full around them:
        "director of finance" is Financial Managers, not directors in Finance and Insurance."""
        return any(
            tuple(stemmed[first:last]) in self._occupation_names
            for first in range(max(0, end - self._longest_name), start + 1)
            for last in range(max(end, first + 2), min(len(stemmed), first + self._longest_name) + 1)
            if last - first > end - start
        )

    def _stands_bare(self, phrase: tuple[str, ...], following: list[str]) -> bool:
        """An industry without "in" before it: a reviewed word or a longer title, not an occupation's own title, before
        an occupation word ("hospital nurses"), a word like pay/jobs, a "vs"/"or", or at the end of the question."""
        if phrase not in self._bare or phrase in self._title_starts:
            return False
        if not following:
            return True
        after = stems(following)[0]
        return after in self._occupation_words or after in NOISE_WORDS  # noise words hold "vs", "or", "pay", "jobs"

    def resolve(self, term: str) -> Industry | None:
        """The industry a code, a BLS title or an industry phrase means, if this database holds it."""
        wanted = term.strip()
        if wanted in self.industries:
            return self.industries[wanted]
        if wanted.lower() in self._by_name:
            return self._by_name[wanted.lower()]
        code = self._phrases.get(tuple(stems(normalize(wanted))))
        return self.industries.get(code) if code else None
