"""RoutingService and DecisionLog RPCs: convert the request, call the core, convert the reply."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import grpc

from caseroute.domain.errors import FieldViolation, RequestError
from caseroute.grpc_api import convert
from caseroute.grpc_api._generated import routing_pb2 as pb
from caseroute.grpc_api._generated import routing_pb2_grpc
from caseroute.grpc_api.status import clip, status_for
from caseroute.service import DecisionLog, RoutingCore

log = logging.getLogger("caseroute.grpc")

R = TypeVar("R")
M = TypeVar("M")


@dataclass(frozen=True, slots=True)
class UndecodableRequest:
    """Stands in for a request whose bytes are not the method's protobuf message.

    Attributes:
        message: Full name of the message the method takes.
        size: How many bytes arrived.
    """

    message: str
    size: int


def lenient_deserializer(message: type[M]) -> Callable[[bytes], M | UndecodableRequest]:
    """A request deserializer that never raises.

    grpcio answers a raising deserializer with INTERNAL and logs a traceback per call; this
    one hands the servicer an ``UndecodableRequest`` instead, which it refuses as
    INVALID_ARGUMENT with one log line.

    Args:
        message: The generated message class.

    Returns:
        bytes -> the message, or an ``UndecodableRequest``.
    """
    parse: Callable[[bytes], M] = message.FromString  # type: ignore[attr-defined]
    name: str = message.DESCRIPTOR.full_name  # type: ignore[attr-defined]

    def deserialize(data: bytes) -> M | UndecodableRequest:
        try:
            return parse(data)
        except Exception:  # noqa: BLE001 - DecodeError or worse: the bytes are not the message
            return UndecodableRequest(name, len(data))

    return deserialize


def _fail(context: grpc.ServicerContext, exc: Exception, reference: str) -> None:
    """End the call with the status table's answer for ``exc``.

    The failure is reported by setting code, message and the rich status (trailing metadata);
    the servicer then returns an empty message: real gRPC sends only the status, and
    grpcio-testing (whose ``abort`` drops trailing metadata) sees the same thing.
    """
    status = status_for(exc, reference)
    context.set_trailing_metadata(status.trailing_metadata)
    context.set_code(status.code)
    context.set_details(status.details)


def _refuse_undecodable(
    context: grpc.ServicerContext, method: str, request: UndecodableRequest, empty: R
) -> R:
    log.warning(
        "%s refused: request bytes are not a valid %s (%d bytes)",
        method,
        request.message,
        request.size,
    )
    violation = FieldViolation(
        "request",
        f"is not a valid {request.message} protobuf message; send the message the .proto defines",
    )
    _fail(context, RequestError([violation]), method)
    return empty


def _serve(
    context: grpc.ServicerContext,
    method: str,
    reference: str,
    work: Callable[[], R],
    empty: Callable[[], R],
) -> R:
    """Run ``work``; any exception ends the call with the status table's answer."""
    remaining = context.time_remaining()
    if remaining is not None and remaining <= 0:
        context.set_code(grpc.StatusCode.DEADLINE_EXCEEDED)
        context.set_details("deadline passed before the request was decoded")
        return empty()
    try:
        return work()
    except Exception as exc:  # noqa: BLE001 - the RPC boundary: the status table decides
        if isinstance(exc, RequestError):
            # Field paths only: messages may quote the caller's (possibly PHI) values.
            log.info(
                "%s refused: request_id=%s invalid: %d problem(s) at %s",
                method,
                clip(repr(reference), 120),
                len(exc.violations),
                clip(", ".join(v.field for v in exc.violations[:5]), 300),
            )
        _fail(context, exc, reference)
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
        self, request: pb.DecideRequest | UndecodableRequest, context: grpc.ServicerContext
    ) -> pb.DecideResponse:
        """Decide one case."""
        if isinstance(request, UndecodableRequest):
            return _refuse_undecodable(context, "Decide", request, pb.DecideResponse())
        return _serve(
            context,
            "Decide",
            request.request_id,
            lambda: convert.decide_response(
                self._core.decide(convert.decide_command(request, caller_identity(context)))
            ),
            pb.DecideResponse,
        )

    def DecideBatch(  # noqa: N802 - gRPC method name
        self, request: pb.DecideBatchRequest | UndecodableRequest, context: grpc.ServicerContext
    ) -> pb.DecideBatchResponse:
        """Decide a batch of cases against one roster."""
        if isinstance(request, UndecodableRequest):
            return _refuse_undecodable(context, "DecideBatch", request, pb.DecideBatchResponse())
        return _serve(
            context,
            "DecideBatch",
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
        self, request: pb.GetDecisionRequest | UndecodableRequest, context: grpc.ServicerContext
    ) -> pb.AuditedDecision:
        """One decision by id."""
        if isinstance(request, UndecodableRequest):
            return _refuse_undecodable(context, "GetDecision", request, pb.AuditedDecision())
        return _serve(
            context,
            "GetDecision",
            request.decision_id,
            lambda: convert.audited_to_proto(self._log.get(request.decision_id)),
            pb.AuditedDecision,
        )

    def ListDecisions(  # noqa: N802 - gRPC method name
        self, request: pb.ListDecisionsRequest | UndecodableRequest, context: grpc.ServicerContext
    ) -> pb.ListDecisionsResponse:
        """A page of decisions for a case and/or time range."""
        if isinstance(request, UndecodableRequest):
            return _refuse_undecodable(
                context, "ListDecisions", request, pb.ListDecisionsResponse()
            )
        return _serve(
            context,
            "ListDecisions",
            request.case_id or "list",
            lambda: convert.list_response(self._log.list(convert.decision_query(request))),
            pb.ListDecisionsResponse,
        )
