"""Only rosters of kept agents (the server's roster cache) have their index patched."""

import pytest

from caseroute.domain.roster import AGENTS_KEPT, Roster, with_kept_agents
from caseroute.engine import roster_index
from caseroute.engine.decide import decide
from caseroute.engine.roster_index import RosterIndex, index_for
from caseroute.grpc_api.roster_cache import RosterCache
from caseroute.testing import NOW, make_agent, make_case, make_roster, reference_ruleset, skill
from caseroute.wire import convert

RULESET = reference_ruleset()


pytestmark = pytest.mark.usefixtures("no_index_bases")
"""Each test starts and ends with no base index left by another (tests/engine/conftest.py)."""


def test_a_callers_agent_edited_in_place_is_decided_on_its_new_skills() -> None:
    """A library caller edits an agent's skills dict between rosters: the new level decides."""
    agents = (
        make_agent("a0", skills={"clinical-triage": 2}),
        *(make_agent(f"a{i}", skills={"clinical-triage": 1}) for i in range(1, 8)),
    )
    case = make_case(required_skills=(skill("clinical-triage", 2),))
    first = Roster("s1", NOW, agents)  # kept alive: a base, were it one
    before = decide(case, first, RULESET, NOW)
    agents[0].skills["clinical-triage"] = 0
    after = decide(case, Roster("s2", NOW, agents), RULESET, NOW)
    assert (before.outcome, before.agent_id, after.outcome, after.agent_id) == (
        "ASSIGN",
        "a0",
        "QUEUE",
        None,
    )


def test_a_roster_not_marked_is_built_afresh_and_is_no_base() -> None:
    """index_for on a caller's roster: RosterIndex.build, and nothing kept as a base."""
    agents = tuple(make_agent(f"a{i}") for i in range(8))
    kept = with_kept_agents(Roster("s1", NOW, agents))
    index_for(kept)
    plain = Roster("s2", NOW, agents)
    index = index_for(plain)
    assert [ref() for ref in roster_index._bases] == [kept.index_cache]
    assert index is plain.index_cache
    assert isinstance(index, RosterIndex)


def test_marking_keeps_an_index_already_built() -> None:
    """with_kept_agents on an indexed roster leaves its index; on a new one it sets the mark."""
    roster = Roster("s1", NOW, (make_agent("a0"),))
    index = index_for(roster)
    assert (with_kept_agents(roster).index_cache is index, repr(AGENTS_KEPT)) == (
        True,
        "AGENTS_KEPT",
    )
    assert with_kept_agents(Roster("s2", NOW, ())).index_cache is AGENTS_KEPT


@pytest.mark.parametrize("sent", [False, True], ids=["parsed", "read from its bytes"])
def test_the_roster_cache_marks_the_rosters_it_builds(sent: bool) -> None:
    """Both of the cache's conversions hand out rosters marked as of kept agents."""
    msg = convert.roster_to_proto(make_roster(*(make_agent(f"a{i}") for i in range(4))))
    cache = RosterCache()
    data = msg.SerializeToString(deterministic=True)
    known = cache.parse_sent(data) if sent else cache.parse(msg)
    assert known is not None
    assert known.roster.index_cache is AGENTS_KEPT
