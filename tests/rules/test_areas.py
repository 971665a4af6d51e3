"""The ruleset's `areas:`: read, checked as a whole (every problem at once), diffed."""

from __future__ import annotations

import pytest

from caseroute.domain.errors import Problem, RulesetError, Severity
from caseroute.rules.diff import ChangeKind, Section, diff_rulesets
from caseroute.testing import MINIMAL_HEADER, compile_text, ruleset_with_rules

GENERAL = "  - id: rest\n    when: true\n    then: {route: {queue: general}}\n"


def _text(areas: str) -> str:
    return ruleset_with_rules(GENERAL, MINIMAL_HEADER + areas)


def _errors(areas: str) -> list[tuple[str, str]]:
    """(code, file:line:column) of each error the areas draw (`areas:` is line 10)."""
    try:
        compile_text(_text(areas), "r.yaml")
    except RulesetError as exc:
        return [(p.code, p.location) for p in exc.problems if p.severity is Severity.ERROR]
    return []


def _messages(areas: str) -> list[str]:
    try:
        compile_text(_text(areas), "r.yaml")
    except RulesetError as exc:
        return [p.message for p in exc.problems if p.severity is Severity.ERROR]
    return []


def test_areas_read_in_file_order() -> None:
    """Each area maps to the one it lies within; the compiled ruleset keeps them."""
    compiled = compile_text(_text("areas:\n  E54000027: Y56\n  Y56: GB-ENG\n  GB-KEN: GB-ENG\n"))
    assert compiled.areas == {"E54000027": "Y56", "Y56": "GB-ENG", "GB-KEN": "GB-ENG"}


def test_a_ruleset_without_areas_has_none() -> None:
    """The section is optional."""
    assert compile_text(_text("")).areas == {}


@pytest.mark.parametrize(
    ("areas", "expected"),
    [
        ("areas:\n  A: B\n  B: A\n", [("areas.cycle", "r.yaml:11:3")]),
        ("areas:\n  A: A\n", [("areas.cycle", "r.yaml:11:3")]),
        ("areas:\n  A: B\n  B: C\n  C: A\n", [("areas.cycle", "r.yaml:11:3")]),
        ("areas:\n  GB-ENG: GB-KEN\n", [("areas.cycle", "r.yaml:11:3")]),
        ("areas:\n  E1: [Y56, Y58]\n", [("areas.two_parents", "r.yaml:11:7")]),
        ("areas:\n  NHS-Y56: GB-ENG\n", [("areas.two_parents", "r.yaml:11:3")]),
        ("areas:\n  GB-KEN: GB-SCT\n", [("areas.contradicts_iso", "r.yaml:11:3")]),
        ("areas:\n  GB-ENG: GB-SCT\n", [("areas.contradicts_iso", "r.yaml:11:3")]),
        ("areas:\n  GB: Y56\n", [("areas.contradicts_iso", "r.yaml:11:3")]),
        ("areas:\n  GB-KEN: Y59\n", [("areas.contradicts_iso", "r.yaml:11:3")]),
        ("areas:\n  'bad code': Y56\n", [("schema.format", "r.yaml:11:3")]),
        ("areas:\n  E1: 'Y 56'\n", [("schema.format", "r.yaml:11:7")]),
        ("areas: [E1]\n", [("schema.type", "r.yaml:10:8")]),
    ],
)
def test_each_mistake_is_one_error_at_the_areas_line(
    areas: str, expected: list[tuple[str, str]]
) -> None:
    """Cycles, second parents, ISO contradictions and bad codes, each with a stable code."""
    assert expected == _errors(areas)


@pytest.mark.parametrize(
    "areas",
    [
        "areas:\n  GB-KEN: GB-ENG\n",  # repeats ISO
        "areas:\n  GB-KEN: GB\n",  # repeats ISO and the code
        "areas:\n  GB-KEN: Y59\n  Y59: GB-ENG\n",  # finer, inside the ISO parent
        "areas:\n  GB-KEN: GB-ENG-SE\n",  # a sub-code of the ISO parent
        "areas:\n  GB-ENG-NW: GB-ENG\n",  # repeats the code's own prefix
        "areas:\n  Y56: GB-ENG\n  E54000027: Y56\n",  # an area named before its parent's line
        "areas:\n  A1: GB-KEN\n  GB-KEN: Y59\n  Y59: GB-ENG\n",  # two ways up to GB-ENG
    ],
)
def test_placements_consistent_with_iso_and_codes_compile(areas: str) -> None:
    """Repeating a fact, or refining inside it, is no error."""
    nothing: list[tuple[str, str]] = []
    assert nothing == _errors(areas)


def test_every_area_problem_is_reported_at_once() -> None:
    """One load lists a cycle, a list, a contradiction and a bad code together, in line order."""
    areas = "areas:\n  A: B\n  B: A\n  E1: [X, Y]\n  GB-KEN: GB-SCT\n  'no good': X\n"
    expected = [
        ("areas.cycle", "r.yaml:11:3"),
        ("areas.two_parents", "r.yaml:13:7"),
        ("areas.contradicts_iso", "r.yaml:14:3"),
        ("schema.format", "r.yaml:15:3"),
    ]
    assert expected == _errors(areas)


def test_a_cycle_names_every_step_with_its_line_or_source() -> None:
    """The message lists the steps, ISO ones named as such."""
    expected = (
        "areas put GB-ENG within itself: GB-ENG within GB-KEN (line 11), GB-KEN within GB-ENG "
        "(ISO 3166-2); an area cannot lie within itself, so remove or correct one of these lines"
    )
    assert [expected] == _messages("areas:\n  GB-ENG: GB-KEN\n")


def test_a_contradiction_says_where_iso_puts_the_area() -> None:
    """The message names the ISO parent and what to do."""
    expected = (
        "area GB-KEN lies within GB-ENG by ISO 3166, and Y59 is not listed as lying within "
        "GB-ENG; add `Y59: GB-ENG` if it does, else correct this line"
    )
    assert [expected] == _messages("areas:\n  GB-KEN: Y59\n")


def test_an_area_named_twice_is_the_loaders_duplicate_key() -> None:
    """A second parent on a second line is refused before the areas are read."""
    problems: list[Problem] = []
    try:
        compile_text(_text("areas:\n  E1: Y56\n  E1: Y58\n"), "r.yaml")
    except RulesetError as exc:
        problems = list(exc.problems)
    expected = [("yaml.duplicate_key", "r.yaml:12:3")]
    assert expected == [(p.code, p.location) for p in problems if p.severity is Severity.ERROR]


def test_rules_diff_reports_an_area_moved_to_another_region() -> None:
    """Moving an ICB is one semantic change under `areas`, at its line in the new file."""
    old = compile_text(_text("areas:\n  E1: Y56\n  Y56: GB-ENG\n  Y58: GB-ENG\n"), "old.yaml")
    new = compile_text(_text("areas:\n  E1: Y58\n  Y56: GB-ENG\n  Y58: GB-ENG\n"), "new.yaml")
    changes = diff_rulesets(old, new).changes
    expected = [(Section.AREAS, ChangeKind.CHANGED, "E1", "Y56", "Y58", "new.yaml:11")]
    assert expected == [
        (c.section, c.kind, c.subject, c.old, c.new, c.location) for c in changes if c.semantic
    ]
