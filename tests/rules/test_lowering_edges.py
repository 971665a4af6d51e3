"""The condition pass on operator mistakes: each is one problem with its code, place and advice."""

from __future__ import annotations

import pytest

from caseroute.domain.errors import RulesetError
from caseroute.rules.ir import Const, LeafKind, LeafRef
from caseroute.testing import CATCH_ALL_RULE, MINIMAL_HEADER, compile_text, ruleset_with_rules

_DECLARED = """\
params:
  on: true
  limit: 3
  name: x
  many: [a, b]
attributes:
  vip: boolean
  score: number
"""
_HEADER = MINIMAL_HEADER + _DECLARED
_WHEN_LINE = 23  # the line of rule r1's `when:` below _HEADER, `rules:` and the safeguarding rule
_INTENTS = "one of clinical, prescription, appointment, billing, complaint, general"

Found = list[tuple[str, int, int, str | None, str]]


def _ruleset(when: str) -> str:
    rule = f"  - id: r1\n    when: {when}\n    then: {{route: {{queue: q}}}}\n"
    return ruleset_with_rules(rule + CATCH_ALL_RULE, _HEADER)


def _problems(when: str) -> Found:
    with pytest.raises(RulesetError) as exc:
        compile_text(_ruleset(when))
    # Unused-param lint warnings (rule id None) are not what these tests pin.
    return [
        (p.code, p.line, p.column, p.rule_id, p.message)
        for p in exc.value.problems
        if p.rule_id is not None
    ]


@pytest.mark.parametrize(
    ("when", "expected"),
    [
        (
            "\"case.attributes.vip == 'yes'\"",
            (
                "expr.type_mismatch",
                12,
                (
                    "`case.attributes.vip` is boolean but is compared with 'yes'; compare it with "
                    "true or false"
                ),
            ),
        ),
        (
            "\"case.age_minutes == 'x'\"",
            (
                "expr.type_mismatch",
                12,
                (
                    "`case.age_minutes` is number but is compared with 'x'; compare it with a "
                    "number such as 3 or -0.5 (no quotes)"
                ),
            ),
        ),
        (
            '"3 in case.flags"',
            (
                "expr.type_mismatch",
                12,
                (
                    "`case.flags` is list of strings but is compared with 3; put the value in "
                    "quotes, e.g. 'text'"
                ),
            ),
        ),
        (
            '"exists(params.limit)"',
            ("expr.type_mismatch", 19, "exists() takes a field, not a param"),
        ),
        (
            '"3"',
            ("expr.not_a_condition", 12, "3 is a value, not a condition; compare it with a field"),
        ),
        (
            "\"'text'\"",
            (
                "expr.not_a_condition",
                12,
                "'text' is a value, not a condition; compare it with a field",
            ),
        ),
        (
            "params.limit",
            ("expr.not_a_condition", 11, "`params.limit` is a constant, not a condition"),
        ),
        (
            "case.age_minutes",
            (
                "expr.not_a_condition",
                11,
                (
                    "`case.age_minutes` is number, not true/false; compare it, e.g. "
                    "`case.age_minutes == ...`"
                ),
            ),
        ),
        (
            "case.region_areas",
            (
                "expr.not_a_condition",
                11,
                (
                    "`case.region_areas` is list of strings, not true/false; test one value, "
                    "e.g. `'value' in case.region_areas` (`==` on a list is an error)"
                ),
            ),
        ),
        (
            "case.flags",
            (
                "expr.not_a_condition",
                11,
                (
                    "`case.flags` is list of strings, not true/false; test one value, "
                    "e.g. `'value' in case.flags` (`==` on a list is an error)"
                ),
            ),
        ),
        (
            '"1 == 2"',
            ("expr.constant", 12, "`1 == 2` compares two constants; one side must be a field"),
        ),
        (
            "\"case.flags == 'x'\"",
            (
                "expr.type_mismatch",
                12,
                "`case.flags` is a list; test membership with `'value' in case.flags`",
            ),
        ),
        (
            "\"case.intent > 'x'\"",
            (
                "expr.type_mismatch",
                12,
                f"`>` orders numbers, but `case.intent` is {_INTENTS}; use == or != or `in [...]`",
            ),
        ),
        (
            '"case.age_minutes == case.intent"',
            (
                "expr.type_mismatch",
                12,
                (
                    f"`case.age_minutes` is number but `case.intent` is {_INTENTS}; compare like "
                    "with like"
                ),
            ),
        ),
        (
            '"case.region == params.many"',
            (
                "expr.type_mismatch",
                12,
                "`case.region == params.many` compares with a list; use `in` for lists",
            ),
        ),
        (
            '"case.region in params.name"',
            (
                "expr.type_mismatch",
                12,
                "`in` needs a list on the right, e.g. `case.region in ['a', 'b']`",
            ),
        ),
        (
            "\"case.flags in ['a']\"",
            (
                "expr.type_mismatch",
                12,
                "`case.flags` is a list; test one value with `'value' in case.flags`",
            ),
        ),
        ('"case.region in []"', ("expr.list_size", 12, "`in` lists need 1 to 50 values, got 0")),
        (
            '"case.region in [' + ", ".join(f"'r{i}'" for i in range(51)) + ']"',
            ("expr.list_size", 12, "`in` lists need 1 to 50 values, got 51"),
        ),
        (
            "\"'a' in case.region\"",
            (
                "expr.type_mismatch",
                12,
                "`case.region` is string, not a list; use `case.region == ...`",
            ),
        ),
        (
            "\"'a' in ['a']\"",
            (
                "expr.constant",
                12,
                "`'a' in ['a']` tests constants only; one side must be a field",
            ),
        ),
        (
            '"case.region in case.flags"',
            (
                "expr.unsupported",
                12,
                (
                    "`case.region in case.flags` tests a field against another field's list; "
                    "compare with constants instead"
                ),
            ),
        ),
        (
            "\"case.intent == 'clinicl'\"",
            (
                "expr.unknown_value",
                12,
                f"`case.intent` is never 'clinicl'; it is {_INTENTS} (did you mean 'clinical'?)",
            ),
        ),
        (
            "\"case.intent == 'zzz'\"",
            ("expr.unknown_value", 12, f"`case.intent` is never 'zzz'; it is {_INTENTS}"),
        ),
        (
            "\"case.attributes.tier == 'x'\"",
            (
                "expr.undeclared_attribute",
                12,
                (
                    "case attribute `tier` is not declared; add `tier: string|number|boolean` "
                    "under `attributes:` so its type can be checked"
                ),
            ),
        ),
        (
            '"exists(case.urgncy)"',
            (
                "expr.unknown_field",
                19,
                "unknown field `case.urgncy` (did you mean `case.urgency`?)",
            ),
        ),
        (
            "\"case.intent in ['clinical', 'nope']\"",
            ("expr.unknown_value", 12, f"`case.intent` is never 'nope'; it is {_INTENTS}"),
        ),
        (
            "\"case.urgncy in ['high']\"",
            (
                "expr.unknown_field",
                12,
                "unknown field `case.urgncy` (did you mean `case.urgency`?)",
            ),
        ),
        (
            '"params.limt == case.age_minutes"',
            (
                "expr.unknown_param",
                12,
                "unknown param `params.limt` (did you mean `params.limit`?)",
            ),
        ),
    ],
)
def test_a_condition_mistake_is_one_problem_at_its_place(
    when: str, expected: tuple[str, int, str]
) -> None:
    """Each mistaken condition gives exactly one problem: code, line:column, rule id, advice."""
    code, column, message = expected
    assert _problems(when) == [(code, _WHEN_LINE, column, "r1", message)]


