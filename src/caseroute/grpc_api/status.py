"""The one table from domain errors to gRPC status, with google.rpc rich error details.

=========================  ==================  ============================================
domain error               gRPC status         details
=========================  ==================  ============================================
RequestError               INVALID_ARGUMENT    google.rpc.BadRequest: one violation per field
                                               (at most 20, then one counting the rest)
RulesetNotFoundError       NOT_FOUND           the message lists what is loaded
RulesetStateError          FAILED_PRECONDITION the lifecycle state forbids it; nothing changed
                                               (RulesetRetiredError: a pinned version is retired)
DecisionNotFoundError      NOT_FOUND           (DecisionLog.GetDecision)
RecordDamagedError         DATA_LOSS           the stored record was edited after it was
                                               hashed, or does not rebuild (edited or lost);
                                               names the record, not the damage's text
IdempotencyConflictError   ALREADY_EXISTS      request_id reused with another input
ResponseTooLargeError      RESOURCE_EXHAUSTED  nothing was recorded (a replay: recorded before);
                                               ask for less or raise the limit
CallCancelledError         CANCELLED           nothing was recorded (the caller, or a server
                                               stopping past its grace, ended the call)
CallEndedError             DEADLINE_EXCEEDED   nothing was recorded; retry with the same
                                               request_id and a longer deadline
RosterNotCachedError       FAILED_PRECONDITION google.rpc.ErrorInfo reason ROSTER_NOT_CACHED,
                                               domain caseroute, metadata roster_sha256:
                                               resend the request with its roster
NoRulesetLoadedError       UNAVAILABLE         generic; why nothing loaded is in the server log
EngineUnavailableError     UNAVAILABLE         generic; the engine's own text only in the log
AuditUnavailableError      UNAVAILABLE         no decision without its record; retry later
anything else              INTERNAL            generic text + reference; detail only in the log
=========================  ==================  ============================================

Everything here travels in trailing metadata, which gRPC clients refuse past 8 KiB by default
(and then report RESOURCE_EXHAUSTED instead of the error). So every text is clipped to a byte
budget, the violation list is capped, and the full list is sent once (in the details), never
also in the status message: the whole status stays under ``METADATA_BUDGET`` bytes.
"""

from __future__ import annotations

import logging

import grpc
from google.protobuf import any_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from caseroute.domain.errors import (
    AuditUnavailableError,
    CallCancelledError,
    CallEndedError,
    DecisionNotFoundError,
    EngineUnavailableError,
    FieldViolation,
    IdempotencyConflictError,
    NoRulesetLoadedError,
    RecordDamagedError,
    RequestError,
    ResponseTooLargeError,
    RosterNotCachedError,
    RulesetNotFoundError,
    RulesetStateError,
    withheld_cause,
)
from caseroute.domain.limits import clip

log = logging.getLogger("caseroute.grpc")

MAX_VIOLATIONS = 20
"""Field violations returned in one BadRequest; one more line counts the rest."""
MAX_FIELD_BYTES = 160
"""UTF-8 bytes of one violation's field path."""
MAX_DESCRIPTION_BYTES = 512
"""UTF-8 bytes of one violation's description (``DETAILS_BUDGET`` bounds them all together).
The longest caseroute writes, an unknown-field violation naming numbers and fields, fits with
its advice whole (tests/wire/test_unknown_fields.py)."""
MAX_MESSAGE_BYTES = 400
"""UTF-8 bytes of the status message, sent twice: in grpc-message (percent-encoding may
triple it) and inside grpc-status-details-bin."""
DETAILS_BUDGET = 2400
"""UTF-8 bytes of all violations together (grpc-status-details-bin; base64 adds a third)."""
METADATA_BUDGET = 6 * 1024
"""What the whole status may cost on the wire, worst case: well under gRPC's 8 KiB default.
The budgets above are chosen so that it holds (a test checks the worst case)."""

ROSTER_NOT_CACHED = "ROSTER_NOT_CACHED"
"""google.rpc.ErrorInfo reason of a FAILED_PRECONDITION: resend the request with its roster."""
ERROR_DOMAIN = "caseroute"
"""google.rpc.ErrorInfo domain of caseroute's own reasons."""

