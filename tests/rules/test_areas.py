"""The ruleset's `areas:`: read, checked as a whole (every problem at once), diffed."""

from __future__ import annotations

from pathlib import Path

import pytest

from caseroute.domain.errors import Problem, RulesetError, Severity
from caseroute.rules.compiler import load_ruleset
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
    """A second parent on a second line is refused by the loader, at the repeat."""
    problems: list[Problem] = []
    try:
        compile_text(_text("areas:\n  E1: Y56\n  E1: Y58\n"), "r.yaml")
    except RulesetError as exc:
        problems = list(exc.problems)
    expected = [("yaml.duplicate_key", "r.yaml:12:3")]
    assert expected == [(p.code, p.location) for p in problems if p.severity is Severity.ERROR]


def test_a_repeated_area_and_the_areas_mistakes_are_reported_at_once() -> None:
    """The duplicate key no longer stops the load: the areas checks run on the rest too."""
    areas = "areas:\n  E1: Y56\n  E1: Y58\n  GB-KEN: GB-SCT\n  A: B\n  B: A\n"
    expected = [
        ("yaml.duplicate_key", "r.yaml:12:3"),
        ("areas.contradicts_iso", "r.yaml:13:3"),
        ("areas.cycle", "r.yaml:14:3"),
    ]
    assert expected == _errors(areas)


def test_a_ruleset_file_with_a_repeated_key_reports_its_other_problems_too(tmp_path: Path) -> None:
    """`rules check` (load_ruleset) lists a repeated key and a schema mistake in one run."""
    path = tmp_path / "ruleset.yaml"
    text = _text("areas:\n  E1: Y56\n  E1: Y58\n  GB-KEN: GB-SCT\n")
    path.write_text(text.replace("owner: tests", "owner: tests\nownr: typo"))
    with pytest.raises(RulesetError) as exc:
        load_ruleset(path)
    expected = [
        ("yaml.duplicate_key", 13),
        ("areas.contradicts_iso", 14),
        ("schema.unknown_key", 5),
    ]
    found = [(p.code, p.line) for p in exc.value.problems if p.severity is Severity.ERROR]
    assert sorted(expected, key=lambda e: e[1]) == found


def test_a_repeated_section_still_stops_the_load_at_the_repeat() -> None:
    """A second `areas:` block is left out, so the first is not checked as if it were all."""
    problems: list[Problem] = []
    try:
        compile_text(_text("areas:\n  GB-KEN: GB-SCT\nareas:\n  E1: Y56\n"), "r.yaml")
    except RulesetError as exc:
        problems = list(exc.problems)
    expected = [("yaml.duplicate_key", "r.yaml:12:1")]
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


def _ring(n: int) -> str:
    """``areas:`` of ``n`` areas each within the next, the last within the first."""
    return "areas:\n" + "".join(f"  A{i}: A{(i + 1) % n}\n" for i in range(n))


def _chain(n: int, top: str = "GB-ENG") -> str:
    """``areas:`` of ``n`` areas each within the next, the last within ``top``."""
    return (
        "areas:\n" + "".join(f"  A{i}: A{i + 1}\n" for i in range(n - 1)) + f"  A{n - 1}: {top}\n"
    )


@pytest.mark.parametrize("n", [2, 64, 65, 100, 300])
def test_a_cycle_of_any_length_is_refused(n: int) -> None:
    """A cycle longer than a coverage walk is still found: one error, at its first area."""
    expected = [("areas.cycle", "r.yaml:11:3")]
    assert expected == _errors(_ring(n))


def test_a_long_cycle_names_its_first_and_last_steps() -> None:
    """The message of a 70-area cycle shows where it starts and how it closes, not 70 steps."""
    (message,) = _messages(_ring(70))
    expected = (
        "areas put A0 within itself: A0 within A1 (line 11), A1 within A2 (line 12), A2 within "
        "A3 (line 13), A3 within A4 (line 14), … 64 steps more …, A68 within A69 (line 79), "
        "A69 within A0 (line 80); an area cannot lie within itself, so remove or correct one "
        "of these lines"
    )
    assert expected == message


def test_areas_nested_as_deep_as_the_limit_compile() -> None:
    """63 areas up to GB-ENG, within GB: 64 steps up from the deepest, the limit, compile."""
    compiled = compile_text(_text(_chain(63)))
    assert len(compiled.areas) == 63


def test_one_step_more_than_the_limit_is_refused() -> None:
    """64 areas up to GB-ENG, within GB: 65 steps up from the deepest, one too many."""
    expected = [("areas.too_deep", "r.yaml:11:3")]
    assert expected == _errors(_chain(64))


