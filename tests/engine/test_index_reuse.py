"""A new snapshot's index patched from a recent one: equal to a fresh build, and bounded.

``index_for`` patches the index of a roster that holds mostly the same ``Agent`` objects in the
same places as a recent one (``RosterIndex.patched``); every mask, list and carried licence
mask must be the fresh build's, and ``decide()`` must give the same decisions and explanations.
"""

import gc
from collections.abc import Callable
from dataclasses import replace
from datetime import date, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from caseroute.domain.roster import (
    Agent,
    AgentStatus,
    Capacity,
    Licence,
    Role,
    Roster,
    with_kept_agents,
)
from caseroute.engine import roster_index
from caseroute.engine.decide import decide
from caseroute.engine.licensing import CompactView
from caseroute.engine.local_days import LocalDays
from caseroute.engine.roster_index import (
    MAX_BASES,
    MAX_CARRIED_LICENCE_MASKS,
    MAX_LEVEL,
    RosterIndex,
    index_for,
)
from caseroute.testing import NOW, make_agent, make_case, reference_ruleset, skill

TAGS = ["en", "en-GB", "es", "fr"]
CODES = ["US", "US-TX", "US-CA", "US-FL", "GB-ENG"]
TYPES = ["RN", "LPN", "pharmacist"]
DAY = NOW.date()
DAYS = LocalDays.single(DAY)
EXPIRIES = [DAY - timedelta(days=1), DAY, date(2030, 1, 1)]
RULESET = reference_ruleset()
COMPACTS = CompactView((("NLC", frozenset({"RN", "LPN"}), frozenset({"US-TX", "US-FL"})),))
PUBLIC = (
    "agents",
    "everyone",
    "by_status",
    "by_role",
    "has_capacity",
    "by_territory",
    "by_language",
    "skill_at_least",
    "licensed",
)


pytestmark = pytest.mark.usefixtures("no_index_bases")
"""Each test starts and ends with no base index left by another (tests/engine/conftest.py)."""


# Built once: a strategy built per draw spent most of these tests' time in Hypothesis's own
# strategy validation and caching (cProfile of test_index_shifted: ~90% of its 44 s).
STATUSES = st.sampled_from(AgentStatus)
ROLES = st.sampled_from(Role)
LOADS = st.integers(0, 3)
TERRITORY_SETS = st.frozensets(st.sampled_from(CODES), max_size=2)
LANGUAGE_SETS = st.frozensets(st.sampled_from(TAGS), max_size=2)
SKILL_MAPS = st.dictionaries(
    st.sampled_from(["clinical-triage", "billing"]), st.integers(0, MAX_LEVEL)
)
LICENCE_COUNTS = st.integers(0, 2)
LICENCE_TYPES = st.sampled_from(TYPES)
LICENCE_CODES = st.sampled_from(CODES)
LICENCE_EXPIRIES = st.sampled_from(EXPIRIES)
BOOLEANS = st.booleans()


@st.composite
def agents(draw: st.DrawFn, agent_id: str) -> Agent:
    """Any status, role, capacity, territories, languages, skills and licences."""
    return make_agent(
        agent_id,
        status=draw(STATUSES),
        role=draw(ROLES),
        capacity=Capacity(draw(LOADS), draw(LOADS)),
        territories=draw(TERRITORY_SETS),
        languages=draw(LANGUAGE_SETS),
        skills=draw(SKILL_MAPS),
        licences=tuple(
            Licence(
                draw(LICENCE_TYPES),
                draw(LICENCE_CODES),
                draw(LICENCE_EXPIRIES),
                draw(BOOLEANS),
            )
            for _ in range(draw(LICENCE_COUNTS))
        ),
    )


@st.composite
def snapshots(draw: st.DrawFn) -> list[tuple[Agent, ...]]:
    """A first roster of 0-16 agents, then 1-4 snapshots each changing a few places.

    A change replaces an agent by a new value (same id), by an equal copy (another object),
    appends an agent or drops the last one.
    """
    count = draw(st.integers(0, 16))
    current = [draw(agents(f"a{i}")) for i in range(count)]
    out = [tuple(current)]
    for step in range(draw(st.integers(1, 4))):
        for change in range(draw(st.integers(0, 3))):
            kind = draw(st.sampled_from(["new", "copy", "append", "drop"]))
            if kind == "append" or not current:
                current.append(draw(agents(f"s{step}-{change}")))
            elif kind == "drop":
                current.pop()
            else:
                at = draw(st.integers(0, len(current) - 1))
                was = current[at]
                current[at] = replace(was) if kind == "copy" else draw(agents(was.agent_id))
        out.append(tuple(current))
    return out


