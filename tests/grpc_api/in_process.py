"""Calling the servicer in process (grpc_testing) and reading the BadRequest it answers with."""

import grpc
import grpc_testing
from google.protobuf.message import Message
from google.rpc import error_details_pb2, status_pb2

from caseroute.grpc_api.servicer import RoutingServicer
from caseroute.service import RoutingCore
from caseroute.v1 import routing_pb2 as pb

SERVICE = pb.DESCRIPTOR.services_by_name["RoutingService"]


def invoke_for_bad_request(
    core: RoutingCore, method: str, request: Message
) -> tuple[grpc.StatusCode, error_details_pb2.BadRequest]:
    """Call ``method`` on a servicer over ``core``; return the status code and its BadRequest.

    The BadRequest is empty when the answer carries no status details.
    """
    server = grpc_testing.server_from_dictionary(
        {SERVICE: RoutingServicer(core)}, grpc_testing.strict_real_time()
    )
    rpc = server.invoke_unary_unary(SERVICE.methods_by_name[method], (), request, None)
    _, metadata, code, _ = rpc.termination()
    bad = error_details_pb2.BadRequest()
    details = dict(metadata).get("grpc-status-details-bin")
    if details is not None:
        status_pb2.Status.FromString(details).details[0].Unpack(bad)
    return code, bad
