"""A first-sight sent roster read from its bytes: the roster, counts and records a parse gives."""

import hashlib
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf.message import Message

from caseroute.domain.limits import DEFAULT_LIMITS, InputLimits
from caseroute.grpc_api.roster_cache import RosterCache, agent_message_bytes, sent_layout
from caseroute.grpc_api.servicer import (
    RosterCut,
    RoutingServicer,
    lenient_deserializer,
    request_deserializer,
)
from caseroute.service import RulesetRegistry
from caseroute.testing import NOW, audited_core, make_agent, make_case, make_roster
from caseroute.v1 import routing_pb2 as pb
from caseroute.wire import convert
from caseroute.wire.convert import KnownRoster
from tests.grpc_api.fake_context import FakeContext


def _roster(count: int, *, prefix: str = "a", snapshot: str = "snap-1") -> pb.Roster:
    """``count`` agents, each with a two-entry attribute map (a map a sender may reorder)."""
    msg = convert.roster_to_proto(make_roster(*[make_agent(f"{prefix}{i}") for i in range(count)]))
    msg.snapshot_id = snapshot
    for agent in msg.agents:
        agent.attributes["tier"].string_value = "gold"
        agent.attributes["site"].string_value = "north"
    return msg


FIRST = _roster(8)


def _changed(snapshot: str, *indexes: int) -> pb.Roster:
    """FIRST under another snapshot id, the agents at ``indexes`` with one more active case."""
    out = pb.Roster()
    out.CopyFrom(FIRST)
    out.snapshot_id = snapshot
    for i in indexes:
        out.agents[i].capacity.active += 1
    return out


def _det(msg: Message) -> bytes:
    return msg.SerializeToString(deterministic=True)


def _counts(cache: RosterCache) -> tuple[int, ...]:
    return (
        cache.hits,
        cache.misses,
        len(cache),
        cache.agent_hits,
        cache.agent_misses,
        cache.known_agents,
        cache.cached_bytes,
    )


def _seen_first() -> RosterCache:
    cache = RosterCache()
    cache.parse(FIRST, sent=_det(FIRST))
    return cache


def _same(read: KnownRoster, parsed: KnownRoster) -> None:
    assert (read.roster, read.fingerprint) == (parsed.roster, parsed.fingerprint)
    assert read.fingerprint.take_texts() == parsed.fingerprint.take_texts()


@pytest.mark.parametrize(
    ("msg", "agent_counts"),
    [
        (_changed("snap-2", 3), (7, 1)),  # a few new agents: only those parsed
        (_changed("snap-2", *range(8)), (0, 8)),  # many: the whole roster parsed once
        (_roster(8, prefix="n"), (0, 8)),  # none kept
        (pb.Roster(snapshot_id="empty", taken_at=FIRST.taken_at), (0, 0)),  # no agents
    ],
)
def test_a_first_sight_read_from_its_bytes_equals_parse_with_those_bytes(
    msg: pb.Roster, agent_counts: tuple[int, int]
) -> None:
    """Same roster, fingerprint, blob JSON, counts and cache as parse(msg, sent=bytes)."""
    sent = _det(msg)
    reading, parsing = _seen_first(), _seen_first()
    before = (reading.agent_hits, reading.agent_misses)
    read = reading.parse_sent(sent)
    assert read is not None
    parsed = parsing.parse(pb.Roster.FromString(sent), sent=sent)
    _same(read, parsed)
    assert _counts(reading) == _counts(parsing)
    assert (reading.agent_hits - before[0], reading.agent_misses - before[1]) == agent_counts
    assert (reading.find_sent(sent) is read, reading.hits) == (True, 1)


def test_kept_agents_are_the_very_objects_kept() -> None:
    """A new snapshot of kept agents reuses their values; only the changed one is new."""
    cache = _seen_first()
    first = cache.parse(FIRST).roster
    read = cache.parse_sent(_det(_changed("snap-2", 5)))
    assert read is not None
    reused = [read.roster.agents[i] is first.agents[i] for i in range(8)]
    assert reused == [True] * 5 + [False] + [True] * 2


