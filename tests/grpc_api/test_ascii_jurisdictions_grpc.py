"""Over real gRPC, a jurisdiction that only upper-cases into ASCII is refused (review L4)."""

from collections.abc import Iterator
from typing import Any

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from caseroute.engine.case_rules import EngineKind
from caseroute.grpc_api.server import RunningServer
from caseroute.v1 import routing_pb2_grpc

from .conftest import decide_request, serving_reference


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """An in-process server on a free port with the reference ruleset."""
    with serving_reference(tmp_path_factory.mktemp("audit"), engine=EngineKind.PYTHON) as server:
        yield server


@pytest.mark.parametrize("where", ["licence", "case"])
def test_a_long_s_jurisdiction_is_invalid_argument_not_texas(
    running: RunningServer, where: str
) -> None:
    """'us-tx' with a long s as a licence's or the case's jurisdiction: INVALID_ARGUMENT there."""
    request = decide_request(f"long-s-{where}")
    if where == "licence":
        request.roster.agents[0].licences[0].jurisdiction = "u\u017f-tx"
        path = "roster.agents[0].licences[0].jurisdiction"
    else:
        request.case.patient_location = "u\u017f-tx"
        path = "case.patient_location"
    with grpc.insecure_channel(f"127.0.0.1:{running.port}") as channel:
        stub = routing_pb2_grpc.RoutingServiceStub(channel)
        with pytest.raises(grpc.RpcError) as caught:
            stub.Decide(request, timeout=30)
    error: Any = caught.value
    status = rpc_status.from_call(error)
    assert status is not None
    bad = error_details_pb2.BadRequest()
    assert status.details[0].Unpack(bad)
    assert (grpc.StatusCode.INVALID_ARGUMENT, [path]) == (
        error.code(),
        [v.field for v in bad.field_violations],
    )
    assert "(U+017F), which is not ASCII" in bad.field_violations[0].description
