"""The roster cache keeps converted agents by their message bytes: reused, never wrong, bounded."""

from datetime import date

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from caseroute.domain.errors import FieldViolation, RequestError
from caseroute.domain.fingerprint import agent_json, agent_sha256
from caseroute.domain.limits import DEFAULT_LIMITS, InputLimits
from caseroute.domain.roster import Capacity, Licence
from caseroute.engine.decide import decide
from caseroute.grpc_api.roster_cache import RosterCache, agent_message_bytes
from caseroute.testing import NOW, make_agent, make_case, make_roster, reference_ruleset
from caseroute.v1 import routing_pb2 as pb
from caseroute.wire import convert
from caseroute.wire.convert import KnownRoster, RosterStore

LOADED = reference_ruleset()


def _msg(*agent_ids: str, snapshot: str = "snap-1") -> pb.Roster:
    msg = convert.roster_to_proto(make_roster(*[make_agent(a) for a in agent_ids]))
    msg.snapshot_id = snapshot
    return msg


def _changed(msg: pb.Roster, index: int, snapshot: str) -> pb.Roster:
    """``msg`` under another snapshot id, agent ``index`` with one more active case."""
    out = pb.Roster()
    out.CopyFrom(msg)
    out.snapshot_id = snapshot
    out.agents[index].capacity.active += 1
    return out


def test_a_new_snapshot_reuses_kept_agents_and_converts_the_changed_one() -> None:
    """Same agent messages: the very same Agent objects; the changed one is converted anew."""
    cache = RosterCache()
    first = cache.parse(_msg("a", "b", "c")).roster
    second = cache.parse(_changed(_msg("a", "b", "c"), 1, "snap-2")).roster
    reused = [second.agents[i] is first.agents[i] for i in range(3)]
    assert (reused, second.agents[1].capacity) == ([True, False, True], Capacity(5, 2))
    assert (cache.agent_hits, cache.agent_misses, cache.known_agents) == (2, 4, 4)


def test_a_kept_agent_gives_the_same_roster_fingerprint_and_blob_as_no_cache() -> None:
    """Roster, digests and the stored roster JSON equal a parse without any cache."""
    cache = RosterCache()
    cache.parse(_msg("a", "b", "c"))
    msg = _changed(_msg("a", "b", "c"), 2, "snap-2")
    cached = cache.parse(msg)
    plain = convert.NO_ROSTER_CACHE.parse(msg, limits=DEFAULT_LIMITS)
    assert (cached.roster, cached.fingerprint) == (plain.roster, plain.fingerprint)
    assert cached.fingerprint.take_texts() == plain.fingerprint.take_texts()
    assert cached.fingerprint.agent_digests[0] == agent_sha256(cached.roster.agents[0])


def test_an_invalid_agent_is_never_kept_and_the_strict_errors_are_unchanged() -> None:
    """A roster with one bad agent: the strict parser's violations, and no agent kept."""
    msg = _msg("a", "b")
    msg.agents[1].licences[0].expires_on = "2030-13-01"
    cache = RosterCache()
    with pytest.raises(RequestError) as cached:
        cache.parse(msg)
    with pytest.raises(RequestError) as plain:
        convert.roster_from_proto(msg)
    assert (cached.value.violations, cache.known_agents, len(cache)) == (
        plain.value.violations,
        0,
        0,
    )
    cache.parse(_msg("a"))
    assert (cache.agent_hits, cache.agent_misses) == (0, 3)


def test_kept_agents_of_a_roster_with_duplicate_ids_still_get_the_strict_error() -> None:
    """Two kept agents sharing an id in a new roster: the strict parser names the duplicate."""
    cache = RosterCache()
    cache.parse(_msg("a", "b"))
    twice = _msg("a", "a", snapshot="snap-2")
    with pytest.raises(RequestError) as cached:
        cache.parse(twice)
    with pytest.raises(RequestError) as plain:
        convert.roster_from_proto(twice)
    assert (cached.value.violations, cache.agent_hits) == (plain.value.violations, 2)


