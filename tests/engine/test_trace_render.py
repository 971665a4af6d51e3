"""Choosing and explaining from one pattern lookup; traces built without their frozen __init__."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from caseroute.domain.decision import ClauseTrace, RuleTrace
from caseroute.domain.slots import new_clause_trace, new_rule_trace
from caseroute.engine.pyeval import PythonLeafEvaluator
from caseroute.engine.trace import (
    choose_and_explain,
    evaluate_rules,
    explain_rules,
    plan_traces,
)
from caseroute.testing import reference_compiled

FACTS: list[dict[str, Any]] = [
    {"case": {"intent": "clinical", "urgency": "urgent", "flags": [], "tier": "standard"}},
    {"case": {"intent": "billing", "urgency": "routine", "flags": ["safeguarding"]}},
    {"case": {"intent": "clinical", "flags": ["vip"], "classification_confidence": 0.2}},
    {"case": {"flags": []}, "sentiment": {"count": 2, "latest": -0.9, "change": -0.5}},
    {
        "case": {"intent": "admin", "flags": []},
        "sla": {"minutes_remaining": -3, "risk": "breached"},
    },
]


@pytest.mark.parametrize("fact", FACTS)
def test_choosing_and_explaining_at_once_equals_the_two_steps(fact: dict[str, Any]) -> None:
    """Results, deciding rule and traces equal evaluate_rules then explain_rules on them."""
    compiled = reference_compiled()
    plan = plan_traces(compiled)
    truth = {
        k: k in PythonLeafEvaluator(compiled.leaves).true_leaves(fact) for k in compiled.leaves
    }
    results, rule = evaluate_rules(plan, truth, fact)
    assert (results, rule, explain_rules(plan, results)) == choose_and_explain(
        plan, truth, fact, explain=True
    )


def test_choosing_without_explaining_renders_no_trace() -> None:
    """explain=False: the same results and rule, and no traces."""
    compiled = reference_compiled()
    plan = plan_traces(compiled)
    fact = FACTS[0]
    truth = {
        k: k in PythonLeafEvaluator(compiled.leaves).true_leaves(fact) for k in compiled.leaves
    }
    assert (*evaluate_rules(plan, truth, fact), ()) == choose_and_explain(
        plan, truth, fact, explain=False
    )


def test_a_trace_built_by_its_setters_is_the_constructors_value() -> None:
    """Equal, equally hashed, of the same type, and still frozen."""
    clause = new_clause_trace("case.x == 1", value=True, actual="case.x = 1")
    built = new_rule_trace("r", "a rule", fired=True, decided=False, clauses=(clause,))
    expected = RuleTrace(
        "r",
        "a rule",
        fired=True,
        decided=False,
        clauses=(ClauseTrace("case.x == 1", value=True, actual="case.x = 1"),),
    )
    assert (expected, hash(expected), RuleTrace, ClauseTrace) == (
        built,
        hash(built),
        type(built),
        type(built.clauses[0]),
    )
    with pytest.raises(dataclasses.FrozenInstanceError):
        built.fired = False  # type: ignore[misc]
