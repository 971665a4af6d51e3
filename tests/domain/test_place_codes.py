"""Which territory and licence codes name a place: ISO 3166, a ruleset's areas, or within one."""

from __future__ import annotations

import pytest

from caseroute.domain.place_codes import is_iso_code, place_problem

AREAS = {"E54000027": "Y56", "Y56": "GB-ENG", "GB-NORTH": "GB"}


@pytest.mark.parametrize(
    "code",
    [
        "GB",  # an ISO 3166-1 country
        "US-TX",  # an ISO 3166-2 subdivision
        "GB-KEN",  # one with an ISO parent (Kent, within England)
        "GB-ENG-NW",  # your own sub-area of a subdivision
        "US-TX-HOU-NORTH",  # and of that
        "Y56",  # an area of the ruleset (a parent) ...
        "E54000027",  # ... and a child
        "GB-NORTH",  # your own area directly under a country, declared in areas:
        "GB-NORTH-EAST",  # within it
        "NORTH",  # shaped like no ISO code: somebody's own, not judged
        "NHS-Y56",
        "AQ",  # a country with no subdivisions
    ],
)
def test_a_place_has_no_problem(code: str) -> None:
    """Real places, declared areas, sub-areas of either and non-ISO codes are not reported."""
    assert place_problem(code, AREAS) is None


@pytest.mark.parametrize(
    ("code", "problem"),
    [
        ("US-TXX", "is no ISO 3166-2 subdivision of US (did you mean `US-TX`?)"),
        ("GB-ENGG", "is no ISO 3166-2 subdivision of GB (did you mean `GB-ENG`?)"),
        (
            "GB-ENGG-NW",
            (
                "lies within `GB-ENGG`, which is no ISO 3166-2 subdivision of GB "
                "(did you mean `GB-ENG`?)"
            ),
        ),
        ("UK", "is no ISO 3166-1 country code (did you mean `GB`?)"),
        ("UK-ENG", "is no ISO 3166-1 country code (did you mean `GB-ENG`?)"),
        ("EL-I", "is no ISO 3166-1 country code (did you mean `GR-I`?)"),
        ("QQ-TX", "is no ISO 3166-1 country code"),
        ("AQ-01", "is within AQ, which has no ISO 3166-2 subdivisions"),
        ("GB-QQQQQQ", "is no ISO 3166-2 subdivision of GB"),  # nothing near it
    ],
)
def test_a_mistyped_place_says_what_is_wrong_and_what_was_meant(code: str, problem: str) -> None:
    """A code shaped like ISO 3166 that names no place: what is wrong, and the nearest code."""
    assert place_problem(code, AREAS) == problem


def test_an_undeclared_area_under_a_country_is_a_problem_until_declared() -> None:
    """`GB-NORTH` is no subdivision of GB: reported without areas, a place once declared."""
    assert place_problem("GB-NORTH", {}) is not None
    assert place_problem("GB-NORTH", {"GB-NORTH": "GB"}) is None


@pytest.mark.parametrize(
    ("code", "iso"),
    [
        ("GB", True),
        ("GB-KEN", True),
        ("US-TX", True),
        ("AI", True),  # a country with no subdivisions
        ("gb", False),  # as ISO writes it only
        ("GB-KNT", False),  # a real country, no such subdivision
        ("GB-ENG-NW", False),  # a sub-area of one's own
        ("UK", False),
        ("E54000027", False),
    ],
)
def test_is_iso_code_asks_the_generated_table_not_the_shape(code: str, iso: bool) -> None:
    """Only a country or subdivision the ISO table holds, exactly as written, is an ISO code."""
    assert iso == is_iso_code(code)
