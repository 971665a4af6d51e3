"""DecideRequest.roster_sha256: a roster the server holds is named by its hash, never resent."""

from dataclasses import replace
from pathlib import Path
from typing import Any

import grpc
import grpc_testing
import pytest
from google.protobuf import json_format
from google.rpc import error_details_pb2, status_pb2

from caseroute.audit.record import AuditRecord
from caseroute.domain.codec import parse_request
from caseroute.domain.errors import FieldViolation, RequestError, RosterNotCachedError
from caseroute.domain.fingerprint import roster_sha256
from caseroute.domain.limits import InputLimits
from caseroute.grpc_api.roster_cache import RosterCache
from caseroute.grpc_api.server import RunningServer
from caseroute.grpc_api.servicer import RoutingServicer
from caseroute.service import RoutingCore, RulesetRegistry
from caseroute.testing import audited_core, make_agent, make_roster
from caseroute.v1 import routing_pb2 as pb
from caseroute.v1 import routing_pb2_grpc
from caseroute.wire import convert

from .conftest import ROSTER, decide_request, serving_reference

SERVICE = pb.DESCRIPTOR.services_by_name["RoutingService"]
SHA = roster_sha256(ROSTER)
UNKNOWN = "0" * 64


class Server:
    """One servicer (and its roster cache) behind grpcio-testing, called many times."""

    def __init__(self, core: RoutingCore, **options: Any) -> None:
        self.core = core
        self.servicer = RoutingServicer(core, **options)
        self._server = grpc_testing.server_from_dictionary(
            {SERVICE: self.servicer}, grpc_testing.strict_real_time()
        )

    def call(self, method: str, request: Any) -> tuple[Any, Any, grpc.StatusCode, str]:
        """The reply, trailing metadata, code and details of one call."""
        rpc = self._server.invoke_unary_unary(SERVICE.methods_by_name[method], (), request, None)
        termination: tuple[Any, Any, grpc.StatusCode, str] = rpc.termination()
        return termination


def _by_hash(request: pb.DecideRequest, sha: str = SHA) -> pb.DecideRequest:
    """The request with its roster replaced by ``sha``."""
    request.ClearField("roster")
    request.roster_sha256 = sha
    return request


def _violations(metadata: Any) -> list[tuple[str, str]]:
    status = status_pb2.Status.FromString(dict(metadata)["grpc-status-details-bin"])
    bad = error_details_pb2.BadRequest()
    assert status.details[0].Unpack(bad)
    return [(v.field, v.description) for v in bad.field_violations]


def _error_info(metadata: Any) -> tuple[str, str, dict[str, str]]:
    status = status_pb2.Status.FromString(dict(metadata)["grpc-status-details-bin"])
    info = error_details_pb2.ErrorInfo()
    assert status.details[0].Unpack(info)
    return info.reason, info.domain, dict(info.metadata)


def _chain_free(record: AuditRecord | None) -> AuditRecord:
    """The record without what depends on the log it is in (position, chain, wall clock)."""
    assert record is not None
    return replace(record, seq=0, prev_hash="", record_hash="", recorded_at="")


@pytest.fixture
def server(core: RoutingCore) -> Server:
    """A servicer over the shared ``core``, with its own roster cache."""
    return Server(core)


def test_a_hash_only_request_decides_and_records_exactly_as_the_roster_would(
    registry: RulesetRegistry, tmp_path: Path
) -> None:
    """Same decision, decision id, input hash and audit record (bar the chain) as the roster."""
    sent, named = (
        Server(audited_core(registry, tmp_path / "a")),
        Server(audited_core(registry, tmp_path / "b")),
    )
    with_roster, _, code, _ = sent.call("Decide", decide_request("r1"))
    assert code is grpc.StatusCode.OK
    named.call("Decide", decide_request("warm", case_id="OTHER"))
    by_hash, _, code, _ = named.call("Decide", _by_hash(decide_request("r1")))
    assert code is grpc.StatusCode.OK
    assert by_hash == with_roster
    decision_id = by_hash.decision.decision_id
    assert _chain_free(named.core.audit.get(decision_id)) == _chain_free(
        sent.core.audit.get(decision_id)
    )
    for each in (sent, named):
        each.core.audit.close()


