"""A reply too large to send: a new decision's refusal says nothing was recorded, a replay's not.

Over a real gRPC server (the production handlers and deserializers, ``add_service``) whose
largest reply is 4,096 bytes: a FULL reply over 30 agents is ~5.2 kB, a SUMMARY one ~3.3 kB.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from concurrent import futures
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import grpc
import pytest

from caseroute.domain.errors import ResponseTooLargeError
from caseroute.engine.case_rules import EngineKind
from caseroute.grpc_api.server import ROUTING_SERVICE, add_service
from caseroute.grpc_api.servicer import RoutingServicer, SizedReply
from caseroute.grpc_api.status import MAX_MESSAGE_BYTES
from caseroute.registry import RulesetRegistry
from caseroute.service import RoutingCore
from caseroute.testing import (
    NOW,
    audit_config,
    make_agent,
    make_case,
    make_roster,
    reference_ruleset,
)
from caseroute.v1 import routing_pb2 as pb
from caseroute.v1 import routing_pb2_grpc
from caseroute.wire import convert

LIMIT = 4096
"""The test server's largest reply, in bytes."""
ROSTER = convert.roster_to_proto(make_roster(*[make_agent(f"a{i:02}") for i in range(30)]))
NEW_REFUSAL = (
    r"the reply would be \d+ bytes, over this server's limit of 4096 bytes \(--max-response-mb\); "
    r"nothing was recorded: ask for EXPLANATION_LEVEL_SUMMARY \(the same request_id may be "
    r"reused\), split the batch, or raise your client's receive limit and ask the operators to "
    r"raise --max-response-mb"
)


def _replay_refusal(request_id: str, first: str) -> str:
    """The refusal of a replayed reply, its size left as a pattern."""
    return (
        r"the reply would be \d+ bytes, over this server's limit of 4096 bytes "
        rf"\(--max-response-mb\); its decisions are recorded \(request_id '{request_id}', "
        rf"first {first}\): another explanation level under it is another input "
        r"\(ALREADY_EXISTS\); read them with GetDecision or `caseroute audit show`, or raise "
        r"your receive limit and --max-response-mb"
    )


@dataclass
class Served:
    """A served core, another core over the same log (another worker), and the stub."""

    core: RoutingCore
    other: RoutingCore
    stub: routing_pb2_grpc.RoutingServiceStub
    channel: grpc.Channel


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    """A real server on a free port over one core; a second core shares its decision log."""
    config = audit_config(tmp_path)
    cores = []
    for _ in range(2):
        registry = RulesetRegistry()
        registry.add(reference_ruleset(EngineKind.PYTHON))
        cores.append(RoutingCore(registry, config.open_store(), config.masker(), lambda: NOW))
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    add_service(server, ROUTING_SERVICE, RoutingServicer(cores[0], max_reply_bytes=LIMIT))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    try:
        yield Served(cores[0], cores[1], routing_pb2_grpc.RoutingServiceStub(channel), channel)
    finally:
        channel.close()
        server.stop(None)
        for core in cores:
            core.audit.close()
            core.registry.close()


def _decide(request_id: str, level: pb.ExplanationLevel.ValueType) -> pb.DecideRequest:
    return pb.DecideRequest(
        request_id=request_id,
        case=convert.case_to_proto(make_case()),
        roster=ROSTER,
        now=convert.datetime_to_timestamp(NOW),
        explanation_level=level,
    )


def _batch(request_id: str) -> pb.DecideBatchRequest:
    cases = [convert.case_to_proto(make_case(case_id=f"C{i}")) for i in range(2)]
    return pb.DecideBatchRequest(
        request_id=request_id,
        cases=cases,
        roster=ROSTER,
        now=convert.datetime_to_timestamp(NOW),
        explanation_level=pb.EXPLANATION_LEVEL_FULL,
    )


def _refusal(call: object) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.RpcError) as caught:
        call()  # type: ignore[operator]
    error: grpc.Call = caught.value  # type: ignore[assignment]
    return error.code(), str(error.details())


def test_a_new_decision_too_large_says_nothing_was_recorded(served: Served) -> None:
    """FULL, never decided: RESOURCE_EXHAUSTED, nothing recorded; SUMMARY under that id works."""
    code, details = _refusal(
        lambda: served.stub.Decide(_decide("new-1", pb.EXPLANATION_LEVEL_FULL), timeout=30)
    )
    stored = served.core.audit.by_request("new-1")
    reply = served.stub.Decide(_decide("new-1", pb.EXPLANATION_LEVEL_SUMMARY), timeout=30)
    assert (code, bool(re.fullmatch(NEW_REFUSAL, details)), stored) == (
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        True,
        [],
    )
    assert reply.replayed is False


