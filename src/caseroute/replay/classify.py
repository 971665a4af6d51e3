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
- ``relaxation_changed``: the deciding rule's ladder stands at another step (the latest step in
  force), or other soft requirements are relaxed; alone when only the relaxation changed (the
  same agent, say, found at another step).
- ``continuity_changed``: continuity of care came out differently (``held_for_preferred`` ->
  ``assigned_other``, ...), or a held case is held until another instant.
- ``not_replayable``: the record cannot be replayed faithfully (never compared).
- ``unchanged``: none of the above.

The sides compared (``DecisionSide``) and the two adaptive comparisons live in
``domain.decision_side``, shared with the shadow comparison: one home for "what changed".
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from caseroute.domain.decision_side import DecisionSide, continuity_differs, relaxation_differs

OUTCOME_CHANGED = "outcome_changed"
AGENT_CHANGED = "agent_changed"
QUEUE_CHANGED = "queue_changed"
PRIORITY_CHANGED = "priority_changed"
ESCALATION_ADDED = "escalation_added"
ESCALATION_REMOVED = "escalation_removed"
DECIDING_RULE_CHANGED = "deciding_rule_changed"
NEW_EXCEPTION = "new_exception"
RELAXATION_CHANGED = "relaxation_changed"
CONTINUITY_CHANGED = "continuity_changed"
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
    RELAXATION_CHANGED,
    CONTINUITY_CHANGED,
)
"""The classes that make a record ``changed``, in report order."""
CLASSES: tuple[str, ...] = (*DIFFERENCE_CLASSES, NOT_REPLAYABLE, UNCHANGED)
"""Every class, in report order (stable: the JSON report and ``--fail-on`` use these names)."""


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
    if relaxation_differs(recorded, candidate):
        found.append(RELAXATION_CHANGED)
    if continuity_differs(recorded, candidate):
        found.append(CONTINUITY_CHANGED)
    return tuple(found) or (UNCHANGED,)


def outcome_pair(recorded: DecisionSide, candidate: DecisionSide) -> str | None:
    """``ASSIGN->ESCALATE`` when the outcome changed, else None."""
    if recorded.outcome == candidate.outcome:
        return None
    return f"{recorded.outcome}->{candidate.outcome}"


def _failed_checks(decision: Mapping[str, Any]) -> dict[str, tuple[str, ...]] | None:
    """Agent id -> the names of the checks it failed, from an explanation's verdicts.

    Empty when no agent was matched; None when agents were matched but the explanation kept
    no per-agent verdicts (agent detail off). Such an explanation says so by its count of
    agents considered, not by its failed-check bitmasks: those are empty when every agent was
    eligible, and an `audit export` line has none (AuditedDecision holds no field for them).
    """
    explanation = decision.get("explanation")
    matching = explanation.get("matching") if isinstance(explanation, Mapping) else None
    if not isinstance(matching, Mapping):
        return {}
    agents = matching.get("agents", [])  # the JSON dialect leaves an empty list out
    if not isinstance(agents, list):
        return {}
    considered = matching.get("considered")
    if not agents and (matching.get("failed_masks") or _positive(considered)):
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


def _positive(count: Any) -> bool:
    """Whether a stored count is a whole number above 0 (never a bool)."""
    return isinstance(count, int) and not isinstance(count, bool) and count > 0


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
