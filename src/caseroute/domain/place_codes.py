"""Whether a territory or licence code names a place: ISO 3166, a ruleset's area, or within one.

A place code that is none of these is most often a typo (``US-TXX``, ``GB-ENGG``, ``UK-ENG``): an
agent covering it is never eligible for a case in any real region (only for a case sent with
that very code), and a licence recorded under it is valid nowhere. Nothing refuses such a code
at decision time (a roster may use its own codes, and one matching itself is harmless); ``rules
check --roster`` warns about it (``roster.unknown_place``), since the roster is what a typo
silently starves.

A code is a place when it is an ISO 3166-1 alpha-2 country (``GB``), an ISO 3166-2 subdivision
(``GB-KEN``, ``US-TX``), an area of the ruleset's ``areas:`` (either side), or extends a place
that is not a bare country with ``-`` (``GB-ENG-NW``, ``US-TX-HOU``: a sub-area of your own).
A code directly under a country must be its subdivision: ``GB-NORTH`` is not one, and is taken
as a place only once ``areas:`` declares it. Codes shaped like no ISO code (``E54000027``, a
team's ``NORTH``) are not judged: they are somebody's own, and match themselves.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache

from caseroute.domain.iso_codes import SUBDIVISIONS
from caseroute.domain.reader import near_miss

NOT_ISO_COUNTRIES = {"UK": "GB", "EL": "GR"}
"""Two-letter codes often written for a country whose ISO 3166-1 code is another (the United
Kingdom's is ``GB``; ``EL`` is the EU's code for Greece, ``GR`` in ISO 3166-1)."""


@cache
def _subdivisions(country: str) -> frozenset[str]:
    """``country``'s ISO 3166-2 subdivision codes (``GB-KEN``, ...)."""
    return frozenset(
        f"{country}-{suffix}" for line in SUBDIVISIONS[country] for suffix in line.split()
    )


def is_iso_code(code: str) -> bool:
    """Whether ``code`` is an ISO 3166-1 country (``GB``) or ISO 3166-2 subdivision (``GB-KEN``).

    Exactly as ISO writes it: ``gb``, ``GB-KNT`` and ``GB-ENG-NW`` are not ISO codes.
    """
    country, dash, _ = code.partition("-")
    if country not in SUBDIVISIONS:
        return False
    return not dash or code in _subdivisions(country)


def _is_place(code: str, areas: Mapping[str, str], area_parents: frozenset[str]) -> bool:
    """Whether ``code`` is a place (module docstring), walking up its ``-`` extensions."""
    while True:
        if code in areas or code in area_parents or code in SUBDIVISIONS:
            return True
        country, dash, _ = code.partition("-")
        if not dash or country not in SUBDIVISIONS:
            return False
        if code in _subdivisions(country):
            return True
        parent = code.rsplit("-", 1)[0]
        if parent == country:  # directly under a country: only its subdivisions are places
            return False
        code = parent


def _looks_iso(code: str) -> bool:
    """Whether ``code`` is shaped like an ISO 3166 code: two capitals, maybe ``-`` and more.

    A code in small letters (``gb-ken``, in a ruleset: a roster's are upper-cased as read) is
    ``lint.territory_case``'s to report, as the ISO code it meant.
    """
    country = code.partition("-")[0]
    return len(country) == 2 and country.isascii() and country.isalpha() and country.isupper()


def place_problem(code: str, areas: Mapping[str, str]) -> str | None:
    """What is wrong with ``code`` as a place (words after the code), or None when nothing is.

    Args:
        code: A roster's territory or licence jurisdiction, as parsed (upper case).
        areas: The ruleset's ``areas:`` (each area -> the area it lies within).

    Returns:
        ``is no ISO 3166-2 subdivision of US (did you mean `US-TX`?)`` and the like, or None
        for a place, and for a code shaped like no ISO code (somebody's own).
    """
    parents = frozenset(areas.values())
    if not _looks_iso(code) or _is_place(code, areas, parents):
        return None
    country, dash, rest = code.partition("-")
    if country not in SUBDIVISIONS:
        meant = NOT_ISO_COUNTRIES.get(country)
        tip = f" (did you mean `{meant}{dash}{rest}`?)" if meant else ""
        return f"is no ISO 3166-1 country code{tip}"
    first = f"{country}-{rest.split('-', 1)[0]}"
    subdivisions = sorted(_subdivisions(country))
    if not subdivisions:
        return f"is within {country}, which has no ISO 3166-2 subdivisions"
    guess = near_miss(first, subdivisions)
    tip = f" (did you mean `{guess}`?)" if guess else ""
    if first != code:
        return f"lies within `{first}`, which is no ISO 3166-2 subdivision of {country}{tip}"
    return f"is no ISO 3166-2 subdivision of {country}{tip}"
