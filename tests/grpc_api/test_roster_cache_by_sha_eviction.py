"""The roster cache finds a roster by its roster_sha256 while any wire form of it is cached."""

from caseroute.domain.limits import DEFAULT_LIMITS
from caseroute.grpc_api.roster_cache import RosterCache
from caseroute.testing import make_agent, make_roster
from caseroute.v1 import routing_pb2 as pb
from caseroute.wire import convert


def _rosters() -> tuple[pb.Roster, pb.Roster, pb.Roster]:
    """Two wire forms of one roster (the second spells a jurisdiction lower-case), another one.

    Unknown fields made the second form before; they are refused now (review M6).
    """
    a = convert.roster_to_proto(make_roster(make_agent("a1"), make_agent("a2")))
    b = pb.Roster()
    b.CopyFrom(a)
    b.agents[0].licences[0].jurisdiction = "us-tx"  # read as US-TX: the same roster
    c = convert.roster_to_proto(make_roster(make_agent("c1"), make_agent("c2")))
    return a, b, c


def test_evicting_one_wire_form_keeps_the_other_found_by_hash() -> None:
    """Form B evicted while form A of the same content stays cached: A is found by hash."""
    a, b, c = _rosters()
    cache = RosterCache(max_agents=4)  # room for two 2-agent rosters
    sha = cache.parse(a).fingerprint.sha256
    assert cache.parse(b).fingerprint.sha256 == sha  # same content, a second entry
    cache.parse(a)  # A most recently used
    cache.parse(c)  # evicts B, the least recently used
    found = cache.find(sha, limits=DEFAULT_LIMITS)
    assert (len(cache), found is not None) == (2, True)
    assert found is not None
    assert [x.agent_id for x in found.roster.agents] == ["a1", "a2"]


def test_evicting_the_last_wire_form_forgets_the_hash() -> None:
    """With every form of a roster evicted, its roster_sha256 is a miss (the client resends)."""
    a, b, c = _rosters()
    d = convert.roster_to_proto(make_roster(make_agent("d1"), make_agent("d2")))
    cache = RosterCache(max_agents=4)
    sha = cache.parse(a).fingerprint.sha256
    cache.parse(b)
    cache.parse(c)  # evicts A
    cache.parse(d)  # evicts B
    assert (len(cache), cache.find(sha, limits=DEFAULT_LIMITS)) == (2, None)
