"""The one table from domain errors to gRPC status, with google.rpc rich error details.

=========================  ==================  ============================================
domain error               gRPC status         details
=========================  ==================  ============================================
RequestError               INVALID_ARGUMENT    google.rpc.BadRequest: one violation per field
RulesetNotFoundError       NOT_FOUND           the message lists what is loaded
DecisionNotFoundError      NOT_FOUND           (DecisionLog.GetDecision)
IdempotencyConflictError   ALREADY_EXISTS      request_id reused with another input
NoRulesetLoadedError       UNAVAILABLE         why nothing is loaded
EngineUnavailableError     UNAVAILABLE
AuditUnavailableError      UNAVAILABLE         no decision without its record; retry later
anything else              INTERNAL            generic text + reference; detail only in the log
=========================  ==================  ============================================
"""

from __future__ import annotations

import logging

import grpc
from google.protobuf import any_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from caseroute.domain.errors import (
    AuditUnavailableError,
    DecisionNotFoundError,
    EngineUnavailableError,
    IdempotencyConflictError,
    NoRulesetLoadedError,
    RequestError,
    RulesetNotFoundError,
)

log = logging.getLogger("caseroute.grpc")

_TABLE: tuple[tuple[type[Exception], int], ...] = (
    (RequestError, code_pb2.INVALID_ARGUMENT),
    (RulesetNotFoundError, code_pb2.NOT_FOUND),
    (DecisionNotFoundError, code_pb2.NOT_FOUND),
    (IdempotencyConflictError, code_pb2.ALREADY_EXISTS),
    (NoRulesetLoadedError, code_pb2.UNAVAILABLE),
    (EngineUnavailableError, code_pb2.UNAVAILABLE),
    (AuditUnavailableError, code_pb2.UNAVAILABLE),
)


def status_for(exc: Exception, reference: str) -> grpc.Status:
    """The status a caller sees for an exception raised while serving a call.

    Args:
        exc: The exception.
        reference: Request id quoted in INTERNAL errors so operators can find the log entry.

    Returns:
        A grpc.Status carrying a google.rpc.Status (with BadRequest for invalid input).
    """
    for kind, code in _TABLE:
        if isinstance(exc, kind):
            status = status_pb2.Status(code=code, message=str(exc))
            if isinstance(exc, RequestError):
                bad = error_details_pb2.BadRequest(
                    field_violations=[
                        error_details_pb2.BadRequest.FieldViolation(
                            field=v.field, description=v.message
                        )
                        for v in exc.violations
                    ]
                )
                detail = any_pb2.Any()
                detail.Pack(bad)
                status.details.append(detail)
            return rpc_status.to_status(status)
    log.error("internal error serving request %s", reference, exc_info=exc)
    return rpc_status.to_status(
        status_pb2.Status(
            code=code_pb2.INTERNAL,
            message=f"internal error; quote reference {reference!r} to the caseroute operators",
        )
    )