def test_areas_nested_deeper_than_the_limit_are_one_error_at_the_deepest() -> None:
    """A chain too deep for coverage to follow is refused at its deepest area, not cut short."""
    expected = [("areas.too_deep", "r.yaml:11:3")]
    assert expected == _errors(_chain(70))


def test_too_deep_says_how_deep_and_what_to_do() -> None:
    """The message names the depth, the limit and the way out."""
    (message,) = _messages(_chain(70))
    assert message.startswith("area A0 lies 71 areas deep (A0 within A1 within A2 within ")
    assert "A69 within GB-ENG within GB); the limit is 64" in message
    assert "nest areas less deeply" in message


def test_an_iso_code_below_a_too_deep_chain_is_too_deep_not_a_contradiction() -> None:
    """Kent placed under a 70-area chain up to GB-ENG: too deep, not `areas.contradicts_iso`."""
    areas = _chain(70) + "  GB-KEN: A0\n"
    expected = [("areas.too_deep", "r.yaml:81:3")]
    assert expected == _errors(areas)


def _warnings(areas: str, rules: str = GENERAL) -> list[tuple[str, str, str]]:
    """(code, file:line:column, message) of each `lint.territory_case` warning."""
    try:
        problems = compile_text(
            ruleset_with_rules(rules, MINIMAL_HEADER + areas), "r.yaml"
        ).warnings
    except RulesetError as exc:  # reported beside the errors too
        problems = tuple(exc.problems)
    return [(p.code, p.location, p.message) for p in problems if p.code == "lint.territory_case"]


def test_an_area_spelt_as_an_iso_code_in_small_letters_is_warned_about() -> None:
    """`gb: Y56` compiled silently: no case (sent as GB) was placed by it."""
    expected = [
        (
            "lint.territory_case",
            "r.yaml:11:3",
            (
                "area gb is ISO 3166 code GB in other letters: territory codes are compared "
                "exactly and cases send ISO codes in capitals, so a case in GB is not placed by "
                "this line; write GB"
            ),
        )
    ]
    assert expected == _warnings("areas:\n  gb: Y56\n")


def test_the_warning_says_why_beside_the_error_of_a_small_letter_subdivision() -> None:
    """`gb-ken: Y59` is refused (it extends `gb`); the warning names the ISO code meant."""
    (found,) = _warnings("areas:\n  gb-ken: Y59\n  Y59: GB-ENG\n")
    expected = ("lint.territory_case", "r.yaml:11:3")
    assert expected == found[:2]
    assert found[2].startswith("area gb-ken is ISO 3166 code GB-KEN in other letters")
    errors = [("areas.two_parents", "r.yaml:11:3")]
    assert errors == _errors("areas:\n  gb-ken: Y59\n  Y59: GB-ENG\n")


def test_an_area_placed_within_an_iso_code_in_small_letters_is_warned_about() -> None:
    """`Y56: gb-eng` compiled silently, and GB-ENG's agents did not cover Y56's cases."""
    expected = [
        (
            "lint.territory_case",
            "r.yaml:11:3",
            (
                "area Y56 is placed within gb-eng, ISO 3166 code GB-ENG in other letters: "
                "territory codes are compared exactly, so agents covering GB-ENG do not cover "
                "Y56; write GB-ENG"
            ),
        )
    ]
    assert expected == _warnings("areas:\n  Y56: gb-eng\n")


def test_a_rule_testing_an_iso_code_in_small_letters_is_warned_about() -> None:
    """`'gb-sct' in case.region_areas` never held for a case in Scotland; nothing said so."""
    rules = (
        "  - id: scotland\n"
        "    when: \"'gb-sct' in case.region_areas or case.region in ['Gb-Edh', 'GB-GLG']\"\n"
        "    then: {route: {queue: scotland, territory: false}}\n" + GENERAL
    )
    expected = [
        (
            "lint.territory_case",
            "r.yaml:14",
            (
                "rule `scotland` tests gb-sct, ISO 3166 code GB-SCT in other letters: regions are "
                "compared exactly and cases send ISO codes in capitals, so a case in GB-SCT never "
                "meets it; write 'GB-SCT'"
            ),
        ),
        (
            "lint.territory_case",
            "r.yaml:14",
            (
                "rule `scotland` tests Gb-Edh, ISO 3166 code GB-EDH in other letters: regions are "
                "compared exactly and cases send ISO codes in capitals, so a case in GB-EDH never "
                "meets it; write 'GB-EDH'"
            ),
        ),
    ]
    assert expected == _warnings("", rules)


