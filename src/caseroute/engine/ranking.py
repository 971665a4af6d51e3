"""Order eligible agents by the ruleset's criteria; ``agent_id`` breaks every remaining tie."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from functools import lru_cache
from itertools import pairwise
from operator import itemgetter

from caseroute.domain.case import AttributeValue
from caseroute.domain.decision import RankedCandidate
from caseroute.domain.roster import Agent
from caseroute.rules.model import RankingCriterion

SortKey = float | int
Criterion = Callable[[Agent], tuple[SortKey, AttributeValue | None]]
"""(sort key, value shown in the explanation) for one agent; lower keys rank first."""
_NEVER = float("-inf")  # never assigned: idle the longest


KeyOf = Callable[[Agent, datetime], SortKey]
"""A ruleset criterion's sort key for one agent at the decision instant; lower ranks first."""
ShownOf = Callable[[Agent, datetime], AttributeValue | None]
"""A ruleset criterion's value shown in the explanation for one agent."""


def _utilisation_key(a: Agent, _: datetime) -> SortKey:
    return a.capacity.utilisation


def _utilisation_shown(a: Agent, _: datetime) -> AttributeValue | None:
    return round(a.capacity.utilisation, 4)


def _utilisation_exact(a: Agent, _: datetime) -> AttributeValue | None:
    return a.capacity.utilisation


def _idle_key(a: Agent, _: datetime) -> SortKey:
    # The last assignment's instant, not idle time, so the key holds for every decision;
    # ``rank_candidates`` clips one after ``now`` to ``now`` (idle 0) per decision.
    last = a.last_assigned_at
    return _NEVER if last is None else last.timestamp()


def _idle_shown(a: Agent, now: datetime) -> AttributeValue | None:
    exact = _idle_minutes(a, now)
    return None if exact is None else round(exact, 1)


def _idle_exact(a: Agent, now: datetime) -> AttributeValue | None:
    return _idle_minutes(a, now)


def _idle_minutes(a: Agent, now: datetime) -> float | None:
    last = a.last_assigned_at
    # A last assignment after `now` (a clock ahead of ours) is idle 0, never negative.
    return None if last is None else max(0.0, (now - last).total_seconds() / 60.0)


def _seniority_key(a: Agent, _: datetime) -> SortKey:
    return -a.seniority


def _seniority_shown(a: Agent, _: datetime) -> AttributeValue | None:
    return a.seniority


def _no_skill(_: Agent, __: datetime) -> int:
    return 0


def _skill_level(skill: str) -> tuple[KeyOf, ShownOf]:
    def key(a: Agent, _: datetime) -> SortKey:
        return -a.skills.get(skill, 0)

    def shown(a: Agent, _: datetime) -> AttributeValue | None:
        return a.skills.get(skill, 0)

    return key, shown


_EXACT: dict[RankingCriterion, ShownOf] = {
    RankingCriterion.LOWEST_UTILISATION: _utilisation_exact,
    RankingCriterion.LONGEST_IDLE: _idle_exact,
}
"""Criteria whose shown value is rounded for reading, with their unrounded value: shown where
the rounding would hide the difference that ranked one agent above the next."""


def _criterion(criterion: RankingCriterion, skill: str | None) -> tuple[KeyOf, ShownOf]:
    """(sort key, value shown in the explanation) for one criterion; lower keys rank first."""
    if criterion is RankingCriterion.LOWEST_UTILISATION:
        return _utilisation_key, _utilisation_shown
    if criterion is RankingCriterion.HIGHEST_SKILL_LEVEL:
        return _skill_level(skill) if skill is not None else (_no_skill, _no_skill)
    if criterion is RankingCriterion.LONGEST_IDLE:
        return _idle_key, _idle_shown
    return _seniority_key, _seniority_shown


