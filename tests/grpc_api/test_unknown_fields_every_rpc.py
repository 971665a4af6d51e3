"""Over real gRPC, every caseroute RPC refuses fields caseroute.v1 does not define, not only Decide.

Review M6's rule (a field sent under a number this server does not know must never be read as
absent) held for Decide and DecideBatch only: a GetDecision, ListDecisions, admin or Replay
request carrying field 99 was served as if it had not been sent. Now each is INVALID_ARGUMENT
naming the message's field path and the number, before anything runs but the access check.
Health and reflection are grpc's own services, left as grpc serves them.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from caseroute.grpc_api.server import ROUTING_SERVICE, RunningServer
from caseroute.v1 import admin_pb2 as apb
from caseroute.v1 import admin_pb2_grpc, routing_pb2_grpc
from caseroute.v1 import routing_pb2 as pb
from caseroute.wire.unknown_fields import ADVICE

from .conftest import served_refusal
from .test_admin import admin_server
from .test_auth import ALICE, NEEDS_CREDENTIALS, bearer

FIELD_99 = bytes([0x98, 0x06, 0x01])
"""Field 99, varint 1: a field no caseroute.v1 message defines."""


def _with_field_99(message: Any) -> Any:
    message.MergeFromString(FIELD_99)
    return message


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """A real server over `routing` 1 (active) and 2, alice's admin token accepted."""
    with admin_server(tmp_path_factory.mktemp("served")) as server:
        yield server


def _admin_refusal(
    server: RunningServer, method: str, request: Any
) -> tuple[grpc.StatusCode, list[tuple[str, str]], str]:
    return served_refusal(
        server.port,
        request,
        method,
        stub=admin_pb2_grpc.RulesetAdminStub,
        metadata=bearer(ALICE),
    )


def _defines_not(number: int, message: str) -> str:
    return f"has field number {number}, which caseroute.v1.{message} does not define; {ADVICE}"


def test_decision_log_requests_with_an_unknown_field_are_refused_naming_it(
    running: RunningServer,
) -> None:
    """GetDecision (the request itself) and ListDecisions (inside its `since` Timestamp)."""
    get = served_refusal(
        running.port,
        _with_field_99(pb.GetDecisionRequest(decision_id="dec_x")),
        "GetDecision",
        stub=routing_pb2_grpc.DecisionLogStub,
    )
    listing = pb.ListDecisionsRequest(case_id="C1")
    listing.since.seconds = 1
    listing.since.MergeFromString(FIELD_99)
    listed = served_refusal(
        running.port, listing, "ListDecisions", stub=routing_pb2_grpc.DecisionLogStub
    )
    assert (get[0], get[1]) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        [("request", _defines_not(99, "GetDecisionRequest"))],
    )
    assert (listed[0], listed[1]) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        [
            (
                "since",
                "has field number 99, which google.protobuf.Timestamp does not define; " + ADVICE,
            )
        ],
    )
    assert get[2].startswith(
        "invalid request: 1 problem(s); first: request: has field number 99, which "
        "caseroute.v1.GetDecisionRequest does not define; this server refuses fields "
    )


@pytest.mark.parametrize(
    ("method", "request_message"),
    [
        ("ListRulesets", apb.ListRulesetsRequest()),
        ("GetRuleset", apb.GetRulesetRequest(name="routing")),
        ("ValidateRuleset", apb.ValidateRulesetRequest(source="ruleset: x\n")),
        ("ActivateRuleset", apb.ActivateRulesetRequest(name="routing", version="2")),
        ("Rollback", apb.RollbackRequest(name="routing")),
        ("Reload", apb.ReloadRequest()),
    ],
)
def test_admin_requests_with_an_unknown_field_are_refused_and_change_nothing(
    running: RunningServer, method: str, request_message: Any
) -> None:
    """Every lifecycle RPC: INVALID_ARGUMENT at `request`; the active version is still 1."""
    code, violations, _ = _admin_refusal(running, method, _with_field_99(request_message))
    with grpc.insecure_channel(f"127.0.0.1:{running.port}") as channel:
        listed = admin_pb2_grpc.RulesetAdminStub(channel).ListRulesets(
            apb.ListRulesetsRequest(), timeout=30, metadata=bearer(ALICE)
        )
    assert (code, violations, [r.active_version for r in listed.rulesets]) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        [("request", _defines_not(99, type(request_message).__name__))],
        ["1"],
    )


def test_a_replay_request_names_the_candidate_and_a_field_in_another_wire_type(
    running: RunningServer,
) -> None:
    """Replay: field 99 in `candidate`, and `sample_size` sent length-delimited at `request`."""
    request = apb.ReplayRequest(candidate=apb.ReplayCandidate(ruleset="routing@2"))
    request.candidate.MergeFromString(FIELD_99)
    request.MergeFromString(bytes([0x32, 0x01, 0x05]))  # field 6 (a varint) as bytes
    code, violations, _ = _admin_refusal(running, "Replay", request)
    wire_type = (
        "has `sample_size` (6) in a form caseroute.v1.ReplayRequest does not read (another "
        "wire type, or a map entry with a field of its own); this server refuses fields"
    )
    assert (code, [field for field, _ in violations], violations[1][1]) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        ["request", "candidate"],
        _defines_not(99, "ReplayCandidate"),
    )
    assert violations[0][1].startswith(wire_type)  # clipped to the status's byte budget


def test_the_access_check_still_comes_first(running: RunningServer) -> None:
    """An admin request with field 99 and no token: UNAUTHENTICATED, nothing said of its fields."""
    with (
        grpc.insecure_channel(f"127.0.0.1:{running.port}") as channel,
        pytest.raises(grpc.RpcError) as caught,
    ):
        admin_pb2_grpc.RulesetAdminStub(channel).Reload(
            _with_field_99(apb.ReloadRequest()), timeout=30
        )
    error: Any = caught.value
    assert (error.code(), error.details()) == (grpc.StatusCode.UNAUTHENTICATED, NEEDS_CREDENTIALS)


def test_health_check_is_left_as_grpc_serves_it(running: RunningServer) -> None:
    """Health is grpc's own service, not caseroute's: field 99 on its request is ignored."""
    with grpc.insecure_channel(f"127.0.0.1:{running.port}") as channel:
        stub: Any = health_pb2_grpc.HealthStub(channel)  # typeshed's stub lacks Check
        reply = stub.Check(
            _with_field_99(health_pb2.HealthCheckRequest(service=ROUTING_SERVICE)), timeout=30
        )
    assert reply.status == health_pb2.HealthCheckResponse.SERVING


def test_a_context_that_cannot_abort_gets_the_status_set_and_an_empty_reply() -> None:
    """grpcio-testing's context has no abort_with_status: the refusal is set on it, then returns."""
    from caseroute.domain.errors import FieldViolation
    from caseroute.grpc_api.servicer import DecisionLogServicer, UnknownFieldsRequest

    from .fake_context import FakeContext

    context = FakeContext()
    violation = FieldViolation("request", "has field number 99, which ... does not define")
    refused = UnknownFieldsRequest(pb.GetDecisionRequest(decision_id="dec_x"), (violation,))
    log: Any = None  # refused before the log is read
    reply = DecisionLogServicer(log).GetDecision(refused, context)  # type: ignore[arg-type]
    assert (reply, context.code) == (pb.AuditedDecision(), grpc.StatusCode.INVALID_ARGUMENT)
    assert context.details.startswith("invalid request: 1 problem(s); first: request: has field")
