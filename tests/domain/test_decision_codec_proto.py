"""decision_to_proto fills messages in place: the same message as before, for every decision."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest
from hypothesis import given, settings

from caseroute.domain.case import Case
from caseroute.domain.decision import (
    ContinuityTrace,
    Decision,
    MatchingTrace,
    RelaxationTrace,
    Signals,
    SlaStatus,
)
from caseroute.domain.roster import Roster
from caseroute.engine.decide import decide
from caseroute.testing import NOW
from caseroute.v1 import routing_pb2 as pb
from caseroute.wire.convert import (
    _attribute_out,
    _enum_out,
    datetime_to_timestamp,
    decision_to_proto,
)
from tests.domain.test_adaptive_codec import adaptive_decisions
from tests.property.test_decide_properties import PYTHON, cases, rosters


def _signals_out(s: Signals) -> pb.Signals:
    def clock(c: SlaStatus) -> pb.SlaStatus:
        return pb.SlaStatus(
            name=c.name,
            minutes_remaining=c.minutes_remaining,
            risk=_enum_out(c.risk.value, pb.SlaRisk, "SLA_RISK_"),
        )

    t = s.sentiment
    sentiment = pb.SentimentSummary(count=t.count, consecutive_negative=t.consecutive_negative)
    for key, value in (("latest", t.latest), ("minimum", t.minimum), ("change", t.change)):
        if value is not None:
            setattr(sentiment, key, value)
    msg = pb.Signals(
        case_age_minutes=s.case_age_minutes,
        sla_clocks=[clock(c) for c in s.sla_clocks],
        sentiment=sentiment,
        sla_at_risk_minutes=s.sla_at_risk_minutes,
        negative_sentiment=s.negative_sentiment,
        sentiment_window=s.sentiment_window,
    )
    if s.sla is not None:
        msg.sla.CopyFrom(clock(s.sla))
    return msg


def _matching_out(m: MatchingTrace) -> pb.MatchingTrace:
    return pb.MatchingTrace(
        requirements=list(m.requirements),
        considered=m.considered,
        eligible=m.eligible,
        exclusion_counts=[pb.CheckCount(check=c, agents=n) for c, n in m.exclusion_counts],
        agents=[
            pb.AgentVerdict(
                agent_id=v.agent_id,
                eligible=v.eligible,
                failures=[
                    pb.CheckFailure(check=f.check, expected=f.expected, actual=f.actual)
                    for f in v.failures
                ],
            )
            for v in m.agents
        ],
        ranking_criteria=list(m.ranking_criteria),
        ranking=[
            pb.RankedCandidate(
                rank=c.rank,
                agent_id=c.agent_id,
                criteria=[
                    pb.CriterionValue(name=name, value=_attribute_out(value))
                    for name, value in c.criteria
                ],
            )
            for c in m.ranking
        ],
    )


def _set_instant(msg: Any, field: str, value: datetime | None) -> None:
    # Unset stays unset: an absent Timestamp is how the proto says "none".
    if value is not None:
        getattr(msg, field).CopyFrom(datetime_to_timestamp(value))


def _relaxation_out(r: RelaxationTrace) -> pb.RelaxationTrace:
    steps = []
    for s in r.steps:
        step = pb.LadderStepTrace(
            name=s.name,
            status=_enum_out(s.status.value, pb.StepStatus, "STEP_STATUS_"),
            relaxes=list(s.relaxes),
            prefers=list(s.prefers),
            why=s.why,
            eligible=s.eligible,
        )
        _set_instant(step, "at", s.at)
        if s.after_minutes is not None:
            step.after_minutes = s.after_minutes
        steps.append(step)
    msg = pb.RelaxationTrace(
        ladder=r.ladder,
        anchor=r.anchor,
        anchor_at=datetime_to_timestamp(r.anchor_at),
        waiting_minutes=r.waiting_minutes,
        hard=list(r.hard),
        soft=list(r.soft),
        relaxed=list(r.relaxed),
        preferences=list(r.preferences),
        eligible_as_written=r.eligible_as_written,
        steps=steps,
        summary=r.summary,
    )
    _set_instant(msg, "next_relaxation_at", r.next_relaxation_at)
    return msg


def _continuity_out(c: ContinuityTrace) -> pb.ContinuityTrace:
    preferred = []
    for p in c.preferred:
        item = pb.PreferredAgentTrace(
            agent_id=p.agent_id,
            reason=_enum_out(p.reason, pb.ContinuityReason, "CONTINUITY_REASON_"),
            status=p.status,
            detail=p.detail,
        )
        _set_instant(item, "last_contact_at", p.last_contact_at)
        preferred.append(item)
    msg = pb.ContinuityTrace(
        outcome=_enum_out(c.outcome.value, pb.ContinuityOutcome, "CONTINUITY_OUTCOME_"),
        window_days=c.window_days,
        hold_minutes=c.hold_minutes,
        preferred=preferred,
    )
    _set_instant(msg, "hold_until", c.hold_until)
    return msg


def _before(d: Decision) -> pb.Decision:
    """decision_to_proto as it was before issue 13 (each sub-message built, then copied)."""
    e = d.explanation
    explanation = pb.Explanation(
        caseroute_version=e.caseroute_version,
        engine=e.engine,
        now=datetime_to_timestamp(e.now),
        input_sha256=e.input_sha256,
        signals=_signals_out(e.signals),
        data_problems=list(e.data_problems),
        rules=[
            pb.RuleTrace(
                rule_id=t.rule_id,
                description=t.description,
                fired=t.fired,
                decided=t.decided,
                clauses=[
                    pb.ClauseTrace(text=c.text, value=c.value, actual=c.actual) for c in t.clauses
                ],
            )
            for t in e.rules
        ],
        deciding_rule_id=e.deciding_rule_id,
    )
    if e.matching is not None:
        explanation.matching.CopyFrom(_matching_out(e.matching))
    if e.relaxation is not None:
        explanation.relaxation.CopyFrom(_relaxation_out(e.relaxation))
    if e.continuity is not None:
        explanation.continuity.CopyFrom(_continuity_out(e.continuity))
    msg = pb.Decision(
        decision_id=d.decision_id,
        case_id=d.case_id,
        outcome=_enum_out(d.outcome.value, pb.Outcome, "OUTCOME_"),
        queue=d.queue,
        agent_id=d.agent_id or "",
        escalation_level=d.escalation_level or 0,
        priority=_enum_out(d.priority.value, pb.Priority, "PRIORITY_"),
        reason_codes=list(d.reason_codes),
        rule_id=d.rule_id,
        ruleset=pb.RulesetRef(
            name=e.ruleset_name, version=e.ruleset_version, sha256=e.ruleset_sha256
        ),
        explanation=explanation,
    )
    _set_instant(msg, "next_relaxation_at", d.next_relaxation_at)
    _set_instant(msg, "held_for_preferred_until", d.held_for_preferred_until)
    return msg


ADAPTIVE = adaptive_decisions()


@pytest.mark.parametrize("name", sorted(ADAPTIVE))
def test_adaptive_decisions_convert_to_the_message_of_before(name: str) -> None:
    """Ladder steps, holds and preferred agents: the same message, byte for byte."""
    decision = ADAPTIVE[name]
    new, old = decision_to_proto(decision), _before(decision)
    assert (new, new.SerializeToString(deterministic=True)) == (
        old,
        old.SerializeToString(deterministic=True),
    )


@settings(max_examples=150, deadline=None)
@given(case=cases, roster=rosters)
def test_generated_decisions_convert_to_the_message_of_before(case: Case, roster: Roster) -> None:
    """Reference ruleset, random cases and rosters, per-agent verdicts or not: same message."""
    for detail in (True, False):
        decision = decide(case, roster, PYTHON, NOW, agent_detail=detail)
        new, old = decision_to_proto(decision), _before(decision)
        assert new.SerializeToString(deterministic=True) == old.SerializeToString(
            deterministic=True
        )
