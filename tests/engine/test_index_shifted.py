"""A snapshot with agents added or removed mid-roster: its index patched, shifted, as fresh.

An agent logging in or out moves every later agent one place; ``RosterIndex.patched`` moves
the base's bits with them (big-int shifts) instead of building afresh. Every mask, licence
list, carried licence mask and repeated id must be ``RosterIndex.build``'s, and ``index_for``
must still find the base.
"""

from dataclasses import replace
from datetime import date

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from caseroute.domain.roster import (
    Agent,
    Capacity,
    Licence,
    Roster,
    with_kept_agents,
)
from caseroute.engine import roster_index
from caseroute.engine.roster_index import MAX_LEVEL, MAX_SHIFTS, RosterIndex, index_for
from caseroute.testing import NOW, make_agent
from tests.engine.test_index_reuse import (
    CODES,
    COMPACTS,
    DAYS,
    TAGS,
    TYPES,
    agents,
    each_snapshot_as_fresh,
)

FIELDS = (
    "agents",
    "everyone",
    "by_status",
    "by_role",
    "has_capacity",
    "by_territory",
    "by_language",
    "skill_at_least",
    "licensed",
    "repeated",
)

pytestmark = pytest.mark.usefixtures("no_index_bases")
"""Each test starts and ends with no base index left by another (tests/engine/conftest.py)."""


@st.composite
def edited(draw: st.DrawFn, current: list[Agent], tag: str) -> list[Agent]:
    """``current`` after 0-4 edits at random places.

    An edit inserts a new agent (a new id, or one already there: a repeat), removes one,
    replaces one by a new value of the same id or by an equal copy, puts the same object at
    a second place, or inserts or removes a block of 2-12 agents (past ``PROBE_WINDOW``).
    """
    current = list(current)
    kinds = ["insert", "remove", "new", "copy", "again", "repeat", "block-in", "block-out"]
    for change in range(draw(st.integers(0, 4))):
        kind = draw(st.sampled_from(kinds))
        size = draw(st.integers(2, 12))
        if kind == "block-in":
            at = draw(st.integers(0, len(current)))
            current[at:at] = [draw(agents(f"{tag}-{change}-{k}")) for k in range(size)]
            continue
        if kind == "block-out":
            at = draw(st.integers(0, len(current)))
            del current[at : at + size]
            continue
        if kind == "insert" or not current:
            at = draw(st.integers(0, len(current)))
            current.insert(at, draw(agents(f"{tag}-{change}")))
            continue
        at = draw(st.integers(0, len(current) - 1))
        was = current[at]
        if kind == "remove":
            del current[at]
        elif kind == "new":
            current[at] = draw(agents(was.agent_id))
        elif kind == "copy":
            current[at] = replace(was)
        elif kind == "again":
            current.insert(draw(st.integers(0, len(current))), was)
        else:
            current.insert(draw(st.integers(0, len(current))), draw(agents(was.agent_id)))
    return current


@st.composite
def first_roster(draw: st.DrawFn) -> list[Agent]:
    """A first roster of 0-48 agents."""
    return [draw(agents(f"a{i}")) for i in range(draw(st.integers(0, 48)))]


@st.composite
def snapshots(draw: st.DrawFn) -> list[tuple[Agent, ...]]:
    """A first roster of 0-48 agents, then 1-4 snapshots each edited at a few random places."""
    current = draw(first_roster())
    out = [tuple(current)]
    for step in range(draw(st.integers(1, 4))):
        current = draw(edited(current, f"s{step}"))
        out.append(tuple(current))
    return out


def _fields(index: RosterIndex | None) -> tuple[object, ...]:
    """The index's public masks and lists, and its repeated id."""
    assert index is not None
    return tuple(getattr(index, name) for name in FIELDS)


