"""A sent roster found by its bytes unparsed: the same replies, records and errors as parsing it."""

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from caseroute.domain.errors import RequestError
from caseroute.domain.fingerprint import fingerprint_roster
from caseroute.domain.limits import InputLimits
from caseroute.grpc_api import roster_cache
from caseroute.grpc_api.rpc_calls import FinishedCall
from caseroute.grpc_api.rpc_log import call_fields
from caseroute.grpc_api.servicer import (
    RosterCut,
    RoutingServicer,
    UndecodableRequest,
    lenient_deserializer,
    request_deserializer,
    roster_cut_deserializer,
)
from caseroute.service import RulesetRegistry
from caseroute.testing import NOW, audited_core, make_agent, make_case, make_roster
from caseroute.v1 import routing_pb2 as pb
from caseroute.v1 import routing_pb2_grpc
from caseroute.wire import convert
from tests.grpc_api.fake_context import FakeContext

from .conftest import decide_request, serving_reference

LIMITS = InputLimits(max_batch_pairs=4)
"""Limits for the servicers compared here: a batch of 2 cases x 3 agents is over them."""


def _roster_msg(*names: str) -> pb.Roster:
    roster = convert.roster_to_proto(make_roster(*[make_agent(n) for n in names]))
    for agent in roster.agents:
        agent.attributes["tier"].string_value = "gold"
        agent.attributes["site"].string_value = "north"
    return roster


ROSTER = _roster_msg("a1", "a2", "a3")
SENT = ROSTER.SerializeToString()


def _reordered(roster: pb.Roster) -> bytes:
    """The same roster with its agents first and each agent's map entries reversed."""
    out = b""
    for agent in roster.agents:
        plain = pb.Agent()
        plain.CopyFrom(agent)
        plain.ClearField("attributes")
        entries = [
            pb.Agent(attributes={key: agent.attributes[key]}).SerializeToString()
            for key in sorted(agent.attributes, reverse=True)
        ]
        body = plain.SerializeToString() + b"".join(entries)
        out += b"\x1a" + _length(len(body)) + body  # Roster.agents (field 3)
    head = pb.Roster(snapshot_id=roster.snapshot_id, taken_at=roster.taken_at)
    return out + head.SerializeToString()


def _length(n: int) -> bytes:
    out = b""
    while n >= 0x80:
        out += bytes([n & 0x7F | 0x80])
        n >>= 7
    return out + bytes([n])


def _roster_field(sent: bytes) -> bytes:
    return b"\x22" + _length(len(sent)) + sent  # field 4, length-delimited


def _others(request_id: str, **fields: Any) -> bytes:
    values: dict[str, Any] = {
        "request_id": request_id,
        "case": convert.case_to_proto(make_case()),
        "now": convert.datetime_to_timestamp(NOW),
    }
    values.update(fields)
    return pb.DecideRequest(**values).SerializeToString()


def _unknown(number: int, body: bytes) -> bytes:
    return bytes([number << 3 | 2]) + _length(len(body)) + body


HALF = pb.Roster(
    snapshot_id=ROSTER.snapshot_id, taken_at=ROSTER.taken_at, agents=ROSTER.agents[:1]
).SerializeToString()
REST = pb.Roster(agents=ROSTER.agents[1:]).SerializeToString()
"""ROSTER in two roster fields: protobuf merges them into ROSTER."""
SHA = fingerprint_roster(convert.roster_from_proto(ROSTER)).sha256
BAD_ROSTER = _roster_msg("d1", "d1").SerializeToString()  # two agents with one id

VARIANTS: dict[str, Callable[[str], bytes]] = {
    "plain": lambda rid: _others(rid) + _roster_field(SENT),
    "roster first": lambda rid: _roster_field(SENT) + _others(rid),
    "another sender's order": lambda rid: _others(rid) + _roster_field(_reordered(ROSTER)),
    "roster field twice": lambda rid: _others(rid) + _roster_field(HALF) + _roster_field(REST),
    "unknown fields": lambda rid: (
        _others(rid) + _unknown(15, b"x") + _roster_field(SENT + _unknown(14, b"y"))
    ),
    "matching roster_sha256": lambda rid: _others(rid, roster_sha256=SHA) + _roster_field(SENT),
    "other roster_sha256": lambda rid: _others(rid, roster_sha256="0" * 64) + _roster_field(SENT),
    "invalid roster": lambda rid: _others(rid) + _roster_field(BAD_ROSTER),
    "undecodable roster": lambda rid: _others(rid) + _roster_field(b"\x0a\x05ab"),
    "invalid case": lambda rid: _others(rid, case=pb.Case(case_id="")) + _roster_field(SENT),
    "FULL level": lambda rid: (
        _others(rid, explanation_level=pb.EXPLANATION_LEVEL_FULL) + _roster_field(SENT)
    ),
}


