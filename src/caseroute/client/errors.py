"""The client's errors: one class per way a call can fail, translated from gRPC in one place.

::

    CaserouteError                  (caseroute.domain.errors)
    └── ClientError                 a call failed; ``code`` (grpc.StatusCode), ``details`` and
                                    ``reason`` (a google.rpc.ErrorInfo reason, or "")
        ├── InvalidRequestError     INVALID_ARGUMENT, or refused by the client before sending;
        │                           ``violations`` names each bad field path
        ├── NotFoundError           NOT_FOUND: unknown ruleset or version, or no such decision
        ├── RequestIdConflictError  ALREADY_EXISTS: the request_id was used for another input
        ├── ReplyTooLargeError      RESOURCE_EXHAUSTED: the reply would not fit (nothing was
        │                           recorded; a retry's: recorded before), or exceeded this
        │                           client's receive limit
        ├── FailedPreconditionError FAILED_PRECONDITION
        ├── UnavailableError        UNAVAILABLE after the retries: server down or draining, no
        │                           ruleset loaded, decision log unwritable (usually nothing
        │                           recorded: retry with the same request_id, never a new one)
        ├── DeadlineExceededError   DEADLINE_EXCEEDED: the timeout passed (retries included)
        ├── AuthenticationError     UNAUTHENTICATED: no or unknown bearer token / certificate
        ├── PermissionDeniedError   PERMISSION_DENIED: authenticated, not allowed
        └── ServerError             INTERNAL, UNKNOWN and any other code

``error_from_rpc`` is the only place a ``grpc.RpcError`` becomes one of these.
"""

from __future__ import annotations

from typing import cast

import grpc
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from caseroute.domain.errors import CaserouteError, FieldViolation, RequestError
from caseroute.grpc_api.no_answer import made_by_the_channel, no_answer_text


class ClientError(CaserouteError):
    """A call failed.

    Attributes:
        code: The gRPC status code (INVALID_ARGUMENT also for the client's own checks).
        details: The server's status message (what was wrong and what to do).
        violations: Each bad field path with what to send instead (INVALID_ARGUMENT only).
        sent: False when the client refused the input before sending anything.
        reason: The google.rpc.ErrorInfo reason the server sent, e.g. ``ROSTER_NOT_CACHED``
            ("" when none).
    """

    def __init__(
        self,
        code: grpc.StatusCode,
        details: str,
        violations: tuple[FieldViolation, ...] = (),
        *,
        sent: bool = True,
        reason: str = "",
        head: str | None = None,
    ) -> None:
        """A failure with ``code``, the server's ``details`` and any field ``violations``.

        ``head`` replaces the message's first line when no server answered (the channel's own
        UNAVAILABLE or DEADLINE_EXCEEDED, gRPC's words in ``details``): it names the target
        and what to do.
        """
        if head is None:
            head = f"server answered {code.name}: {details}" if sent else details
        lines = [head] + [f"  - {v}" for v in violations]
        super().__init__("\n".join(lines))
        self.code = code
        self.details = details
        self.violations = violations
        self.sent = sent
        self.reason = reason


class InvalidRequestError(ClientError):
    """The request is invalid; ``violations`` names each field path (``case.intent``...)."""

    @classmethod
    def before_sending(cls, error: RequestError) -> InvalidRequestError:
        """The client's own parsing refused the input: nothing was sent."""
        return cls(
            grpc.StatusCode.INVALID_ARGUMENT,
            f"invalid request: {len(error.violations)} problem(s); nothing was sent",
            error.violations,
            sent=False,
        )


class NotFoundError(ClientError):
    """Unknown ruleset name or version, or no decision with that id."""


class RequestIdConflictError(ClientError):
    """The request_id was used before for a different input (send a new id, or the same input)."""


class ReplyTooLargeError(ClientError):
    """The reply would not fit: ask for SUMMARY, split the batch, or raise the limits.

    For a retry of a recorded request the decisions are recorded already: read them by decision
    id (the message names the first), or raise the limits; another level is another input.
    """


class FailedPreconditionError(ClientError):
    """The server's state does not allow the call."""


class UnavailableError(ClientError):
    """The server could not answer, even after the retries.

    Usually nothing was recorded, but not always: a worker killed after its commit, or a stream
    reset after it, also ends as UNAVAILABLE. Retry later with the same request_id (a recorded
    decision comes back ``replayed``), never with a new one, which would decide the case twice.
    """


class DeadlineExceededError(ClientError):
    """The timeout passed before an answer came (retries included)."""


class AuthenticationError(ClientError):
    """No credentials, or credentials the server does not know."""


class PermissionDeniedError(ClientError):
    """The credentials are known but not allowed this call."""


class ServerError(ClientError):
    """The server failed (INTERNAL, UNKNOWN...); quote the details to its operators."""


_BY_CODE: dict[grpc.StatusCode, type[ClientError]] = {
    grpc.StatusCode.INVALID_ARGUMENT: InvalidRequestError,
    grpc.StatusCode.NOT_FOUND: NotFoundError,
    grpc.StatusCode.ALREADY_EXISTS: RequestIdConflictError,
    grpc.StatusCode.RESOURCE_EXHAUSTED: ReplyTooLargeError,
    grpc.StatusCode.FAILED_PRECONDITION: FailedPreconditionError,
    grpc.StatusCode.UNAVAILABLE: UnavailableError,
    grpc.StatusCode.DEADLINE_EXCEEDED: DeadlineExceededError,
    grpc.StatusCode.UNAUTHENTICATED: AuthenticationError,
    grpc.StatusCode.PERMISSION_DENIED: PermissionDeniedError,
}


def _details(call: grpc.Call) -> tuple[tuple[FieldViolation, ...], str]:
    """The google.rpc.BadRequest field violations and ErrorInfo reason a failed call carries."""
    try:
        status = rpc_status.from_call(call)
    except ValueError:  # a status whose details disagree with its code/message: ignore them
        return (), ""
    found: list[FieldViolation] = []
    reason = ""
    for detail in status.details if status is not None else []:
        bad = error_details_pb2.BadRequest()
        info = error_details_pb2.ErrorInfo()
        if detail.Unpack(bad):
            found += [FieldViolation(v.field, v.description) for v in bad.field_violations]
        elif detail.Unpack(info):
            reason = reason or info.reason
    return tuple(found), reason


RETRY = "retry with the same request_id (a decision recorded meanwhile comes back replayed)"
"""How a caller retries safely after no answer (docs/client.md, "Errors")."""


def error_from_rpc(error: grpc.RpcError, target: str = "", timeout_s: float = 0.0) -> ClientError:
    """The client error for a failed call.

    Args:
        error: What grpcio raised (for unary calls, also a ``grpc.Call``).
        target: The server address(es) called, named when no server answered.
        timeout_s: The call's deadline in seconds, named when it passed unanswered.

    Returns:
        The ``ClientError`` subclass for its status code, with the BadRequest violations and
        the ErrorInfo reason. A status the channel made (nothing listening, the deadline
        passed with no answer: ``grpc_api/no_answer.py``) keeps gRPC's words in ``details``;
        its message says no server answered, naming ``target`` and what to do.
    """
    call = cast("grpc.Call", error)
    code = call.code()
    kind = _BY_CODE.get(code, ServerError)
    details = call.details() or ""
    if target and made_by_the_channel(call):
        head = no_answer_text(code, details, target, timeout_s, RETRY)
        return kind(code, details, head=head)
    violations, reason = _details(call)
    return kind(code, details, violations, reason=reason)
