"""Over real gRPC, a jurisdiction that only upper-cases into ASCII is refused (review L4)."""

import grpc
import pytest

from caseroute.grpc_api.server import RunningServer

from .conftest import decide_request, served_refusal


@pytest.mark.parametrize("where", ["licence", "case"])
def test_a_long_s_jurisdiction_is_invalid_argument_not_texas(
    python_server: RunningServer, where: str
) -> None:
    """'us-tx' with a long s as a licence's or the case's jurisdiction: INVALID_ARGUMENT there."""
    request = decide_request(f"long-s-{where}")
    if where == "licence":
        request.roster.agents[0].licences[0].jurisdiction = "u\u017f-tx"
        path = "roster.agents[0].licences[0].jurisdiction"
    else:
        request.case.patient_location = "u\u017f-tx"
        path = "case.patient_location"
    code, violations, _ = served_refusal(python_server.port, request)
    assert (code, [field for field, _ in violations]) == (grpc.StatusCode.INVALID_ARGUMENT, [path])
    assert "(U+017F), which is not ASCII" in violations[0][1]