def test_an_unknown_hash_is_failed_precondition_with_a_reason_to_resend(server: Server) -> None:
    """FAILED_PRECONDITION, ErrorInfo ROSTER_NOT_CACHED naming the hash; nothing recorded."""
    _, metadata, code, details = server.call("Decide", _by_hash(decide_request("r1"), UNKNOWN))
    assert (code, _error_info(metadata)) == (
        grpc.StatusCode.FAILED_PRECONDITION,
        ("ROSTER_NOT_CACHED", "caseroute", {"roster_sha256": UNKNOWN}),
    )
    assert details == (
        f"roster_sha256 {UNKNOWN} names no roster this server holds (rosters are kept per "
        "server process for a while); send the request again with the roster itself"
    )
    assert server.core.audit.by_request("r1") == []


def test_a_hash_that_is_not_the_roster_s_is_invalid_argument(server: Server) -> None:
    """Roster and a hash that is not its own: INVALID_ARGUMENT at roster_sha256."""
    request = decide_request("r1")
    request.roster_sha256 = UNKNOWN
    _, metadata, code, _ = server.call("Decide", request)
    assert (code, _violations(metadata)) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        [
            (
                "roster_sha256",
                (
                    f"is {UNKNOWN}, but the roster sent has roster_sha256 {SHA}; send the "
                    "roster's own hash, or leave roster_sha256 empty"
                ),
            )
        ],
    )


def test_the_roster_s_own_hash_beside_it_is_accepted(server: Server) -> None:
    """Roster and its own hash: decided as with the roster alone."""
    request = decide_request("r1")
    request.roster_sha256 = SHA
    reply, _, code, _ = server.call("Decide", request)
    assert (code, reply.decision.agent_id) == (grpc.StatusCode.OK, "a1")


@pytest.mark.parametrize(
    ("sha", "got"),
    [
        ("abc", "got 3 characters"),
        (SHA + "0", "got 65 characters"),
        # R34a F3: these two were told "got 64 characters", which is what was asked for.
        (SHA.upper(), "it holds upper-case letters (send it in lower case)"),
        ("g" + SHA[1:], "it holds characters that are not hex digits (0-9, a-f)"),
    ],
    ids=["short", "long", "upper", "not hex"],
)
def test_a_malformed_hash_is_invalid_argument(server: Server, sha: str, got: str) -> None:
    """Not 64 lowercase hex: INVALID_ARGUMENT at roster_sha256 saying what is wrong with it."""
    expected = [
        (
            "roster_sha256",
            (
                "must be 64 lowercase hex characters (a roster's roster_sha256, as the decision "
                f"log records it); {got}"
            ),
        )
    ]
    with_roster = decide_request("r1")
    with_roster.roster_sha256 = sha
    for request in (with_roster, _by_hash(decide_request("r1"), sha)):
        _, metadata, code, _ = server.call("Decide", request)
        assert (code, _violations(metadata)) == (grpc.StatusCode.INVALID_ARGUMENT, expected)


def test_neither_roster_nor_hash_is_refused_as_before(server: Server) -> None:
    """No roster and no hash: the same roster violation as before roster_sha256 existed."""
    request = decide_request("r1")
    request.ClearField("roster")
    _, metadata, code, _ = server.call("Decide", request)
    assert (code, _violations(metadata)) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        [("roster", "is required (it may have no agents)")],
    )


