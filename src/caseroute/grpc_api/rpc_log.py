"""A call listener that writes one structured log line per finished unary gRPC call.

The line carries ids and results only: ``request_id``, ``decision_id``/``decision_ids``,
``case_id``/``case_ids`` (the caller's pseudonymous id, kept in clear by design like the
decision log does: docs/security.md), the ruleset name and version, outcome, deciding rule,
status code, latency and caller identity. It never reads a case's fields (locations,
languages, attributes, notes, patient ids) nor the roster: only the reply's ``Decision`` ids
and codes, and a request's id fields.
"""

from __future__ import annotations

import logging
from typing import Any

import grpc
from grpc_health.v1 import health_pb2

from caseroute.grpc_api.rpc_calls import FinishedCall
from caseroute.grpc_api.servicer import RosterCut, UndecodableRequest, UnknownFieldsRequest
from caseroute.v1 import admin_pb2 as apb
from caseroute.v1 import routing_pb2 as pb

MAX_ID_CHARS = 200
"""Longest id written to the log (a refused request's id may be any length)."""

_SERVER_FAULTS = frozenset(
    {
        grpc.StatusCode.INTERNAL,
        grpc.StatusCode.UNKNOWN,
        grpc.StatusCode.DATA_LOSS,
        grpc.StatusCode.UNAVAILABLE,
    }
)


def _id(text: str) -> str:
    """An id fit for one log line: cut to ``MAX_ID_CHARS``, control characters escaped."""
    short = text[:MAX_ID_CHARS]
    return short if short.isprintable() else repr(short)[1:-1]


def _outcome(value: pb.Outcome.ValueType) -> str:
    return pb.Outcome.Name(value).removeprefix("OUTCOME_")


def _decision_fields(decision: pb.Decision) -> dict[str, Any]:
    return {
        "decision_id": decision.decision_id,
        "case_id": _id(decision.case_id),
        "outcome": _outcome(decision.outcome),
        "rule_id": decision.rule_id,
        "agent_id": _id(decision.agent_id),
        "ruleset": decision.ruleset.name,
        "ruleset_version": decision.ruleset.version,
    }


def _batch_fields(decisions: Any) -> dict[str, Any]:
    first = decisions[0] if decisions else None
    return {
        "cases": len(decisions),
        "decision_ids": [d.decision_id for d in decisions],
        "case_ids": [_id(d.case_id) for d in decisions],
        "outcomes": [_outcome(d.outcome) for d in decisions],
        "rule_ids": [d.rule_id for d in decisions],
        "ruleset": first.ruleset.name if first is not None else "",
        "ruleset_version": first.ruleset.version if first is not None else "",
    }


def _request_fields(request: Any) -> dict[str, Any]:
    """Id fields of a request: never a case or roster field."""
    if isinstance(request, UndecodableRequest):
        return {"undecodable_bytes": request.size}
    if isinstance(request, UnknownFieldsRequest):  # refused: its known ids still name it
        return {**_request_fields(request.request), "unknown_fields": len(request.violations)}
    if isinstance(request, RosterCut):  # a Decide whose roster the deserializer left unparsed
        request = request.message
    if isinstance(request, pb.DecideRequest | pb.DecideBatchRequest):
        fields: dict[str, Any] = {"request_id": _id(request.request_id)}
        if request.ruleset.name:
            fields["ruleset"] = _id(request.ruleset.name)
        if request.ruleset.version:
            fields["ruleset_version"] = _id(request.ruleset.version)
        return fields
    if isinstance(request, pb.GetDecisionRequest):
        return {"decision_id": _id(request.decision_id)}
    if isinstance(request, pb.ListDecisionsRequest):
        return {"case_id": _id(request.case_id)} if request.case_id else {}
    if isinstance(request, apb.GetRulesetRequest | apb.ActivateRulesetRequest):
        return {"ruleset": _id(request.name), "ruleset_version": _id(request.version)}
    if isinstance(request, apb.RollbackRequest):
        return {"ruleset": _id(request.name)}
    if isinstance(request, health_pb2.HealthCheckRequest):
        return {"health_service": _id(request.service)}
    return {}


