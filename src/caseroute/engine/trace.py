"""Case rules as data, then as text: which rules fired, and why, rendered only when read.

Choosing is cheap and needs only the leaf truth values (``evaluate_rules``): it yields the
deciding rule and a ``RuleResults`` (which leaves held, which rules fired, the case values the
leaves read), which is what the decision log stores. Explaining (``explain_rules``) renders
every rule's ``RuleTrace`` (the clauses that made it fire or fail, with the case's values)
from those results and the ruleset, for the reply, ``audit show`` and replay readers.
"""

from __future__ import annotations

import json
import threading
import weakref
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from caseroute.domain.decision import Explanation, RuleResults, RuleTrace
from caseroute.domain.slots import new_clause_trace, new_rule_trace
from caseroute.engine.facts import Fact
from caseroute.engine.pyeval import MISSING, Getter, make_getter
from caseroute.rules.ir import (
    AllOf,
    AnyOf,
    Cond,
    Const,
    Leaf,
    LeafRef,
    NotOf,
    evaluate_cond,
    leaf_ids,
)
from caseroute.rules.model import CompiledRuleset, Rule

PATH_SEPARATOR = ","
"""Joins a leaf's field paths into its key in ``RuleResults.actuals``."""

SHAPES_PER_RULE = 64
"""Clause shapes cached per rule (one per combination of its leaves' values seen)."""

_Shape = tuple[tuple[str, bool, str | None], ...]

PATTERNS_PER_PLAN = 128
"""Leaf-result patterns cached per plan (one per distinct set of true leaves seen): what the
ruleset makes of them (the rules fired, the deciding rule, every rule's clause shape). Past
the bound a pattern is worked out again per call, with the same result."""


@dataclass(frozen=True, slots=True)
class _Pattern:
    """What one set of true leaves gives, whatever the case: only the actual values differ.

    Attributes:
        fired: Ids of the rules that fire, in rule order.
        deciding: Index of the first rule that fired; ``None`` if none did (never for a
            compiled ruleset: it ends with a catch-all).
        rules: Per rule: id, description, fired, decided, and its clause shape.
    """

    fired: tuple[str, ...]
    deciding: int | None
    rules: tuple[tuple[str, str, bool, bool, _Shape], ...]


PLAN_CACHE_SIZE = 16
"""Plans kept by ruleset sha256 (``known_plan``) besides those of live rulesets, least recently
used first out: the ones compiled from a decision log's copy have no other owner."""


class RuleResultsMismatchError(ValueError):
    """Stored rule results do not fit the ruleset they name: rendering them would mislead."""


class UnknownRulesetError(ValueError):
    """No plan for the ruleset an explanation names has been prepared in this process."""


def _show(value: Any) -> str:
    if isinstance(value, str):
        return f"'{value}'"
    if isinstance(value, float):
        return f"{value:.4g}"
    # json.dumps' own texts, without its call for the commonest values (~1 us each).
    if value is True or value is False:
        return "true" if value else "false"
    if type(value) is int or (type(value) is list and not value):
        return repr(value)
    return json.dumps(value)


def format_actual(path: str, value: Any) -> str:
    """One field's value as a clause trace shows it (audit masking rewrites exactly this)."""
    return f"{path} = {_show(value)}"


def _read(readers: tuple[tuple[str, Getter], ...], fact: Fact) -> str:
    parts = []
    for path, get in readers:
        value = get(fact)
        parts.append(f"{path} is missing" if value is MISSING else format_actual(path, value))
    return "; ".join(parts)


def actual_values(leaf: Leaf, fact: Fact) -> str:
    """What the case held for the fields a leaf reads, e.g. ``case.urgency = 'routine'``."""
    return _read(tuple((path, make_getter(path)) for path in leaf.paths), fact)


def _python(cond: Cond) -> str:
    """A Python expression of ``cond`` over ``t`` (leaf id -> bool); built from ids only.

    No operator text reaches the expression: leaf ids are quoted with ``repr`` and constants
    are ``True``/``False``, so compiling it cannot run anything a ruleset wrote.
    """
    if isinstance(cond, LeafRef):
        return f"t[{cond.leaf_id!r}]"
    if isinstance(cond, Const):
        return repr(bool(cond.value))
    if isinstance(cond, NotOf):
        return f"(not {_python(cond.child)})"
    if not cond.children:
        return repr(isinstance(cond, AllOf))  # all([]) is true, any([]) is false
    joiner = " and " if isinstance(cond, AllOf) else " or "
    return "(" + joiner.join(_python(child) for child in cond.children) + ")"


