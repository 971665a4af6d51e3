"""A rule comparing a place field with a code that names no place is warned about (lint)."""

from __future__ import annotations

import pytest

from caseroute.testing import MINIMAL_HEADER, compile_text, ruleset_with_rules

RULE = """\
  - id: r
    when: "{when}"
    then: {{route: {{queue: clinical}}}}
  - id: all
    when: true
    then: {{route: {{queue: clinical}}}}
"""
AREAS = "areas:\n  E54000027: Y56\n  Y56: GB-ENG\n  GB-NORTH: GB\n"


def _places(when: str) -> list[str]:
    """The lint.unknown_place messages of a ruleset whose rule `r` has condition ``when``."""
    header = MINIMAL_HEADER + AREAS
    compiled = compile_text(ruleset_with_rules(RULE.format(when=when), header), "r.yaml")
    return [p.message for p in compiled.warnings if p.code == "lint.unknown_place"]


@pytest.mark.parametrize(
    ("when", "field", "code", "problem"),
    [
        ("case.region == 'US-TXX'", "case.region", "US-TXX", "no ISO 3166-2 subdivision of US"),
        (
            "case.patient_location in ['US-TX', 'UK-ENG']",
            "case.patient_location",
            "UK-ENG",
            "is no ISO 3166-1 country",
        ),
        ("'GB-ENGG' in case.region_areas", "case.region_areas", "GB-ENGG", "mean `GB-ENG`?"),
        ("case.region != 'GB-SOUTH'", "case.region", "GB-SOUTH", "subdivision of GB"),
    ],
)
def test_a_condition_on_a_code_naming_no_place_is_warned_about(
    when: str, field: str, code: str, problem: str
) -> None:
    """The warning names the field, the code, what is wrong with it and what to do."""
    (message,) = _places(when)
    assert message.startswith(f"`{field}` is compared with `{code}`, which ")
    assert problem in message
    assert message.endswith("declare it in `areas:`")


@pytest.mark.parametrize(
    "when",
    [
        "case.region == 'GB-KEN'",
        "case.region in ['US-TX', 'US-OK', 'GB']",
        "'Y56' in case.region_areas",
        "case.region == 'GB-NORTH'",  # declared in areas:
        "case.region == 'GB-ENG-NW'",  # a sub-area of a subdivision
        "case.region == 'E54000099'",  # shaped like no ISO code: not judged
        "case.intent == 'clinical'",  # not a place field
    ],
)
def test_a_condition_on_real_places_is_not_warned_about(when: str) -> None:
    """Places, declared areas, sub-areas and non-ISO codes raise no lint.unknown_place."""
    assert _places(when) == []


def _compact_places(member: str) -> list[tuple[int, str]]:
    """(line, message) of each lint.unknown_place of a ruleset whose compact lists ``member``."""
    compacts = (
        "compacts:\n  - name: NLC\n    licence_types: [RN]\n    members:\n"
        "      - {jurisdiction: US-TX, since: 2018-01-19}\n"
        f"      - {{jurisdiction: {member}, since: 2025-07-07}}\n"
    )
    text = ruleset_with_rules(
        RULE.format(when="case.urgency == 'critical'"), MINIMAL_HEADER + compacts
    )
    compiled = compile_text(text, "r.yaml")
    return [(p.line, p.message) for p in compiled.warnings if p.code == "lint.unknown_place"]


def test_a_compact_member_naming_no_place_is_warned_about_at_its_line() -> None:
    """`US-PAA` as a member: a warning at the member, with the code meant and what to do."""
    ((line, message),) = _compact_places("US-PAA")
    assert line == MINIMAL_HEADER.count("\n") + 6
    assert message == (
        "compact NLC member `US-PAA` is no ISO 3166-2 subdivision of US (did you mean "
        "`US-PA`?): no licence is issued there, so this membership lets no nurse practise "
        "anywhere; fix the code"
    )


def test_a_compact_member_that_is_a_real_place_is_not_warned_about() -> None:
    """A real subdivision (and a country that registers nationally) raise nothing."""
    assert _compact_places("US-PA") == []
    assert _compact_places("GB") == []


def test_a_code_in_small_letters_is_one_warning_naming_the_iso_code() -> None:
    """`'Gb-Edh'` is lint.territory_case's (the ISO code meant), not also lint.unknown_place."""
    header = MINIMAL_HEADER + AREAS
    text = ruleset_with_rules(RULE.format(when="case.region == 'Gb-Edh'"), header)
    codes = [p.code for p in compile_text(text, "r.yaml").warnings]
    assert "lint.territory_case" in codes
    assert "lint.unknown_place" not in codes


def test_a_real_country_s_code_in_small_letters_that_is_no_place_is_judged_in_capitals() -> None:
    """`'gb-kenn' in case.region_areas` drew no warning at all; judged as `GB-KENN` now.

    It is no ISO code in other letters (lint.territory_case is silent) and small letters were
    left unjudged; in capitals it names the subdivision meant. A code of one's own in small
    letters (`nw`) stays unjudged.
    """
    header = MINIMAL_HEADER + AREAS
    when = "'gb-kenn' in case.region_areas or case.region == 'nw'"
    text = ruleset_with_rules(RULE.format(when=when), header)
    messages = [
        p.message for p in compile_text(text, "r.yaml").warnings if p.code == "lint.unknown_place"
    ]
    expected = (
        "`case.region_areas` is compared with `gb-kenn`, which in capitals (`GB-KENN`) is no "
        "ISO 3166-2 subdivision of GB (did you mean `GB-KEN`?): no case in a real place has "
        "it, so the condition never holds for one; fix the code, or, if `gb-kenn` is an area "
        "of your own, declare it in `areas:`"
    )
    assert messages == [expected]