def test_a_replay_too_large_says_the_decision_is_recorded(served: Served) -> None:
    """Recorded here before (read first): the refusal names the request_id; SUMMARY conflicts."""
    recorded = served.core.decide(convert.decide_command(_decide("r1", pb.EXPLANATION_LEVEL_FULL)))
    code, details = _refusal(
        lambda: served.stub.Decide(_decide("r1", pb.EXPLANATION_LEVEL_FULL), timeout=30)
    )
    expected = _replay_refusal("r1", recorded.decisions[0].decision_id)
    summary = _refusal(
        lambda: served.stub.Decide(_decide("r1", pb.EXPLANATION_LEVEL_SUMMARY), timeout=30)
    )
    assert (code, bool(re.fullmatch(expected, details)), summary[0]) == (
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        True,
        grpc.StatusCode.ALREADY_EXISTS,
    )


def test_a_replay_another_worker_recorded_says_the_decision_is_recorded(
    served: Served,
) -> None:
    """Recorded by the other core: evaluated again, refused, read from the log: replay's text."""
    recorded = served.other.decide(convert.decide_command(_decide("r2", pb.EXPLANATION_LEVEL_FULL)))
    code, details = _refusal(
        lambda: served.stub.Decide(_decide("r2", pb.EXPLANATION_LEVEL_FULL), timeout=30)
    )
    expected = _replay_refusal("r2", recorded.decisions[0].decision_id)
    assert (code, bool(re.fullmatch(expected, details))) == (
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        True,
    )
    assert len(served.core.audit.by_request("r2")) == 1


def test_a_batch_replay_too_large_names_its_first_decision(served: Served) -> None:
    """DecideBatch of 2 cases recorded before: the same replay text, naming its first decision."""
    recorded = served.core.decide(convert.batch_command(_batch("b1")))
    code, details = _refusal(lambda: served.stub.DecideBatch(_batch("b1"), timeout=30))
    expected = _replay_refusal("b1", recorded.decisions[0].decision_id)
    assert (code, bool(re.fullmatch(expected, details))) == (
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        True,
    )


def test_a_replay_too_large_parsed_whole_says_the_same(served: Served) -> None:
    """A request the server cannot cut (roster field twice) is parsed whole: the same text."""
    request = _decide("r3", pb.EXPLANATION_LEVEL_FULL)
    recorded = served.core.decide(convert.decide_command(request))
    # An empty second roster field: protobuf merges it into the first (the same request).
    twice = request.SerializeToString() + pb.DecideRequest(roster=pb.Roster()).SerializeToString()
    assert pb.DecideRequest.FromString(twice) == request
    raw: Any = served.channel.unary_unary(
        "/caseroute.v1.RoutingService/Decide",
        request_serializer=None,
        response_deserializer=pb.DecideResponse.FromString,
    )
    code, details = _refusal(lambda: raw(twice, timeout=30))
    expected = _replay_refusal("r3", recorded.decisions[0].decision_id)
    assert (code, bool(re.fullmatch(expected, details))) == (
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        True,
    )


def test_a_long_request_id_is_clipped_so_the_advice_is_not(served: Served) -> None:
    """A 200-character request_id: shown clipped to 40 bytes, the text ends with what to do."""
    request_id = "q" * 200
    request = _decide(request_id, pb.EXPLANATION_LEVEL_FULL)
    recorded = served.core.decide(convert.decide_command(request))
    code, details = _refusal(lambda: served.stub.Decide(request, timeout=30))
    expected = _replay_refusal("q" * 37 + "\u2026", recorded.decisions[0].decision_id)
    assert (code, bool(re.fullmatch(expected, details))) == (
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        True,
    )


class _Huge:
    """Stands in for a reply message of 99,999,999 bytes (only its size is read)."""

    def ByteSize(self) -> int:  # noqa: N802 - protobuf's name
        return 99_999_999


@pytest.mark.parametrize(
    "request_id",
    # 200 two-byte characters; then ids repr escapes (control characters, backslashes: x4).
    ["\u00e9" * 200, "\x01" * 40, "\\" * 200, "\u2028" * 30],
)
def test_the_replay_refusal_fits_the_status_message_at_its_largest(
    served: Served, request_id: str
) -> None:
    """A 99,999,999-byte reply, a 64 MiB limit, a long id: within MAX_MESSAGE_BYTES, advice kept."""
    decided = served.core.decide(convert.decide_command(_decide("r4", pb.EXPLANATION_LEVEL_FULL)))
    huge = SizedReply(lambda _: _Huge(), 64 * 1024 * 1024, "--max-response-mb", request_id)  # type: ignore[type-var]
    with pytest.raises(ResponseTooLargeError) as caught:
        huge.check(replace(decided, replayed=True))
    text = str(caught.value)
    assert (len(text.encode()) <= MAX_MESSAGE_BYTES, text.endswith("--max-response-mb")) == (
        True,
        True,
    )