def _fields(index: RosterIndex) -> tuple[object, ...]:
    """The index's public masks and lists."""
    return tuple(getattr(index, name) for name in PUBLIC)


@settings(max_examples=80, deadline=None)
@given(
    snapshots(),
    st.sampled_from(CODES),
    st.sampled_from(TAGS),
    st.integers(0, MAX_LEVEL),
)
def test_each_snapshot_indexes_and_decides_as_a_fresh_build(
    sequence: list[tuple[Agent, ...]], region: str, language: str, level: int
) -> None:
    """Random snapshot sequences: masks, licence masks, decisions and explanations as fresh."""
    each_snapshot_as_fresh(sequence, region, language, level, _as_fresh)


def _as_fresh(reused: RosterIndex, agents_now: tuple[Agent, ...]) -> None:
    fresh = RosterIndex.build(agents_now)
    assert _fields(fresh) == _fields(reused)
    for key, mask in reused._licence_masks.items():
        assert fresh.licence_mask(*key) == mask


def each_snapshot_as_fresh(
    sequence: list[tuple[Agent, ...]],
    region: str,
    language: str,
    level: int,
    check: Callable[[RosterIndex, tuple[Agent, ...]], None],
) -> None:
    """Each snapshot of ``sequence`` through ``index_for``, kept as the roster cache keeps it.

    ``check`` compares its index with a fresh build; its decision must be a fresh build's, and
    one more licence mask is asked for each time (carried into the next snapshot's index).
    """
    roster_index._bases.clear()
    case = make_case(
        region=region,
        patient_location=region,
        preferred_language=language,
        required_skills=(skill("clinical-triage", level),),
    )
    held = []
    for n, agents_now in enumerate(sequence):
        roster = with_kept_agents(Roster(f"snap-{n}", NOW, agents_now))
        held.append(roster)  # alive, as the roster cache keeps them: the next one's base
        reused = index_for(roster)
        check(reused, agents_now)
        fresh_roster = Roster(f"snap-{n}", NOW, agents_now)
        object.__setattr__(fresh_roster, "index_cache", RosterIndex.build(agents_now))
        assert decide(case, fresh_roster, RULESET, NOW) == decide(case, roster, RULESET, NOW)
        reused.licence_mask(("RN", "LPN"), region, DAYS, COMPACTS)  # one more mask to carry


def _roster(*agents: Agent) -> Roster:
    """A roster of kept agents, as the server's roster cache builds it (patched when it can)."""
    return with_kept_agents(Roster("snap", NOW, agents))


def _team(size: int) -> tuple[Agent, ...]:
    return tuple(make_agent(f"a{i}", skills={"clinical-triage": i % 4}) for i in range(size))