def test_a_list_param_tested_in_a_list_field_is_an_error_not_a_dropped_rule() -> None:
    """`params.<list> in case.flags` is refused with advice; the rule is never silently dropped."""
    assert _problems('"params.many in case.flags"') == [
        (
            "expr.type_mismatch",
            _WHEN_LINE,
            12,
            "r1",
            (
                "`params.many` is a list, and `in` tests one value against `case.flags`; test "
                "each value, e.g. `'a' in case.flags or 'b' in case.flags`"
            ),
        )
    ]


def test_a_boolean_param_as_the_condition_is_a_constant() -> None:
    """`when: params.on` (a true param) lowers to the constant true: a catch-all."""
    text = ruleset_with_rules(
        "  - id: r1\n    when: params.on\n    then: {route: {queue: q}}\n", _HEADER
    )
    compiled = compile_text(text)
    assert (compiled.rules[-1].rule_id, compiled.rules[-1].when) == (
        "r1",
        Const(value=True, text="params.on"),
    )


@pytest.mark.parametrize(
    ("block", "expected"),
    [
        (
            "|\n      case.intent == 'clinical'\n      and case.age_minutes == 'x'\n",
            (
                "expr.type_mismatch",
                _WHEN_LINE + 2,
                11,
                (
                    "`case.age_minutes` is number but is compared with 'x'; compare it with a "
                    "number such as 3 or -0.5 (no quotes)"
                ),
            ),
        ),
        (
            ">\n      case.intent == 'clinical'\n      and case.urgncy == 'x'\n",
            (
                "expr.unknown_field",
                _WHEN_LINE + 2,
                11,
                "unknown field `case.urgncy` (did you mean `case.urgency`?)",
            ),
        ),
        (
            "|\n      case.intent == 'clinical'\n\n      and case.urgncy == 'x'\n",
            (
                "expr.unknown_field",
                _WHEN_LINE + 3,
                11,
                "unknown field `case.urgncy` (did you mean `case.urgency`?)",
            ),
        ),
        (
            "|\n      case.intent ==\n",
            (
                "expr.syntax",
                _WHEN_LINE + 1,
                21,
                "cannot read condition: expected a field, a value or `(`, found end of condition",
            ),
        ),
        (
            ">\n      case.intent == 'clinical' and\n",
            (
                "expr.syntax",
                _WHEN_LINE + 1,
                36,
                "cannot read condition: expected a field, a value or `(`, found end of condition",
            ),
        ),
        (
            "|\n      case.urgncy == 'x'\n",
            (
                "expr.unknown_field",
                _WHEN_LINE + 1,
                7,
                "unknown field `case.urgncy` (did you mean `case.urgency`?)",
            ),
        ),
    ],
)
def test_a_problem_in_a_block_scalar_condition_points_at_its_own_line(
    block: str, expected: tuple[str, int, int, str]
) -> None:
    """In a `|` or `>` condition, the problem's line:column is where the mistake is written."""
    code, line, column, message = expected
    assert _problems(block) == [(code, line, column, "r1", message)]