def test_the_entry_is_keyed_by_the_rosters_deterministic_bytes() -> None:
    """Another sender's form of the roster read from bytes is a hit on the same entry."""
    cache = _seen_first()
    msg = _changed("snap-2", 1)
    read = cache.parse_sent(_det(msg))
    counts = (cache.hits, cache.misses, len(cache))
    assert cache.parse(msg) is read
    assert (cache.hits, cache.misses, len(cache)) == (counts[0] + 1, counts[1], counts[2])
    key = (hashlib.sha256(_det(msg)).digest(), DEFAULT_LIMITS)
    assert cache._entries[key].known is read


def test_a_cached_roster_no_longer_found_by_its_bytes_is_a_hit() -> None:
    """Cached without this form: found by the key, counted as a hit, the form kept from now."""
    cache = _seen_first()
    msg = _changed("snap-2", 1)
    parsed = cache.parse(msg)  # no bytes given: no form kept
    sent = _det(msg)
    assert cache.find_sent(sent) is None
    hits, misses = cache.hits, cache.misses
    assert (cache.parse_sent(sent) is parsed, cache.hits, cache.misses) == (True, hits + 1, misses)
    assert cache.find_sent(sent) is parsed


def _reordered_agent(agent: pb.Agent) -> bytes:
    """The agent's bytes with its map entries in reverse key order (not deterministic)."""
    plain = pb.Agent()
    plain.CopyFrom(agent)
    plain.ClearField("attributes")
    entries = [
        pb.Agent(attributes={key: agent.attributes[key]}).SerializeToString()
        for key in sorted(agent.attributes, reverse=True)
    ]
    return plain.SerializeToString(deterministic=True) + b"".join(entries)


def _length(n: int, *, overlong: bool = False) -> bytes:
    """``n`` as a varint: minimal, or one byte longer than needed."""
    out = b""
    while n >= 0x80:
        out += bytes([n & 0x7F | 0x80])
        n >>= 7
    return out + (bytes([n | 0x80, 0]) if overlong else bytes([n]))


def _agent_field(body: bytes, *, overlong: bool = False) -> bytes:
    return b"\x1a" + _length(len(body), overlong=overlong) + body  # Roster.agents (field 3)


NEW = _changed("snap-2", 0)
HEADER = _det(pb.Roster(snapshot_id=NEW.snapshot_id, taken_at=NEW.taken_at))
AGENTS = _det(pb.Roster(agents=NEW.agents))
LATER = _det(pb.Roster(agents=NEW.agents[1:]))
"""NEW's agents after its first (the first is the one changed from FIRST)."""
MANY_NEW = _det(_changed("snap-3", *range(7)))
"""A roster with 7 of FIRST's 8 agents changed: read by parsing it whole."""

ODD: dict[str, bytes] = {
    "a new agent's map reordered": HEADER + _agent_field(_reordered_agent(NEW.agents[0])) + LATER,
    "many new agents, one reordered": MANY_NEW
    + _agent_field(_reordered_agent(_roster(1, prefix="z").agents[0])),
    "agents before the header": AGENTS + HEADER,
    "an unknown field after the agents": HEADER + AGENTS + b"\x22\x01x",
    "an unknown varint field": HEADER + AGENTS + b"\x78\x01",
    "snapshot_id twice": HEADER + HEADER[: HEADER.index(b"\x12")] + AGENTS,
    "an empty snapshot_id written": b"\x0a\x00" + HEADER[HEADER.index(b"\x12") :] + AGENTS,
    "an overlong agent length": HEADER + _agent_field(_det(NEW.agents[0]), overlong=True) + LATER,
    "a length past the end": HEADER + AGENTS + b"\x1a\x7f",
    "a tag past the end": HEADER + AGENTS + b"\x1a",
    "a new agent that does not parse": HEADER + _agent_field(b"\x0a\x05") + LATER,
    "many new agents, one that does not parse": MANY_NEW + _agent_field(b"\x0a\x05"),
    "a header that does not parse": b"\x0a\x02\xff\xfe" + AGENTS,  # not UTF-8
}