def _compile_fires(rules: tuple[Rule, ...]) -> Callable[[dict[str, bool]], tuple[bool, ...]]:
    """One function giving every rule's value from the leaf values (``evaluate_cond``'s)."""
    source = "lambda t: (" + "".join(f"{_python(rule.when)}, " for rule in rules) + ")"
    # The source holds only quoted leaf ids, True/False, and/or/not (see _python); compiling
    # the rules once makes choosing ~10x cheaper than walking 200 condition trees per call.
    fires: Callable[[dict[str, bool]], tuple[bool, ...]] = eval(  # noqa: S307
        compile(source, "<caseroute rules>", "eval"), {"__builtins__": {}}
    )
    return fires


@dataclass(frozen=True, slots=True, weakref_slot=True)
class TracePlan:
    """What choosing and explaining need from one compiled ruleset, prepared once.

    Attributes:
        sha256: The ruleset's sha256 (of its source).
        rules: The rules in order (the last is the catch-all).
        leaf_ids: Leaf ids in compiled order: bit ``i`` of ``RuleResults.true_leaves``.
        path_keys: Leaf id -> its key in ``RuleResults.actuals``.
        readers: Per actuals key (sorted), the field paths it joins with their getters.
        fires: Leaf values -> each rule's value, in rule order.
        rule_leaves: Per rule, the distinct leaf ids its condition reads.
        shapes: Per rule, a cache: its leaves' values -> its clauses as (text, value, actuals
            key or ``None`` for a constant). A rule's clauses depend on nothing else but the
            case's values, so a few shapes serve every decision.
        leaf_bits: Leaf id and its bit in ``RuleResults.true_leaves``, in compiled order.
        actual_keys: Every key ``RuleResults.actuals`` must hold.
        patterns: A cache: the true-leaves bitmask -> its ``_Pattern`` (bounded by
            ``PATTERNS_PER_PLAN``).
    """

    sha256: str
    rules: tuple[Rule, ...]
    leaf_ids: tuple[str, ...]
    path_keys: dict[str, str]
    readers: tuple[tuple[str, tuple[tuple[str, Getter], ...]], ...]
    fires: Callable[[dict[str, bool]], tuple[bool, ...]]
    rule_leaves: tuple[tuple[str, ...], ...]
    shapes: tuple[dict[tuple[bool, ...], _Shape], ...]
    leaf_bits: tuple[tuple[str, int], ...]
    actual_keys: frozenset[str]
    patterns: dict[int, _Pattern]


_LIVE: weakref.WeakValueDictionary[str, TracePlan] = weakref.WeakValueDictionary()
"""Plans of prepared rulesets still in use (a ``LoadedRuleset`` holds its plan)."""
_PLANS: OrderedDict[str, TracePlan] = OrderedDict()
_PLANS_LOCK = threading.Lock()


def known_plan(sha256: str) -> TracePlan | None:
    """The plan of a ruleset this process prepared lately, by the sha256 of its source.

    The sha256 names the source exactly, and compiling is deterministic, so any plan built
    from that source fits every record that names it.
    """
    with _PLANS_LOCK:
        plan = _PLANS.get(sha256)
        if plan is not None:
            _PLANS.move_to_end(sha256)
            return plan
        return _LIVE.get(sha256)


def plan_traces(compiled: CompiledRuleset) -> TracePlan:
    """Prepare a compiled ruleset for ``evaluate_rules`` and ``explain_rules``.

    The plan is also kept by the ruleset's sha256 (``known_plan``), so rendering a stored
    decision of a ruleset this process serves needs no compile.
    """
    plan = _build_plan(compiled)
    with _PLANS_LOCK:
        _LIVE[compiled.sha256] = plan
        _PLANS[compiled.sha256] = plan
        _PLANS.move_to_end(compiled.sha256)
        while len(_PLANS) > PLAN_CACHE_SIZE:
            _PLANS.popitem(last=False)
    return plan


