"""RosterIndex.build's masks are their definitions, agent by agent, on any roster.

The build remembers each language tag's primary subtag and skips the set of licence types for
an agent holding one licence; neither may change a mask or a list.
"""

from datetime import date

from hypothesis import given, settings
from hypothesis import strategies as st

from caseroute.domain.roster import Agent, AgentStatus, Capacity, Licence, Role
from caseroute.engine.roster_index import MAX_LEVEL, RosterIndex, language_key
from caseroute.testing import make_agent

TAGS = ["en", "en-GB", "es", "es-MX", "fr", "zh-hant"]
CODES = ["US", "US-TX", "US-CA", "GB-ENG"]
TYPES = ["RN", "LPN", "pharmacist"]


# Built once: building these per draw spent most of the test's time in Hypothesis's own
# strategy validation and caching, not in the index.
COUNTS = st.integers(0, 12)
STATUSES = st.sampled_from(AgentStatus)
ROLES = st.sampled_from(Role)
LOADS = st.integers(0, 3)
TERRITORY_SETS = st.frozensets(st.sampled_from(CODES), max_size=3)
LANGUAGE_SETS = st.frozensets(st.sampled_from(TAGS), max_size=3)
SKILL_MAPS = st.dictionaries(st.sampled_from(["a", "b"]), st.integers(0, MAX_LEVEL))
LICENCE_TYPES = st.sampled_from(TYPES)
LICENCE_COUNTS = st.integers(0, 3)


@st.composite
def rosters(draw: st.DrawFn) -> tuple[Agent, ...]:
    """0-12 agents of any status, role, capacity, territories, languages, skills, licences."""
    count = draw(COUNTS)
    return tuple(
        make_agent(
            f"a{i}",
            status=draw(STATUSES),
            role=draw(ROLES),
            capacity=Capacity(draw(LOADS), draw(LOADS)),
            territories=draw(TERRITORY_SETS),
            languages=draw(LANGUAGE_SETS),
            skills=draw(SKILL_MAPS),
            licences=tuple(
                Licence(draw(LICENCE_TYPES), "US-TX", date(2030, 1, 1))
                for _ in range(draw(LICENCE_COUNTS))
            ),
        )
        for i in range(count)
    )


def _bits(flags: list[bool]) -> int:
    """The mask whose bit i is set when flags[i] holds."""
    return sum(1 << i for i, flag in enumerate(flags) if flag)


@settings(max_examples=300)
@given(rosters())
def test_every_mask_and_list_is_its_definition(agents: tuple[Agent, ...]) -> None:
    """Status, role, capacity, territory, language, skill and licence: by definition."""
    index = RosterIndex.build(agents)
    expected = (
        {s: _bits([a.status == s for a in agents]) for s in {a.status for a in agents}},
        {r: _bits([a.role == r for a in agents]) for r in {a.role for a in agents}},
        _bits([a.capacity.active < a.capacity.max for a in agents]),
        {
            c: _bits([c in a.territories for a in agents])
            for c in {c for a in agents for c in a.territories}
        },
        {
            p: _bits([p in {language_key(t) for t in a.languages} for a in agents])
            for p in {language_key(t) for a in agents for t in a.languages}
        },
        {
            n: [_bits([a.skills.get(n, -1) >= lvl for a in agents]) for lvl in range(11)]
            for n in {n for a in agents for n in a.skills}
        },
        {
            k: [i for i, a in enumerate(agents) if k in {lic.type for lic in a.licences}]
            for k in {lic.type for a in agents for lic in a.licences}
        },
    )
    assert expected == (
        index.by_status,
        index.by_role,
        index.has_capacity,
        index.by_territory,
        index.by_language,
        index.skill_at_least,
        index.licensed,
    )


def test_one_licence_two_of_a_type_and_none_each_list_an_agent_once() -> None:
    """A single licence, two RN licences and none: each holder listed once under each type."""
    rn = Licence("RN", "US-TX", date(2030, 1, 1))
    agents = (
        make_agent("one", licences=(rn,)),
        make_agent("two", licences=(rn, Licence("RN", "US-CA", date(2030, 1, 1)))),
        make_agent("none", licences=()),
        make_agent("mixed", licences=(Licence("LPN", "US-TX", date(2030, 1, 1)), rn)),
    )
    assert RosterIndex.build(agents).licensed == {"RN": [0, 1, 3], "LPN": [3]}
