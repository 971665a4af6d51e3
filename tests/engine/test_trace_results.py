"""Choosing from leaf values, explaining from results: engine.trace's two halves."""

from __future__ import annotations

import gc
from collections import OrderedDict
from dataclasses import replace
from typing import Any
from weakref import WeakValueDictionary

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from caseroute.domain.case import Case, Channel, Intent, Tier, Urgency
from caseroute.domain.decision import ClauseTrace, RuleResults, RuleTrace
from caseroute.engine import trace
from caseroute.engine.case_rules import EngineKind, prepare_ruleset
from caseroute.engine.decide import decide
from caseroute.engine.facts import Fact, build_case_fact
from caseroute.engine.signals import derive_signals
from caseroute.engine.trace import (
    RuleResultsMismatchError,
    UnknownRulesetError,
    evaluate_rules,
    explain_known,
    explain_rules,
    known_plan,
    plan_traces,
)
from caseroute.rules.ir import AllOf, AnyOf, Cond, Const, Leaf, LeafRef, NotOf, evaluate_cond
from caseroute.rules.model import CompiledRuleset, Rule
from caseroute.testing import (
    NOW,
    clock,
    compile_text,
    make_agent,
    make_case,
    make_roster,
    reading,
    reference_ruleset,
    ruleset_with_rules,
)

REFERENCE = reference_ruleset(EngineKind.PYTHON)
ROSTER = make_roster(make_agent("a1"), make_agent("a2"))

NOTS = ruleset_with_rules(
    """\
  - id: odd
    when: "not (case.channel == 'chat' or case.urgency == 'routine') and case.tier != 'gold'"
    then: {route: {queue: by_intent}}
  - id: either
    when: "case.intent == 'billing' or not case.region == 'US-TX'"
    then: {route: {queue: by_intent}}
  - id: rest
    when: true
    then: {route: {queue: by_intent}}
"""
)


def _fused(
    rules: tuple[Rule, ...], truth: dict[str, bool], compiled: CompiledRuleset, fact: Fact
) -> tuple[RuleTrace, ...]:
    """The traces as trace_rules built them before issue 13 (evaluation and text fused)."""

    def why(cond: Cond, want: bool, negated: bool = False) -> list[ClauseTrace]:
        if isinstance(cond, LeafRef):
            text = f"not {cond.text}" if negated else cond.text
            leaf: Leaf = compiled.leaves[cond.leaf_id]
            return [
                ClauseTrace(text, truth[cond.leaf_id] != negated, trace.actual_values(leaf, fact))
            ]
        if isinstance(cond, Const):
            return [ClauseTrace(cond.text, cond.value, "constant")]
        if isinstance(cond, NotOf):
            return why(cond.child, not want, not negated)
        decisive = tuple(c for c in cond.children if evaluate_cond(c, truth) == want)
        explain_all = (isinstance(cond, AllOf) and want) or (isinstance(cond, AnyOf) and not want)
        chosen = cond.children if explain_all else decisive
        return [clause for child in chosen for clause in why(child, want, negated)]

    traces = []
    decided = False
    for rule in rules:
        fired = evaluate_cond(rule.when, truth)
        traces.append(
            RuleTrace(
                rule.rule_id,
                rule.description,
                fired,
                fired and not decided,
                tuple(why(rule.when, fired)),
            )
        )
        decided = decided or fired
    return tuple(traces)


cases = st.builds(
    make_case,
    channel=st.sampled_from(list(Channel)),
    intent=st.sampled_from(list(Intent)),
    urgency=st.sampled_from(list(Urgency)),
    tier=st.sampled_from(list(Tier)),
    region=st.sampled_from(["US-TX", "US-FL", "GB-ENG"]),
    patient_location=st.sampled_from(["US-TX", "US-FL", "GB-ENG"]),
    sentiment=st.lists(st.builds(reading, st.floats(-1, 1), st.floats(0, 120)), max_size=3).map(
        tuple
    ),
    flags=st.sampled_from([frozenset(), frozenset({"vip"})]),
)


@settings(max_examples=60, deadline=None)
@given(case=cases, which=st.sampled_from(["reference", "nots"]))
def test_rendered_traces_equal_the_fused_traces_of_before(case: Case, which: str) -> None:
    """explain_rules(evaluate_rules(...)) gives exactly the traces trace_rules gave."""
    loaded = REFERENCE if which == "reference" else NOTS_LOADED
    compiled = loaded.compiled
    fact = build_case_fact(case, derive_signals(case, compiled.signals, NOW), compiled.attributes)
    truth = loaded.evaluate(fact).truth
    results, deciding = evaluate_rules(loaded.trace_plan, truth, fact)
    expected = _fused(compiled.rules, truth, compiled, fact)
    assert (explain_rules(loaded.trace_plan, results), deciding.rule_id) == (
        expected,
        next(t.rule_id for t in expected if t.decided),
    )