@pytest.fixture
def servicers(
    registry: RulesetRegistry, tmp_path: Path
) -> Iterator[tuple[RoutingServicer, RoutingServicer]]:
    """Two servicers with their own decision logs: A (full parse), B (the server's deserializer)."""
    made = [
        RoutingServicer(audited_core(registry, tmp_path / side), limits=LIMITS) for side in "AB"
    ]
    yield made[0], made[1]
    for servicer in made:
        servicer._core.audit.close()


def _call(servicer: RoutingServicer, method: str, request: Any) -> tuple[Any, ...]:
    context: Any = FakeContext()
    reply = getattr(servicer, method)(request, context)
    return (reply.SerializeToString(), context.code, context.details, context.trailing)


def test_every_variant_answers_and_records_as_the_full_parse(
    servicers: tuple[RoutingServicer, RoutingServicer],
) -> None:
    """Each variant twice (a miss, then a hit by bytes): replies, errors and records equal A's."""
    full, cut = servicers
    whole = lenient_deserializer(pb.DecideRequest)
    server_side = request_deserializer(pb.DecideRequest)
    outcomes = []
    for name, build in VARIANTS.items():
        for n in (1, 2):
            data = build(f"{name}-{n}")
            expected = _call(full, "Decide", whole(data))
            assert (name, n, expected) == (name, n, _call(cut, "Decide", server_side(data)))
            outcomes.append((name, expected[1]))
    assert list(full._core.audit.records()) == list(cut._core.audit.records())
    assert dict(outcomes) == {
        "plain": None,
        "roster first": None,
        "another sender's order": None,
        "roster field twice": None,
        "unknown fields": grpc.StatusCode.INVALID_ARGUMENT,  # refused either way (M6)
        "matching roster_sha256": None,
        "other roster_sha256": grpc.StatusCode.INVALID_ARGUMENT,
        "invalid roster": grpc.StatusCode.INVALID_ARGUMENT,
        "undecodable roster": grpc.StatusCode.INVALID_ARGUMENT,
        "invalid case": grpc.StatusCode.INVALID_ARGUMENT,
        "FULL level": None,
    }
    # The same hits and misses; B keeps the forms it parsed and finds them without parsing.
    counts = [(c.roster_cache.hits, c.roster_cache.misses, len(c.roster_cache)) for c in servicers]
    assert counts[0] == counts[1]
    found = [cut.roster_cache.find_sent(form, limits=LIMITS) for form in (SENT, _reordered(ROSTER))]
    assert [known is not None for known in found] == [True, True]


def test_batches_answer_as_the_full_parse_also_when_over_the_size_limits(
    servicers: tuple[RoutingServicer, RoutingServicer],
) -> None:
    """A batch whose roster is found by bytes: the same decisions, and the same pairs refusal."""
    full, cut = servicers
    whole = lenient_deserializer(pb.DecideBatchRequest)
    server_side = request_deserializer(pb.DecideBatchRequest)
    case = convert.case_to_proto(make_case()).SerializeToString()
    now = convert.datetime_to_timestamp(NOW).SerializeToString()

    def batch(request_id: str, cases: int) -> bytes:
        head = pb.DecideBatchRequest(request_id=request_id).SerializeToString()
        return (
            head
            + b"".join(b"\x1a" + _length(len(case)) + case for _ in range(cases))
            + (b"\x2a" + _length(len(now)) + now + _roster_field(SENT))
        )

    results = []
    for request_id, cases in [("b1", 1), ("b2", 1), ("b3", 2)]:
        expected = _call(full, "DecideBatch", whole(batch(request_id, cases)))
        assert expected == _call(cut, "DecideBatch", server_side(batch(request_id, cases)))
        results.append(expected[1])
    assert results == [None, None, grpc.StatusCode.INVALID_ARGUMENT]
    assert isinstance(server_side(batch("b4", 1)), RosterCut)
    assert list(full._core.audit.records()) == list(cut._core.audit.records())


def test_a_batch_whose_roster_bytes_do_not_parse_is_refused_as_undecodable(
    servicers: tuple[RoutingServicer, RoutingServicer],
) -> None:
    """A cut batch whose roster is not a Roster: the whole parse's INVALID_ARGUMENT at request."""
    full, cut = servicers
    data = pb.DecideBatchRequest(request_id="u1").SerializeToString() + _roster_field(b"\x0a\x05a")
    request = request_deserializer(pb.DecideBatchRequest)(data)
    assert isinstance(request, RosterCut)
    expected = _call(full, "DecideBatch", lenient_deserializer(pb.DecideBatchRequest)(data))
    assert (grpc.StatusCode.INVALID_ARGUMENT, expected) == (
        expected[1],
        _call(cut, "DecideBatch", request),
    )


