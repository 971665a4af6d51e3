from datetime import timedelta

from caseroute.domain.roster import Capacity
from caseroute.engine.ranking import rank_candidates
from caseroute.rules.model import RankingCriterion as C
from caseroute.testing import NOW, make_agent

CRITERIA = (C.LOWEST_UTILISATION, C.HIGHEST_SKILL_LEVEL, C.LONGEST_IDLE)


def _order(*agents: object, criteria: tuple[C, ...] = CRITERIA) -> list[str]:
    ranked = rank_candidates(tuple(agents), criteria, "triage", NOW)  # type: ignore[arg-type]
    return [r.agent_id for r in ranked]


def test_criteria_apply_in_order_then_agent_id() -> None:
    """Utilisation first, then skill level, then idle time, then agent_id."""
    earlier = NOW - timedelta(hours=2)
    later = NOW - timedelta(minutes=5)
    agents = [
        make_agent("d", capacity=Capacity(4, 1), skills={"triage": 3}, last_assigned_at=later),
        make_agent("c", capacity=Capacity(4, 1), skills={"triage": 3}, last_assigned_at=earlier),
        make_agent("b", capacity=Capacity(4, 1), skills={"triage": 5}, last_assigned_at=later),
        make_agent("a", capacity=Capacity(4, 3), skills={"triage": 9}),
        make_agent("e", capacity=Capacity(2, 0), skills={"triage": 1}, last_assigned_at=later),
    ]
    assert _order(*agents) == ["e", "b", "c", "d", "a"]


def test_never_assigned_counts_as_idle_longest_and_ties_break_on_id() -> None:
    """No last assignment ranks first on idle time; identical agents order by id."""
    agents = [
        make_agent("z", last_assigned_at=NOW - timedelta(days=3)),
        make_agent("y"),
        make_agent("x"),
    ]
    assert _order(*agents, criteria=(C.LONGEST_IDLE,)) == ["x", "y", "z"]


def test_values_are_recorded_for_the_explanation() -> None:
    """Each candidate carries the value of each criterion."""
    (only,) = rank_candidates(
        (make_agent("a", capacity=Capacity(4, 1), skills={"triage": 2}),), CRITERIA, "triage", NOW
    )
    assert only.criteria == (("utilisation", 0.25), ("triage level", 2), ("idle minutes", None))
