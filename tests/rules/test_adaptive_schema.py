"""Schema of ladders, continuity and soft lists: every malformed entry is named, with its line."""

import pytest

from caseroute.domain.errors import RulesetError
from caseroute.testing import CATCH_ALL_RULE, MINIMAL_HEADER, compile_text, ruleset_with_rules

ROUTE = "  - id: r\n    when: true\n    then: {route: {queue: clinical, ROUTE}}\n"
STEP = "{step: s1, after: 10m, relax: [language], why: w}"


def _errors(sections: str, route: str = "soft: [language], ladder: wait") -> list[tuple[str, str]]:
    """(code, message) of every error; the sections go between the header and `rules:`."""
    text = ruleset_with_rules(ROUTE.replace("ROUTE", route), MINIMAL_HEADER + sections)
    with pytest.raises(RulesetError) as caught:
        compile_text(text, "r.yaml")
    return [(p.code, p.message) for p in caught.value.problems if p.severity.value == "error"]


def _ladder(*steps: str) -> str:
    return "ladders:\n  wait:\n" + "".join(f"    - {s}\n" for s in steps)


@pytest.mark.parametrize(
    ("sections", "route", "expected"),
    [
        (
            _ladder(STEP),
            "soft: [7], ladder: wait",
            ("schema.type", "each entry of rule r route.soft must be a requirement name"),
        ),
        (
            _ladder(STEP),
            "soft: [langauge], ladder: wait",
            (
                "schema.value",
                "unknown requirement `langauge` in rule r route.soft (did you mean `language`?)",
            ),
        ),
        (
            _ladder(STEP),
            "soft: [teleport], ladder: wait",
            (
                "schema.value",
                (
                    "unknown requirement `teleport` in rule r route.soft (one of "
                    "territory, skills, language, roles)"
                ),
            ),
        ),
        (
            _ladder(STEP),
            "soft: [language, language], ladder: wait",
            ("schema.value", "`language` is listed twice in rule r route.soft"),
        ),
        (
            "ladders: [wait]\n",
            "",
            ("schema.type", "`ladders` must map ladder names to lists of steps"),
        ),
        (
            "ladders:\n  Wait: [" + STEP + "]\n",
            "",
            (
                "schema.format",
                "ladder name `Wait` is not valid (lower-case letters, digits, - and _)",
            ),
        ),
        (
            "ladders:\n  wait: []\n",
            "",
            ("schema.value", "ladder `wait` has no steps; give it at least one"),
        ),
        (
            _ladder(*(STEP.replace("s1", f"s{i}") for i in range(17))),
            "soft: [language], ladder: wait",
            ("limit.ladders", "ladder `wait` has 17 steps; at most 16"),
        ),
        (
            _ladder(STEP, STEP),
            "soft: [language], ladder: wait",
            ("schema.value", "ladder `wait` has two steps named `s1`"),
        ),
        (
            _ladder("{step: s1, after: 10m, relax: [language], prefer: [language], why: w}"),
            "soft: [language], ladder: wait",
            (
                "schema.value",
                (
                    "step `s1` of ladder `wait` lists language under both relax and "
                    "prefer; keep one (prefer keeps it as a ranking preference)"
                ),
            ),
        ),
        (
            _ladder("{step: s1, after: 10m, why: w}"),
            "soft: [language], ladder: wait",
            (
                "schema.missing_key",
                (
                    "step `s1` of ladder `wait` needs `relax:` or `prefer:` (the "
                    "requirements it stops requiring)"
                ),
            ),
        ),
        (
            "continuity: {window: 0}\n",
            "",
            (
                "schema.range",
                "continuity.window must be longer than 0 (how far back a last contact counts)",
            ),
        ),
    ],
)
def test_each_malformed_adaptive_entry_is_one_error_that_says_what_to_write(
    sections: str, route: str, expected: tuple[str, str]
) -> None:
    """The schema names the entry, why it is wrong and what to write instead."""
    assert expected in _errors(sections, route)


def test_a_step_that_is_not_a_mapping_is_reported_and_skipped() -> None:
    """`- later` instead of a step mapping: a schema.type error naming the ladder."""
    errors = _errors(_ladder("later", STEP))
    assert (
        "schema.type",
        "a step of ladder `wait` must be an object (key: value pairs), got string 'later'",
    ) in errors


def test_a_continuity_section_without_a_window_is_one_missing_key() -> None:
    """`continuity: {hold: ...}` alone: the window is required."""
    errors = _errors("continuity: {hold: {routine: 15m}}\n", "")
    assert errors == [("schema.missing_key", "`window` is required in `continuity`")]


def test_a_catch_all_only_ruleset_with_a_valid_ladder_section_compiles() -> None:
    """Control: the header and ladder these tests break compile when written correctly."""
    text = ruleset_with_rules(CATCH_ALL_RULE, MINIMAL_HEADER + _ladder(STEP))
    assert list(compile_text(text, "r.yaml").ladders) == ["wait"]
