"""RoutingService and DecisionLog RPCs: convert the request, call the core, convert the reply."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import grpc

from caseroute.grpc_api import convert
from caseroute.grpc_api._generated import routing_pb2 as pb
from caseroute.grpc_api._generated import routing_pb2_grpc
from caseroute.grpc_api.status import status_for
from caseroute.service import DecisionLog, RoutingCore

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


def caller_identity(context: grpc.ServicerContext) -> str:
    """The authenticated peer's identity (TLS client certificate), or "" when none."""
    try:
        identities = context.peer_identities()
    except NotImplementedError:  # grpcio-testing's context has no transport security
        return ""
    return ",".join(i.decode(errors="replace") for i in identities) if identities else ""


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
            lambda: convert.decide_response(
                self._core.decide(convert.decide_command(request, caller_identity(context)))
            ),
            pb.DecideResponse,
        )

    def DecideBatch(  # noqa: N802 - gRPC method name
        self, request: pb.DecideBatchRequest, context: grpc.ServicerContext
    ) -> pb.DecideBatchResponse:
        """Decide a batch of cases against one roster."""
        return _serve(
            context,
            request.request_id,
            lambda: convert.batch_response(
                self._core.decide(convert.batch_command(request, caller_identity(context)))
            ),
            pb.DecideBatchResponse,
        )


class DecisionLogServicer(routing_pb2_grpc.DecisionLogServicer):
    """Thin servicer over ``DecisionLog``."""

    def __init__(self, decision_log: DecisionLog) -> None:
        """Serve reads from ``decision_log``."""
        self._log = decision_log

    def GetDecision(  # noqa: N802 - gRPC method name
        self, request: pb.GetDecisionRequest, context: grpc.ServicerContext
    ) -> pb.AuditedDecision:
        """One decision by id."""
        return _serve(
            context,
            request.decision_id,
            lambda: convert.audited_to_proto(self._log.get(request.decision_id)),
            pb.AuditedDecision,
        )

    def ListDecisions(  # noqa: N802 - gRPC method name
        self, request: pb.ListDecisionsRequest, context: grpc.ServicerContext
    ) -> pb.ListDecisionsResponse:
        """A page of decisions for a case and/or time range."""
        return _serve(
            context,
            request.case_id or "list",
            lambda: convert.list_response(self._log.list(convert.decision_query(request))),
            pb.ListDecisionsResponse,
        )