@pytest.mark.parametrize("name", list(ODD))
def test_bytes_not_laid_out_deterministically_are_not_read_and_count_nothing(name: str) -> None:
    """None (the caller parses whole); no hit, miss, agent or form counted or kept."""
    cache = _seen_first()
    before = _counts(cache)
    assert (name, cache.parse_sent(ODD[name])) == (name, None)
    assert _counts(cache) == before


def test_the_odd_forms_differ_from_what_is_read() -> None:
    """The plain form of ODD's roster is read: each odd form is odd only in its named way."""
    assert _det(NEW) == HEADER + AGENTS
    assert _seen_first().parse_sent(HEADER + AGENTS) is not None


def _twins() -> pb.Roster:
    """FIRST's agents under another snapshot, the last with the id of the one before it."""
    msg = _changed("twins")
    msg.agents[7].agent_id = msg.agents[6].agent_id
    return msg


@pytest.mark.parametrize(
    ("name", "msg", "limits"),
    [
        ("two agents, one id", _twins(), DEFAULT_LIMITS),
        ("a non-ASCII snapshot id", _changed("snap-\u00e9", 1), DEFAULT_LIMITS),
        ("more agents than allowed", _changed("snap-2", 1), InputLimits(max_agents=7)),
    ],
)
def test_a_roster_the_fast_path_does_not_vouch_for_is_not_read(
    name: str, msg: pb.Roster, limits: InputLimits
) -> None:
    """Doubted or over the limits: None and nothing counted (parse's strict path decides)."""
    cache = _seen_first()
    before = _counts(cache)
    assert (name, cache.parse_sent(_det(msg), limits=limits)) == (name, None)
    assert _counts(cache) == before


@pytest.mark.parametrize(("agents", "mib"), [(0, 256), (100, 0)])
def test_with_the_cache_off_nothing_is_read(agents: int, mib: int) -> None:
    """Either budget at 0: None, so the request is parsed whole and validated afresh."""
    cache = RosterCache(max_agents=agents, max_bytes=mib * 1024 * 1024)
    assert (cache.parse_sent(_det(FIRST)), len(cache)) == (None, 0)


def test_the_layout_gives_the_header_and_each_agents_bytes() -> None:
    """sent_layout: where the agents begin and each agent's deterministic bytes."""
    sent = _det(FIRST)
    layout = sent_layout(sent)
    assert layout is not None
    start, agents = layout
    assert (sent[:start], agents) == (
        pb.Roster(snapshot_id=FIRST.snapshot_id, taken_at=FIRST.taken_at).SerializeToString(
            deterministic=True
        ),
        [_det(a) for a in FIRST.agents],
    )


def test_a_long_agent_is_cut_whole_by_the_layout() -> None:
    """An agent of more than 127 bytes (a two-byte length) is cut as its own bytes."""
    msg = _roster(2)
    msg.agents[0].attributes["note"].string_value = "x" * 200
    layout = sent_layout(_det(msg))
    assert layout is not None
    assert layout[1] == [_det(a) for a in msg.agents]
    assert len(layout[1][0]) > 127


def test_agents_are_cut_past_a_field_with_a_two_byte_tag() -> None:
    """agent_message_bytes skips an unknown length-delimited field 16 (tag 0x82 0x01)."""
    wire = _det(FIRST) + b"\x82\x01\x02hi"
    assert agent_message_bytes(wire) == [_det(a) for a in FIRST.agents]


# The servicer: a first sight is read from its bytes, the other fields as the cut parsed them.


@pytest.fixture
def servicers(
    registry: RulesetRegistry, tmp_path: Path
) -> Iterator[tuple[RoutingServicer, RoutingServicer]]:
    """Two servicers with their own decision logs: A (full parse), B (the server's deserializer)."""
    made = [RoutingServicer(audited_core(registry, tmp_path / side)) for side in "AB"]
    yield made[0], made[1]
    for servicer in made:
        servicer._core.audit.close()


def _request(request_id: str, roster: pb.Roster | None = None, **fields: Any) -> bytes:
    if roster is not None:
        fields["roster"] = roster
    return pb.DecideRequest(
        request_id=request_id,
        case=convert.case_to_proto(make_case()),
        now=convert.datetime_to_timestamp(NOW),
        **fields,
    ).SerializeToString(deterministic=True)