NOTS_LOADED = prepare_ruleset(compile_text(NOTS), EngineKind.PYTHON)


def _results(case: Case) -> RuleResults:
    decision = decide(case, ROSTER, NOTS_LOADED, NOW)
    assert decision.explanation.rule_results is not None
    return decision.explanation.rule_results


def test_results_name_the_true_leaves_the_fired_rules_and_every_value_read() -> None:
    """A routine chat billing case in Texas: its leaves as a hex mask, rules fired, values read."""
    case = make_case(
        channel=Channel.CHAT, urgency=Urgency.ROUTINE, intent=Intent.BILLING, tier=Tier.GOLD
    )
    leaves = NOTS_LOADED.compiled.leaves
    texts = {leaf_id: f"{leaf.path} {leaf.op} {leaf.value!r}" for leaf_id, leaf in leaves.items()}
    assert texts == {
        "L0": "case.flags None 'safeguarding'",  # the header's safeguarding rule
        "L1": "case.channel == 'chat'",
        "L2": "case.urgency == 'routine'",
        "L3": "case.tier != 'gold'",
        "L4": "case.intent == 'billing'",
        "L5": "case.region == 'US-TX'",
    }
    assert _results(case) == RuleResults(
        true_leaves="36",  # L1, L2, L4, L5 held; L0 and L3 did not
        fired=("either", "rest"),
        actuals=(
            ("case.channel", "case.channel = 'chat'"),
            ("case.flags", "case.flags = []"),
            ("case.intent", "case.intent = 'billing'"),
            ("case.region", "case.region = 'US-TX'"),
            ("case.tier", "case.tier = 'gold'"),
            ("case.urgency", "case.urgency = 'routine'"),
        ),
    )


def test_no_true_leaf_is_mask_zero_and_a_missing_field_says_so() -> None:
    """No leaf held: ``"0"``; a field the case lacks reads ``<path> is missing``."""
    loaded = prepare_ruleset(
        compile_text(
            ruleset_with_rules(
                """\
  - id: lang
    when: "case.preferred_language == 'fr'"
    then: {route: {queue: by_intent}}
  - id: rest
    when: true
    then: {route: {queue: by_intent}}
"""
            )
        ),
        EngineKind.PYTHON,
    )
    decision = decide(make_case(preferred_language=None), ROSTER, loaded, NOW)
    results = decision.explanation.rule_results
    assert (results, decision.explanation.rules[1].clauses) == (
        RuleResults(
            "0",
            ("rest",),
            (
                ("case.flags", "case.flags = []"),
                ("case.preferred_language", "case.preferred_language is missing"),
            ),
        ),
        (
            ClauseTrace(
                "case.preferred_language == 'fr'",
                value=False,
                actual="case.preferred_language is missing",
            ),
        ),
    )


def test_decide_without_text_keeps_the_results_and_the_same_outcome() -> None:
    """explain_rules_text=False: no rendered rules, the same results, decision otherwise equal."""
    case = make_case(urgency=Urgency.CRITICAL)
    full = decide(case, ROSTER, REFERENCE, NOW)
    bare = decide(case, ROSTER, REFERENCE, NOW, explain_rules_text=False)
    assert bare.explanation.rules == ()
    assert bare.explanation.rule_results == full.explanation.rule_results
    assert (
        replace(bare, explanation=replace(bare.explanation, rules=full.explanation.rules)) == full
    )


