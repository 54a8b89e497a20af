"""Word-level text handling shared by name matching and the question planner."""

from __future__ import annotations

import re
from functools import lru_cache

_APOSTROPHE_S = re.compile(r"(?<=[a-z])'s\b")
_NON_WORD = re.compile(r"[^a-z0-9]+")

# Words that carry no occupation or place meaning in a wage question.
STOPWORDS: frozenset[str] = frozenset(
    """
    a about across after all am an and any are as at be been being by can could currently data did do does doing
    for from get gets give go going got had has have how i if in into is it its like me my now of on or other our
    per please say see should show so some tell than that the their them then there these they this those to today
    typical typically us want was we were what whats when where which who whom whose why will with would you your
    """.split()
)
# Words that say what is asked, not who or where.
QUESTION_WORDS: frozenset[str] = frozenset(
    """
    pay pays paid paying payed salary salaries wage wages income incomes earn earns earning earnings make makes making
    made compensation money much many number count total median average avg mean hourly hour hours hr annual
    annually yearly year years yr percentile percentiles pct th st nd rd employment employed employ employs employing
    work works working job jobs position positions people person folks someone employee employees occupation
    occupations profession professions career careers field location quotient lq concentration thousand range spread
    distribution trend trends over time since change changed historical growth higher highest high more most
    better best top lowest low lower less least fewest compare compared comparison versus vs between difference which
    rank ranking ranked list largest biggest smallest common popular lucrative entry level starting senior experienced
    estimate estimates bls oews statistics stats expected expect metro metropolitan area areas region msa city state
    nationally national nationwide country countrywide america american united states usa nation whole entire typical
    make living take home gross base rate rates figure figures numbers value values gap does do salary
    """.split()
)


def normalize(text: str) -> list[str]:
    """Lower-case word tokens: ``U.S.`` -> ``us``, ``OB-GYN's`` -> ``ob gyn``, ``St. Louis`` -> ``st louis``."""
    lowered = text.lower().replace("\u2019", "'").replace("&", " and ")
    lowered = _APOSTROPHE_S.sub("", lowered).replace("'", "").replace(".", "")
    return [("st" if word == "saint" else word) for word in _NON_WORD.sub(" ", lowered).split()]


@lru_cache(maxsize=8192)  # bounded: words come from clients (at most ~9 MB for 500-character words)
def stem(word: str) -> str:
    """A light English singular: ``actuaries`` -> ``actuary``, ``nurses`` -> ``nurse``, ``rns`` -> ``rn``."""
    if len(word) <= 2 or word.isdigit():
        return word
    if word.endswith("ies") and len(word) > 4:
        return word[:-3] + "y"
    if word.endswith(("sses", "ches", "shes", "xes")):
        return word[:-2]
    if word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    return word


def stems(words: list[str]) -> list[str]:
    """``stem`` applied to every word."""
    return [stem(word) for word in words]


# Words that never name an occupation or place (with their plurals and stems).
NOISE_WORDS: frozenset[str] = frozenset(
    {*STOPWORDS, *QUESTION_WORDS} | {stem(w) for w in (*STOPWORDS, *QUESTION_WORDS)} | {w + "s" for w in QUESTION_WORDS}
)