def _assert_as_fresh(index: RosterIndex | None, agents_now: tuple[Agent, ...]) -> None:
    """Every field and carried licence mask is a fresh build's."""
    fresh = RosterIndex.build(agents_now)
    assert _fields(fresh) == _fields(index)
    assert index is not None
    for key, mask in index._licence_masks.items():
        assert fresh.licence_mask(*key) == mask


@settings(max_examples=300, deadline=None)
@given(st.data(), st.sampled_from(CODES))
def test_a_patch_across_insertions_and_removals_equals_a_fresh_build(
    data: st.DataObject, region: str
) -> None:
    """Random edits anywhere: a patched index (when patched) is a fresh build's, masks too."""
    # Only the first roster is used: drawing whole snapshots() here spent most of the test's
    # time generating snapshots it threw away.
    first = tuple(data.draw(first_roster()))
    base = RosterIndex.build(first)
    base.licence_mask(("RN", "LPN"), region, DAYS, COMPACTS)
    base.licence_mask(("pharmacist",), region, DAYS, COMPACTS)
    agents_now = tuple(data.draw(edited(list(first), "new")))
    index = base.patched(agents_now)
    if index is not None:
        _assert_as_fresh(index, agents_now)
        assert len(index._licence_masks) == 2


@settings(max_examples=80, deadline=None)
@given(
    snapshots(),
    st.sampled_from(CODES),
    st.sampled_from(TAGS),
    st.integers(0, MAX_LEVEL),
)
def test_each_shifted_snapshot_indexes_and_decides_as_a_fresh_build(
    sequence: list[tuple[Agent, ...]], region: str, language: str, level: int
) -> None:
    """Snapshot sequences through index_for: masks, licence masks and decisions as fresh."""
    each_snapshot_as_fresh(sequence, region, language, level, _assert_as_fresh)


def _team(size: int) -> tuple[Agent, ...]:
    """Agents of four skill levels and licences of three kinds, the ids in order."""
    return tuple(
        make_agent(
            f"a{i:03}",
            skills={"clinical-triage": i % 4},
            licences=(Licence(TYPES[i % 3], "US-TX", date(2030, 1, 1)),),
            capacity=Capacity(2, i % 3),
        )
        for i in range(size)
    )


@pytest.mark.parametrize(
    ("insert_at", "remove_at"),
    [(5, None), (None, 5), (1, 30), (30, 1), (0, 39), (20, 20), (39, 0)],
)
def test_an_agent_added_and_one_removed_mid_roster_is_patched_not_built(
    monkeypatch: pytest.MonkeyPatch, insert_at: int | None, remove_at: int | None
) -> None:
    """40 agents, one logs in and or one logs out anywhere: patched, as a fresh build."""
    team = _team(40)
    first = with_kept_agents(Roster("s1", NOW, team))
    index_for(first).licence_mask(("RN",), "US-TX", DAYS, COMPACTS)
    agents_now = list(team)
    if remove_at is not None:
        del agents_now[remove_at]
    if insert_at is not None:
        agents_now.insert(insert_at, make_agent("login", skills={"clinical-triage": 3}))
    builds: list[int] = []
    build = RosterIndex.build

    def counted(_cls: type[RosterIndex], agents: tuple[Agent, ...]) -> RosterIndex:
        builds.append(len(agents))
        return build(agents)

    monkeypatch.setattr(RosterIndex, "build", classmethod(counted))
    second = with_kept_agents(Roster("s2", NOW, tuple(agents_now)))
    index = index_for(second)
    assert builds == []
    monkeypatch.undo()
    _assert_as_fresh(index, second.agents)
    assert list(index._licence_masks) == [(("RN",), "US-TX", DAYS, COMPACTS)]


def test_a_shift_keeps_a_repeated_id_at_its_new_places() -> None:
    """A roster repeating an id, one agent added before both: the repeat's places move."""
    team = _team(12)
    doubled = (*team, replace(team[4], capacity=Capacity(9, 0)))
    base = RosterIndex.build(doubled)
    assert base.repeated == ("a004", 4, 12)
    shifted = (make_agent("login"), *doubled)
    index = base.patched(shifted)
    assert index is not None
    assert index.repeated == ("a004", 5, 13)
    _assert_as_fresh(index, shifted)