def test_an_invalid_case_beside_an_unknown_hash_is_invalid_argument(server: Server) -> None:
    """Field problems come first: resending the roster would not have helped."""
    request = _by_hash(decide_request("r1"), UNKNOWN)
    request.case.intent = pb.INTENT_UNSPECIFIED
    batch = pb.DecideBatchRequest(request_id="b1", cases=[request.case], roster_sha256=UNKNOWN)
    _, metadata, code, _ = server.call("Decide", request)
    assert (code, _violations(metadata)) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        [("case.intent", "is required")],
    )
    _, metadata, code, _ = server.call("DecideBatch", batch)
    assert (code, _violations(metadata)) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        [("cases[0].intent", "is required")],
    )


def test_a_batch_names_its_roster_by_hash(server: Server) -> None:
    """DecideBatch takes roster_sha256 too: the same decisions as the roster gives."""
    cases = [decide_request().case, decide_request(case_id="C2").case]
    with_roster = pb.DecideBatchRequest(
        request_id="b1",
        cases=cases,
        roster=convert.roster_to_proto(ROSTER),
        now=decide_request().now,
    )
    unknown = pb.DecideBatchRequest(request_id="b2", cases=cases, roster_sha256=UNKNOWN)
    _, metadata, code, _ = server.call("DecideBatch", unknown)
    assert (code, _error_info(metadata)[0]) == (
        grpc.StatusCode.FAILED_PRECONDITION,
        "ROSTER_NOT_CACHED",
    )
    first, _, _, _ = server.call("DecideBatch", with_roster)
    by_hash = pb.DecideBatchRequest(
        request_id="b2", cases=cases, roster_sha256=SHA, now=decide_request().now
    )
    second, _, code, _ = server.call("DecideBatch", by_hash)
    assert code is grpc.StatusCode.OK
    assert [(d.agent_id, d.explanation.input_sha256) for d in second.decisions] == [
        (d.agent_id, d.explanation.input_sha256) for d in first.decisions
    ]
    assert [d.agent_id for d in second.decisions] == ["a1", "s1"]  # a1 took one case


def test_a_retry_by_hash_returns_the_stored_decision(server: Server) -> None:
    """Recorded with the roster, retried with its hash: replayed, the same decision."""
    first, _, _, _ = server.call("Decide", decide_request("r1"))
    again, _, code, _ = server.call("Decide", _by_hash(decide_request("r1")))
    assert (code, again.replayed, again.decision) == (grpc.StatusCode.OK, True, first.decision)


def test_a_retry_after_the_roster_was_evicted_is_answered_once_the_roster_comes(
    server: Server,
) -> None:
    """Evicted: FAILED_PRECONDITION, and the retry with the roster replays the stored decision."""
    first, _, _, _ = server.call("Decide", decide_request("r1"))
    server.servicer.roster_cache.configure(max_agents=0, max_bytes=0)
    _, _, code, _ = server.call("Decide", _by_hash(decide_request("r1")))
    assert code is grpc.StatusCode.FAILED_PRECONDITION
    again, _, code, _ = server.call("Decide", decide_request("r1"))
    assert (code, again.replayed, again.decision) == (grpc.StatusCode.OK, True, first.decision)


def test_each_servicer_owns_its_cache(core: RoutingCore) -> None:
    """No process-wide cache: a roster one servicer holds is unknown to another."""
    first, second = Server(core), Server(core)
    first.call("Decide", decide_request("r1"))
    _, _, code, _ = second.call("Decide", _by_hash(decide_request("r2")))
    assert code is grpc.StatusCode.FAILED_PRECONDITION
    assert (len(first.servicer.roster_cache), len(second.servicer.roster_cache)) == (1, 0)


def test_an_injected_cache_is_the_one_used(core: RoutingCore) -> None:
    """The server hands the servicer its cache; requests fill exactly that one."""
    cache = RosterCache()
    Server(core, roster_cache=cache).call("Decide", decide_request("r1"))
    assert (len(cache), cache.misses) == (1, 1)


def _roster(name: str) -> pb.Roster:
    return convert.roster_to_proto(make_roster(*[make_agent(f"{name}-{i}") for i in range(3)]))