def test_a_second_snapshot_of_the_same_agents_is_patched_not_built(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """One agent of eight replaced: index_for builds once and patches the second snapshot."""
    team = _team(8)
    first = _roster(*team)
    index_for(first)
    builds: list[int] = []
    build = RosterIndex.build

    def counted(_cls: type[RosterIndex], agents: tuple[Agent, ...]) -> RosterIndex:
        builds.append(len(agents))
        return build(agents)

    monkeypatch.setattr(RosterIndex, "build", classmethod(counted))
    changed = replace(team[3], capacity=Capacity(5, 5), skills={"billing": 2})
    second = _roster(*team[:3], changed, *team[4:])
    index = index_for(second)
    assert builds == []
    assert _fields(RosterIndex.build(second.agents)) == _fields(index)


def test_more_than_one_place_in_four_changed_is_built_afresh() -> None:
    """Eight agents: 2 places changed or 1 removed are patched; 3 changed, added or removed not."""
    team = _team(8)
    base = RosterIndex.build(team)
    other = [make_agent(f"b{i}", status=AgentStatus.AWAY) for i in range(3)]
    two = (other[0], *team[1:4], other[1], *team[5:])
    three = (other[0], other[1], other[2], *team[3:])
    assert _fields(RosterIndex.build(two)) == _fields(base.patched(two))  # type: ignore[arg-type]
    assert base.patched(three) is None
    assert base.patched((*team, *other[:1], *other[1:3])) is None  # 3 added of 11
    assert _fields(RosterIndex.build(team[:7])) == _fields(base.patched(team[:7]))  # type: ignore[arg-type]
    assert base.patched(team[:6]) is None  # 2 removed of 6 left


def test_a_place_holding_an_equal_copy_is_indexed_afresh_and_equal() -> None:
    """An equal value that is another object counts as changed; the index is still fresh's."""
    team = _team(4)
    base = RosterIndex.build(team)
    copied = (replace(team[0]), *team[1:])
    assert _fields(RosterIndex.build(copied)) == _fields(base.patched(copied))  # type: ignore[arg-type]


def test_a_skill_licence_and_territory_no_agent_holds_any_more_are_dropped() -> None:
    """The only holder replaced: its skill, licence type, territory and language keys go."""
    odd = make_agent(
        "odd",
        skills={"rare": 4},
        licences=(Licence("pharmacist", "US-CA", date(2030, 1, 1)),),
        territories=frozenset({"GB-ENG"}),
        languages=frozenset({"fr"}),
    )
    team = (*_team(4), odd)
    base = RosterIndex.build(team)
    plain = (*team[:4], make_agent("odd"))
    index = base.patched(plain)
    assert index is not None
    held = (index.skill_at_least, index.licensed, index.by_territory, index.by_language)
    assert [set(keys) for keys in held] == [{"clinical-triage"}, {"RN"}, {"US-TX"}, {"en"}]
    assert _fields(RosterIndex.build(plain)) == _fields(index)


def test_licence_masks_come_along_patched_and_at_most_the_newest_eight() -> None:
    """The base's newest masks, a changed agent's licence re-checked; the older ones left."""
    team = tuple(make_agent(f"a{i}") for i in range(8))  # Texas RNs valid until 2030
    base = RosterIndex.build(team)
    days = [DAY + timedelta(days=d) for d in range(MAX_CARRIED_LICENCE_MASKS + 2)]
    for day in days:
        assert base.licence_mask(("RN",), "US-TX", LocalDays.single(day), COMPACTS) == 0xFF
    lapsed = make_agent("a2", licences=(Licence("RN", "US-TX", DAY - timedelta(days=1)),))
    index = base.patched((*team[:2], lapsed, *team[3:]))
    assert index is not None
    carried = {(("RN",), "US-TX", LocalDays.single(day), COMPACTS): 0xFB for day in days[2:]}
    assert carried == index._licence_masks


def test_index_for_takes_the_base_sharing_most_probed_places() -> None:
    """Two live bases: the one holding the roster's agents; a stranger's is not tried."""
    team, strangers = _team(8), tuple(make_agent(f"z{i}") for i in range(8))
    kept = [_roster(*team), _roster(*strangers)]
    for roster in kept:
        index_for(roster)
    index_for(kept[0]).licence_mask(("RN",), "US-TX", DAYS, COMPACTS)
    near = _roster(*team[:7], make_agent("new"))
    carried = index_for(near)._licence_masks
    assert carried == {(("RN",), "US-TX", DAYS, COMPACTS): 0xFF}
    assert index_for(_roster(*(make_agent(f"y{i}") for i in range(8))))._licence_masks == {}


def test_bases_are_weak_and_at_most_four() -> None:
    """A roster gone takes its index with it; only the newest MAX_BASES are kept as bases."""
    rosters = [_roster(*_team(n + 1)) for n in range(MAX_BASES + 2)]
    for roster in rosters:
        index_for(roster)
    assert len(roster_index._bases) == MAX_BASES
    del rosters, roster
    gc.collect()
    assert [ref() for ref in roster_index._bases] == [None] * MAX_BASES
    index_for(_roster(*_team(3)))  # dead bases skipped, then dropped
    assert len(roster_index._bases) == 1


def test_an_empty_roster_is_built_afresh_beside_any_base() -> None:
    """No place to compare: an empty roster (and one after it) gets a fresh build."""
    kept = _roster(*_team(4))
    index_for(kept)
    assert index_for(_roster()).everyone == 0
    assert _fields(RosterIndex.build(_team(2))) == _fields(index_for(_roster(*_team(2))))
