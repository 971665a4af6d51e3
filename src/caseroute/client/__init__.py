"""The Python client of a caseroute server: decide cases and read the decision log.

::

    from caseroute.client import Client

    with Client("localhost:50051", token="...") as client:
        reply = client.decide(case, roster)          # dicts in the JSON dialect, or Case/Roster
        reply.decision.outcome                       # Outcome.ASSIGN ...
        for logged in client.list_decisions(case_id="CASE-1"):
            ...

Requests without a request_id get one derived from their content, so a retry returns the
stored decision instead of deciding twice; the channel retries UNAVAILABLE on its own. Errors
are ``ClientError`` subclasses (``caseroute.client.errors``). See docs/client.md.
"""

from caseroute.client.calls import CaseInput, Client, Instant, RosterInput
from caseroute.client.errors import (
    AuthenticationError,
    ClientError,
    DeadlineExceededError,
    FailedPreconditionError,
    InvalidRequestError,
    NotFoundError,
    PermissionDeniedError,
    ReplyTooLargeError,
    RequestIdConflictError,
    ServerError,
    UnavailableError,
)
from caseroute.client.ids import derive_request_id
from caseroute.client.results import BatchDecided, Decided, DecisionPage, LoggedDecision
from caseroute.domain.enums import ExplanationLevel
from caseroute.domain.errors import FieldViolation
from caseroute.grpc_api.tls import ClientTls

__all__ = [
    "AuthenticationError",
    "BatchDecided",
    "CaseInput",
    "Client",
    "ClientError",
    "ClientTls",
    "DeadlineExceededError",
    "Decided",
    "DecisionPage",
    "ExplanationLevel",
    "FailedPreconditionError",
    "FieldViolation",
    "Instant",
    "InvalidRequestError",
    "LoggedDecision",
    "NotFoundError",
    "PermissionDeniedError",
    "ReplyTooLargeError",
    "RequestIdConflictError",
    "RosterInput",
    "ServerError",
    "UnavailableError",
    "derive_request_id",
]
