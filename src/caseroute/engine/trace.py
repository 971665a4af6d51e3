"""Explain rule outcomes: for each rule, the clauses that made it fire or fail, with values."""

from __future__ import annotations

import json
from typing import Any

from caseroute.domain.decision import ClauseTrace, RuleTrace
from caseroute.engine.facts import Fact
from caseroute.engine.pyeval import MISSING, make_getter
from caseroute.rules.ir import AllOf, AnyOf, Cond, Const, Leaf, LeafRef, NotOf, evaluate_cond
from caseroute.rules.model import Rule


def _show(value: Any) -> str:
    if isinstance(value, str):
        return f"'{value}'"
    if isinstance(value, float):
        return f"{value:.4g}"
    return json.dumps(value)


def format_actual(path: str, value: Any) -> str:
    """One field's value as a clause trace shows it (audit masking rewrites exactly this)."""
    return f"{path} = {_show(value)}"


def actual_values(leaf: Leaf, fact: Fact) -> str:
    """What the case held for the fields a leaf reads, e.g. ``case.urgency = 'routine'``."""
    parts = []
    for path in leaf.paths:
        value = make_getter(path)(fact)
        parts.append(f"{path} is missing" if value is MISSING else format_actual(path, value))
    return "; ".join(parts)


def _why(
    cond: Cond,
    truth: dict[str, bool],
    want: bool,
    leaves: dict[str, Leaf],
    fact: Fact,
    negated: bool = False,
) -> list[ClauseTrace]:
    """Clauses explaining why ``cond`` evaluated to ``want``."""
    if isinstance(cond, LeafRef):
        value = truth[cond.leaf_id]
        text = f"not {cond.text}" if negated else cond.text
        return [ClauseTrace(text, value != negated, actual_values(leaves[cond.leaf_id], fact))]
    if isinstance(cond, Const):
        return [ClauseTrace(cond.text, cond.value, "constant")]
    if isinstance(cond, NotOf):
        return _why(cond.child, truth, not want, leaves, fact, negated=not negated)
    decisive = tuple(c for c in cond.children if evaluate_cond(c, truth) == want)
    explain_all = (isinstance(cond, AllOf) and want) or (isinstance(cond, AnyOf) and not want)
    chosen = cond.children if explain_all else decisive
    # Under a NOT each clause is shown negated ("not A" holds), so polarity passes through.
    return [
        clause for child in chosen for clause in _why(child, truth, want, leaves, fact, negated)
    ]


def trace_rules(
    rules: tuple[Rule, ...], truth: dict[str, bool], leaves: dict[str, Leaf], fact: Fact
) -> tuple[tuple[RuleTrace, ...], Rule]:
    """Evaluate every rule and explain each; the first that fired decides.

    Args:
        rules: Rules in order (the last is the catch-all, so one always fires).
        truth: Leaf values from the engine of record.
        leaves: Leaf table.
        fact: The case fact (for actual values).

    Returns:
        Traces for all rules, and the deciding rule.
    """
    traces = []
    deciding: Rule | None = None
    for rule in rules:
        fired = evaluate_cond(rule.when, truth)
        decided = fired and deciding is None
        if decided:
            deciding = rule
        traces.append(
            RuleTrace(
                rule.rule_id,
                rule.description,
                fired,
                decided,
                tuple(_why(rule.when, truth, fired, leaves, fact)),
            )
        )
    assert deciding is not None  # noqa: S101 - the compiler guarantees a final catch-all
    return tuple(traces), deciding
