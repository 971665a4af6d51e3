"""The comparable fields of a decision, and which adaptive ones changed: one home for both.

Replay (``replay.classify``: ``relaxation_changed``, ``continuity_changed``) and the shadow
comparison (``shadow``: ``relaxation``, ``continuity``) read a decision through ``DecisionSide``
and ask ``relaxation_differs`` / ``continuity_differs`` whether two decisions of the same input
differ there, so a ladder or hold change is found by the same rule in both.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from caseroute.domain.decision import Decision, RelaxationTrace, StepStatus
from caseroute.domain.fingerprint import format_timestamp


@dataclass(frozen=True, slots=True)
class DecisionSide:
    """What a comparison reads of one decision: replay's report shows it (no case data).

    Attributes:
        rule_id: The deciding rule.
        outcome: ASSIGN / ESCALATE / QUEUE / EXCEPTION.
        agent_id: The agent, or None.
        queue: The queue.
        priority: The priority.
        escalation_level: The escalation level, or None.
        ladder_step: The deciding rule's latest ladder step in force; ``""`` when the rule has
            soft requirements but no step is in force yet; None when it has none (or the
            decision was recorded before adaptive routing).
        relaxed: Soft requirements no longer required, in the order they relaxed.
        continuity: The continuity outcome (``assigned_preferred``, ``held_for_preferred``,
            ``assigned_other``, ``none_eligible``), or None when continuity did not apply.
        held_until: For a QUEUE held for a preferred agent, when the hold ends (UTC, ISO).
        next_relaxation_at: When time alone could change the decision (shown, not classed:
            a later step's new delay moves it for every waiting case without changing one).
    """

    rule_id: str
    outcome: str
    agent_id: str | None
    queue: str
    priority: str
    escalation_level: int | None
    ladder_step: str | None = None
    relaxed: tuple[str, ...] = ()
    continuity: str | None = None
    held_until: str | None = None
    next_relaxation_at: str | None = None


class RecordedDecisionError(ValueError):
    """A recorded decision lacks a field the comparison needs."""


def recorded_side(decision: Mapping[str, Any]) -> DecisionSide:
    """The comparable fields of a recorded decision (``decision_to_dict`` form).

    Raises:
        RecordedDecisionError: If a field is missing or of the wrong type.
    """
    if not isinstance(decision, Mapping):
        raise RecordedDecisionError("the recorded decision is not a JSON object")
    try:
        side = DecisionSide(
            rule_id=decision["rule_id"],
            outcome=decision["outcome"],
            agent_id=decision["agent_id"],
            queue=decision["queue"],
            priority=decision["priority"],
            escalation_level=decision["escalation_level"],
        )
    except KeyError as exc:
        raise RecordedDecisionError(f"the recorded decision has no {exc}") from None
    for name in ("rule_id", "outcome", "queue", "priority"):
        if not isinstance(getattr(side, name), str):
            raise RecordedDecisionError(f"the recorded decision's {name} is not a string")
    if side.agent_id is not None and not isinstance(side.agent_id, str):
        raise RecordedDecisionError("the recorded decision's agent_id is not a string")
    level = side.escalation_level
    if level is not None and (not isinstance(level, int) or isinstance(level, bool)):
        raise RecordedDecisionError("the recorded decision's escalation_level is not a number")
    return _with_adaptive(side, decision)


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _with_adaptive(side: DecisionSide, decision: Mapping[str, Any]) -> DecisionSide:
    """``side`` with the recorded ladder step, relaxed requirements and continuity outcome.

    A record made before adaptive routing has none of them: read as no ladder and no
    continuity (so a candidate that adds them shows as ``relaxation_changed`` /
    ``continuity_changed``). A value of the wrong type reads as absent, never as an error:
    these fields explain, and the fields the comparison cannot do without are checked above.
    """
    explanation = decision.get("explanation")
    if not isinstance(explanation, Mapping):
        explanation = {}
    relaxation = explanation.get("relaxation")
    step: str | None = None
    relaxed: tuple[str, ...] = ()
    if isinstance(relaxation, Mapping):
        steps = relaxation.get("steps")
        active = [
            s.get("name")
            for s in (steps if isinstance(steps, list) else ())
            if isinstance(s, Mapping) and s.get("status") == StepStatus.ACTIVE.value
        ]
        step = _text(active[-1]) if active else ""
        names = relaxation.get("relaxed")
        relaxed = tuple(n for n in (names if isinstance(names, list) else ()) if isinstance(n, str))
    continuity = explanation.get("continuity")
    return DecisionSide(
        side.rule_id,
        side.outcome,
        side.agent_id,
        side.queue,
        side.priority,
        side.escalation_level,
        ladder_step=step,
        relaxed=relaxed,
        continuity=_text(continuity.get("outcome")) if isinstance(continuity, Mapping) else None,
        held_until=_text(decision.get("held_for_preferred_until")),
        next_relaxation_at=_text(decision.get("next_relaxation_at")),
    )


def _active_step(relaxation: RelaxationTrace | None) -> str | None:
    if relaxation is None:
        return None
    active = [s.name for s in relaxation.steps if s.status is StepStatus.ACTIVE]
    return active[-1] if active else ""


def _instant(value: Any) -> str | None:
    return None if value is None else format_timestamp(value)


def candidate_side(decision: Decision) -> DecisionSide:
    """The comparable fields of a decision in memory (replay's candidate, a shadow's two)."""
    e = decision.explanation
    return DecisionSide(
        rule_id=decision.rule_id,
        outcome=decision.outcome.value,
        agent_id=decision.agent_id,
        queue=decision.queue,
        priority=decision.priority.value,
        escalation_level=decision.escalation_level,
        ladder_step=_active_step(e.relaxation),
        relaxed=e.relaxation.relaxed if e.relaxation is not None else (),
        continuity=e.continuity.outcome.value if e.continuity is not None else None,
        held_until=_instant(decision.held_for_preferred_until),
        next_relaxation_at=_instant(decision.next_relaxation_at),
    )


def relaxation_differs(before: DecisionSide, after: DecisionSide) -> bool:
    """Whether the deciding rule's ladder stands at another step, or relaxes other requirements.

    Args:
        before: One decision (the recorded or live one).
        after: The other decision of the same input (the candidate's or shadow's).

    Returns:
        True when the latest step in force or the relaxed requirements differ.
    """
    return (before.ladder_step, before.relaxed) != (after.ladder_step, after.relaxed)


def continuity_differs(before: DecisionSide, after: DecisionSide) -> bool:
    """Whether continuity of care came out differently, or holds the case until another instant.

    Args:
        before: One decision (the recorded or live one).
        after: The other decision of the same input (the candidate's or shadow's).

    Returns:
        True when the continuity outcome or the end of the hold differs.
    """
    return (before.continuity, before.held_until) != (after.continuity, after.held_until)
