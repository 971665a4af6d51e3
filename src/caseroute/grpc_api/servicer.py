"""RoutingService RPCs: convert the request, call the core, convert the reply. Nothing else."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import grpc

from caseroute.grpc_api import convert
from caseroute.grpc_api._generated import routing_pb2 as pb
from caseroute.grpc_api._generated import routing_pb2_grpc
from caseroute.grpc_api.status import status_for
from caseroute.service import RoutingCore

R = TypeVar("R")


def _serve(
    context: grpc.ServicerContext, reference: str, work: Callable[[], R], empty: Callable[[], R]
) -> R:
    """Run ``work``; any exception ends the call with the status table's answer.

    The failure is reported by setting code, message and the rich status (trailing metadata)
    and returning an empty message: real gRPC then sends only the status, and grpcio-testing
    (whose ``abort`` drops trailing metadata) sees the same thing.
    """
    remaining = context.time_remaining()
    if remaining is not None and remaining <= 0:
        context.set_code(grpc.StatusCode.DEADLINE_EXCEEDED)
        context.set_details("deadline passed before the request was decoded")
        return empty()
    try:
        return work()
    except Exception as exc:  # noqa: BLE001 - the RPC boundary: the status table decides
        status = status_for(exc, reference)
        context.set_trailing_metadata(status.trailing_metadata)
        context.set_code(status.code)
        context.set_details(status.details)
        return empty()


class RoutingServicer(routing_pb2_grpc.RoutingServiceServicer):
    """Thin servicer over ``RoutingCore``."""

    def __init__(self, core: RoutingCore) -> None:
        """Serve decisions from ``core``."""
        self._core = core

    def Decide(  # noqa: N802 - gRPC method name
        self, request: pb.DecideRequest, context: grpc.ServicerContext
    ) -> pb.DecideResponse:
        """Decide one case."""
        return _serve(
            context,
            request.request_id,
            lambda: convert.decide_response(self._core.decide(convert.decide_command(request))),
            pb.DecideResponse,
        )

    def DecideBatch(  # noqa: N802 - gRPC method name
        self, request: pb.DecideBatchRequest, context: grpc.ServicerContext
    ) -> pb.DecideBatchResponse:
        """Decide a batch of cases against one roster."""
        return _serve(
            context,
            request.request_id,
            lambda: convert.batch_response(self._core.decide(convert.batch_command(request))),
            pb.DecideBatchResponse,
        )
