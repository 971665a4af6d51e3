"""Adaptive-routing decisions (ladder and continuity traces) through the stored JSON and back."""

import json
from dataclasses import replace
from datetime import timedelta

from caseroute.domain.case import ContinuityReason, PreferredAgent, Urgency
from caseroute.domain.decision import (
    ContinuityOutcome,
    Decision,
    LadderStepTrace,
    Outcome,
    StepStatus,
)
from caseroute.domain.decision_codec import decision_from_dict, decision_to_dict
from caseroute.domain.fingerprint import canonical_json
from caseroute.domain.roster import Capacity
from caseroute.engine.case_rules import EngineKind, prepare_ruleset
from caseroute.engine.decide import decide
from caseroute.engine.trace import explain_with, plan_traces
from caseroute.testing import (
    ADAPTIVE_HEADER,
    CATCH_ALL_RULE,
    NOW,
    compile_text,
    make_agent,
    make_case,
    make_roster,
    ruleset_with_rules,
)

ADAPTIVE_RULES = """\
  - id: rest
    when: true
    then: {route: {queue: by_intent, soft: [language, territory], ladder: lang}}
"""
ADAPTIVE_TEXT = ruleset_with_rules(ADAPTIVE_RULES, ADAPTIVE_HEADER)
"""A ruleset whose one route has a two-step ladder (critical cases never reach step one) and
continuity of care holding routine cases 15 minutes."""

ADAPTIVE_ROSTER = make_roster(
    make_agent("a1"),
    make_agent("busy", capacity=Capacity(max=5, active=5), languages=frozenset({"es"})),
    make_agent("far", territories=frozenset({"US-CA"}), languages=frozenset({"es"})),
)
PREFERRED = (
    PreferredAgent("busy", ContinuityReason.PREVIOUS_CONTACT, NOW - timedelta(days=3)),
    PreferredAgent("ghost", ContinuityReason.CARE_TEAM),
)


def adaptive_decisions() -> dict[str, Decision]:
    """Held, relaxed and critical decisions with relaxation and continuity traces at ``NOW``.

    Held: steps pending; relaxed: steps passed and active, hold expired; critical: a step that
    never applies.
    """
    ruleset = prepare_ruleset(compile_text(ADAPTIVE_TEXT), EngineKind.PYTHON)

    def one(waited: float, **overrides: object) -> Decision:
        case = make_case(
            created_at=NOW - timedelta(minutes=waited),
            preferred_language="es",
            preferred_agents=PREFERRED,
            **overrides,
        )
        return decide(case, ADAPTIVE_ROSTER, ruleset, NOW)

    return {
        "held": one(5, declined_agents=frozenset({"a1"})),
        "relaxed": one(40, waiting_since=NOW - timedelta(minutes=31)),
        "critical": one(40, urgency=Urgency.CRITICAL),
    }


DECISIONS = adaptive_decisions()
EXPLAIN = explain_with(
    plan_traces(compile_text(ADAPTIVE_TEXT)),
    plan_traces(compile_text(ruleset_with_rules(CATCH_ALL_RULE))),
)
"""Renders the rules of these decisions, stored as results since issue 13."""


def _stored(decision: Decision) -> Decision:
    # The audit store keeps the canonical JSON bytes and decodes them with json.loads.
    return decision_from_dict(json.loads(canonical_json(decision_to_dict(decision))), EXPLAIN)


def test_the_fixture_decisions_carry_every_kind_of_trace() -> None:
    """The decisions below exercise holds, every step status and both last-contact forms."""
    held, relaxed, critical = DECISIONS["held"], DECISIONS["relaxed"], DECISIONS["critical"]
    assert held.explanation.relaxation is not None
    assert held.explanation.continuity is not None
    assert (
        held.outcome,
        held.held_for_preferred_until,
        held.next_relaxation_at,
        held.explanation.continuity.outcome,
        [p.status for p in held.explanation.continuity.preferred],
        [p.last_contact_at for p in held.explanation.continuity.preferred],
    ) == (
        Outcome.QUEUE,
        NOW + timedelta(minutes=10),
        # The hold's end: the language step at 10:05 makes nobody eligible (R33a L1).
        NOW + timedelta(minutes=10),
        ContinuityOutcome.HELD_FOR_PREFERRED,
        ["held_for", "not_on_roster"],
        [NOW - timedelta(days=3), None],
    )
    assert relaxed.explanation.relaxation is not None
    assert (relaxed.outcome, relaxed.agent_id, relaxed.explanation.relaxation.anchor) == (
        Outcome.ASSIGN,
        "far",
        "waiting_since",
    )
    assert [s.status for s in relaxed.explanation.relaxation.steps] == [
        StepStatus.PASSED,
        StepStatus.ACTIVE,
    ]
    assert critical.explanation.relaxation is not None
    assert critical.explanation.relaxation.steps[0] == LadderStepTrace(
        name="any-language",
        status=StepStatus.NEVER,
        at=None,
        after_minutes=None,
        relaxes=("language",),
        prefers=("language",),
        why="A nurse with an interpreter beats a longer wait.",
        eligible=0,
    )


def test_adaptive_decisions_round_trip_through_the_stored_json() -> None:
    """decision_from_dict(decision_to_dict(d)) == d with ladder, continuity and both instants."""
    assert {name: _stored(d) for name, d in DECISIONS.items()} == DECISIONS


def test_the_stored_json_names_the_new_fields_in_the_decision_and_explanation() -> None:
    """A held decision is stored with its hold end, next relaxation and both traces as JSON."""
    data = decision_to_dict(DECISIONS["held"])
    assert (
        data["next_relaxation_at"],
        data["held_for_preferred_until"],
        data["explanation"]["continuity"]["outcome"],
        data["explanation"]["continuity"]["hold_until"],
        data["explanation"]["continuity"]["preferred"][1],
        [s["status"] for s in data["explanation"]["relaxation"]["steps"]],
    ) == (
        "2026-11-21T10:10:00Z",
        "2026-11-21T10:10:00Z",
        "held_for_preferred",
        "2026-11-21T10:10:00Z",
        {
            "agent_id": "ghost",
            "reason": "care_team",
            "last_contact_at": None,
            "status": "not_on_roster",
            "detail": "not on the roster snapshot",
        },
        ["pending", "pending"],
    )


def test_a_record_stored_before_adaptive_routing_still_decodes() -> None:
    """A stored decision without the adaptive keys decodes with them unset, not a KeyError."""
    plain_rules = ruleset_with_rules(CATCH_ALL_RULE)
    plain = decide(make_case(), ADAPTIVE_ROSTER, prepare_ruleset(compile_text(plain_rules)), NOW)
    data = decision_to_dict(plain)
    for key in ("next_relaxation_at", "held_for_preferred_until"):
        del data[key]
    for key in ("relaxation", "continuity"):
        del data["explanation"][key]
    assert decision_from_dict(data, EXPLAIN) == plain


def test_an_old_record_of_an_adaptive_decision_decodes_without_its_traces() -> None:
    """Keys absent from an old record decode as None: the rest of the decision is unchanged."""
    held = DECISIONS["held"]
    data = decision_to_dict(held)
    for key in ("next_relaxation_at", "held_for_preferred_until"):
        del data[key]
    for key in ("relaxation", "continuity"):
        del data["explanation"][key]
    expected = replace(
        held,
        next_relaxation_at=None,
        held_for_preferred_until=None,
        explanation=replace(held.explanation, relaxation=None, continuity=None),
    )
    assert decision_from_dict(data, EXPLAIN) == expected
