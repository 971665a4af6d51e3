"""Order eligible agents by the ruleset's criteria; ``agent_id`` breaks every remaining tie."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime

from caseroute.domain.case import AttributeValue
from caseroute.domain.decision import RankedCandidate
from caseroute.domain.roster import Agent
from caseroute.rules.model import RankingCriterion

SortKey = float | int
Criterion = Callable[[Agent], tuple[SortKey, AttributeValue | None]]
"""(sort key, value shown in the explanation) for one agent; lower keys rank first."""
_NEVER = float("-inf")  # never assigned: idle the longest


def _criterion(criterion: RankingCriterion, skill: str | None, now: datetime) -> Criterion:
    """(sort key, value shown in the explanation) for one criterion; lower keys rank first."""
    if criterion is RankingCriterion.LOWEST_UTILISATION:

        def utilisation(a: Agent) -> tuple[SortKey, AttributeValue | None]:
            value = a.capacity.utilisation  # a property: computed once, not twice
            return value, round(value, 4)

        return utilisation
    if criterion is RankingCriterion.HIGHEST_SKILL_LEVEL:

        def level(a: Agent) -> tuple[SortKey, AttributeValue | None]:
            value = a.skills.get(skill, 0) if skill is not None else 0
            return -value, value

        return level
    if criterion is RankingCriterion.LONGEST_IDLE:

        def idle(a: Agent) -> tuple[SortKey, AttributeValue | None]:
            if a.last_assigned_at is None:
                return _NEVER, None
            minutes = (now - a.last_assigned_at).total_seconds() / 60.0
            return a.last_assigned_at.timestamp(), round(minutes, 1)

        return idle
    return lambda a: (-a.seniority, a.seniority)


def criterion_label(criterion: RankingCriterion, skill: str | None) -> str:
    """Name of a criterion's value in the explanation."""
    if criterion is RankingCriterion.HIGHEST_SKILL_LEVEL:
        return f"{skill or 'skill'} level"
    return _LABELS[criterion]


_LABELS = {
    RankingCriterion.LOWEST_UTILISATION: "utilisation",
    RankingCriterion.LONGEST_IDLE: "idle minutes",
    RankingCriterion.HIGHEST_SENIORITY: "seniority",
}
"""Labels that name no skill (built once, not per call)."""


def rank_candidates(
    agents: tuple[Agent, ...],
    criteria: tuple[RankingCriterion, ...],
    skill: str | None,
    now: datetime,
    leading: Sequence[tuple[str, Criterion]] = (),
) -> list[RankedCandidate]:
    """Rank eligible agents, best first.

    Args:
        agents: Eligible agents.
        criteria: Ruleset ranking criteria, in order.
        skill: Skill whose level ``highest_skill_level`` compares (``None``: all equal).
        now: Decision instant, for idle time.
        leading: Criteria ranked before the ruleset's (continuity, then soft preferences),
            each with its label.

    Returns:
        Every agent with its rank (1 = chosen) and criterion values; ties end on agent_id.
    """
    fns = [fn for _, fn in leading] + [_criterion(c, skill, now) for c in criteria]
    labels = [label for label, _ in leading] + [criterion_label(c, skill) for c in criteria]
    scored = []
    for agent in agents:
        pairs = [fn(agent) for fn in fns]
        scored.append(((*(p[0] for p in pairs), agent.agent_id), agent, [p[1] for p in pairs]))
    scored.sort(key=lambda item: item[0])
    return [
        RankedCandidate(i + 1, agent.agent_id, tuple(zip(labels, shown, strict=True)))
        for i, (_, agent, shown) in enumerate(scored)
    ]