def test_a_boolean_field_alone_and_a_field_against_a_like_field_are_conditions() -> None:
    """`case.attributes.vip` tests it is true; two number fields compare with each other."""
    text = ruleset_with_rules(
        "  - id: r1\n    when: case.attributes.vip\n    then: {route: {queue: q}}\n"
        "  - id: r2\n    when: case.age_minutes >= case.classification_confidence\n"
        "    then: {route: {queue: q}}\n" + CATCH_ALL_RULE,
        _HEADER,
    )
    compiled = compile_text(text)
    leaves = {
        leaf_id: (leaf.kind, leaf.path, leaf.op, leaf.value, leaf.ref)
        for leaf_id, leaf in compiled.leaves.items()
    }
    assert [(r.rule_id, r.when) for r in compiled.rules[1:3]] == [
        ("r1", LeafRef("L1", "case.attributes.vip")),
        ("r2", LeafRef("L2", "case.age_minutes >= case.classification_confidence")),
    ]
    assert [leaves["L1"], leaves["L2"]] == [
        (LeafKind.COMPARE, "case.attributes.vip", "==", True, None),
        (LeafKind.COMPARE, "case.age_minutes", ">=", None, "case.classification_confidence"),
    ]


def test_an_unfinished_block_condition_at_the_end_of_the_file_points_past_its_last_text() -> None:
    """A `|` condition that is the file's last line and ends early: its line, after its text."""
    rest = (
        "  - id: rest\n    then: {route: {queue: by_intent}}\n    when: |\n      case.intent ==\n"
    )
    with pytest.raises(RulesetError) as exc:
        compile_text(ruleset_with_rules(rest, MINIMAL_HEADER))
    assert [(p.code, p.line, p.column) for p in exc.value.problems if p.rule_id == "rest"] == [
        ("expr.syntax", 17, 21),
    ]


@pytest.mark.parametrize(
    ("when", "expected"),
    [
        (
            "case.intent in params.many",
            (
                "expr.unknown_value",
                _WHEN_LINE,
                11,
                "r1",
                (
                    "`case.intent` is never 'a' (a value of `params.many`, line {line}: fix it "
                    "there); "
                    f"it is {_INTENTS}"
                ),
            ),
        ),
        (
            "case.intent == params.name",
            (
                "expr.unknown_value",
                _WHEN_LINE,
                11,
                "r1",
                (
                    "`case.intent` is never 'x' (a value of `params.name`, line {line}: fix it "
                    "there); "
                    f"it is {_INTENTS}"
                ),
            ),
        ),
        (
            "case.urgency == params.limit",
            (
                "expr.type_mismatch",
                _WHEN_LINE,
                11,
                "r1",
                (
                    "`case.urgency` is one of routine, urgent, critical but is compared with 3 (a "
                    "value of `params.limit`, line {line}: fix it there); put the value in quotes, "
                    "e.g. 'text'"
                ),
            ),
        ),
    ],
    ids=["in-a-list-param", "equal-to-a-param", "wrong-type-param"],
)
def test_a_wrong_value_in_a_param_names_the_param_and_its_line(
    when: str, expected: tuple[str, int, int, str, str]
) -> None:
    """The condition's text does not show the value: the message says where it is written."""
    name = when.rsplit(".", 1)[1]
    line = next(
        number
        for number, text in enumerate(_ruleset(when).splitlines(), start=1)
        if text.startswith(f"  {name}:")
    )
    code, at, column, rule_id, message = expected
    assert [(code, at, column, rule_id, message.format(line=line))] == _problems(when)
