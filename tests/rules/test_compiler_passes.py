"""The compiler's pass table: its order, what a pass needs, and the schema's structured flags."""

import pytest

from caseroute.domain.errors import Problem, RulesetError
from caseroute.rules import passes
from caseroute.rules.passes import PASSES, SCHEMA_SECTIONS, Compilation, CompilerPass, run_passes
from caseroute.rules.schema import RawRuleset, read_ruleset
from caseroute.rules.source import parse_yaml
from caseroute.testing import CATCH_ALL_RULE, MINIMAL_HEADER, compile_text, ruleset_with_rules

_BASE = ruleset_with_rules(CATCH_ALL_RULE)
_CONSTRAINTS = (
    "  safeguarding: {flag: safeguarding, queue: safeguarding}\n  licence: {clinical: [RN]}\n"
)


def _problems(text: str) -> list[tuple[str, int, int, str | None, str]]:
    with pytest.raises(RulesetError) as exc:
        compile_text(text)
    return [(p.code, p.line, p.column, p.rule_id, p.message) for p in exc.value.problems]


def test_the_pass_table_runs_these_passes_in_this_order() -> None:
    """The compiler's passes, by name, in the order one loop runs them."""
    assert [p.name for p in PASSES] == [
        "schema",
        "conditions",
        "ordering",
        "safeguarding",
        "queues",
        "licence",
        "ladders",
        "lint",
    ]


def test_every_pass_says_what_it_checks_and_needs_only_earlier_results() -> None:
    """Each need names an earlier pass or a `section:<section>`, and each pass describes itself."""
    earlier: set[str] = {f"section:{section}" for section in SCHEMA_SECTIONS}
    for compiler_pass in PASSES:
        assert compiler_pass.checks != ""
        assert set() == set(compiler_pass.needs) - earlier
        earlier.add(compiler_pass.name)
    assert {p.name: p.needs for p in PASSES if p.needs} == {
        "safeguarding": frozenset({"section:constraints"})
    }


@pytest.mark.parametrize(
    ("variant", "expected"),
    [
        (
            _BASE.replace("constraints:\n" + _CONSTRAINTS, "constraints: 5\n"),
            [
                (
                    "schema.type",
                    5,
                    14,
                    None,
                    "`constraints` must be an object (key: value pairs), got number 5",
                )
            ],
        ),
        (
            _BASE.replace(_CONSTRAINTS, "  licence: {clinical: [RN]}\n"),
            [("schema.missing_key", 6, 3, None, "`safeguarding` is required in `constraints`")],
        ),
        (
            _BASE.replace("{flag: safeguarding, queue", "{flag: Safe Guarding, queue"),
            [
                (
                    "schema.format",
                    6,
                    24,
                    None,
                    (
                        "constraints.safeguarding.flag 'Safe Guarding' is not a valid flag (a "
                        "flag is lower-case letters, digits and _ . : /, starting with a letter "
                        "or digit; a case's flags are trimmed, lower-cased and have - folded to _ "
                        "first)"
                    ),
                )
            ],
        ),
        (
            _BASE.replace("{flag: safeguarding, queue: safeguarding}", "{flag: safeguarding}"),
            [
                (
                    "schema.missing_key",
                    6,
                    17,
                    None,
                    "`queue` is required in `constraints.safeguarding`",
                )
            ],
        ),
        (
            _BASE.replace("constraints:\n" + _CONSTRAINTS, ""),
            [("schema.missing_key", 1, 1, None, "`constraints` is required in the ruleset file")],
        ),
    ],
    ids=["not_a_mapping", "no_safeguarding", "bad_flag", "no_queue", "missing"],
)
def test_a_malformed_constraints_section_reports_what_it_did_before(
    variant: str, expected: list[tuple[str, int, int, str | None, str]]
) -> None:
    """Unreadable constraints: the schema's own problems only, the safeguarding pass skipped."""
    assert expected == _problems(variant)


@pytest.mark.parametrize("document", ["hello\n", "constraints\n", "- constraints\n", ""])
def test_which_passes_run_never_depends_on_what_a_message_says(document: str) -> None:
    """A non-mapping file reports the same problems whether or not its text says `constraints`."""
    shown = {
        "hello\n": "string 'hello'",
        "constraints\n": "string 'constraints'",
        "- constraints\n": "a list",
        "": "null (an empty value)",
    }[document]
    assert [
        (
            "schema.type",
            1,
            1,
            None,
            f"the ruleset file must be an object (key: value pairs), got {shown}",
        ),
    ] == _problems(document)