def test_a_roster_is_found_by_its_sent_bytes_once_parsed_with_them() -> None:
    """find_sent: None before (counting nothing), the parsed roster after, counted as a hit."""
    cache = roster_cache.RosterCache()
    before = cache.find_sent(SENT)
    parsed = cache.parse(ROSTER, sent=SENT)
    assert (before, cache.hits, cache.misses) == (None, 0, 1)
    assert (cache.find_sent(SENT) is parsed, cache.hits) == (True, 1)
    assert cache.cached_bytes == roster_cache.estimate_roster_bytes(
        3, len(SENT)
    ) + roster_cache.sent_form_bytes(SENT)


def test_another_form_of_a_cached_roster_is_found_by_its_deterministic_bytes() -> None:
    """A miss by bytes still hits by the deterministic bytes, and the new form is kept too."""
    cache = roster_cache.RosterCache()
    other = _reordered(ROSTER)
    assert other != SENT
    first = cache.parse(ROSTER, sent=SENT)
    again = cache.parse(pb.Roster.FromString(other), sent=other)
    assert (again is first, cache.hits, cache.misses, len(cache)) == (True, 1, 1, 1)
    assert (cache.find_sent(SENT), cache.find_sent(other)) == (first, first)


def test_sent_forms_are_bounded_per_roster_oldest_first() -> None:
    """Past MAX_SENT_FORMS forms the oldest is dropped, and its bytes leave the budget."""
    cache = roster_cache.RosterCache()
    forms = [SENT + _unknown(15, bytes([i])) for i in range(roster_cache.MAX_SENT_FORMS + 1)]
    for form in forms:
        cache.parse(ROSTER, sent=form)
    found = [cache.find_sent(form) is not None for form in forms]
    assert found == [False] + [True] * roster_cache.MAX_SENT_FORMS
    kept = sum(roster_cache.sent_form_bytes(form) for form in forms[1:])
    assert roster_cache.estimate_roster_bytes(3, len(SENT)) + kept == cache.cached_bytes


def test_the_same_form_twice_is_kept_once() -> None:
    """Two calls with the same bytes (a race to the same roster) add one form."""
    cache = roster_cache.RosterCache()
    cache.parse(ROSTER, sent=SENT)
    cache.parse(ROSTER, sent=SENT)
    assert cache.cached_bytes == roster_cache.estimate_roster_bytes(
        3, len(SENT)
    ) + roster_cache.sent_form_bytes(SENT)


def test_sent_forms_leave_with_their_roster() -> None:
    """Evicting a roster drops its forms: not found by them, their bytes released."""
    cache = roster_cache.RosterCache()
    cache.parse(ROSTER, sent=SENT)
    cache.configure(max_agents=100, max_bytes=0)
    assert (cache.find_sent(SENT), cache.cached_bytes, len(cache)) == (None, 0, 0)


def test_a_form_that_would_overflow_the_budget_is_not_kept() -> None:
    """A roster that fits only without its sent bytes is cached, but not found by them."""
    cost = roster_cache.estimate_roster_bytes(3, len(SENT))
    cache = roster_cache.RosterCache(max_bytes=cost + len(SENT) - 1)
    cache.parse(ROSTER, sent=SENT)
    assert (len(cache), cache.find_sent(SENT), cache.cached_bytes) == (1, None, cost)


def test_an_invalid_roster_is_never_found_by_its_bytes() -> None:
    """An invalid roster raises and is not cached, under its bytes either."""
    cache = roster_cache.RosterCache()
    with pytest.raises(RequestError):
        cache.parse(pb.Roster.FromString(BAD_ROSTER), sent=BAD_ROSTER)
    assert (cache.find_sent(BAD_ROSTER), len(cache), cache.cached_bytes) == (None, 0, 0)


def test_the_limits_are_part_of_the_sent_key() -> None:
    """Bytes found under the limits they were validated with, not under stricter ones."""
    cache = roster_cache.RosterCache()
    cache.parse(ROSTER, sent=SENT)
    strict = InputLimits(max_agents=2)
    assert (cache.find_sent(SENT, limits=strict), cache.hits) == (None, 0)


def test_a_roster_too_big_for_the_cache_is_not_found_by_its_bytes() -> None:
    """Not cached at all: no form is kept either."""
    cache = roster_cache.RosterCache(max_agents=2)
    cache.parse(ROSTER, sent=SENT)
    assert (len(cache), cache.find_sent(SENT), cache.cached_bytes) == (0, None, 0)