def test_codes_in_capitals_and_codes_of_the_ruleset_s_own_draw_no_warning() -> None:
    """ISO codes written as ISO writes them, and NHS codes, are what the warning leaves alone."""
    rules = (
        "  - id: scotland\n"
        "    when: \"'GB-SCT' in case.region_areas or case.region == 'E54000027'\"\n"
        "    then: {route: {queue: scotland, territory: false}}\n" + GENERAL
    )
    nothing: list[tuple[str, str, str]] = []
    assert nothing == _warnings("areas:\n  E54000027: Y56\n  Y56: GB-ENG\n  nhsx1: Y56\n", rules)


def test_own_codes_in_small_letters_shaped_like_iso_draw_no_warning() -> None:
    """`nw: Y56`, `ab-cd: nw`: no ISO country is NW or AB, so no warning.

    Judged by shape alone, both were taken for ISO codes in other letters: they are a team's
    own codes, compared exactly, which its cases may send just so.
    """
    rules = (
        "  - id: north\n"
        "    when: \"'nw' in case.region_areas or case.region == 'ab-cd'\"\n"
        "    then: {route: {queue: north, territory: false}}\n" + GENERAL
    )
    nothing: list[tuple[str, str, str]] = []
    assert nothing == _warnings("areas:\n  nw: Y56\n  ab-cd: nw\n", rules)


def test_codes_of_a_real_country_but_no_real_subdivision_draw_no_warning() -> None:
    """`Y56: gb-nw`, `'gb-knt' in case.region_areas`: GB-NW and GB-KNT are no ISO codes.

    Only the country part was checked against the ISO table, so both were called "ISO 3166
    code GB-NW in other letters; write GB-NW": advice naming a code no case carries.
    """
    rules = (
        "  - id: north\n"
        "    when: \"'gb-knt' in case.region_areas or case.region == 'Us-txx'\"\n"
        "    then: {route: {queue: north, territory: false}}\n" + GENERAL
    )
    nothing: list[tuple[str, str, str]] = []
    assert nothing == _warnings("areas:\n  Y56: gb-nw\n", rules)


@pytest.mark.parametrize(
    ("when", "value"),
    [
        ("\"'GB SCT' in case.region_areas\"", "GB SCT"),
        ("\"'' in case.region_areas\"", ""),
        ("\"not ' GB-SCT' in case.region_areas\"", " GB-SCT"),
        ("\"case.region == 'GB-SCT '\"", "GB-SCT "),
        ("\"case.region in ['GB-EDH', 'GB/ SCT']\"", "GB/ SCT"),
    ],
)
def test_a_region_test_no_region_code_can_meet_is_an_error(when: str, value: str) -> None:
    """A value with a space (or none at all) is no region: such a test compiled and never held."""
    rule = f"  - id: r\n    when: {when}\n    then: {{route: {{queue: q, territory: false}}}}\n"
    with pytest.raises(RulesetError) as exc:
        compile_text(ruleset_with_rules(rule + GENERAL), "r.yaml")
    found = [(p.code, p.line, p.message) for p in exc.value.problems]
    expected = [
        (
            "expr.unknown_value",
            15,
            (
                f"no region code is {value!r}: codes are letters, digits and _ . : / -, "
                "starting with a letter or digit (a request with another region is refused), "
                "so this test never holds as written; write the code as cases send it, such "
                "as GB-SCT"
            ),
        )
    ]
    assert expected == [f for f in found if f[0].startswith("expr.")]


@pytest.mark.parametrize(
    ("areas", "expected"),
    [
        (
            "areas:\n  E1: [Y56]\n",
            "area E1 is given a list of one area; write it without the brackets: `E1: Y56`",
        ),
        (
            "areas:\n  E1: []\n",
            (
                "area E1 is given an empty list; write the one area it lies within (`E1: Y56`), "
                "or remove the line"
            ),
        ),
        (
            "areas:\n  E1: [Y56, Y58]\n",
            (
                "area E1 is given 2 areas to lie within; an area lies within one area (list the "
                "larger ones on their own lines: `Y56: GB-ENG`)"
            ),
        ),
    ],
)
def test_a_list_of_areas_is_told_what_to_write(areas: str, expected: str) -> None:
    """A list of one area or none is no second parent: the message says what to write."""
    assert [expected] == _messages(areas)
    code = "areas.two_parents" if "2 areas" in expected else "schema.type"
    assert [(code, "r.yaml:11:7")] == _errors(areas)