_TABLE: tuple[tuple[type[Exception], int], ...] = (
    (RequestError, code_pb2.INVALID_ARGUMENT),
    (RulesetNotFoundError, code_pb2.NOT_FOUND),
    (RulesetStateError, code_pb2.FAILED_PRECONDITION),
    (DecisionNotFoundError, code_pb2.NOT_FOUND),
    (RecordDamagedError, code_pb2.DATA_LOSS),
    (IdempotencyConflictError, code_pb2.ALREADY_EXISTS),
    (ResponseTooLargeError, code_pb2.RESOURCE_EXHAUSTED),
    (CallCancelledError, code_pb2.CANCELLED),
    (CallEndedError, code_pb2.DEADLINE_EXCEEDED),
    (RosterNotCachedError, code_pb2.FAILED_PRECONDITION),
    (NoRulesetLoadedError, code_pb2.UNAVAILABLE),
    (EngineUnavailableError, code_pb2.UNAVAILABLE),
    (AuditUnavailableError, code_pb2.UNAVAILABLE),
)


def _bad_request(violations: tuple[FieldViolation, ...]) -> error_details_pb2.BadRequest:
    """The violations to send: capped in count and bytes, the rest counted in a last line."""
    bad = error_details_pb2.BadRequest()
    spent = 0
    for v in violations[:MAX_VIOLATIONS]:
        field = clip(v.field, MAX_FIELD_BYTES)
        description = clip(v.message, MAX_DESCRIPTION_BYTES)
        cost = len(field.encode()) + len(description.encode())
        if spent + cost > DETAILS_BUDGET:
            break
        spent += cost
        bad.field_violations.add(field=field, description=description)
    hidden = len(violations) - len(bad.field_violations)
    if hidden:
        bad.field_violations.add(
            field="request",
            description=f"{hidden} more violations not shown; fix these and resend to see the rest",
        )
    return bad


def _summary(exc: RequestError) -> str:
    """The status message of an INVALID_ARGUMENT: a count and the first problem, not the list."""
    first = exc.violations[0]
    return (
        f"invalid request: {len(exc.violations)} problem(s); first: "
        f"{clip(first.field, MAX_FIELD_BYTES)}: {clip(first.message, 200)} "
        "(every problem is in the google.rpc.BadRequest details)"
    )


_GENERIC: dict[type[Exception], str] = {
    EngineUnavailableError: (
        "the rule engine is unavailable on this server; retry later or call another server "
        "(the operators find the cause in the server log)"
    ),
}
"""Errors whose own text may quote server paths or library messages: the caller gets these."""


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
            if isinstance(exc, RequestError):
                status = status_pb2.Status(
                    code=code, message=clip(_summary(exc), MAX_MESSAGE_BYTES)
                )
                detail = any_pb2.Any()
                detail.Pack(_bad_request(exc.violations))
                status.details.append(detail)
            elif isinstance(exc, RosterNotCachedError):
                status = status_pb2.Status(code=code, message=str(exc))
                detail = any_pb2.Any()
                detail.Pack(
                    error_details_pb2.ErrorInfo(
                        reason=ROSTER_NOT_CACHED,
                        domain=ERROR_DOMAIN,
                        metadata={"roster_sha256": exc.roster_sha256},
                    )
                )
                status.details.append(detail)
            elif kind in _GENERIC:
                log.error(
                    "%s serving request %s: %s", kind.__name__, clip(repr(reference), 200), exc
                )
                status = status_pb2.Status(code=code, message=_GENERIC[kind])
            else:
                status = status_pb2.Status(code=code, message=clip(str(exc), MAX_MESSAGE_BYTES))
            return rpc_status.to_status(status)
    # Type and frames only: a bug's exception text may quote the request (case values).
    log.error(
        "internal error serving request %s: %s", clip(repr(reference), 200), withheld_cause(exc)
    )
    return rpc_status.to_status(
        status_pb2.Status(
            code=code_pb2.INTERNAL,
            message=clip(
                f"internal error; quote reference {reference!r} to the caseroute operators",
                MAX_MESSAGE_BYTES,
            ),
        )
    )
