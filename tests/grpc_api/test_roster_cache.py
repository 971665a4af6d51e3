"""A server's parsed-roster cache: bounded by agents and by estimated bytes, LRU, 0 = off."""

import pytest

from caseroute.domain.errors import RequestError
from caseroute.domain.limits import InputLimits
from caseroute.grpc_api import roster_cache
from caseroute.testing import make_agent, make_roster
from caseroute.v1 import routing_pb2 as pb
from caseroute.wire import convert


def _roster(name: str, agents: int = 3) -> pb.Roster:
    return convert.roster_to_proto(make_roster(*[make_agent(f"{name}-{i}") for i in range(agents)]))


def _cost(msg: pb.Roster) -> int:
    return roster_cache.estimate_roster_bytes(
        len(msg.agents), len(msg.SerializeToString(deterministic=True))
    )


def test_the_estimate_grows_with_agents_and_bytes() -> None:
    """880 bytes per agent plus six per serialized byte."""
    assert roster_cache.estimate_roster_bytes(2, 100) == 2360


def test_a_repeated_roster_is_a_hit_returning_the_same_object() -> None:
    """The second parse of the same bytes is served from the cache."""
    cache = roster_cache.RosterCache()
    first = cache.parse(_roster("x"))
    again = cache.parse(_roster("x"))
    assert (again is first, cache.hits, cache.misses, len(cache)) == (True, 1, 1, 1)
    assert cache.cached_bytes == _cost(_roster("x"))


def test_past_the_byte_budget_the_least_recently_used_roster_goes() -> None:
    """Budget for two rosters: adding a third evicts the one used longest ago."""
    a, b, c = _roster("a"), _roster("b"), _roster("c")
    cache = roster_cache.RosterCache(max_bytes=_cost(a) + _cost(b))
    cache.parse(a)
    cache.parse(b)
    cache.parse(a)  # a is now the most recently used
    cache.parse(c)  # over budget: b goes
    assert (len(cache), cache.evictions, cache.cached_bytes) == (2, 1, _cost(a) + _cost(c))
    hits = cache.hits
    cache.parse(a)
    cache.parse(c)
    assert cache.hits == hits + 2
    misses = cache.misses
    cache.parse(b)
    assert cache.misses == misses + 1


def test_past_the_agent_budget_the_least_recently_used_roster_goes() -> None:
    """The agent budget still applies beside the byte budget."""
    cache = roster_cache.RosterCache(max_agents=5)
    cache.parse(_roster("a", 3))
    cache.parse(_roster("b", 2))
    cache.parse(_roster("c", 2))
    assert (len(cache), cache.cached_agents, cache.evictions) == (2, 4, 1)


def test_a_roster_larger_than_the_budget_is_not_cached_and_evicts_nothing() -> None:
    """A roster over the whole byte budget is parsed but never stored."""
    small, big = _roster("s", 1), _roster("b", 50)
    cache = roster_cache.RosterCache(max_bytes=_cost(small) + 10)
    cache.parse(small)
    parsed = cache.parse(big)
    assert (len(parsed.roster.agents), len(cache), cache.evictions) == (50, 1, 0)


@pytest.mark.parametrize(("max_agents", "max_bytes"), [(0, 1 << 30), (100_000, 0)])
def test_zero_turns_the_cache_off(max_agents: int, max_bytes: int) -> None:
    """Either budget at 0: every parse validates afresh and nothing is kept."""
    cache = roster_cache.RosterCache(max_agents=max_agents, max_bytes=max_bytes)
    first = cache.parse(_roster("x"))
    second = cache.parse(_roster("x"))
    assert (first == second, first is second, len(cache), cache.hits, cache.misses) == (
        True,
        False,
        0,
        0,
        0,
    )


def test_configure_shrinks_by_evicting() -> None:
    """Lowering the budgets evicts what no longer fits; 0 empties the cache."""
    cache = roster_cache.RosterCache()
    cache.parse(_roster("a"))
    cache.parse(_roster("b"))
    cache.configure(max_agents=100, max_bytes=_cost(_roster("b")))
    assert (len(cache), cache.evictions) == (1, 1)
    cache.configure(max_agents=100, max_bytes=0)
    assert (len(cache), cache.cached_bytes, cache.cached_agents) == (0, 0, 0)


def test_a_roster_cached_under_loose_limits_is_checked_again_under_strict_ones() -> None:
    """The limits are part of the key: a stricter server never trusts a looser one's parse."""
    cache = roster_cache.RosterCache()
    cache.parse(_roster("x", 3))
    with pytest.raises(RequestError) as caught:
        cache.parse(_roster("x", 3), limits=InputLimits(max_agents=2))
    assert [v.field for v in caught.value.violations] == ["roster.agents"]
