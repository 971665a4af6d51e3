"""The roster cache's memory estimate against what a cached roster really holds (tracemalloc)."""

import gc
import tracemalloc

import pytest

from caseroute.grpc_api import roster_cache
from caseroute.testing import make_agent, make_roster
from caseroute.v1 import routing_pb2 as pb
from caseroute.wire import convert


def _roster(agents: int, attributes: int) -> pb.Roster:
    """``agents`` agents never seen, each with ``attributes`` string attributes."""
    msg = convert.roster_to_proto(make_roster(*[make_agent(f"a-{i}") for i in range(agents)]))
    for i, agent in enumerate(msg.agents):
        for k in range(attributes):
            agent.attributes[f"attribute_{k}"].string_value = f"value-{i}-{k}-padding"
    return msg


def _held(msg: pb.Roster) -> tuple[int, int]:
    """Bytes a fresh cache holds after caching ``msg`` (tracemalloc), and its estimate."""
    cache = roster_cache.RosterCache()
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        cache.parse(msg)
        gc.collect()
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert len(cache) == 1  # cached: the estimate counts what a cached roster keeps
    return held, cache.cached_bytes


@pytest.mark.parametrize("attributes", [0, 5])
def test_the_estimate_is_within_a_fifth_of_what_a_cached_roster_holds(attributes: int) -> None:
    """The budget counts what caching costs: 300 new agents, with and without attributes."""
    held, estimated = _held(_roster(300, attributes))
    assert 0.8 <= estimated / held <= 1.25, (estimated, held)