def test_the_cache_finds_a_roster_by_its_hash_and_counts_it() -> None:
    """find: a hit (same object) after parse, a miss for an unknown hash."""
    cache = RosterCache()
    known = cache.parse(_roster("x"))
    assert cache.find(known.fingerprint.sha256) is known
    assert cache.find(UNKNOWN) is None
    assert (cache.hits, cache.misses) == (1, 2)


def test_an_evicted_roster_is_no_longer_found_by_its_hash() -> None:
    """Past the budget the least recently used roster goes from both indexes."""
    cache = RosterCache(max_agents=3)
    old = cache.parse(_roster("a"))
    new = cache.parse(_roster("b"))
    assert cache.find(old.fingerprint.sha256) is None
    assert cache.find(new.fingerprint.sha256) is new


def test_a_second_encoding_of_a_roster_keeps_the_hash_pointing_at_a_live_entry() -> None:
    """Two byte forms of one roster: evicting the older leaves the hash found by the newer."""
    cache = RosterCache(max_agents=1)
    agent = make_agent("a1", territories=frozenset({"US-CA", "US-TX"}))
    plain = convert.roster_to_proto(make_roster(agent))
    reordered = pb.Roster()
    reordered.CopyFrom(plain)
    reordered.agents[0].territories.reverse()  # other bytes, the same roster (a set)
    first = cache.parse(plain)
    second = cache.parse(reordered)  # a second entry; the first is evicted
    assert (second is first, cache.evictions) == (False, 1)
    assert first.fingerprint.sha256 == second.fingerprint.sha256
    assert cache.find(second.fingerprint.sha256) is second


def test_a_roster_checked_under_loose_limits_is_not_found_under_strict_ones() -> None:
    """The limits are part of the hash key too: a stricter server asks for the roster."""
    cache = RosterCache()
    known = cache.parse(_roster("x"))
    assert cache.find(known.fingerprint.sha256, limits=InputLimits(max_agents=2)) is None


def test_a_real_server_with_its_cache_off_asks_for_every_roster(tmp_path: Path) -> None:
    """--roster-cache-agents 0: a hash is never known; the status crosses the wire intact."""
    with serving_reference(tmp_path, roster_cache_agents=0) as running:
        assert isinstance(running, RunningServer)
        with grpc.insecure_channel(f"127.0.0.1:{running.port}") as channel:
            stub = routing_pb2_grpc.RoutingServiceStub(channel)
            stub.Decide(decide_request("r1"))
            with pytest.raises(grpc.RpcError) as caught:
                stub.Decide(_by_hash(decide_request("r2")))
    error: Any = caught.value
    assert (error.code(), _error_info(error.trailing_metadata())[0]) == (
        grpc.StatusCode.FAILED_PRECONDITION,
        "ROSTER_NOT_CACHED",
    )


def test_without_a_cache_the_converter_knows_no_roster_by_hash() -> None:
    """convert.decide_command with no store (tools, tests): a hash alone is not cached."""
    with pytest.raises(RosterNotCachedError) as caught:
        convert.decide_command(_by_hash(decide_request("r1")))
    assert caught.value.roster_sha256 == SHA


def _request_file(**fields: Any) -> dict[str, Any]:
    """A DecideRequest in the JSON dialect (what decide --request reads), with ``fields``."""
    data = json_format.MessageToDict(decide_request("f-1"), preserving_proto_field_name=True)
    data.update(fields)
    return data


def test_a_request_file_may_carry_its_roster_s_own_hash() -> None:
    """A request file (decide --request) may carry roster_sha256: it must be the roster's own."""
    assert parse_request(_request_file(roster_sha256=SHA)).roster == ROSTER
    with pytest.raises(RequestError) as caught:
        parse_request(_request_file(roster_sha256=UNKNOWN))
    assert caught.value.violations == (
        FieldViolation(
            "roster_sha256",
            f"is {UNKNOWN}, but the roster has roster_sha256 {SHA}; send the roster's own "
            "hash, or leave roster_sha256 out",
        ),
    )