def test_with_the_cache_off_no_form_is_kept() -> None:
    """Either budget at 0: parse validates afresh and nothing is found by bytes."""
    cache = roster_cache.RosterCache(max_agents=0)
    cache.parse(ROSTER, sent=SENT)
    assert (cache.find_sent(SENT), cache.cached_bytes) == (None, 0)


def test_a_request_view_finds_by_hash_and_parses_with_its_bytes() -> None:
    """sent_as: parse remembers the request's bytes; find is the cache's find by hash."""
    cache = roster_cache.RosterCache()
    view = cache.sent_as(SENT)
    parsed = view.parse(ROSTER, limits=InputLimits())
    assert (view.find(SHA, limits=InputLimits()), cache.find_sent(SENT)) == (parsed, parsed)


def test_the_deserializer_cuts_a_plain_request_and_parses_the_rest() -> None:
    """A plain Decide: a RosterCut with the other fields parsed and the roster's bytes."""
    data = _others("r1") + _roster_field(SENT)
    cut = roster_cut_deserializer(pb.DecideRequest)(data)
    assert isinstance(cut, RosterCut)
    assert (cut.request_id, cut.message.HasField("roster"), cut.roster, cut.data) == (
        "r1",
        False,
        SENT,
        data,
    )


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (_others("r1"), pb.DecideRequest.FromString(_others("r1"))),
        (
            _others("r1") + _roster_field(SENT) * 2,
            pb.DecideRequest.FromString(_others("r1") + _roster_field(SENT) * 2),
        ),
        (b"\xff\xff", UndecodableRequest("caseroute.v1.DecideRequest", 2)),
        # The rest does not parse (request_id is not UTF-8): the whole parse decides.
        (
            b"\x0a\x01\xff" + _roster_field(SENT),
            UndecodableRequest("caseroute.v1.DecideRequest", 3 + len(_roster_field(SENT))),
        ),
    ],
    ids=["no roster", "roster twice", "garbage", "rest undecodable"],
)
def test_the_deserializer_falls_back_to_the_whole_parse(data: bytes, expected: Any) -> None:
    """Nothing to cut, or anything odd: exactly what lenient_deserializer gives."""
    assert expected == roster_cut_deserializer(pb.DecideRequest)(data)
    assert expected == lenient_deserializer(pb.DecideRequest)(data)


def test_other_methods_keep_the_lenient_deserializer() -> None:
    """request_deserializer: only Decide and DecideBatch requests are cut."""
    parse = request_deserializer(pb.GetDecisionRequest)
    assert (
        pb.GetDecisionRequest(decision_id="d"),
        UndecodableRequest("caseroute.v1.GetDecisionRequest", 1),
    ) == (parse(pb.GetDecisionRequest(decision_id="d").SerializeToString()), parse(b"\xff"))


def test_the_call_log_reads_a_cut_request_as_the_message() -> None:
    """A RosterCut logs its request_id and ruleset like the parsed message."""
    data = _others("r9", ruleset=pb.RulesetSelector(name="triage", version="3")) + _roster_field(
        SENT
    )
    cut = roster_cut_deserializer(pb.DecideRequest)(data)
    whole = pb.DecideRequest.FromString(data)

    def fields(request: Any) -> dict[str, Any]:
        call = FinishedCall(
            "caseroute.v1.RoutingService", "Decide", grpc.StatusCode.OK, 0.0, request, None, "", ""
        )
        return call_fields(call)

    assert isinstance(cut, RosterCut)
    assert fields(whole) == fields(cut)
    assert (fields(cut)["request_id"], fields(cut)["ruleset"]) == ("r9", "triage")


def test_a_real_server_finds_a_resent_roster_by_its_bytes(tmp_path: Path) -> None:
    """Over gRPC: the second Decide is a hit by the roster's bytes and decides the same."""
    request = decide_request("g1")
    sent = request.roster.SerializeToString()
    with serving_reference(tmp_path) as running:
        cache = running.roster_cache
        assert cache is not None
        with grpc.insecure_channel(f"127.0.0.1:{running.port}") as channel:
            stub = routing_pb2_grpc.RoutingServiceStub(channel)
            first = stub.Decide(request)
            counts = (cache.hits, cache.misses)
            request.request_id = "g2"
            second = stub.Decide(request)
        assert (cache.hits, cache.misses) == (counts[0] + 1, counts[1])
        assert cache.find_sent(sent) is not None
    assert (first.decision.outcome, first.decision.agent_id) == (
        second.decision.outcome,
        second.decision.agent_id,
    )