def explain_known(explanation: Explanation) -> tuple[RuleTrace, ...]:
    """The rule traces of an explanation, from a ruleset this process prepared (a RuleExplainer).

    Args:
        explanation: An explanation; one without ``rule_results`` keeps its ``rules``.

    Returns:
        Its rule traces.

    Raises:
        UnknownRulesetError: If no ruleset with its ``ruleset_sha256`` was prepared lately
            (``audit.explain.StoredExplainer`` compiles the decision log's copy instead).
        RuleResultsMismatchError: If the results do not fit that ruleset.
    """
    if explanation.rule_results is None:
        return explanation.rules
    plan = known_plan(explanation.ruleset_sha256)
    if plan is None:
        raise UnknownRulesetError(f"no prepared ruleset has sha256 {explanation.ruleset_sha256}")
    return explain_rules(plan, explanation.rule_results)


def explain_with(*plans: TracePlan) -> Callable[[Explanation], tuple[RuleTrace, ...]]:
    """A RuleExplainer for decisions of the given rulesets only (tests, tools holding them).

    Raises (when called):
        UnknownRulesetError: For a decision of another ruleset.
        RuleResultsMismatchError: If the results do not fit the ruleset.
    """
    by_sha = {plan.sha256: plan for plan in plans}

    def explain(explanation: Explanation) -> tuple[RuleTrace, ...]:
        if explanation.rule_results is None:
            return explanation.rules
        plan = by_sha.get(explanation.ruleset_sha256)
        if plan is None:
            raise UnknownRulesetError(f"not one of these rulesets: {explanation.ruleset_sha256}")
        return explain_rules(plan, explanation.rule_results)

    return explain


def _build_plan(compiled: CompiledRuleset) -> TracePlan:
    path_keys = {
        leaf_id: PATH_SEPARATOR.join(leaf.paths) for leaf_id, leaf in compiled.leaves.items()
    }
    groups = {PATH_SEPARATOR.join(leaf.paths): leaf.paths for leaf in compiled.leaves.values()}
    readers = tuple(
        (key, tuple((path, make_getter(path)) for path in groups[key])) for key in sorted(groups)
    )
    return TracePlan(
        compiled.sha256,
        compiled.rules,
        tuple(compiled.leaves),
        path_keys,
        readers,
        _compile_fires(compiled.rules),
        tuple(tuple(dict.fromkeys(leaf_ids(rule.when))) for rule in compiled.rules),
        tuple({} for _ in compiled.rules),
        tuple((leaf_id, 1 << i) for i, leaf_id in enumerate(compiled.leaves)),
        frozenset(path_keys.values()),
        {},
    )


def _pattern(plan: TracePlan, mask: int) -> _Pattern:
    """The rules fired and every rule's clause shape for the leaves set in ``mask``.

    Depends on the plan and the mask alone (the leaves' values), never on a case's values, so
    it is remembered on the plan by mask, up to ``PATTERNS_PER_PLAN`` patterns.
    """
    found = plan.patterns.get(mask)
    if found is not None:
        return found
    truth = {leaf_id: bool(mask & bit) for leaf_id, bit in plan.leaf_bits}
    flags = plan.fires(truth)
    rules = []
    decided = False
    for rule, flag, reads, shapes in zip(
        plan.rules, flags, plan.rule_leaves, plan.shapes, strict=True
    ):
        key = tuple(truth[leaf_id] for leaf_id in reads)
        shape = shapes.get(key)
        if shape is None:
            shape = tuple(_why(rule.when, truth, flag, plan.path_keys))
            if len(shapes) < SHAPES_PER_RULE:
                shapes[key] = shape  # a racing thread stores an equal shape: harmless
        rules.append((rule.rule_id, rule.description, flag, flag and not decided, shape))
        decided = decided or flag
    # Invariant: the compiler ends every ruleset with a catch-all, so some rule fires; a plan
    # built otherwise keeps ``deciding`` None and ``evaluate_rules`` refuses to choose.
    pattern = _Pattern(
        tuple(rule.rule_id for rule, flag in zip(plan.rules, flags, strict=True) if flag),
        flags.index(True) if True in flags else None,
        tuple(rules),
    )
    if len(plan.patterns) < PATTERNS_PER_PLAN:
        plan.patterns[mask] = pattern  # a racing thread stores an equal pattern: harmless
    return pattern


def evaluate_rules(plan: TracePlan, truth: dict[str, bool], fact: Fact) -> tuple[RuleResults, Rule]:
    """Which rules fire for these leaf values; the first that fired decides.

    Args:
        plan: The ruleset's plan.
        truth: Leaf values from the engine of record.
        fact: The case fact (the values the leaves read are kept for the explanation).

    Returns:
        The results as data, and the deciding rule.
    """
    results, rule, _ = choose_and_explain(plan, truth, fact, explain=False)
    return results, rule


