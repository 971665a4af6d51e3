"""Rosters loaded from the decision log in the roster cache (``RosterCache.keep_loaded``).

A loaded roster is cached under the key and agent keys its Roster message would get, so it
serves a later request that sends it, and its agents a later snapshot, as a sent one does;
only once it hashes to the ``roster_sha256`` asked for, and within the cache's budgets.
"""

from __future__ import annotations

import gc
import json
import tracemalloc
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import HealthCheck, event, given, reject, settings
from hypothesis import strategies as st

from caseroute.domain.codec import parse_roster
from caseroute.domain.errors import RequestError
from caseroute.domain.fingerprint import fingerprint_roster, roster_json, roster_to_dict
from caseroute.domain.limits import InputLimits
from caseroute.domain.roster import AGENTS_KEPT, Roster
from caseroute.grpc_api.roster_cache import RosterCache, estimate_roster_bytes
from caseroute.grpc_api.roster_log import RosterLog
from caseroute.testing import NOW, make_agent, make_roster
from caseroute.v1 import routing_pb2 as pb
from caseroute.wire import convert
from caseroute.wire.convert import KnownRoster
from caseroute.wire.roster_bytes import roster_bytes
from tests.wire.test_fast_known_agents import valid_agent_msgs

ROSTER = make_roster(make_agent("a1"), make_agent("a2"), make_agent("s1"))
SHA = fingerprint_roster(ROSTER).sha256
LIMITS = InputLimits()


class _Stored:
    """A StoredRosters answering every lookup with one text."""

    def __init__(self, text: str) -> None:
        self.text = text

    def roster_text(
        self, sha256: str, *, timeout_s: float, max_agents: int, max_bytes: int
    ) -> str | None:
        del sha256, timeout_s, max_agents, max_bytes
        return self.text


def _load(cache: RosterCache, roster: Roster = ROSTER, text: str | None = None) -> KnownRoster:
    sha = fingerprint_roster(roster).sha256
    stored = _Stored(roster_json(roster) if text is None else text)
    known = RosterLog(stored, cache, max_bytes=1 << 20).load(sha, LIMITS, None)
    assert known is not None
    return known


def test_a_stored_roster_hashing_to_another_sha_is_not_cached() -> None:
    """An edited snapshot (a valid roster, another hash) is refused and kept nowhere."""
    cache = RosterCache()
    other = make_roster(make_agent("z9"))
    loader = RosterLog(_Stored(roster_json(other)), cache, max_bytes=1 << 20)
    assert loader.load(SHA, LIMITS, None) is None
    assert (len(cache), cache.known_agents) == (0, 0)
    assert cache.find(fingerprint_roster(other).sha256, limits=LIMITS) is None


def test_a_stored_attribute_number_written_as_an_int_is_refused() -> None:
    """``5``, not ``5.0``: no message converts to it, so it is refused, as the round trip did."""
    text = roster_json(ROSTER).replace('"attributes":{}', '"attributes":{"n":5}', 1)
    roster = parse_roster(json.loads(text), limits=LIMITS)
    cache = RosterCache()
    assert cache.keep_loaded(roster, fingerprint_roster(roster).sha256, limits=LIMITS) is None
    assert (len(cache), cache.known_agents) == (0, 0)


def test_the_same_roster_sent_after_a_load_is_a_hit() -> None:
    """Cached under its message's key: a request sending it converts nothing."""
    cache = RosterCache()
    loaded = _load(cache)
    misses = cache.misses
    assert cache.parse(convert.roster_to_proto(ROSTER), limits=LIMITS) is loaded
    assert cache.misses == misses
    assert loaded.roster.index_cache is AGENTS_KEPT  # its index may be patched, as a sent one's


def test_a_snapshot_sent_after_a_load_reuses_its_agents() -> None:
    """Its agents are kept by their message bytes: only the changed agent is converted."""
    cache = RosterCache()
    loaded = _load(cache)
    msg = convert.roster_to_proto(ROSTER)
    msg.snapshot_id = "snap-2"
    msg.agents[1].capacity.active = 0
    hits, misses = cache.agent_hits, cache.agent_misses
    sent = cache.parse(msg, limits=LIMITS)
    assert (cache.agent_hits - hits, cache.agent_misses - misses) == (2, 1)
    assert sent.roster.agents[0] is loaded.roster.agents[0]


def test_a_snapshot_loaded_after_a_sent_one_reuses_its_kept_agents() -> None:
    """The agents a sent roster left are the loaded roster's own: the same values, reused."""
    cache = RosterCache()
    sent = cache.parse(convert.roster_to_proto(ROSTER), limits=LIMITS)
    changed = make_roster(make_agent("a1"), make_agent("a2", seniority=9), make_agent("s1"))
    hits = cache.agent_hits
    loaded = _load(cache, changed)
    assert cache.agent_hits - hits == 2
    assert loaded.roster.agents[0] is sent.roster.agents[0]
    assert loaded.roster == changed
    assert loaded.fingerprint == fingerprint_roster(changed)


def test_a_loaded_roster_keeps_no_agent_texts_for_a_blob() -> None:
    """Its snapshot is in the log already: no blob is written, so no texts are held for one."""
    assert _load(RosterCache()).fingerprint.take_texts() is None


