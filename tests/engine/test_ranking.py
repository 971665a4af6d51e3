from datetime import datetime, timedelta

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


def test_a_last_assignment_after_now_counts_as_zero_idle_time() -> None:
    """R33a L3(c): a future last_assigned_at is idle 0 (ties with now), never negative."""
    agents = [
        make_agent("a", last_assigned_at=NOW + timedelta(hours=1)),
        make_agent("b", last_assigned_at=NOW),
        make_agent("c", last_assigned_at=NOW - timedelta(minutes=1)),
    ]
    ranked = rank_candidates(tuple(agents), (C.LONGEST_IDLE,), None, NOW)
    assert [(r.agent_id, r.criteria) for r in ranked] == [
        ("c", (("idle minutes", 1.0),)),
        ("a", (("idle minutes", 0.0),)),
        ("b", (("idle minutes", 0.0),)),
    ]


def test_zero_idle_for_a_future_assignment_holds_for_each_decision_instant() -> None:
    """Keys kept across decisions (``known``) clip at each decision's own ``now``, not the first."""
    soon = make_agent("a", last_assigned_at=NOW + timedelta(hours=1))
    sooner = make_agent("c", last_assigned_at=NOW + timedelta(minutes=30))
    known: dict[str, tuple[float | int | str, ...]] = {}

    def order(at: datetime) -> list[str]:
        ranked = rank_candidates((soon, sooner), (C.LONGEST_IDLE,), None, at, known=known)
        return [r.agent_id for r in ranked]

    # At NOW both are idle 0 (a tie, broken on agent_id); two hours later c has idled longer.
    assert [order(NOW), order(NOW + timedelta(hours=2)), order(NOW)] == [
        ["a", "c"],
        ["c", "a"],
        ["a", "c"],
    ]


def test_idle_minutes_rounding_to_a_tie_shows_the_minutes_that_decided() -> None:
    """Idle 12.04 and 12.01 min both round to 12.0: both show exact minutes, never a false tie."""
    agents = (
        make_agent("a", last_assigned_at=NOW - timedelta(seconds=720.6)),
        make_agent("b", last_assigned_at=NOW - timedelta(seconds=722.4)),
        make_agent("c", last_assigned_at=NOW - timedelta(minutes=3)),
    )
    ranked = rank_candidates(agents, (C.LONGEST_IDLE,), None, NOW)
    assert [(r.agent_id, r.criteria) for r in ranked] == [
        ("b", (("idle minutes", 12.04),)),
        ("a", (("idle minutes", 12.01),)),
        ("c", (("idle minutes", 3.0),)),  # its difference shows rounded: kept for reading
    ]


def test_utilisation_rounding_to_a_tie_shows_the_utilisation_that_decided() -> None:
    """0.3333 (3333/10000) ranks above 1/3; rounded to 4 places both read 0.3333."""
    agents = (
        make_agent("a", capacity=Capacity(3, 1)),
        make_agent("b", capacity=Capacity(10000, 3333)),
    )
    ranked = rank_candidates(agents, (C.LOWEST_UTILISATION,), None, NOW)
    assert [(r.agent_id, r.criteria) for r in ranked] == [
        ("b", (("utilisation", 0.3333),)),
        ("a", (("utilisation", 1 / 3),)),
    ]


def test_a_true_tie_shows_rounded_values_and_agent_id_decides() -> None:
    """Equal utilisation: the rounded values stay, and equal values mean agent_id decided."""
    agents = (make_agent("b", capacity=Capacity(3, 1)), make_agent("a", capacity=Capacity(6, 2)))
    ranked = rank_candidates(agents, (C.LOWEST_UTILISATION,), None, NOW)
    assert [(r.agent_id, r.criteria) for r in ranked] == [
        ("a", (("utilisation", 0.3333),)),
        ("b", (("utilisation", 0.3333),)),
    ]