@lru_cache(maxsize=256)
def _ruleset_criteria(
    criteria: tuple[RankingCriterion, ...], skill: str | None
) -> tuple[
    tuple[KeyOf, ...],
    tuple[ShownOf, ...],
    tuple[str, ...],
    tuple[int, ...],
    tuple[ShownOf | None, ...],
]:
    """The criteria's key, shown and exact-value functions, labels, ``longest_idle`` places.

    Exact values are ``None`` where the shown value is exact already. Built once per
    (criteria, skill).
    """
    pairs = [_criterion(c, skill) for c in criteria]
    return (
        tuple(key for key, _ in pairs),
        tuple(shown for _, shown in pairs),
        tuple(criterion_label(c, skill) for c in criteria),
        tuple(i for i, c in enumerate(criteria) if c is RankingCriterion.LONGEST_IDLE),
        tuple(_EXACT.get(c) for c in criteria),
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
    *,
    keep: int | None = None,
    known: dict[str, tuple[SortKey | str, ...]] | None = None,
) -> list[RankedCandidate]:
    """Rank eligible agents, best first.

    Args:
        agents: Eligible agents.
        criteria: Ruleset ranking criteria, in order.
        skill: Skill whose level ``highest_skill_level`` compares (``None``: all equal).
        now: Decision instant, for idle time.
        leading: Criteria ranked before the ruleset's (continuity, then soft preferences),
            each with its label.
        keep: Return only the first ``keep`` candidates (``None``: all). Every agent is
            still ordered; only the kept ones get their values shown (a summary keeps ten of
            a 5,000-agent roster's dozens of eligible agents).
        known: Agent id -> its ruleset keys (``agent_id`` last), kept by the caller for these
            ``criteria`` and ``skill`` over one set of agents: they read nothing but the agent
            (utilisation, skill level, last assignment, seniority), so an agent ranked once is
            not keyed again. Filled here as agents are first ranked.

    Returns:
        Candidates with their rank (1 = chosen) and criterion values; ties end on agent_id.
        Values are rounded for reading (utilisation to 4 places, idle minutes to 1), except
        where the rounding would show two neighbours equal on the criterion that ranked one
        above the other: both then show the unrounded value, so the values shown always
        account for the order (equal values shown mean a later criterion, or agent_id,
        decided).
    """
    keys_of, shown_of, labels, idle_at, exact_of = _ruleset_criteria(criteria, skill)
    now_key = now.timestamp()
    firsts = tuple(fn for _, fn in leading)
    if leading:
        labels = (*(label for label, _ in leading), *labels)
    if known is None:
        known = {}
    scored = []
    for agent in agents:
        own = known.get(agent.agent_id)
        if own is None:
            # Ties end on agent_id. The keys never read ``now`` (idle time is keyed by the
            # last assignment's instant), so they hold for every decision on these agents.
            own = (*[key_of(agent, now) for key_of in keys_of], agent.agent_id)
            known[agent.agent_id] = own  # a racing thread stores an equal tuple: harmless
        for i in idle_at:
            # Invariant: idle keys are floats (an instant, or -inf for never assigned).
            # Assigned after `now`: idle 0 (it ties with an agent assigned at `now`), never
            # negative idle ranking it below everyone (review R33a L3). Clipped here, per
            # decision, not in the kept keys: they serve decisions at other instants.
            last = own[i]
            if isinstance(last, float) and last > now_key:
                own = (*own[:i], now_key, *own[i + 1 :])
        shown: list[AttributeValue | None] = []
        if firsts:
            keys: list[SortKey | str] = []
            for first in firsts:
                key, value = first(agent)
                keys.append(key)
                shown.append(value)
            own = (*keys, *own)
        scored.append((own, agent, shown))
    scored.sort(key=itemgetter(0))
    if keep is not None:
        del scored[keep:]
    for _, agent, shown in scored:
        shown.extend(value_of(agent, now) for value_of in shown_of)
    if any(exact_of):
        _show_deciding_precision(scored, len(firsts), exact_of, now)
    return [
        RankedCandidate(rank, agent.agent_id, tuple(zip(labels, shown, strict=True)))
        for rank, (_, agent, shown) in enumerate(scored, 1)
    ]


def _show_deciding_precision(
    scored: list[tuple[tuple[SortKey | str, ...], Agent, list[AttributeValue | None]]],
    leading: int,
    exact_of: tuple[ShownOf | None, ...],
    now: datetime,
) -> None:
    """Unround a value wherever rounding hides the difference that ordered two neighbours.

    For each pair of neighbours, the first key they differ on decided their order; when that
    is a rounded criterion and both show the same rounded value, both show the exact one
    instead (an auditor reading "idle 12 min" twice would otherwise see a tie that was not).
    """
    for (above, agent_above, shown_above), (below, agent_below, shown_below) in pairwise(scored):
        at = next((i for i, (a, b) in enumerate(zip(above, below, strict=True)) if a != b), None)
        if at is None or at < leading or at - leading >= len(exact_of):
            continue  # a leading criterion or agent_id decided: shown as is
        j = at - leading
        exact = exact_of[j]
        if exact is None or shown_above[at] != shown_below[at]:
            continue
        shown_above[at] = exact(agent_above, now)
        shown_below[at] = exact(agent_below, now)