@pytest.mark.parametrize(
    ("rules", "expected"),
    [
        ("", [("schema.missing_key", "`rules` is required in the ruleset file")]),
        ("rules:\n", [("schema.type", "`rules` must be a list, got null (an empty value)")]),
        ("rules: x\n", [("schema.type", "`rules` must be a list, got string 'x'")]),
        ("rules: []\n", [("rules.empty", "`rules` is empty; add at least a catch-all")]),
    ],
)
def test_rules_that_are_missing_or_no_list_are_one_finding_not_also_empty(
    rules: str, expected: list[tuple[str, str]]
) -> None:
    """A missing `rules`, or one that is not a list, is the schema's error alone.

    It was also `rules.empty` (with no line): two findings for one mistake, as an empty or
    non-mapping file was. Only a list with nothing in it is `rules.empty`.
    """
    found = _problems(MINIMAL_HEADER + rules)
    # The header sets no constraints: its lint warnings are not what is tested here.
    assert expected == [(code, message) for code, _, _, _, message in found if code[:5] != "lint."]


def test_the_schema_names_the_sections_it_could_not_read() -> None:
    """`unreadable_sections` is the structured flag later passes read, not problem text."""
    broken = _BASE.replace("constraints:\n" + _CONSTRAINTS, "constraints: 5\n")
    raw, _ = read_ruleset(parse_yaml(broken, "r.yaml").root, "r.yaml")
    assert {"constraints"} == raw.unreadable_sections
    raw, _ = read_ruleset(parse_yaml(_BASE, "r.yaml").root, "r.yaml")
    assert set() == raw.unreadable_sections
    raw, _ = read_ruleset(parse_yaml("hello\n", "r.yaml").root, "r.yaml")
    assert set(SCHEMA_SECTIONS) == raw.unreadable_sections


def test_a_message_mentioning_constraints_elsewhere_leaves_safeguarding_running() -> None:
    """A schema problem in another section that names `constraints` does not skip a pass."""
    text = _BASE.replace("owner: tests\n", "owner: tests\nconstraint: 1\n").replace(
        "'safeguarding' in case.flags", "'urgent' in case.flags", 1
    )
    assert [code for code, *_ in _problems(text)] == [
        "schema.unknown_key",
        "lint.no_consent",  # the test header enforces no consent constraint
        "lint.no_licence",  # nor a licence for prescription
        "constraints.safeguarding_first",
    ]


def test_a_pass_whose_section_is_unreadable_is_recorded_as_skipped() -> None:
    """Unreadable constraints skip exactly the safeguarding pass; a good file skips none."""
    broken = _BASE.replace("constraints:\n" + _CONSTRAINTS, "constraints: 5\n")
    assert run_passes(parse_yaml(broken, "r.yaml")).skipped == ["safeguarding"]
    assert run_passes(parse_yaml(_BASE, "r.yaml")).skipped == []


def test_a_pass_that_reported_an_error_makes_its_dependants_skip() -> None:
    """A pass's name becomes unavailable when it reports an error, so passes needing it skip."""
    ran: list[str] = []

    def failing(state: Compilation) -> list[Problem]:
        ran.append("first")
        return [Problem("rules.empty", "x", state.file, 1, 0)]

    def dependant(state: Compilation) -> list[Problem]:
        ran.append("second")
        return [Problem("rules.empty", "y", state.file, 2, 0)]

    table = (
        CompilerPass("first", "fails", failing),
        CompilerPass("second", "needs first", dependant, frozenset({"first"})),
        CompilerPass("third", "needs nothing", dependant),
    )
    state = run_passes(parse_yaml(_BASE, "r.yaml"), table)
    assert (ran, state.skipped, [p.message for p in state.problems]) == (
        ["first", "second"],
        ["second"],
        ["x", "y"],
    )


def test_constraints_missing_without_a_reported_problem_still_explains_itself(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The invariant guard: no constraints and nothing flagged still yields a problem, not []."""
    monkeypatch.setattr(passes, "read_ruleset", lambda _root, _file: (RawRuleset(), []))
    assert [p for p in _problems(_BASE) if p[0].startswith("schema.")] == [
        ("schema.missing_key", 1, 0, None, "`safeguarding` is required in `constraints`")
    ]
