"""Occupation and area names: official titles, common names, abbreviations, typos.

``building`` turns the database's names into lookup tables once at start; ``matching``
(``NameIndex``) resolves names and finds them inside questions; ``suggestions`` says what
to offer when a name does not resolve; ``entities`` holds what names resolve to.
"""

from oews_api.names.entities import MIN_AREA_SCORE, MIN_OCCUPATION_SCORE, NATIONAL, Area, AreaMention, Match, Occupation
from oews_api.names.matching import NameIndex

__all__ = ["MIN_AREA_SCORE", "MIN_OCCUPATION_SCORE", "NATIONAL", "Area", "AreaMention", "Match", "NameIndex", "Occupation"]
