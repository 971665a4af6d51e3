"""Warm selection: ranking functions built once, needs without copies, summary clocks by hand."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from caseroute.domain.case import RequiredSkill
from caseroute.domain.roster import AgentStatus, Capacity
from caseroute.engine import matching
from caseroute.engine.decide import decide
from caseroute.engine.matching import _frozen, _merge_skills
from caseroute.engine.ranking import rank_candidates
from caseroute.engine.relaxation import clock_text
from caseroute.engine.roster_index import roster_after_assignment
from caseroute.rules.model import RankingCriterion as C
from caseroute.testing import NOW, make_agent, make_case, make_roster, reference_ruleset

F = ("first", "x")
ALL = (C.LOWEST_UTILISATION, C.HIGHEST_SKILL_LEVEL, C.LONGEST_IDLE, C.HIGHEST_SENIORITY)


def test_every_criterion_ranks_and_shows_its_values() -> None:
    """Each ruleset criterion's key and value, after the leading ones, ties on agent_id."""
    agents = (
        make_agent("b", capacity=Capacity(3, 1), skills={"t": 2}, seniority=4),
        make_agent(
            "a",
            capacity=Capacity(3, 1),
            skills={"t": 2},
            seniority=4,
            last_assigned_at=NOW - timedelta(minutes=90, seconds=9),
        ),
        make_agent("c", capacity=Capacity(0, 0), seniority=9),
    )
    ranked = rank_candidates(
        agents, ALL, "t", NOW, [("first", lambda a: (0 if a.agent_id == "c" else 1, "x"))]
    )
    assert [(r.rank, r.agent_id, r.criteria) for r in ranked] == [
        (
            1,
            "c",
            (F, ("utilisation", 1.0), ("t level", 0), ("idle minutes", None), ("seniority", 9)),
        ),
        (
            2,
            "b",
            (F, ("utilisation", 0.3333), ("t level", 2), ("idle minutes", None), ("seniority", 4)),
        ),
        (
            3,
            "a",
            (F, ("utilisation", 0.3333), ("t level", 2), ("idle minutes", 90.2), ("seniority", 4)),
        ),
    ]


def test_skill_level_without_a_skill_ranks_everyone_equal() -> None:
    """No skill named: every agent's level is 0 and agent_id decides."""
    agents = (make_agent("b", skills={"t": 5}), make_agent("a"))
    ranked = rank_candidates(agents, (C.HIGHEST_SKILL_LEVEL,), None, NOW)
    assert [(r.agent_id, r.criteria) for r in ranked] == [
        ("a", (("skill level", 0),)),
        ("b", (("skill level", 0),)),
    ]


@pytest.mark.parametrize(
    ("first", "second", "expected"),
    [
        ((), (), ()),
        ((RequiredSkill("t", 2),), (), (RequiredSkill("t", 2),)),
        ((RequiredSkill("t", -1),), (), (RequiredSkill("t", 0),)),
        ((RequiredSkill("t", 2), RequiredSkill("t", 4)), (), (RequiredSkill("t", 4),)),
        ((RequiredSkill("t", 2),), (RequiredSkill("t", 1),), (RequiredSkill("t", 2),)),
        ((), (RequiredSkill("u", 1),), (RequiredSkill("u", 1),)),
    ],
)
def test_merged_skills_keep_the_highest_level_per_name(
    first: tuple[RequiredSkill, ...],
    second: tuple[RequiredSkill, ...],
    expected: tuple[RequiredSkill, ...],
) -> None:
    """A lone case skill is passed through; anything else is merged as before (floor 0)."""
    assert expected == _merge_skills(first, second)


def test_frozen_sets_are_built_once_per_tuple_and_bounded() -> None:
    """The same tuple gives the same set; an equal tuple elsewhere its own; the memo is bounded."""
    statuses = (AgentStatus.AVAILABLE, AgentStatus.BUSY)
    kept = _frozen(statuses)
    assert frozenset(statuses) == kept
    assert kept is _frozen(statuses)
    other = (AgentStatus.AVAILABLE, AgentStatus.BUSY)
    assert kept == _frozen(other)
    for n in range(70):
        _frozen((n,))
    assert len(matching._FROZEN) <= 64


@pytest.mark.parametrize(
    ("at", "now", "expected"),
    [
        (
            datetime(2026, 11, 21, 9, 5, tzinfo=UTC),
            datetime(2026, 11, 21, 23, 0, tzinfo=UTC),
            "09:05",
        ),
        (
            datetime(2026, 11, 22, 0, 5, tzinfo=UTC),
            datetime(2026, 11, 21, 23, 58, tzinfo=UTC),
            "2026-11-22 00:05",
        ),
        (datetime(999, 1, 2, 3, 4, tzinfo=UTC), datetime(2026, 1, 1, tzinfo=UTC), None),
        (datetime(9, 1, 2, 3, 4, tzinfo=UTC), datetime(9, 1, 2, 5, 0, tzinfo=UTC), "03:04"),
    ],
)
def test_clock_texts_equal_strftime(at: datetime, now: datetime, expected: str | None) -> None:
    """The same day shows HH:MM, another day the date too, exactly as strftime writes them."""
    text = clock_text(at, now)
    same_day = at.date() == now.date()
    assert at.strftime("%H:%M" if same_day else "%Y-%m-%d %H:%M") == text
    if expected is not None:
        assert expected == text


@pytest.mark.parametrize("keep", [0, 1, 2, 3, 5])
def test_kept_candidates_are_the_first_of_the_whole_ranking(keep: int) -> None:
    """Keeping the first few gives exactly those of the full ranking, values included."""
    agents = tuple(
        make_agent(f"a{n}", capacity=Capacity(4, n % 3), skills={"t": n % 2}, seniority=n)
        for n in range(3)
    )
    whole = rank_candidates(agents, ALL, "t", NOW)
    assert whole[:keep] == rank_candidates(agents, ALL, "t", NOW, keep=keep)


def test_known_keys_are_filled_then_reused() -> None:
    """The first ranking keeps each agent's keys; a later one orders by the kept keys."""
    agents = (make_agent("a", capacity=Capacity(4, 1)), make_agent("b", capacity=Capacity(4, 2)))
    known: dict[str, tuple[float | int | str, ...]] = {}
    first = rank_candidates(agents, (C.LOWEST_UTILISATION,), None, NOW, known=known)
    assert known == {"a": (0.25, "a"), "b": (0.5, "b")}
    assert first == rank_candidates(agents, (C.LOWEST_UTILISATION,), None, NOW)
    known["a"] = (0.9, "a")  # as if "a" were busier: proves the kept keys are read
    assert [
        r.agent_id for r in rank_candidates(agents, (C.LOWEST_UTILISATION,), None, NOW, known=known)
    ] == ["b", "a"]


def test_a_batch_ranks_the_assigned_agent_by_its_new_load() -> None:
    """Keys kept on a roster's index are not carried to the index after an assignment."""
    roster = make_roster(make_agent("a1"), make_agent("a2"))
    loaded = reference_ruleset()
    first = decide(make_case(case_id="C1"), roster, loaded, NOW, agent_detail=False)
    after = roster_after_assignment(roster, "a1", NOW)
    second = decide(make_case(case_id="C2"), after, loaded, NOW, agent_detail=False)
    assert (first.agent_id, second.agent_id) == ("a1", "a2")
