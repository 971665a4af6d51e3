"""On the wire, a case whose flags are one letter each is INVALID_ARGUMENT, never routed."""

import grpc
import grpc_testing
from google.rpc import error_details_pb2, status_pb2

from caseroute.grpc_api.servicer import RoutingServicer
from caseroute.service import RoutingCore
from caseroute.v1 import routing_pb2 as pb

from .conftest import decide_request

SERVICE = pb.DESCRIPTOR.services_by_name["RoutingService"]


def test_letters_of_safeguarding_are_invalid_argument_at_each_flag(core: RoutingCore) -> None:
    """``"flags": ["s", "a", ...]`` names case.flags[i] in BadRequest; nothing is recorded."""
    request = decide_request()
    request.case.flags[:] = list("safe")
    server = grpc_testing.server_from_dictionary(
        {SERVICE: RoutingServicer(core)}, grpc_testing.strict_real_time()
    )
    rpc = server.invoke_unary_unary(SERVICE.methods_by_name["Decide"], (), request, None)
    _, metadata, code, _ = rpc.termination()
    assert code is grpc.StatusCode.INVALID_ARGUMENT
    status = status_pb2.Status.FromString(dict(metadata)["grpc-status-details-bin"])
    bad = error_details_pb2.BadRequest()
    status.details[0].Unpack(bad)
    fields = [v.field for v in bad.field_violations]
    assert (code, fields[:2]) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        ["case.flags[0]", "case.flags[1]"],
    )
    assert bad.field_violations[0].description.startswith("'s' is a one-character flag; ")
    assert list(core.audit.records()) == []
