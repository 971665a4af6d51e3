"""Order eligible agents by the ruleset's criteria; ``agent_id`` breaks every remaining tie."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from functools import lru_cache
from operator import itemgetter

from caseroute.domain.case import AttributeValue
from caseroute.domain.decision import RankedCandidate
from caseroute.domain.roster import Agent
from caseroute.rules.model import RankingCriterion

SortKey = float | int
Criterion = Callable[[Agent], tuple[SortKey, AttributeValue | None]]
"""(sort key, value shown in the explanation) for one agent; lower keys rank first."""
_NEVER = float("-inf")  # never assigned: idle the longest


RulesetCriterion = Callable[[Agent, datetime], tuple[SortKey, AttributeValue | None]]
"""A ruleset criterion: (sort key, value shown) for one agent at the decision instant."""


def _utilisation(a: Agent, _: datetime) -> tuple[SortKey, AttributeValue | None]:
    value = a.capacity.utilisation  # a property: computed once, not twice
    return value, round(value, 4)


def _idle(a: Agent, now: datetime) -> tuple[SortKey, AttributeValue | None]:
    last = a.last_assigned_at
    if last is None:
        return _NEVER, None
    return last.timestamp(), round((now - last).total_seconds() / 60.0, 1)


def _seniority(a: Agent, _: datetime) -> tuple[SortKey, AttributeValue | None]:
    return -a.seniority, a.seniority


def _no_skill(_: Agent, __: datetime) -> tuple[SortKey, AttributeValue | None]:
    return 0, 0


def _skill_level(skill: str) -> RulesetCriterion:
    def level(a: Agent, _: datetime) -> tuple[SortKey, AttributeValue | None]:
        value = a.skills.get(skill, 0)
        return -value, value

    return level


def _criterion(criterion: RankingCriterion, skill: str | None) -> RulesetCriterion:
    """(sort key, value shown in the explanation) for one criterion; lower keys rank first."""
    if criterion is RankingCriterion.LOWEST_UTILISATION:
        return _utilisation
    if criterion is RankingCriterion.HIGHEST_SKILL_LEVEL:
        return _skill_level(skill) if skill is not None else _no_skill
    if criterion is RankingCriterion.LONGEST_IDLE:
        return _idle
    return _seniority


@lru_cache(maxsize=256)
def _ruleset_criteria(
    criteria: tuple[RankingCriterion, ...], skill: str | None
) -> tuple[tuple[RulesetCriterion, ...], tuple[str, ...]]:
    """The criteria's functions and labels, built once per (criteria, skill), not per call."""
    return (
        tuple(_criterion(c, skill) for c in criteria),
        tuple(criterion_label(c, skill) for c in criteria),
    )


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
    fns, labels = _ruleset_criteria(criteria, skill)
    firsts = tuple(fn for _, fn in leading)
    if leading:
        labels = (*(label for label, _ in leading), *labels)
    scored = []
    for agent in agents:
        keys: list[SortKey | str] = []
        shown: list[AttributeValue | None] = []
        for first in firsts:
            key, value = first(agent)
            keys.append(key)
            shown.append(value)
        for fn in fns:
            key, value = fn(agent, now)
            keys.append(key)
            shown.append(value)
        keys.append(agent.agent_id)  # ties end on agent_id
        scored.append((tuple(keys), agent.agent_id, shown))
    scored.sort(key=itemgetter(0))
    return [
        RankedCandidate(rank, agent_id, tuple(zip(labels, shown, strict=True)))
        for rank, (_, agent_id, shown) in enumerate(scored, 1)
    ]