def test_a_data_problem_evaluates_no_rule_and_keeps_no_results() -> None:
    """An SLA clock ending before it starts: no rules, no results (nothing was evaluated)."""
    case = make_case(sla_clocks=(clock("first-response", -120, started_minutes_ago=60),))
    explanation = decide(case, ROSTER, REFERENCE, NOW).explanation
    assert (explanation.reason_codes[0], explanation.rules, explanation.rule_results) == (
        "invalid_case_data",
        (),
        None,
    )


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"true_leaves": "zz"}, "true_leaves is not a hex bitmask"),
        ({"true_leaves": "-1"}, "true_leaves names leaves the ruleset does not have"),
        ({"true_leaves": "40"}, "true_leaves names leaves the ruleset does not have"),
        (
            {"fired": ("rest",)},
            "the ruleset fires ['either', 'rest'] for these leaves; the results say ['rest']",
        ),
        (
            {"actuals": ()},
            (
                "no actual values for ['case.channel', 'case.flags', 'case.intent', "
                "'case.region', 'case.tier', 'case.urgency']"
            ),
        ),
    ],
)
def test_results_that_do_not_fit_the_ruleset_are_refused_never_rendered(
    change: dict[str, Any], message: str
) -> None:
    """A bad mask, other rules firing or missing values raise; nothing wrong is shown."""
    results = replace(_results(make_case(channel=Channel.CHAT, intent=Intent.BILLING)), **change)
    with pytest.raises(RuleResultsMismatchError) as exc:
        explain_rules(NOTS_LOADED.trace_plan, results)
    assert str(exc.value) == message


def test_a_full_shape_cache_still_renders_the_same(monkeypatch: pytest.MonkeyPatch) -> None:
    """With no room for shapes each rule is explained afresh, with the same result."""
    case = make_case(urgency=Urgency.CRITICAL)
    expected = decide(case, ROSTER, REFERENCE, NOW).explanation.rules
    plan = plan_traces(REFERENCE.compiled)
    monkeypatch.setattr(trace, "SHAPES_PER_RULE", 0)
    results = decide(case, ROSTER, REFERENCE, NOW).explanation.rule_results
    assert results is not None
    assert (explain_rules(plan, results), plan.shapes) == (expected, tuple({} for _ in plan.rules))


def test_plans_are_kept_while_in_use_and_a_few_more_by_recent_use(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """known_plan: a plan in use is found; one nobody holds only while among the latest."""
    monkeypatch.setattr(trace, "_PLANS", OrderedDict())
    monkeypatch.setattr(trace, "_LIVE", WeakValueDictionary())
    monkeypatch.setattr(trace, "PLAN_CACHE_SIZE", 1)
    sha = REFERENCE.compiled.sha256
    first = plan_traces(REFERENCE.compiled)
    second = plan_traces(NOTS_LOADED.compiled)
    assert (known_plan(sha), known_plan(NOTS_LOADED.compiled.sha256)) == (first, second)
    del first
    gc.collect()
    assert (known_plan(sha), list(trace._PLANS)) == (None, [NOTS_LOADED.compiled.sha256])


def test_explain_known_renders_a_prepared_ruleset_and_refuses_an_unknown_one() -> None:
    """explain_known: rendered from the plan; kept rules pass through; unknown sha256 raises."""
    decision = decide(make_case(), ROSTER, REFERENCE, NOW)
    e = decision.explanation
    bare = replace(e, rules=())
    assert explain_known(bare) == e.rules
    assert explain_known(replace(e, rule_results=None)) == e.rules
    with pytest.raises(UnknownRulesetError) as exc:
        explain_known(replace(bare, ruleset_sha256="0" * 64))
    assert str(exc.value) == f"no prepared ruleset has sha256 {'0' * 64}"


def test_the_compiled_rules_value_every_shape_of_condition_as_evaluate_cond_does() -> None:
    """Empty and/or, constants, NOT and nesting: the generated function agrees with the walk."""
    leaf = LeafRef("L0", "a")
    conds: list[Cond] = [
        AllOf(()),
        AnyOf(()),
        Const(value=False, text="false"),
        NotOf(AnyOf((leaf, AllOf((NotOf(leaf), Const(value=True, text="true")))))),
    ]
    rules = tuple(replace(REFERENCE.compiled.rules[0], when=cond) for cond in conds)
    fires = trace._compile_fires(rules)
    for value in (False, True):
        truth = {"L0": value}
        assert fires(truth) == tuple(evaluate_cond(c, truth) for c in conds)


def test_explain_with_renders_only_the_rulesets_it_was_given() -> None:
    """explain_with(plan): its ruleset's decisions render; kept rules pass; another raises."""
    e = decide(make_case(), ROSTER, REFERENCE, NOW).explanation
    explain = trace.explain_with(REFERENCE.trace_plan)
    assert (explain(replace(e, rules=())), explain(replace(e, rule_results=None))) == (
        e.rules,
        e.rules,
    )
    with pytest.raises(UnknownRulesetError) as exc:
        explain(replace(e, ruleset_sha256="1" * 64))
    assert str(exc.value) == f"not one of these rulesets: {'1' * 64}"
