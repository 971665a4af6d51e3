"""The roster cache counts a kept sent form's index (its probe key and lookups) in its budget."""

import gc
import tracemalloc

from caseroute.grpc_api import roster_cache
from caseroute.testing import make_agent, make_roster
from caseroute.v1 import routing_pb2 as pb
from caseroute.wire import convert


def _roster(name: str) -> pb.Roster:
    return convert.roster_to_proto(make_roster(make_agent(f"{name}-1"), make_agent(f"{name}-2")))


def _forms(msg: pb.Roster) -> list[bytes]:
    """MAX_SENT_FORMS distinct byte forms of ``msg`` (an unknown field 15 appended to each)."""
    wire = msg.SerializeToString()
    return [wire + bytes([0x7A, 1, i]) for i in range(roster_cache.MAX_SENT_FORMS)]


def test_a_kept_form_costs_its_bytes_and_its_index() -> None:
    """One roster, one form: the roster's estimate + the form's bytes + SENT_FORM_OVERHEAD_BYTES."""
    msg = _roster("a")
    sent = msg.SerializeToString()
    cache = roster_cache.RosterCache()
    cache.parse(msg, sent=sent)
    expected = roster_cache.estimate_roster_bytes(2, len(sent)) + len(sent) + 300
    assert (roster_cache.SENT_FORM_OVERHEAD_BYTES, cache.cached_bytes) == (300, expected)
    assert roster_cache.sent_form_bytes(sent) == len(sent) + 300


def test_the_budget_holds_with_many_forms_kept() -> None:
    """A budget of 3 rosters with 4 forms each: 10 such rosters leave 3, their cost exact."""
    msgs = [_roster(f"r{i}") for i in range(10)]
    wire = len(msgs[0].SerializeToString())
    one = roster_cache.estimate_roster_bytes(2, wire) + roster_cache.MAX_SENT_FORMS * (
        wire + 3 + 300
    )
    cache = roster_cache.RosterCache(max_bytes=3 * one)
    highest = 0
    for msg in msgs:
        for form in _forms(msg):
            cache.parse(msg, sent=form)
            highest = max(highest, cache.cached_bytes)
    assert (len(cache), cache.cached_bytes, highest <= 3 * one) == (3, 3 * one, True)


def test_the_count_covers_what_many_kept_forms_hold() -> None:
    """800 forms (200 rosters x 4): tracemalloc's growth is within what the cache counts."""
    msgs = [_roster(f"m{i}") for i in range(200)]
    cache = roster_cache.RosterCache(max_agents=10**6, max_bytes=10**12)
    for msg in msgs:
        cache.parse(msg)
    counted_before = cache.cached_bytes
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for msg in msgs:
            for form in _forms(msg):  # made here: the cache keeps them, as a server's requests'
                cache.parse(msg, sent=form)
        gc.collect()
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    counted = cache.cached_bytes - counted_before
    assert (held <= counted, counted <= 1.25 * held) == (True, True), (held, counted)
