"""Status messages quote a caller's value clipped, so the 400-byte clip keeps what to do (R34a F3).

Before: ALREADY_EXISTS, NOT_FOUND (ruleset, version, decision id) quoted the caller's value in
full. ``status_for`` clips the whole message to ``MAX_MESSAGE_BYTES``, so a long value (a valid
158-character request_id of two-byte letters, a 400-character ruleset name) pushed "send a new
request_id", the loaded rulesets and "check the id" off the end.
"""

from typing import Any

import grpc
import grpc_testing
import pytest

from caseroute.grpc_api.servicer import DecisionLogServicer, RoutingServicer
from caseroute.grpc_api.status import MAX_MESSAGE_BYTES
from caseroute.service import DecisionLog, RoutingCore
from caseroute.v1 import routing_pb2 as pb

from .conftest import decide_request

SERVICE = pb.DESCRIPTOR.services_by_name["RoutingService"]
LOG_SERVICE = pb.DESCRIPTOR.services_by_name["DecisionLog"]

REQUEST_IDS = {  # valid request_ids (at most 200 characters)
    "two-byte letters": "\u00e9" * 150 + "2b673d0f",
    "backslashes": "\\" * 150 + "2b673d0f",  # repr doubles each one
    "plain": "x" * 200,
}
SELECTORS = {  # ruleset names and versions have no length limit of their own
    "two-byte letters": "\u00e9" * 200,
    "backslashes": "\\" * 200,
    "plain": "x" * 400,
}


def _call(core: RoutingCore, method: str, request: Any) -> tuple[grpc.StatusCode, str]:
    """The status code and message the servicer answers ``request`` with."""
    server = grpc_testing.server_from_dictionary(
        {SERVICE: RoutingServicer(core), LOG_SERVICE: DecisionLogServicer(DecisionLog(core.audit))},
        grpc_testing.strict_real_time(),
    )
    service = LOG_SERVICE if method in LOG_SERVICE.methods_by_name else SERVICE
    rpc = server.invoke_unary_unary(service.methods_by_name[method], (), request, None)
    _, _, code, details = rpc.termination()
    assert len(details.encode()) <= MAX_MESSAGE_BYTES
    return code, details


@pytest.mark.parametrize("value", REQUEST_IDS.values(), ids=list(REQUEST_IDS))
def test_a_reused_long_request_id_still_says_to_send_a_new_one(
    core: RoutingCore, value: str
) -> None:
    """ALREADY_EXISTS for a long request_id ends with what to do, and quotes the id's start."""
    assert _call(core, "Decide", decide_request(value))[0] is grpc.StatusCode.OK
    code, details = _call(core, "Decide", decide_request(value, case_id="OTHER"))
    assert code is grpc.StatusCode.ALREADY_EXISTS
    assert details.endswith("; send a new request_id for a new request"), details
    assert details.startswith(f"request_id {repr(value)[:10]}"), details


@pytest.mark.parametrize("value", SELECTORS.values(), ids=list(SELECTORS))
def test_an_unknown_long_ruleset_name_still_lists_what_is_loaded(
    core: RoutingCore, value: str
) -> None:
    """NOT_FOUND for a long ruleset name ends with the loaded rulesets."""
    request = decide_request()
    request.ruleset.name = value
    code, details = _call(core, "Decide", request)
    assert code is grpc.StatusCode.NOT_FOUND
    assert details.endswith("; loaded: patient-enquiries"), details


@pytest.mark.parametrize("value", SELECTORS.values(), ids=list(SELECTORS))
def test_an_unknown_long_version_still_lists_the_loaded_versions(
    core: RoutingCore, value: str
) -> None:
    """NOT_FOUND for a long ruleset version ends with the loaded versions."""
    request = decide_request()
    request.ruleset.name, request.ruleset.version = "patient-enquiries", value
    code, details = _call(core, "Decide", request)
    assert code is grpc.StatusCode.NOT_FOUND
    assert details.endswith("; loaded versions: 2026.12.1"), details


@pytest.mark.parametrize(
    "value", ["dec_" + "0" * 400, "dec_" + "\u00e9" * 300], ids=["long", "two-byte"]
)
def test_an_unknown_long_decision_id_still_says_to_check_the_id(
    core: RoutingCore, value: str
) -> None:
    """NOT_FOUND for a long decision id ends with what to check."""
    code, details = _call(core, "GetDecision", pb.GetDecisionRequest(decision_id=value))
    assert code is grpc.StatusCode.NOT_FOUND
    assert details.startswith(("no decision 'dec_000", "no decision 'dec_\u00e9"))
    assert details.endswith(
        "check the id (decision ids start with dec_) and that this server writes to the store "
        "that decided it"
    ), details
