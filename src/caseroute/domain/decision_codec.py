"""Decisions as JSON data and back: the audit store keeps the JSON, retries get the Decision.

``decision_to_dict`` is the same rendering the CLI prints (``to_jsonable``);
``decision_from_dict`` is its exact inverse, so a stored decision returned to a retrying caller
is equal, field for field, to the one first returned. Records stored before a field existed
(adaptive routing's ``relaxation``, ``continuity``, ``next_relaxation_at``,
``held_for_preferred_until``) decode with that field unset.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
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
    RuleTrace,
    SentimentSummary,
    Signals,
    SlaRisk,
    SlaStatus,
    StepStatus,
)
from caseroute.domain.fingerprint import format_timestamp

_FIELD_NAMES: dict[type, tuple[str, ...]] = {}


_PLAIN = (str, int, float, bool, type(None))


def to_jsonable(value: object) -> Any:
    """Render a decision/explanation (dataclasses, enums, datetimes, tuples) as JSON data.

    Every decision passes through here on its way to the audit log, so the common cases
    come first and dataclass field names are looked up once per type.
    """
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


def decision_to_dict(decision: Decision) -> dict[str, Any]:
    """The decision and its explanation as JSON data."""
    data: dict[str, Any] = to_jsonable(decision)
    return data


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


def decision_from_dict(data: dict[str, Any]) -> Decision:
    """Rebuild a Decision from ``decision_to_dict`` output.

    Raises:
        KeyError, ValueError: If ``data`` is not a rendered decision (a damaged record).
    """
    e = data["explanation"]
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
        rules=tuple(_rule(r) for r in e["rules"]),
        deciding_rule_id=e["deciding_rule_id"],
        matching=_matching(e["matching"]) if e["matching"] is not None else None,
        reason_codes=tuple(e["reason_codes"]),
        # .get: records stored before adaptive routing have no such keys.
        relaxation=_relaxation(e.get("relaxation")),
        continuity=_continuity(e.get("continuity")),
    )
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