def test_an_agent_leaves_with_the_last_cached_roster_holding_it() -> None:
    """Kept while any cached roster holds its message; gone once the last one is evicted."""
    cache = RosterCache(max_agents=4)
    cache.parse(_msg("a", "b"))
    cache.parse(_msg("a", "c", snapshot="snap-2"))  # holds a too
    assert cache.known_agents == 3
    cache.parse(_msg("d", "e", snapshot="snap-3"))  # evicts the first roster: b goes, a stays
    assert (cache.evictions, cache.known_agents) == (1, 4)
    cache.parse(_msg("f", snapshot="snap-4"))  # evicts the second: a and c go
    assert (cache.evictions, cache.known_agents) == (2, 3)
    hits = cache.agent_hits
    cache.parse(_msg("a", "d", snapshot="snap-5"))
    assert cache.agent_hits == hits + 1  # d still held, a converted again


def test_agents_kept_under_one_set_of_limits_are_converted_again_under_another() -> None:
    """The limits are part of an agent's key, as of a roster's."""
    cache = RosterCache()
    cache.parse(_msg("a", "b"))
    cache.parse(_msg("a", "b", snapshot="snap-2"), limits=InputLimits(max_list_items=50))
    assert (cache.agent_hits, cache.agent_misses, cache.known_agents) == (0, 4, 4)


def test_agents_of_a_roster_too_big_to_cache_are_not_kept() -> None:
    """A roster over the budget is not cached, so none of its agents is kept either."""
    cache = RosterCache(max_agents=2)
    cache.parse(_msg("a", "b", "c"))
    assert (len(cache), cache.known_agents) == (0, 0)


def test_a_cache_that_is_off_keeps_no_agent() -> None:
    """Either budget at 0: no roster and no agent is kept or looked for."""
    cache = RosterCache(max_agents=0)
    cache.parse(_msg("a"))
    cache.parse(_msg("a", snapshot="snap-2"))
    assert (cache.known_agents, cache.agent_hits, cache.agent_misses) == (0, 0, 0)


def test_configure_to_zero_lets_every_kept_agent_go() -> None:
    """Emptying the cache releases every agent its rosters held."""
    cache = RosterCache()
    cache.parse(_msg("a", "b"))
    cache.parse(_msg("b", "c", snapshot="snap-2"))
    cache.configure(max_agents=0, max_bytes=0)
    assert (len(cache), cache.known_agents) == (0, 0)


POOL = [
    make_agent("a"),
    make_agent("a", capacity=Capacity(5, 5)),
    make_agent("b", licences=(Licence("RN", "US-TX", date(2020, 1, 1)),)),
    make_agent("b", languages=frozenset({"es"})),
    make_agent("c", territories=frozenset({"US-CA"})),
    make_agent("c"),
    make_agent("d", skills={"clinical-triage": 1}),
]
"""Agents sharing ids with different values: rosters drawn from it repeat and change agents."""


@st.composite
def roster_sequences(draw: st.DrawFn) -> list[pb.Roster]:
    """A few rosters drawn from POOL (repeats, changes, duplicate ids, an invalid agent)."""
    out = []
    for n in range(draw(st.integers(1, 5))):
        picks = draw(st.lists(st.sampled_from(range(len(POOL))), min_size=1, max_size=4))
        msg = convert.roster_to_proto(make_roster(*[POOL[i] for i in picks]))
        msg.snapshot_id = f"snap-{draw(st.integers(0, 2))}-{n}"
        if draw(st.integers(0, 9)) == 0:
            msg.agents[0].status = 99  # type: ignore[assignment] # unknown: the strict path refuses
        out.append(msg)
    return out


def _outcome(store: RosterStore, msg: pb.Roster) -> KnownRoster | tuple[FieldViolation, ...]:
    """The store's parse of ``msg``, or the violations it raised."""
    try:
        return store.parse(msg, limits=DEFAULT_LIMITS)
    except RequestError as exc:
        return exc.violations