def test_agents_moved_by_more_than_max_shifts_distances_are_built_afresh() -> None:
    """Agents added at 3 places of 100 are patched (4 distances); at 4 places built anew (5)."""
    team = _team(100)
    base = RosterIndex.build(team)
    agents_now = list(team)
    for k, at in enumerate((90, 70, 50)):
        agents_now.insert(at, make_agent(f"login-{k}"))
    _assert_as_fresh(base.patched(tuple(agents_now)), tuple(agents_now))
    agents_now.insert(30, make_agent("login-3"))
    assert MAX_SHIFTS == 4
    assert base.patched(tuple(agents_now)) is None


def test_agents_out_of_order_are_built_afresh() -> None:
    """Neighbours swapped pairwise: no agent added or removed, but many runs: built anew."""
    team = _team(40)
    swapped = tuple(team[i ^ 1] for i in range(40))
    assert RosterIndex.build(team).patched(swapped) is None


def test_index_for_finds_a_base_shifted_at_most_probed_places() -> None:
    """One agent added at place 1 of 64 and one removed at 60: the base is still found."""
    team = _team(64)
    kept = with_kept_agents(Roster("s1", NOW, team))
    stranger = with_kept_agents(Roster("s0", NOW, _team(64)))  # equal values, other objects
    index_for(stranger)
    index_for(kept).licence_mask(("RN",), "US-TX", DAYS, COMPACTS)
    shifted = (team[0], make_agent("login"), *team[1:60], *team[61:])
    roster = with_kept_agents(Roster("s2", NOW, shifted))
    index = index_for(roster)
    assert list(index._licence_masks) == [(("RN",), "US-TX", DAYS, COMPACTS)]  # carried: patched
    _assert_as_fresh(index, shifted)


def test_agents_appended_after_one_removed_mid_roster_are_patched() -> None:
    """One agent removed at 10 of 40, two appended: the run past the base's end is patched."""
    team = _team(40)
    base = RosterIndex.build(team)
    agents_now = (*team[:10], *team[11:], make_agent("late-1"), make_agent("late-2"))
    _assert_as_fresh(base.patched(agents_now), agents_now)


@settings(max_examples=150, deadline=None)
@given(
    st.integers(32, 64),
    st.integers(0, 64),
    st.integers(0, 63),
    st.sampled_from(["none", "append", "drop"]),
)
def test_one_login_and_one_logout_anywhere_are_always_patched(
    size: int, login_at: int, logout_at: int, tail: str
) -> None:
    """One agent removed and one added at any places, one appended or dropped: patched."""
    team = _team(size)
    base = RosterIndex.build(team)
    base.licence_mask(("RN", "LPN"), "US-TX", DAYS, COMPACTS)
    agents_now = list(team)
    del agents_now[logout_at % size]
    agents_now.insert(login_at % size, make_agent("login", skills={"billing": 2}))
    if tail == "append":
        agents_now.append(make_agent("late"))
    elif tail == "drop":
        agents_now.pop()
    index = base.patched(tuple(agents_now))
    _assert_as_fresh(index, tuple(agents_now))


def test_a_base_shifted_at_both_ends_is_still_found() -> None:
    """Two logins at the head, one logout near the tail: the base is found and patched.

    Every probe is more than one place off counted from the start and one place off counted
    from the end: the base was taken for a stranger's and the roster built afresh (R26b).
    """
    team = tuple(make_agent(f"a{i}") for i in range(100))
    first = with_kept_agents(Roster("s1", NOW, team))
    index_for(first)
    shifted = (make_agent("in1"), make_agent("in2"), *team[:90], *team[91:])
    assert roster_index._closest_base(shifted) is first.index_cache
    roster = with_kept_agents(Roster("s2", NOW, shifted))
    _assert_as_fresh(index_for(roster), shifted)