def test_a_loaded_roster_counts_in_the_budgets_as_its_message_would() -> None:
    """Its agents, and the estimate of its message's size; evicted, it leaves nothing."""
    cache = RosterCache()
    _load(cache)
    wire = convert.roster_to_proto(ROSTER).SerializeToString(deterministic=True)
    assert (cache.cached_agents, cache.cached_bytes) == (3, estimate_roster_bytes(3, len(wire)))
    cache.configure(max_agents=2, max_bytes=cache.max_bytes)
    assert (len(cache), cache.cached_agents, cache.cached_bytes, cache.known_agents) == (0,) * 4
    assert cache.find(SHA, limits=LIMITS) is None


def test_a_loaded_roster_too_big_for_the_budget_is_used_but_not_kept() -> None:
    """Past the agent budget the roster is still returned (the call decides) and not cached."""
    cache = RosterCache(max_agents=2)
    assert _load(cache).fingerprint.sha256 == SHA
    assert (len(cache), cache.known_agents) == (0, 0)


def test_a_roster_cached_meanwhile_is_the_one_returned() -> None:
    """Sent while the lookup read the log: the cached roster is used and nothing is added."""
    cache = RosterCache()
    sent = cache.parse(convert.roster_to_proto(ROSTER), limits=LIMITS)
    assert cache.keep_loaded(ROSTER, SHA, limits=LIMITS) is sent
    assert len(cache) == 1


def _roster_msg(agents: int, attributes: int) -> pb.Roster:
    """``agents`` agents, each with ``attributes`` string attributes."""
    msg = convert.roster_to_proto(make_roster(*[make_agent(f"a-{i}") for i in range(agents)]))
    for i, agent in enumerate(msg.agents):
        for k in range(attributes):
            agent.attributes[f"attribute_{k}"].string_value = f"value-{i}-{k}-padding"
    return msg


@pytest.mark.parametrize("attributes", [0, 5])
def test_the_estimate_is_within_a_fifth_of_what_a_loaded_roster_holds(attributes: int) -> None:
    """tracemalloc, 300 agents never seen, with and without attributes (as for a sent one)."""
    text = roster_json(convert.roster_from_proto(_roster_msg(300, attributes)))
    cache = RosterCache()
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        roster = parse_roster(json.loads(text), limits=LIMITS)
        assert cache.keep_loaded(roster, fingerprint_roster(roster).sha256, limits=LIMITS)
        del roster
        gc.collect()
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert len(cache) == 1
    assert 0.8 <= cache.cached_bytes / held <= 1.25, (cache.cached_bytes, held)


@st.composite
def stored_texts(draw: st.DrawFn) -> str:
    """A roster's stored JSON as any writer might put it: whole numbers as ints, any offset."""
    agents = draw(st.lists(valid_agent_msgs(), max_size=3))
    msg = pb.Roster(snapshot_id="snap-1", agents=agents)
    msg.taken_at.CopyFrom(convert.datetime_to_timestamp(NOW))
    try:
        data = roster_to_dict(convert.roster_from_proto(msg))
    except RequestError:
        reject()  # ids repeated (ignoring case)
    for agent in data["agents"]:
        for name, value in agent["attributes"].items():
            if type(value) is float and value.is_integer() and draw(st.booleans()):
                agent["attributes"][name] = int(value)  # 5, not 5.0
        instant = agent.get("last_assigned_at")
        if instant is not None and instant > "0002" and draw(st.booleans()):
            local = datetime.fromisoformat(instant).astimezone(timezone(timedelta(hours=-5)))
            agent["last_assigned_at"] = local.isoformat()
    return json.dumps(data)


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(stored_texts())
def test_a_loaded_roster_is_kept_only_as_the_value_its_message_converts_to(text: str) -> None:
    """What a later request sending these bytes would get from the cache is its conversion."""
    roster = parse_roster(json.loads(text), limits=LIMITS)
    cache = RosterCache()
    loaded = cache.keep_loaded(roster, fingerprint_roster(roster).sha256, limits=LIMITS)
    wire = roster_bytes(roster)[0]
    converted = RosterCache().parse(pb.Roster.FromString(wire), limits=LIMITS)
    event("refused" if loaded is None else "kept")
    if loaded is None:  # an int attribute: its message converts to another value
        assert converted.fingerprint.sha256 != fingerprint_roster(roster).sha256
        assert len(cache) == 0
    else:
        assert (converted.roster, converted.fingerprint) == (loaded.roster, loaded.fingerprint)
        assert cache.parse(pb.Roster.FromString(wire), limits=LIMITS) is loaded


def test_a_cache_turned_off_still_checks_the_hash_and_keeps_nothing() -> None:
    """--roster-cache-agents 0: the roster is hashed and used, never cached."""
    cache = RosterCache(max_agents=0)
    assert cache.keep_loaded(ROSTER, SHA, limits=LIMITS) is not None
    assert cache.keep_loaded(ROSTER, "0" * 64, limits=LIMITS) is None
    assert (len(cache), cache.known_agents) == (0, 0)
