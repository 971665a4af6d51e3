"""The call log's fields for each kind of call: ids and results only, clipped and escaped."""

import grpc
from grpc_health.v1 import health_pb2

from caseroute.domain.errors import FieldViolation
from caseroute.grpc_api.rpc_calls import FinishedCall
from caseroute.grpc_api.rpc_log import MAX_ID_CHARS, call_fields
from caseroute.grpc_api.servicer import UndecodableRequest, UnknownFieldsRequest
from caseroute.v1 import admin_pb2 as apb
from caseroute.v1 import routing_pb2 as pb


def _call(
    service: str,
    method: str,
    request: object,
    response: object = None,
    code: grpc.StatusCode = grpc.StatusCode.OK,
) -> FinishedCall:
    return FinishedCall(service, method, code, 0.0123456, request, response, "ops", "ipv4:x")


BASE = {"latency_ms": 12.346, "caller": "ops", "peer": "ipv4:x"}


def test_health_check_logs_the_service_asked_and_the_answer() -> None:
    """Health.Check: the service name asked for and SERVING/NOT_SERVING."""
    call = _call(
        "grpc.health.v1.Health",
        "Check",
        health_pb2.HealthCheckRequest(service="caseroute.v1.RoutingService"),
        health_pb2.HealthCheckResponse(status=health_pb2.HealthCheckResponse.NOT_SERVING),
    )
    assert call_fields(call) == {
        "service": "grpc.health.v1.Health",
        "method": "Check",
        "code": "OK",
        **BASE,
        "health_service": "caseroute.v1.RoutingService",
        "health": "NOT_SERVING",
    }


def test_decision_log_and_admin_calls_log_the_ids_they_were_asked_for() -> None:
    """GetDecision: the decision id; ListDecisions: case id and count; Activate: name, version."""
    get = _call(
        "caseroute.v1.DecisionLog",
        "GetDecision",
        pb.GetDecisionRequest(decision_id="dec_1"),
        code=grpc.StatusCode.NOT_FOUND,
    )
    listed = _call(
        "caseroute.v1.DecisionLog",
        "ListDecisions",
        pb.ListDecisionsRequest(case_id="C-9"),
        pb.ListDecisionsResponse(decisions=[pb.AuditedDecision(), pb.AuditedDecision()]),
    )
    activate = _call(
        "caseroute.v1.RulesetAdmin",
        "ActivateRuleset",
        apb.ActivateRulesetRequest(name="routing", version="2"),
        apb.LifecycleOutcome(changes=[apb.RulesetChange()]),
    )
    assert [
        {k: v for k, v in call_fields(c).items() if k not in BASE} for c in (get, listed, activate)
    ] == [
        {
            "service": "caseroute.v1.DecisionLog",
            "method": "GetDecision",
            "code": "NOT_FOUND",
            "decision_id": "dec_1",
        },
        {
            "service": "caseroute.v1.DecisionLog",
            "method": "ListDecisions",
            "code": "OK",
            "case_id": "C-9",
            "decisions": 2,
        },
        {
            "service": "caseroute.v1.RulesetAdmin",
            "method": "ActivateRuleset",
            "code": "OK",
            "ruleset": "routing",
            "ruleset_version": "2",
            "changes": 1,
        },
    ]


def test_a_refused_request_logs_its_request_id_never_its_case() -> None:
    """A refused Decide logs request_id and the ruleset asked for, nothing of the case."""
    request = pb.DecideRequest(
        request_id="r-1",
        ruleset=pb.RulesetSelector(name="patient-enquiries"),
        case=pb.Case(case_id="C-1", patient_location="US-TX", preferred_language="es"),
    )
    call = _call(
        "caseroute.v1.RoutingService", "Decide", request, code=grpc.StatusCode.INVALID_ARGUMENT
    )
    assert call_fields(call) == {
        "service": "caseroute.v1.RoutingService",
        "method": "Decide",
        "code": "INVALID_ARGUMENT",
        **BASE,
        "request_id": "r-1",
        "ruleset": "patient-enquiries",
    }


def test_ids_are_clipped_and_control_characters_escaped() -> None:
    """A forged request_id cannot start a new line, nor fill the log."""
    request = pb.DecideRequest(request_id='x\n{"event": "forged"}')
    long = pb.DecideRequest(request_id="y" * 5000)
    fields = [
        call_fields(_call("caseroute.v1.RoutingService", "Decide", r))["request_id"]
        for r in (request, long)
    ]
    assert fields == ['x\\n{"event": "forged"}', "y" * MAX_ID_CHARS]


def test_undecodable_bytes_and_unknown_methods_are_logged_by_size_and_clipped_path() -> None:
    """Bytes that are no message log their size; an unknown method logs its (clipped) path."""
    undecodable = _call(
        "caseroute.v1.RoutingService",
        "Decide",
        UndecodableRequest("caseroute.v1.DecideRequest", 17),
        code=grpc.StatusCode.INVALID_ARGUMENT,
    )
    unknown = FinishedCall(
        "", "/nope/" + "z" * 300, grpc.StatusCode.UNIMPLEMENTED, 0.0, None, None, "", ""
    )
    assert [call_fields(undecodable)["undecodable_bytes"], call_fields(unknown)] == [
        17,
        {
            "service": "",
            "method": ("/nope/" + "z" * 300)[:MAX_ID_CHARS],
            "code": "UNIMPLEMENTED",
            "latency_ms": 0.0,
            "caller": "",
            "peer": "",
        },
    ]


def test_a_request_refused_for_unknown_fields_logs_its_ids_and_how_many() -> None:
    """GetDecision with unknown fields: its decision_id, as read, and the count refused."""
    refused = _call(
        "caseroute.v1.DecisionLog",
        "GetDecision",
        UnknownFieldsRequest(
            pb.GetDecisionRequest(decision_id="dec_1"),
            (FieldViolation("request", "has field number 99"),),
        ),
        code=grpc.StatusCode.INVALID_ARGUMENT,
    )
    fields = call_fields(refused)
    assert (fields["decision_id"], fields["unknown_fields"]) == ("dec_1", 1)