@settings(max_examples=100, deadline=None)
@given(roster_sequences(), st.integers(1, 8))
def test_the_agent_cache_never_changes_a_roster_or_a_decision(
    rosters: list[pb.Roster], max_agents: int
) -> None:
    """Any sequence, any budget: the same roster, digests, blob, error and decision as no cache."""
    cache = RosterCache(max_agents=max_agents)
    for msg in rosters:
        plain = _outcome(convert.NO_ROSTER_CACHE, msg)
        cached = _outcome(cache, msg)
        if not isinstance(plain, KnownRoster) or not isinstance(cached, KnownRoster):
            assert cached == plain  # the same violations
            continue
        assert (cached.roster, cached.fingerprint) == (plain.roster, plain.fingerprint)
        assert [agent_json(a) for a in cached.roster.agents] == [
            agent_json(a) for a in plain.roster.agents
        ]
        blob = cached.fingerprint.take_texts()
        assert blob is None or blob == plain.fingerprint.take_texts()
        assert decide(make_case(), cached.roster, LOADED, NOW) == decide(
            make_case(), plain.roster, LOADED, NOW
        )


def test_agent_keys_are_each_agent_messages_deterministic_bytes() -> None:
    """Cut from the roster's bytes, each key is the agent's own deterministic serialisation."""
    agents = [make_agent("a", attributes={"z": 1.0, "b": "x", "m": True}), make_agent("b")]
    msg = convert.roster_to_proto(make_roster(*agents))
    assert agent_message_bytes(msg.SerializeToString(deterministic=True)) == [
        a.SerializeToString(deterministic=True) for a in msg.agents
    ]


def test_a_roster_with_an_odd_unknown_field_is_refused_keeping_nothing() -> None:
    """A non-length-delimited unknown field: not cut by agent, refused (M6), nothing kept."""
    plain = _msg("a", "b")
    odd = pb.Roster.FromString(plain.SerializeToString() + b"\x78\x01")  # field 15, varint 1
    assert agent_message_bytes(odd.SerializeToString(deterministic=True)) is None
    cache = RosterCache()
    with pytest.raises(RequestError) as caught:
        cache.parse(odd)
    assert ([v.field for v in caught.value.violations], len(cache), cache.known_agents) == (
        ["roster"],
        0,
        0,
    )
    cache.parse(_msg("a", "b", snapshot="snap-2"))
    assert (cache.agent_hits, cache.known_agents) == (0, 2)


def test_an_empty_roster_parses_as_without_the_cache() -> None:
    """No agents: the same roster and fingerprint, nothing kept."""
    msg = convert.roster_to_proto(make_roster())
    cache = RosterCache()
    cached, plain = cache.parse(msg), convert.NO_ROSTER_CACHE.parse(msg, limits=DEFAULT_LIMITS)
    assert (cached.roster, cached.fingerprint, cache.known_agents) == (
        plain.roster,
        plain.fingerprint,
        0,
    )


def test_a_long_agent_message_is_cut_whole() -> None:
    """An agent of more than 127 bytes (a two-byte length) keys as its own serialisation."""
    agents = [make_agent("a", attributes={"note": "x" * 200}), make_agent("b")]
    msg = convert.roster_to_proto(make_roster(*agents))
    keys = agent_message_bytes(msg.SerializeToString(deterministic=True))
    assert keys == [a.SerializeToString(deterministic=True) for a in msg.agents]
    assert len(keys[0]) > 127


def test_a_roster_only_the_strict_path_accepts_is_cached_without_keeping_agents() -> None:
    """A non-ASCII snapshot id (valid; the fast path doubts it): cached, no agent kept."""
    msg = _msg("a", snapshot="snap-\u00e9")
    cache = RosterCache()
    cached = cache.parse(msg)
    plain = convert.NO_ROSTER_CACHE.parse(msg, limits=DEFAULT_LIMITS)
    assert (cached.roster, len(cache), cache.known_agents) == (plain.roster, 1, 0)
    cache.configure(max_agents=0, max_bytes=0)  # evicting it releases no agent
    assert (len(cache), cache.evictions, cache.known_agents) == (0, 1, 0)
