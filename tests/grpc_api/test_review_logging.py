"""Review of issue 8: the refusal log line for bad input carries no caller-written text."""

import logging

import grpc
import grpc_testing
import pytest

from caseroute.grpc_api.servicer import RoutingServicer
from caseroute.service import RoutingCore
from caseroute.v1 import routing_pb2 as pb

from .conftest import decide_request

SERVICE = pb.DESCRIPTOR.services_by_name["RoutingService"]
NAME = "Zebedee Quarrelsome"


@pytest.mark.parametrize("key", [NAME, "ZebedeeQuarrelsome", "Zebedee-Quarrelsome", "MRN-1234"])
def test_an_attribute_key_holding_a_name_is_not_logged(
    core: RoutingCore, caplog: pytest.LogCaptureFixture, key: str
) -> None:
    """An invalid attribute key is caller text: the INFO line withholds it, keeping the path."""
    request = decide_request()
    request.case.attributes[key].string_value = "x"
    server = grpc_testing.server_from_dictionary(
        {SERVICE: RoutingServicer(core)}, grpc_testing.strict_real_time()
    )
    caplog.set_level(logging.INFO, logger="caseroute.grpc")
    rpc = server.invoke_unary_unary(SERVICE.methods_by_name["Decide"], (), request, None)
    code = rpc.termination()[2]
    lines = [r.getMessage() for r in caplog.records if r.name == "caseroute.grpc"]
    assert (code, lines) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        ["Decide refused: request_id='req-1' invalid: 1 problem(s) at case.attributes[…]"],
    )
