"""A sent roster found by its bytes in place (probe, then compare): no copy, no hash, no pin."""

import sys
from pathlib import Path
from typing import Any

from caseroute.grpc_api import roster_cache
from caseroute.grpc_api.servicer import RosterCut, RoutingServicer, request_deserializer
from caseroute.service import RulesetRegistry
from caseroute.testing import audited_core, make_case
from caseroute.v1 import routing_pb2 as pb
from caseroute.wire import convert
from caseroute.wire.request_bytes import cut_field, cut_span

from .fake_context import FakeContext
from .test_sent_roster import LIMITS, ROSTER, SENT, _others, _roster_field, _unknown
from .test_sent_roster import _roster_msg as roster_msg

OTHER = roster_msg("b1", "b2", "b3")


def _same_probe(i: int) -> bytes:
    """A 200-byte form whose probe points (start, middle, end) are those of every other ``i``."""
    form = bytearray(b"p" * 200)
    form[40] = i  # between the start's 16 bytes and the middle's (92..107)
    return bytes(form)


def _kept_forms(cache: roster_cache.RosterCache) -> list[bytes]:
    return [form for entry in cache._entries.values() for form in entry.sent]


def test_a_form_is_found_in_place_inside_a_larger_buffer() -> None:
    """find_sent_at finds the roster by its bytes where they lie, counted as one hit."""
    cache = roster_cache.RosterCache()
    parsed = cache.parse(ROSTER, sent=SENT)
    data = b"head" + SENT + b"tail"
    found = cache.find_sent_at(data, 4, 4 + len(SENT))
    assert (found is parsed, cache.hits) == (True, 1)


def test_no_form_under_the_probe_is_a_miss_counting_nothing() -> None:
    """A form never kept: None, no hit and no miss counted (parse counts it)."""
    cache = roster_cache.RosterCache()
    cache.parse(ROSTER, sent=SENT)
    other = OTHER.SerializeToString()
    assert (cache.find_sent_at(other, 0, len(other)), cache.hits, cache.misses) == (None, 0, 1)


def test_the_same_probe_with_other_bytes_is_a_miss() -> None:
    """A form sharing a kept form's probe but not its bytes is not taken for it."""
    cache = roster_cache.RosterCache()
    cache.parse(ROSTER, sent=_same_probe(1))
    asked = _same_probe(2)
    assert (cache.find_sent_at(asked, 0, len(asked)), cache.hits) == (None, 0)


def test_each_of_a_few_same_probe_forms_finds_its_roster() -> None:
    """Up to PROBE_CANDIDATES forms under one probe are compared in place, each to its roster."""
    cache = roster_cache.RosterCache()
    first = cache.parse(ROSTER, sent=_same_probe(1))
    second = cache.parse(OTHER, sent=_same_probe(2))
    found = [cache.find_sent_at(form, 0, 200) for form in (_same_probe(2), _same_probe(1))]
    assert found == [second, first]


def test_past_the_candidates_bound_the_bytes_are_looked_up_whole() -> None:
    """More same-probe forms than PROBE_CANDIDATES: still each found, and a stranger missed."""
    cache = roster_cache.RosterCache()
    first = cache.parse(ROSTER, sent=_same_probe(1))
    second = cache.parse(OTHER, sent=_same_probe(2))
    forms = range(1, roster_cache.PROBE_CANDIDATES + 2)
    for i in forms:
        cache.parse(ROSTER if i % 2 else OTHER, sent=_same_probe(i))
    found = [cache.find_sent_at(b"x" + _same_probe(i), 1, 201) for i in forms]
    assert found == [first if i % 2 else second for i in forms]
    assert cache.find_sent_at(_same_probe(99), 0, 200) is None


def test_a_form_shorter_than_a_probe_point_is_found_in_place() -> None:
    """A 2-byte form reads its probe points inside itself, in a request as when kept."""
    cache = roster_cache.RosterCache()
    parsed = cache.parse(ROSTER, sent=b"ab")
    assert (cache.find_sent_at(b"xxabyy", 2, 4), cache.find_sent_at(b"xxacyy", 2, 4)) == (
        parsed,
        None,
    )


def test_a_dropped_oldest_form_is_not_found_in_place() -> None:
    """Past MAX_SENT_FORMS the oldest form leaves the probe index too."""
    cache = roster_cache.RosterCache()
    forms = [SENT + _unknown(15, bytes([i])) for i in range(roster_cache.MAX_SENT_FORMS + 1)]
    for form in forms:
        cache.parse(ROSTER, sent=form)
    found = [cache.find_sent_at(form, 0, len(form)) is not None for form in forms]
    assert found == [False] + [True] * roster_cache.MAX_SENT_FORMS


def test_an_evicted_roster_leaves_no_probe_behind() -> None:
    """Evicting drops the roster's forms from the probe index: not found, nothing kept."""
    cache = roster_cache.RosterCache()
    cache.parse(ROSTER, sent=_same_probe(1))
    cache.parse(ROSTER, sent=_same_probe(2))
    cache.configure(max_agents=100, max_bytes=0)
    assert (cache.find_sent_at(_same_probe(1), 0, 200), cache._by_probe) == (None, {})


def test_cut_span_places_the_field_cut_field_copies() -> None:
    """cut_span: the same rest as cut_field, and the span of the bytes cut_field returns."""
    data = _others("r1") + _roster_field(SENT) + _unknown(15, b"z")
    span = cut_span(data, 4)
    assert span is not None
    rest, start, stop = span
    assert (rest, data[start:stop]) == cut_field(data, 4)
    assert (cut_span(_others("r2"), 4), cut_field(_others("r2"), 4)) == (None, None)


def test_the_deserializer_keeps_the_span_and_the_roster_is_a_copy() -> None:
    """A RosterCut holds the request and the roster's span; its roster is the bytes, copied."""
    data = _others("r1") + _roster_field(SENT)
    cut = request_deserializer(pb.DecideRequest)(data)
    assert isinstance(cut, RosterCut)
    assert (cut.data[cut.start : cut.stop], cut.roster, cut.roster is cut.data) == (
        SENT,
        SENT,
        False,
    )


def test_a_miss_keeps_only_the_rosters_bytes_not_the_request(
    registry: RulesetRegistry, tmp_path: Path
) -> None:
    """After a miss the cache keeps a form the roster's size, never the (bigger) request."""
    servicer = RoutingServicer(audited_core(registry, tmp_path), limits=LIMITS)
    try:
        deserialize = request_deserializer(pb.DecideRequest)
        # A request ~50 KB bigger than its roster: a case with 50 attribute texts of 1,000
        # characters (an unknown field padded it before; those are refused now, review M6).
        big = convert.case_to_proto(make_case(attributes={f"a{i}": "z" * 1000 for i in range(50)}))
        context: Any = FakeContext()
        for n in (1, 2):
            data = _others(f"r{n}", case=big) + _roster_field(SENT)
            servicer.Decide(deserialize(data), context)
        cache = servicer.roster_cache
        kept = _kept_forms(cache)
        assert (kept, [sys.getsizeof(f) for f in kept], cache.hits, context.code) == (
            [SENT],
            [sys.getsizeof(SENT)],
            1,
            None,
        )
    finally:
        servicer._core.audit.close()
