"""Warm choosing and explaining: leaf-result patterns kept per plan, fast value texts, getters."""

from __future__ import annotations

import json
from dataclasses import replace
from enum import IntEnum
from typing import Any

import pytest

from caseroute.domain.decision import RuleResults
from caseroute.engine import trace
from caseroute.engine.pyeval import MISSING, make_getter
from caseroute.engine.trace import (
    RuleResultsMismatchError,
    evaluate_rules,
    explain_rules,
    format_actual,
    plan_traces,
)
from caseroute.testing import reference_compiled


class _Level(IntEnum):
    HIGH = 3


@pytest.mark.parametrize(
    "value",
    [True, False, 0, -7, 12345678901234567890, [], ["a", "b"], None, {"k": 1}, _Level.HIGH],
)
def test_value_texts_equal_json_dumps(value: Any) -> None:
    """Booleans, ints and the empty list skip json.dumps with its exact text; others use it."""
    assert f"case.x = {json.dumps(value)}" == format_actual("case.x", value)


def test_strings_and_floats_keep_their_own_texts() -> None:
    """Strings are quoted, floats shown to four significant digits, as before."""
    assert (
        format_actual("case.x", "US-TX"),
        format_actual("case.x", -0.3),
    ) == ("case.x = 'US-TX'", "case.x = -0.3")


@pytest.mark.parametrize(
    ("fact", "expected"),
    [
        ({"case": {"intent": "clinical"}}, "clinical"),
        ({"case": {}}, MISSING),
        ({}, MISSING),
        ({"case": "not a mapping"}, MISSING),
        ("not a fact", MISSING),
        ({"case": {"intent": None}}, None),
    ],
)
def test_two_part_getter_reads_like_the_loop(fact: Any, expected: Any) -> None:
    """A two-part path's unrolled getter gives the value, or MISSING wherever the loop did."""
    assert expected is make_getter("case.intent")(fact)


@pytest.mark.parametrize(
    ("path", "fact", "expected"),
    [
        ("flags", {"flags": ["x"]}, ["x"]),
        ("case.attributes.band", {"case": {"attributes": {"band": 2}}}, 2),
        ("case.attributes.band", {"case": {"attributes": "no"}}, MISSING),
        ("case.attributes.band", {"case": {}}, MISSING),
    ],
)
def test_other_paths_use_the_loop(path: str, fact: Any, expected: Any) -> None:
    """One- and three-part paths still read through the general loop."""
    assert expected == make_getter(path)(fact)


def _plan() -> trace.TracePlan:
    return plan_traces(reference_compiled())


def test_a_pattern_is_kept_once_and_reused() -> None:
    """The second decision with the same true leaves reuses the pattern the first one kept."""
    plan = _plan()
    truth = dict.fromkeys(plan.leaf_ids, False)
    results, rule = evaluate_rules(plan, truth, {})
    assert (
        list(plan.patterns),
        rule.rule_id,
        results.fired,
    ) == ([0], "by-intent", ("by-intent",))
    kept = plan.patterns[0]
    explain_rules(plan, results)
    assert list(plan.patterns) == [0]
    assert kept is plan.patterns[0]


def test_patterns_are_bounded_and_past_the_bound_give_the_same_traces(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """At the bound no pattern is kept, and one worked out again renders the same traces."""
    plan = _plan()
    truth = dict.fromkeys(plan.leaf_ids, False)
    results, _ = evaluate_rules(plan, truth, {})
    kept = explain_rules(plan, results)
    fresh = _plan()
    monkeypatch.setattr(trace, "PATTERNS_PER_PLAN", 0)
    again, _ = evaluate_rules(fresh, truth, {})
    assert (results, kept, {}) == (again, explain_rules(fresh, again), fresh.patterns)


def test_stored_results_whose_leaves_fire_other_rules_are_refused() -> None:
    """A kept pattern's fired rules are checked against stored results like a fresh one's."""
    plan = _plan()
    truth = dict.fromkeys(plan.leaf_ids, False)
    results, _ = evaluate_rules(plan, truth, {})
    wrong = RuleResults(results.true_leaves, ("clinical", "by-intent"), results.actuals)
    with pytest.raises(RuleResultsMismatchError) as exc:
        explain_rules(plan, wrong)
    assert str(exc.value) == (
        "the ruleset fires ['by-intent'] for these leaves; the results say "
        "['clinical', 'by-intent']"
    )


def test_choosing_where_no_rule_fires_stops() -> None:
    """A plan without a catch-all (never compiled so) refuses to choose when nothing fires."""
    compiled = reference_compiled()
    plan = plan_traces(replace(compiled, rules=compiled.rules[:-1], sha256="no-catch-all"))
    with pytest.raises(ValueError, match="no rule fired"):
        evaluate_rules(plan, dict.fromkeys(plan.leaf_ids, False), {})