def choose_and_explain(
    plan: TracePlan, truth: dict[str, bool], fact: Fact, *, explain: bool
) -> tuple[RuleResults, Rule, tuple[RuleTrace, ...]]:
    """``evaluate_rules``, and with ``explain`` the traces ``explain_rules`` renders from them.

    One pattern lookup for both: ``explain_rules`` checks stored results against the plan
    (they may come from another ruleset's log); these were made from it just now.

    Args:
        plan: The ruleset's plan.
        truth: Leaf values from the engine of record.
        fact: The case fact.
        explain: Render every rule's trace (else the traces are empty).

    Returns:
        The results as data, the deciding rule, and the traces.
    """
    mask = 0
    for leaf_id, bit in plan.leaf_bits:
        if truth[leaf_id]:
            mask |= bit
    pattern = _pattern(plan, mask)
    actuals = tuple([(key, _read(readers, fact)) for key, readers in plan.readers])
    if pattern.deciding is None:
        # The compiler ends every ruleset with a catch-all: a plan where nothing fires was
        # not compiled, and choosing from it must stop, never fall to some rule.
        raise ValueError("no rule fired: the ruleset has no catch-all rule")
    results = RuleResults(format(mask, "x"), pattern.fired, actuals)
    # Invariant: the actuals' keys are the plan's (plan.readers), as explain_rules requires.
    traces = _render(pattern, dict(actuals)) if explain else ()
    return results, plan.rules[pattern.deciding], traces


def _render(pattern: _Pattern, actual: dict[str | None, str]) -> tuple[RuleTrace, ...]:
    """Every rule's trace from its pattern's shapes and the case's values (by actuals key)."""
    actual[None] = "constant"
    return tuple(
        [
            new_rule_trace(
                rule_id,
                description,
                flag,
                decided,
                tuple([new_clause_trace(text, value, actual[at]) for text, value, at in shape]),
            )
            for rule_id, description, flag, decided, shape in pattern.rules
        ]
    )


def _why(
    cond: Cond,
    truth: dict[str, bool],
    want: bool,
    path_keys: dict[str, str],
    negated: bool = False,
) -> list[tuple[str, bool, str | None]]:
    """Clauses explaining why ``cond`` evaluated to ``want``: (text, value, actuals key)."""
    if isinstance(cond, LeafRef):
        value = truth[cond.leaf_id]
        text = f"not {cond.text}" if negated else cond.text
        return [(text, value != negated, path_keys[cond.leaf_id])]
    if isinstance(cond, Const):
        return [(cond.text, cond.value, None)]
    if isinstance(cond, NotOf):
        return _why(cond.child, truth, not want, path_keys, negated=not negated)
    explain_all = (isinstance(cond, AllOf) and want) or (isinstance(cond, AnyOf) and not want)
    chosen = (
        cond.children
        if explain_all
        else tuple(c for c in cond.children if evaluate_cond(c, truth) == want)
    )
    # Under a NOT each clause is shown negated ("not A" holds), so polarity passes through.
    return [clause for child in chosen for clause in _why(child, truth, want, path_keys, negated)]


def explain_rules(plan: TracePlan, results: RuleResults) -> tuple[RuleTrace, ...]:
    """Every rule's trace: fired or not, decided or not, and the clauses that say why.

    Args:
        plan: The plan of the ruleset that produced ``results``.
        results: The evaluation as data (as decided, or as stored).

    Returns:
        One trace per rule, in rule order.

    Raises:
        RuleResultsMismatchError: If the results do not fit the ruleset (another leaf count,
            other rules firing, a value the clauses need missing): never rendered wrongly.
    """
    try:
        mask = int(results.true_leaves, 16)
    except ValueError:
        raise RuleResultsMismatchError("true_leaves is not a hex bitmask") from None
    if mask < 0 or mask >> len(plan.leaf_ids):
        raise RuleResultsMismatchError("true_leaves names leaves the ruleset does not have")
    pattern = _pattern(plan, mask)
    if pattern.fired != results.fired:
        raise RuleResultsMismatchError(
            f"the ruleset fires {list(pattern.fired)} for these leaves; the results say "
            f"{list(results.fired)}"
        )
    actual: dict[str | None, str] = dict(results.actuals)
    if not plan.actual_keys <= actual.keys():
        missing = sorted(plan.actual_keys - actual.keys())
        raise RuleResultsMismatchError(f"no actual values for {missing}")
    return _render(pattern, actual)
