"""How a candidate's decision differs from the recorded one: stable class names, one per kind.

Classes (a record can be in several; ``unchanged`` and ``not_replayable`` are alone):

- ``outcome_changed``: the outcome differs (the pair, e.g. ``ASSIGN->ESCALATE``, is kept).
- ``agent_changed``: the assigned (or escalation) agent differs, including none <-> some.
- ``queue_changed``: the queue differs.
- ``priority_changed``: the priority differs.
- ``escalation_added``: the candidate escalates where the recording did not, or at a higher level.
- ``escalation_removed``: the recording escalated where the candidate does not, or it escalates
  at a lower level.
- ``deciding_rule_changed``: the same outcome, decided by another rule.
- ``new_exception``: the candidate's outcome is EXCEPTION and the recorded one was not.
- ``not_replayable``: the record cannot be replayed faithfully (never compared).
- ``unchanged``: none of the above.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from caseroute.domain.decision import Decision

OUTCOME_CHANGED = "outcome_changed"
AGENT_CHANGED = "agent_changed"
QUEUE_CHANGED = "queue_changed"
PRIORITY_CHANGED = "priority_changed"
ESCALATION_ADDED = "escalation_added"
ESCALATION_REMOVED = "escalation_removed"
DECIDING_RULE_CHANGED = "deciding_rule_changed"
NEW_EXCEPTION = "new_exception"
NOT_REPLAYABLE = "not_replayable"
UNCHANGED = "unchanged"

DIFFERENCE_CLASSES: tuple[str, ...] = (
    OUTCOME_CHANGED,
    AGENT_CHANGED,
    QUEUE_CHANGED,
    PRIORITY_CHANGED,
    ESCALATION_ADDED,
    ESCALATION_REMOVED,
    DECIDING_RULE_CHANGED,
    NEW_EXCEPTION,
)
"""The classes that make a record ``changed``, in report order."""
CLASSES: tuple[str, ...] = (*DIFFERENCE_CLASSES, NOT_REPLAYABLE, UNCHANGED)
"""Every class, in report order (stable: the JSON report and ``--fail-on`` use these names)."""


@dataclass(frozen=True, slots=True)
class DecisionSide:
    """What the report shows of one side of a comparison (no case data).

    Attributes:
        rule_id: The deciding rule.
        outcome: ASSIGN / ESCALATE / QUEUE / EXCEPTION.
        agent_id: The agent, or None.
        queue: The queue.
        priority: The priority.
        escalation_level: The escalation level, or None.
    """

    rule_id: str
    outcome: str
    agent_id: str | None
    queue: str
    priority: str
    escalation_level: int | None


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
    return side


def candidate_side(decision: Decision) -> DecisionSide:
    """The comparable fields of a candidate's decision."""
    return DecisionSide(
        rule_id=decision.rule_id,
        outcome=decision.outcome.value,
        agent_id=decision.agent_id,
        queue=decision.queue,
        priority=decision.priority.value,
        escalation_level=decision.escalation_level,
    )


def classify(recorded: DecisionSide, candidate: DecisionSide) -> tuple[str, ...]:
    """The difference classes of one comparison, in ``CLASSES`` order (``unchanged`` alone).

    Args:
        recorded: The recorded decision.
        candidate: The candidate's decision of the same input.

    Returns:
        The classes.
    """
    found: list[str] = []
    if recorded.outcome != candidate.outcome:
        found.append(OUTCOME_CHANGED)
    if recorded.agent_id != candidate.agent_id:
        found.append(AGENT_CHANGED)
    if recorded.queue != candidate.queue:
        found.append(QUEUE_CHANGED)
    if recorded.priority != candidate.priority:
        found.append(PRIORITY_CHANGED)
    before, after = recorded.escalation_level or 0, candidate.escalation_level or 0
    if after > before:
        found.append(ESCALATION_ADDED)
    elif after < before:
        found.append(ESCALATION_REMOVED)
    if recorded.outcome == candidate.outcome and recorded.rule_id != candidate.rule_id:
        found.append(DECIDING_RULE_CHANGED)
    if candidate.outcome == "EXCEPTION" and recorded.outcome != "EXCEPTION":
        found.append(NEW_EXCEPTION)
    return tuple(found) or (UNCHANGED,)


def outcome_pair(recorded: DecisionSide, candidate: DecisionSide) -> str | None:
    """``ASSIGN->ESCALATE`` when the outcome changed, else None."""
    if recorded.outcome == candidate.outcome:
        return None
    return f"{recorded.outcome}->{candidate.outcome}"


def _failed_checks(decision: Mapping[str, Any]) -> dict[str, tuple[str, ...]] | None:
    """Agent id -> the names of the checks it failed, from an explanation's verdicts.

    Empty when no agent was matched; None when agents were matched but the explanation kept
    no per-agent verdicts (agent detail off: only failed-check bitmasks).
    """
    explanation = decision.get("explanation")
    matching = explanation.get("matching") if isinstance(explanation, Mapping) else None
    agents = matching.get("agents") if isinstance(matching, Mapping) else None
    if not isinstance(agents, list):
        return {}
    if not agents and isinstance(matching, Mapping) and matching.get("failed_masks"):
        return None
    out: dict[str, tuple[str, ...]] = {}
    for verdict in agents:
        if not isinstance(verdict, Mapping) or not isinstance(verdict.get("agent_id"), str):
            continue
        failures = verdict.get("failures")
        checks = sorted(
            {f["check"] for f in failures or () if isinstance(f, Mapping) and "check" in f}
        )
        out[verdict["agent_id"]] = tuple(str(c) for c in checks)
    return out


@dataclass(frozen=True, slots=True)
class AgentCheckChange:
    """An agent whose failed checks differ between the recording and the candidate.

    Attributes:
        agent_id: The agent.
        recorded: Checks it failed when recorded (empty: eligible; None: not evaluated).
        candidate: Checks it fails under the candidate (same conventions).
    """

    agent_id: str
    recorded: tuple[str, ...] | None
    candidate: tuple[str, ...] | None


MAX_AGENT_CHANGES = 10
"""Agents listed per sampled record whose checks changed (the first, by agent id)."""


def agent_check_changes(
    recorded: Mapping[str, Any], candidate: Mapping[str, Any]
) -> tuple[AgentCheckChange, ...]:
    """Agents whose failed checks differ, by agent id (at most ``MAX_AGENT_CHANGES``).

    Args:
        recorded: The recorded decision (``decision_to_dict`` form).
        candidate: The candidate's decision in the same form.

    Returns:
        The changes; empty when either explanation was kept without per-agent verdicts.
    """
    before, after = _failed_checks(recorded), _failed_checks(candidate)
    if before is None or after is None:
        return ()  # one side kept no verdicts: nothing to compare agent by agent
    changes = [
        AgentCheckChange(agent_id, before.get(agent_id), after.get(agent_id))
        for agent_id in sorted(before.keys() | after.keys())
        if before.get(agent_id) != after.get(agent_id)
    ]
    return tuple(changes[:MAX_AGENT_CHANGES])
