"""Decisions as JSON data and back: the audit store keeps the JSON, retries get the Decision.

``decision_to_dict`` writes each type with its own small function (the generic ``to_jsonable``
walk, kept for other values, cost ~4x more on every recorded decision) and gives the same
data ``to_jsonable`` gives, except for the rules: a decision that carries ``rule_results``
(every decision evaluated since issue 13) stores them as data in ``explanation.rule_results``
instead of the rendered ``explanation.rules``, whose clause texts come from the ruleset
(see ``engine.trace``). ``decision_from_dict`` is its exact inverse; given a ``RuleExplainer``
it renders those rules again, so a stored decision returned to a retrying caller is equal,
field for field, to the one first returned. Records stored before a field existed (adaptive
routing's ``relaxation``, ``continuity``, ``next_relaxation_at``, ``held_for_preferred_until``)
decode with that field unset; records stored with rendered ``rules`` decode as they are.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import date, datetime
from enum import Enum
from typing import Any

from caseroute.domain.decision import (
    AgentVerdict,
    CheckFailure,
    ClauseTrace,
    ContinuityOutcome,
    ContinuityTrace,
    Decision,
    Explanation,
    LadderStepTrace,
    MatchingTrace,
    Outcome,
    PreferredAgentTrace,
    Priority,
    RankedCandidate,
    RelaxationTrace,
    RuleResults,
    RuleTrace,
    SentimentSummary,
    Signals,
    SlaRisk,
    SlaStatus,
    StepStatus,
)
from caseroute.domain.fingerprint import format_timestamp, stamp_of

RuleExplainer = Callable[[Explanation], tuple[RuleTrace, ...]]
"""Renders the rule traces of an explanation from its ``rule_results`` and the ruleset it names
(``ruleset_sha256``); raises ``ValueError`` when it cannot (unknown ruleset, results that do
not fit it)."""

_FIELD_NAMES: dict[type, tuple[str, ...]] = {}


_PLAIN = (str, int, float, bool, type(None))


def to_jsonable(value: object) -> Any:
    """Render a value built of dataclasses, enums, datetimes and collections as JSON data."""
    kind = type(value)
    if kind in _PLAIN:  # exact types: an Enum subclassing str must not stop here
        return value
    names = _FIELD_NAMES.get(kind)
    if names is None and dataclasses.is_dataclass(value) and not isinstance(value, type):
        names = _FIELD_NAMES[kind] = tuple(f.name for f in dataclasses.fields(value))
    if names is not None:
        return {name: to_jsonable(getattr(value, name)) for name in names}
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, datetime):
        return format_timestamp(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, tuple | list):
        return [to_jsonable(v) for v in value]
    if isinstance(value, frozenset | set):
        return sorted(to_jsonable(v) for v in value)
    if isinstance(value, Mapping):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    return value


def _plain(value: Any) -> Any:
    """A str, number, bool or None as it is (an enum as its value): free-form fields."""
    return value if type(value) in _PLAIN else to_jsonable(value)


class _Stamps(dict[datetime, str]):
    """Each instant's ``format_timestamp`` text, formatted on first use (one per decision).

    A decision names the same instant several times (a relaxation step's ``at``, the trace's
    and the decision's ``next_relaxation_at``; a continuity hold's end and
    ``held_for_preferred_until``). Equal instants have the same text (formatted in UTC).
    """

    __slots__ = ()

    def of(self, value: datetime) -> str:
        """The text of ``value`` (``fingerprint.stamp_of``: a ``fold=1`` value is never kept)."""
        return stamp_of(self, value)

    def maybe(self, value: datetime | None) -> str | None:
        """The text of ``value``, or None for None."""
        return None if value is None else stamp_of(self, value)


def _sla_out(c: SlaStatus) -> dict[str, Any]:
    return {"name": c.name, "minutes_remaining": c.minutes_remaining, "risk": c.risk.value}


def _signals_out(s: Signals) -> dict[str, Any]:
    t = s.sentiment
    return {
        "case_age_minutes": s.case_age_minutes,
        "sla_clocks": [_sla_out(c) for c in s.sla_clocks],
        "sla": None if s.sla is None else _sla_out(s.sla),
        "sentiment": {
            "count": t.count,
            "latest": t.latest,
            "minimum": t.minimum,
            "change": t.change,
            "consecutive_negative": t.consecutive_negative,
        },
        "sla_at_risk_minutes": s.sla_at_risk_minutes,
        "negative_sentiment": s.negative_sentiment,
        "sentiment_window": s.sentiment_window,
    }


def _rule_out(t: RuleTrace) -> dict[str, Any]:
    return {
        "rule_id": t.rule_id,
        "description": t.description,
        "fired": t.fired,
        "decided": t.decided,
        "clauses": [{"text": c.text, "value": c.value, "actual": c.actual} for c in t.clauses],
    }


def _results_out(r: RuleResults) -> dict[str, Any]:
    return {"true_leaves": r.true_leaves, "fired": list(r.fired), "actuals": dict(r.actuals)}


def _matching_out(m: MatchingTrace) -> dict[str, Any]:
    return {
        "requirements": list(m.requirements),
        "considered": m.considered,
        "eligible": m.eligible,
        "exclusion_counts": [[check, count] for check, count in m.exclusion_counts],
        "agents": [
            {
                "agent_id": v.agent_id,
                "eligible": v.eligible,
                "failures": [
                    {"check": f.check, "expected": f.expected, "actual": f.actual}
                    for f in v.failures
                ],
            }
            for v in m.agents
        ],
        "ranking_criteria": list(m.ranking_criteria),
        "ranking": [
            {
                "rank": c.rank,
                "agent_id": c.agent_id,
                "criteria": [[name, _plain(value)] for name, value in c.criteria],
            }
            for c in m.ranking
        ],
        "failed_masks": [[check, mask] for check, mask in m.failed_masks],
    }


def _relaxation_out(r: RelaxationTrace, stamps: _Stamps) -> dict[str, Any]:
    return {
        "ladder": r.ladder,
        "anchor": r.anchor,
        "anchor_at": stamps.of(r.anchor_at),
        "waiting_minutes": r.waiting_minutes,
        "hard": list(r.hard),
        "soft": list(r.soft),
        "relaxed": list(r.relaxed),
        "preferences": list(r.preferences),
        "eligible_as_written": r.eligible_as_written,
        "steps": [
            {
                "name": s.name,
                "status": s.status.value,
                "at": stamps.maybe(s.at),
                "after_minutes": s.after_minutes,
                "relaxes": list(s.relaxes),
                "prefers": list(s.prefers),
                "why": s.why,
                "eligible": s.eligible,
            }
            for s in r.steps
        ],
        "next_relaxation_at": stamps.maybe(r.next_relaxation_at),
        "summary": r.summary,
    }


def _continuity_out(c: ContinuityTrace, stamps: _Stamps) -> dict[str, Any]:
    return {
        "outcome": c.outcome.value,
        "window_days": c.window_days,
        "hold_minutes": c.hold_minutes,
        "hold_until": stamps.maybe(c.hold_until),
        "preferred": [
            {
                "agent_id": p.agent_id,
                "reason": _plain(p.reason),
                "last_contact_at": stamps.maybe(p.last_contact_at),
                "status": p.status,
                "detail": p.detail,
            }
            for p in c.preferred
        ],
    }


def decision_to_dict(
    decision: Decision, known: Mapping[datetime, str] | None = None
) -> dict[str, Any]:
    """The decision and its explanation as JSON data (what the decision log stores).

    The rules are stored as ``rule_results`` (data) when the decision has them, else as the
    rendered ``rules`` (a decision rebuilt from an older record or from a message).

    Args:
        decision: The decision.
        known: Instants already formatted by the caller (``format_timestamp``), e.g. the
            request's ``now`` and its case's instants (a relaxation's anchor is the case's
            ``created_at`` or ``waiting_since``): not formatted again. Only read.
    """
    e = decision.explanation
    stamps = _Stamps() if known is None else _Stamps(known)
    explanation: dict[str, Any] = {
        "decision_id": e.decision_id,
        "ruleset_name": e.ruleset_name,
        "ruleset_version": e.ruleset_version,
        "ruleset_sha256": e.ruleset_sha256,
        "caseroute_version": e.caseroute_version,
        "engine": e.engine,
        "now": stamps.of(e.now),
        "input_sha256": e.input_sha256,
        "signals": _signals_out(e.signals),
        "data_problems": list(e.data_problems),
    }
    if e.rule_results is None:
        explanation["rules"] = [_rule_out(t) for t in e.rules]
    else:
        explanation["rule_results"] = _results_out(e.rule_results)
    explanation["deciding_rule_id"] = e.deciding_rule_id
    explanation["matching"] = None if e.matching is None else _matching_out(e.matching)
    explanation["reason_codes"] = list(e.reason_codes)
    explanation["relaxation"] = (
        None if e.relaxation is None else _relaxation_out(e.relaxation, stamps)
    )
    explanation["continuity"] = (
        None if e.continuity is None else _continuity_out(e.continuity, stamps)
    )
    return {
        "decision_id": decision.decision_id,
        "case_id": decision.case_id,
        "outcome": decision.outcome.value,
        "queue": decision.queue,
        "agent_id": decision.agent_id,
        "escalation_level": decision.escalation_level,
        "priority": decision.priority.value,
        "reason_codes": list(decision.reason_codes),
        "rule_id": decision.rule_id,
        "explanation": explanation,
        "next_relaxation_at": stamps.maybe(decision.next_relaxation_at),
        "held_for_preferred_until": stamps.maybe(decision.held_for_preferred_until),
    }


def _instant(text: str) -> datetime:
    return datetime.fromisoformat(text)


def _maybe_instant(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)


def _sla(data: dict[str, Any]) -> SlaStatus:
    return SlaStatus(data["name"], data["minutes_remaining"], SlaRisk(data["risk"]))


def _signals(data: dict[str, Any]) -> Signals:
    sentiment = data["sentiment"]
    return Signals(
        case_age_minutes=data["case_age_minutes"],
        sla_clocks=tuple(_sla(c) for c in data["sla_clocks"]),
        sla=_sla(data["sla"]) if data["sla"] is not None else None,
        sentiment=SentimentSummary(
            count=sentiment["count"],
            latest=sentiment["latest"],
            minimum=sentiment["minimum"],
            change=sentiment["change"],
            consecutive_negative=sentiment["consecutive_negative"],
        ),
        sla_at_risk_minutes=data["sla_at_risk_minutes"],
        negative_sentiment=data["negative_sentiment"],
        sentiment_window=data["sentiment_window"],
    )


def _rule(data: dict[str, Any]) -> RuleTrace:
    return RuleTrace(
        rule_id=data["rule_id"],
        description=data["description"],
        fired=data["fired"],
        decided=data["decided"],
        clauses=tuple(ClauseTrace(c["text"], c["value"], c["actual"]) for c in data["clauses"]),
    )


def _pairs(items: list[list[Any]]) -> tuple[tuple[Any, Any], ...]:
    return tuple((first, second) for first, second in items)


def _matching(data: dict[str, Any]) -> MatchingTrace:
    return MatchingTrace(
        requirements=tuple(data["requirements"]),
        considered=data["considered"],
        eligible=data["eligible"],
        exclusion_counts=_pairs(data["exclusion_counts"]),
        agents=tuple(
            AgentVerdict(
                a["agent_id"],
                a["eligible"],
                tuple(CheckFailure(f["check"], f["expected"], f["actual"]) for f in a["failures"]),
            )
            for a in data["agents"]
        ),
        ranking_criteria=tuple(data["ranking_criteria"]),
        ranking=tuple(
            RankedCandidate(r["rank"], r["agent_id"], _pairs(r["criteria"]))
            for r in data["ranking"]
        ),
        failed_masks=_pairs(data.get("failed_masks", [])),
    )


def _step(data: dict[str, Any]) -> LadderStepTrace:
    return LadderStepTrace(
        name=data["name"],
        status=StepStatus(data["status"]),
        at=_maybe_instant(data["at"]),
        after_minutes=data["after_minutes"],
        relaxes=tuple(data["relaxes"]),
        prefers=tuple(data["prefers"]),
        why=data["why"],
        eligible=data["eligible"],
    )


def _relaxation(data: dict[str, Any] | None) -> RelaxationTrace | None:
    if data is None:
        return None
    return RelaxationTrace(
        ladder=data["ladder"],
        anchor=data["anchor"],
        anchor_at=_instant(data["anchor_at"]),
        waiting_minutes=data["waiting_minutes"],
        hard=tuple(data["hard"]),
        soft=tuple(data["soft"]),
        relaxed=tuple(data["relaxed"]),
        preferences=tuple(data["preferences"]),
        eligible_as_written=data["eligible_as_written"],
        steps=tuple(_step(s) for s in data["steps"]),
        next_relaxation_at=_maybe_instant(data["next_relaxation_at"]),
        summary=data["summary"],
    )


def _continuity(data: dict[str, Any] | None) -> ContinuityTrace | None:
    if data is None:
        return None
    return ContinuityTrace(
        outcome=ContinuityOutcome(data["outcome"]),
        window_days=data["window_days"],
        hold_minutes=data["hold_minutes"],
        hold_until=_maybe_instant(data["hold_until"]),
        preferred=tuple(
            PreferredAgentTrace(
                agent_id=p["agent_id"],
                reason=p["reason"],
                last_contact_at=_maybe_instant(p["last_contact_at"]),
                status=p["status"],
                detail=p["detail"],
            )
            for p in data["preferred"]
        ),
    )


def _results(data: dict[str, Any]) -> RuleResults:
    actuals = data["actuals"]
    if not isinstance(actuals, dict):
        raise TypeError("rule_results.actuals is not an object")
    return RuleResults(data["true_leaves"], tuple(data["fired"]), tuple(sorted(actuals.items())))


def decision_from_dict(data: dict[str, Any], explain: RuleExplainer | None = None) -> Decision:
    """Rebuild a Decision from ``decision_to_dict`` output.

    Args:
        data: The stored decision.
        explain: Renders the rule traces of a decision stored as ``rule_results``; without
            it, such a decision comes back with ``rules`` empty (``rule_results`` set), which
            is enough for readers of the outcome alone.

    Returns:
        The decision.

    Raises:
        KeyError, TypeError, ValueError: If ``data`` is not a rendered decision (a damaged
            record), or ``explain`` cannot render its rules.
    """
    e = data["explanation"]
    stored = e.get("rule_results")
    results = None if stored is None else _results(stored)
    explanation = Explanation(
        decision_id=e["decision_id"],
        ruleset_name=e["ruleset_name"],
        ruleset_version=e["ruleset_version"],
        ruleset_sha256=e["ruleset_sha256"],
        caseroute_version=e["caseroute_version"],
        engine=e["engine"],
        now=_instant(e["now"]),
        input_sha256=e["input_sha256"],
        signals=_signals(e["signals"]),
        data_problems=tuple(e["data_problems"]),
        rules=() if results is not None else tuple(_rule(r) for r in e["rules"]),
        deciding_rule_id=e["deciding_rule_id"],
        matching=_matching(e["matching"]) if e["matching"] is not None else None,
        reason_codes=tuple(e["reason_codes"]),
        # .get: records stored before adaptive routing have no such keys.
        relaxation=_relaxation(e.get("relaxation")),
        continuity=_continuity(e.get("continuity")),
        rule_results=results,
    )
    if results is not None and explain is not None:
        explanation = replace(explanation, rules=explain(explanation))
    return Decision(
        decision_id=data["decision_id"],
        case_id=data["case_id"],
        outcome=Outcome(data["outcome"]),
        queue=data["queue"],
        agent_id=data["agent_id"],
        escalation_level=data["escalation_level"],
        priority=Priority(data["priority"]),
        reason_codes=tuple(data["reason_codes"]),
        rule_id=data["rule_id"],
        explanation=explanation,
        next_relaxation_at=_maybe_instant(data.get("next_relaxation_at")),
        held_for_preferred_until=_maybe_instant(data.get("held_for_preferred_until")),
    )
