"""decision_to_dict's explicit serializers: today's data, the rules stored as results."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import pytest
from hypothesis import given, settings

from caseroute.domain.case import Case
from caseroute.domain.decision import Decision, MatchingTrace, Priority, RankedCandidate
from caseroute.domain.decision_codec import decision_from_dict, decision_to_dict, to_jsonable
from caseroute.domain.fingerprint import canonical_json
from caseroute.domain.roster import Roster
from caseroute.engine.decide import decide
from caseroute.engine.trace import explain_known
from caseroute.testing import NOW
from tests.domain.test_adaptive_codec import adaptive_decisions
from tests.property.test_decide_properties import PYTHON, cases, rosters


def _without_results(decision: Decision) -> Decision:
    return replace(decision, explanation=replace(decision.explanation, rule_results=None))


def _today(decision: Decision) -> dict[str, Any]:
    """decision_to_dict as it was before issue 13: the generic walk, rules rendered."""
    data: dict[str, Any] = to_jsonable(_without_results(decision))
    del data["explanation"]["rule_results"]
    return data


def _compact_today(decision: Decision) -> dict[str, Any]:
    """Today's data with the rendered rules swapped for the results they come from."""
    data = _today(decision)
    results = decision.explanation.rule_results
    assert results is not None
    rules = data["explanation"]
    data["explanation"] = {
        **{k: v for k, v in rules.items() if k != "rules"},
        "rule_results": {
            "true_leaves": results.true_leaves,
            "fired": list(results.fired),
            "actuals": dict(results.actuals),
        },
    }
    return data


ADAPTIVE = adaptive_decisions()


@pytest.mark.parametrize("name", sorted(ADAPTIVE))
def test_adaptive_decisions_serialise_as_the_generic_walk_did(name: str) -> None:
    """Ladders, continuity, holds: the same bytes as before for the rendered form."""
    decision = ADAPTIVE[name]
    assert (
        canonical_json(decision_to_dict(_without_results(decision))),
        canonical_json(decision_to_dict(decision)),
    ) == (canonical_json(_today(decision)), canonical_json(_compact_today(decision)))


@settings(max_examples=150, deadline=None)
@given(case=cases, roster=rosters)
def test_generated_decisions_serialise_as_the_generic_walk_did(case: Case, roster: Roster) -> None:
    """Reference ruleset, random cases and rosters, both detail levels: the same data."""
    for detail in (True, False):
        decision = decide(case, roster, PYTHON, NOW, agent_detail=detail)
        old = _without_results(decision)
        assert canonical_json(decision_to_dict(old)) == canonical_json(_today(decision))
        if decision.explanation.rule_results is not None:
            assert decision_to_dict(decision) == _compact_today(decision)


@settings(max_examples=80, deadline=None)
@given(case=cases, roster=rosters)
def test_both_stored_forms_decode_to_the_decision(case: Case, roster: Roster) -> None:
    """Results (rendered by an explainer) and rendered rules (older records) both come back."""
    decision = decide(case, roster, PYTHON, NOW, agent_detail=False)
    compact = json.loads(canonical_json(decision_to_dict(decision)))
    older = json.loads(canonical_json(_today(decision)))
    assert (decision_from_dict(compact, explain_known), decision_from_dict(older)) == (
        decision,
        decision,
    )
    assert decision_from_dict(older).explanation.rule_results is None


def test_results_decode_unrendered_without_an_explainer() -> None:
    """No explainer: the rules stay empty and the results come back, for outcome readers."""
    decision = ADAPTIVE["relaxed"]
    back = decision_from_dict(json.loads(canonical_json(decision_to_dict(decision))))
    assert (back.explanation.rules, back.explanation.rule_results) == (
        (),
        decision.explanation.rule_results,
    )
    assert replace(
        back, explanation=replace(back.explanation, rules=decision.explanation.rules)
    ) == (decision)


def test_results_whose_values_are_no_object_are_a_damaged_record() -> None:
    """Actuals must be a JSON object: anything else is refused as a damaged record."""
    data = decision_to_dict(ADAPTIVE["relaxed"])
    data["explanation"]["rule_results"]["actuals"] = [["case.intent", "x"]]
    with pytest.raises(TypeError) as exc:
        decision_from_dict(data)
    assert str(exc.value) == "rule_results.actuals is not an object"


def test_a_criterion_value_that_is_no_plain_value_is_written_as_the_walk_writes_it() -> None:
    """An enum among ranking values is written as its value, as to_jsonable does."""
    decision = ADAPTIVE["relaxed"]
    matching = MatchingTrace(
        (), 1, 1, (), (), ("x",), (RankedCandidate(1, "a", (("x", Priority.HIGH),)),)
    )
    odd = replace(decision, explanation=replace(decision.explanation, matching=matching))
    assert decision_to_dict(odd)["explanation"]["matching"]["ranking"] == [
        {"rank": 1, "agent_id": "a", "criteria": [["x", "high"]]}
    ]
