"""A shifted patch that would cost more than a fresh build is not taken (the roster is built).

``RosterIndex.patched`` follows the kept agents across logins and logouts mid-roster and moves
every mask once per distance. Two shapes made that dearer than the fresh build it replaced (the
reviewer's A/B at 1,000 agents: 1.8-2.75x, and ~2x): logins and logouts alternating every few
places (every run pays a look-up and its licence lists), and a roster with very many masks
(distinct skills and territories) moved by more than one distance. Both now build afresh; one
login plus one logout, what real rosters send, is still patched (test_index_shifted.py).
"""

from __future__ import annotations

from datetime import date

import pytest

from caseroute.domain.roster import Agent, Capacity, Licence
from caseroute.engine.roster_index import (
    MASKS_PER_AGENT_SHIFTED,
    MAX_SHIFT_CHANGES,
    RosterIndex,
)
from caseroute.testing import make_agent

pytestmark = pytest.mark.usefixtures("no_index_bases")


def _team(n: int, distinct: int = 3) -> tuple[Agent, ...]:
    return tuple(
        make_agent(
            f"a{i:04}",
            territories=frozenset({f"US-Z{i % distinct}"}),
            skills={f"s{i % distinct}": i % 4},
            licences=(Licence(f"T{i % 3}", "US-TX", date(2030, 1, 1)),),
            capacity=Capacity(2, i % 3),
        )
        for i in range(n)
    )


def _alternating(team: tuple[Agent, ...], step: int) -> tuple[Agent, ...]:
    """One logout and one login in every ``step`` places."""
    out: list[Agent] = []
    for i, agent in enumerate(team):
        if i % step == 1:
            continue
        out.append(agent)
        if i % step == step // 2:
            out.append(make_agent(f"x{i:04}"))
    return tuple(out)


def _as_fresh(index: RosterIndex | None, agents: tuple[Agent, ...]) -> RosterIndex:
    """A patched index equals a fresh build (or None: built afresh)."""
    fresh = RosterIndex.build(agents)
    if index is not None:
        assert index.by_status == fresh.by_status
        assert index.skill_at_least == fresh.skill_at_least
        assert index.licensed == fresh.licensed
    return fresh


def test_logins_and_logouts_alternating_every_few_places_build_afresh() -> None:
    """Past MAX_SHIFT_CHANGES moves between distances the patch gives up."""
    team = _team(400)
    base = RosterIndex.build(team)
    many = _alternating(team, 8)  # ~100 moves between two distances
    assert base.patched(many) is None
    assert base.patched(_alternating(team, 16)) is None  # ~50 moves
    # 3 logouts each followed ~100 places on by a login: 6 moves, patched
    agents = list(team)
    for logout, login in ((10, 110), (150, 250), (300, 390)):
        agents.insert(login, make_agent(f"in{login}"))
        agents.remove(team[logout])
    three = tuple(agents)
    assert MAX_SHIFT_CHANGES >= 6
    _as_fresh(base.patched(three), three)
    assert base.patched(three) is not None
    one_each = (*team[:100], make_agent("login"), *team[100:300], *team[301:])
    _as_fresh(base.patched(one_each), one_each)
    assert base.patched(one_each) is not None  # what real rosters send: still patched


def test_a_shifted_roster_with_very_many_masks_builds_afresh() -> None:
    """More masks x distances than MASKS_PER_AGENT_SHIFTED per agent: built afresh."""
    team = _team(300, distinct=300)  # a territory and a skill of its own per agent
    base = RosterIndex.build(team)
    assert base._mask_count() * 2 > MASKS_PER_AGENT_SHIFTED * len(team)
    shifted = (*team[:100], make_agent("login"), *team[100:200], *team[201:])
    assert base.patched(shifted) is None
    replaced = (*team[:100], make_agent("a0100"), *team[101:])  # no shift: patched as before
    _as_fresh(base.patched(replaced), replaced)
    assert base.patched(replaced) is not None