def _response_fields(response: Any) -> dict[str, Any]:
    """Ids and results of a reply (what was decided), never an explanation's values."""
    if isinstance(response, pb.DecideResponse):
        return {**_decision_fields(response.decision), "replayed": response.replayed}
    if isinstance(response, pb.DecideBatchResponse):
        return {**_batch_fields(response.decisions), "replayed": response.replayed}
    if isinstance(response, pb.ListDecisionsResponse):
        return {"decisions": len(response.decisions)}
    if isinstance(response, apb.LifecycleOutcome):
        return {"changes": len(response.changes)}
    if isinstance(response, health_pb2.HealthCheckResponse):
        return {"health": health_pb2.HealthCheckResponse.ServingStatus.Name(response.status)}
    return {}


def call_fields(call: FinishedCall) -> dict[str, Any]:
    """The log line's fields for ``call`` (besides the event name and level).

    Args:
        call: The finished call.

    Returns:
        ``method``, ``service``, ``code``, ``latency_ms``, ``caller``, ``peer`` and the
        request's and reply's ids and results (the reply's win where both name a field).
    """
    return {
        "service": call.service,
        "method": call.method if call.known else _id(call.method),
        "code": call.code.name,
        "latency_ms": round(call.elapsed_s * 1000, 3),
        "caller": call.caller,
        "peer": call.peer,
        **_request_fields(call.request),
        **_response_fields(call.response),
    }


def _roster_not_held(call: FinishedCall) -> bool:
    """A Decide that named its roster by hash alone, refused because this worker lacks it.

    A step of the protocol, not a fault of anyone's: the client resends the roster (after a
    restart, an eviction, another worker's first call). Logged at WARNING, it put a warning
    in the server's log for every such resend; at INFO it stays as visible as the call's
    other line, and ``caseroute_roster_log_lookups_total`` counts why.
    """
    request = call.request
    return (
        call.code == grpc.StatusCode.FAILED_PRECONDITION
        and isinstance(request, pb.DecideRequest | pb.DecideBatchRequest)
        and bool(request.roster_sha256)
        and not request.HasField("roster")
    )


class RpcLogListener:
    """Writes one ``rpc`` line per finished unary call to the ``caseroute.rpc`` logger.

    OK is logged at INFO, and so is a roster named by hash this worker does not hold
    (``_roster_not_held``); a status that is the server's fault (INTERNAL, UNKNOWN,
    UNAVAILABLE, DATA_LOSS) at ERROR; any other refusal at WARNING.
    """

    def __init__(self) -> None:
        """Log to ``caseroute.rpc``.

        Through stdlib ``logging`` with the fields in ``extra``, like every other line: where
        ``caseroute.logs.configure_logging`` ran they become the keys of the line; where it
        did not (a server embedded in a test or another program) the host's logging setup
        decides, and nothing is printed behind its back.
        """
        self._log = logging.getLogger("caseroute.rpc")

    def call_finished(self, call: FinishedCall) -> None:
        """Write ``call``'s line."""
        if call.code == grpc.StatusCode.OK or _roster_not_held(call):
            level = logging.INFO
        elif call.code in _SERVER_FAULTS:
            level = logging.ERROR
        else:
            level = logging.WARNING
        logger = self._log
        if not logger.isEnabledFor(level):
            return
        # What ``logger.log(level, "rpc", extra=...)`` does, without its walk up the stack for
        # the caller's file and line (findCaller, on every call): no rendered line shows them,
        # and the caller is always this method.
        logger.handle(
            logger.makeRecord(
                logger.name,
                level,
                __file__,
                _LINE,
                "rpc",
                (),
                None,
                "call_finished",
                call_fields(call),
            )
        )


_LINE = RpcLogListener.call_finished.__code__.co_firstlineno
"""The line the call log's records name as their origin (``call_finished``)."""