def _call(servicer: RoutingServicer, request: Any) -> tuple[Any, ...]:
    context: Any = FakeContext()
    reply = servicer.Decide(request, context)
    return (reply.SerializeToString(), context.code, context.details)


def test_a_first_sight_is_read_from_its_bytes_with_the_fields_already_parsed(
    servicers: tuple[RoutingServicer, RoutingServicer],
) -> None:
    """_uncut on a miss: the cut's own message (no whole parse) and the roster read."""
    _, cut = servicers
    cut.roster_cache.parse(FIRST, sent=_det(FIRST))
    request = request_deserializer(pb.DecideRequest)(_request("r1", _changed("snap-2", 2)))
    assert isinstance(request, RosterCut)
    message, known, _ = cut._uncut(request, lenient_deserializer(pb.DecideRequest))
    assert (message is request.message, known is not None) == (True, True)
    assert cut.roster_cache.find_sent(request.roster) is known


def test_a_request_naming_a_roster_sha256_is_parsed_whole(
    servicers: tuple[RoutingServicer, RoutingServicer],
) -> None:
    """With roster_sha256 sent beside the roster, the whole parse checks one against the other."""
    _, cut = servicers
    data = _request("r1", FIRST, roster_sha256="0" * 64)
    request = request_deserializer(pb.DecideRequest)(data)
    assert isinstance(request, RosterCut)
    message, known, _ = cut._uncut(request, lenient_deserializer(pb.DecideRequest))
    assert (message == pb.DecideRequest.FromString(data), message is request.message) == (
        True,
        False,
    )
    assert (known, len(cut.roster_cache)) == (None, 0)


def test_a_read_that_raises_falls_back_to_the_whole_parse_and_logs_no_text(
    servicers: tuple[RoutingServicer, RoutingServicer],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """An unexpected error reading the bytes: the same reply as a full parse; its type logged."""
    full, cut = servicers

    def fail(*_: Any, **__: Any) -> None:
        raise RuntimeError("Ada Lovelace")

    monkeypatch.setattr(cut.roster_cache, "parse_sent", fail)
    data = _request("r1", FIRST)
    with caplog.at_level(logging.DEBUG, logger="caseroute.grpc"):
        got = _call(cut, request_deserializer(pb.DecideRequest)(data))
    assert got == _call(full, lenient_deserializer(pb.DecideRequest)(data))
    assert got[1] is None
    assert [r.getMessage() for r in caplog.records if "roster not read" in r.getMessage()] == [
        "roster not read from its bytes (RuntimeError): parsed whole"
    ]
    assert "Ada" not in caplog.text


def test_first_sights_answer_and_record_as_the_full_parse(
    servicers: tuple[RoutingServicer, RoutingServicer],
) -> None:
    """Kept agents, a few new, all new, a map reordered, a bad roster: replies and records equal."""
    full, cut = servicers
    rosters = [
        _det(FIRST),
        _det(_changed("snap-2", 4)),
        _det(_changed("snap-3", *range(8))),
        _det(_roster(8, prefix="n")),
        _det(_twins()),
        ODD["a new agent's map reordered"],
        ODD["a new agent that does not parse"],
    ]
    outcomes = []
    for n, roster in enumerate(rosters):
        data = _request(f"r{n}") + b"\x22" + _length(len(roster)) + roster  # roster: field 4
        expected = _call(full, lenient_deserializer(pb.DecideRequest)(data))
        assert (n, expected) == (n, _call(cut, request_deserializer(pb.DecideRequest)(data)))
        outcomes.append(expected[1])
    assert outcomes == [None] * 4 + [grpc.StatusCode.INVALID_ARGUMENT, None] + [
        grpc.StatusCode.INVALID_ARGUMENT
    ]
    assert list(full._core.audit.records()) == list(cut._core.audit.records())
    counts = [(c.roster_cache.hits, c.roster_cache.misses, len(c.roster_cache)) for c in servicers]
    assert counts[0] == counts[1]
