"""A small client for the CLI: ``decide --server``, ``health`` and the ``rules`` admin commands."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Self, cast

import grpc
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from caseroute.domain.case import Case
from caseroute.domain.decision import Decision
from caseroute.domain.errors import CaserouteError
from caseroute.domain.roster import Roster
from caseroute.grpc_api.tls import ClientTls, open_channel
from caseroute.v1 import admin_pb2 as apb
from caseroute.v1 import admin_pb2_grpc, routing_pb2_grpc
from caseroute.v1 import routing_pb2 as pb
from caseroute.wire import convert


class RemoteCallError(CaserouteError):
    """The server refused or failed a call; the message carries its status and field errors."""

    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(f"server answered {code.name}: {message}")
        self.code = code


def _explain(error: grpc.RpcError) -> RemoteCallError:
    # Errors raised by unary calls are also grpc.Call objects (grpc's _InactiveRpcError).
    call = cast("grpc.Call", error)
    status = rpc_status.from_call(call)
    lines = [call.details() or ""]
    for detail in status.details if status is not None else []:
        bad = error_details_pb2.BadRequest()
        if detail.Unpack(bad):
            lines = ["invalid request:"] + [
                f"  - {v.field}: {v.description}" for v in bad.field_violations
            ]
    return RemoteCallError(call.code(), "\n".join(lines))


def check_health(
    target: str, service: str = "", timeout_s: float = 5.0, tls: ClientTls | None = None
) -> str:
    """The gRPC health status of a server (``SERVING``, ``NOT_SERVING``...).

    Raises:
        RemoteCallError: If the server cannot be reached.
    """
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    with open_channel(target, tls) as channel:
        stub: Any = health_pb2_grpc.HealthStub(channel)  # typeshed's stub lacks Check
        try:
            reply = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=timeout_s)
        except grpc.RpcError as error:
            raise _explain(error) from None
    name: str = health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
    return name


def bearer_metadata(token: str | None) -> tuple[tuple[str, str], ...]:
    """The call metadata carrying ``token`` (none without one)."""
    return (("authorization", f"Bearer {token}"),) if token else ()


class AdminClient:
    """RulesetAdmin calls on one server, with a bearer token and/or a client certificate."""

    def __init__(
        self,
        target: str,
        *,
        tls: ClientTls | None = None,
        token: str | None = None,
        timeout_s: float = 60.0,
    ) -> None:
        """Call ``target`` (``host:port``) with these credentials and deadline."""
        self._target = target
        self._tls = tls
        self._metadata = bearer_metadata(token)
        self._timeout_s = timeout_s

    def _call(self, method: str, request: Any) -> Any:
        with open_channel(self._target, self._tls) as channel:
            stub = admin_pb2_grpc.RulesetAdminStub(channel)
            try:
                return getattr(stub, method)(
                    request, timeout=self._timeout_s, metadata=self._metadata
                )
            except grpc.RpcError as error:
                raise _explain(error) from None

    def list_rulesets(self) -> apb.ListRulesetsResponse:
        """ListRulesets.

        Raises:
            RemoteCallError: If the call fails.
        """
        reply: apb.ListRulesetsResponse = self._call("ListRulesets", apb.ListRulesetsRequest())
        return reply

    def get_ruleset(self, name: str, version: str = "") -> apb.GetRulesetResponse:
        """GetRuleset ("" version: the active one).

        Raises:
            RemoteCallError: If the call fails.
        """
        reply: apb.GetRulesetResponse = self._call(
            "GetRuleset", apb.GetRulesetRequest(name=name, version=version)
        )
        return reply

    def validate(self, source: str, file_name: str) -> apb.ValidateRulesetResponse:
        """ValidateRuleset.

        Raises:
            RemoteCallError: If the call fails.
        """
        reply: apb.ValidateRulesetResponse = self._call(
            "ValidateRuleset", apb.ValidateRulesetRequest(source=source, file_name=file_name)
        )
        return reply

    def activate(self, name: str, version: str) -> apb.LifecycleOutcome:
        """ActivateRuleset.

        Raises:
            RemoteCallError: If the call fails.
        """
        reply: apb.LifecycleOutcome = self._call(
            "ActivateRuleset", apb.ActivateRulesetRequest(name=name, version=version)
        )
        return reply

    def rollback(self, name: str) -> apb.LifecycleOutcome:
        """Rollback.

        Raises:
            RemoteCallError: If the call fails.
        """
        reply: apb.LifecycleOutcome = self._call("Rollback", apb.RollbackRequest(name=name))
        return reply

    def reload(self) -> apb.LifecycleOutcome:
        """Reload.

        Raises:
            RemoteCallError: If the call fails.
        """
        reply: apb.LifecycleOutcome = self._call("Reload", apb.ReloadRequest())
        return reply

    def replay(self, request: apb.ReplayRequest) -> apb.ReplayResponse:
        """Replay (the server's decision log under a candidate).

        Raises:
            RemoteCallError: If the call fails.
        """
        reply: apb.ReplayResponse = self._call("Replay", request)
        return reply


class RoutingClient:
    """Decide and DecideBatch calls over one channel, shared by many threads (a load generator)."""

    def __init__(
        self,
        target: str,
        *,
        tls: ClientTls | None = None,
        token: str | None = None,
        timeout_s: float = 30.0,
        ruleset_name: str = "",
        ruleset_version: str = "",
        agent_detail: bool = True,
    ) -> None:
        """Open a channel to ``target`` (``host:port``); close it with ``close`` or ``with``."""
        self._channel = open_channel(target, tls)
        self._stub = routing_pb2_grpc.RoutingServiceStub(self._channel)
        self._metadata = bearer_metadata(token)
        self._timeout_s = timeout_s
        self._selector = pb.RulesetSelector(name=ruleset_name, version=ruleset_version)
        self._level = pb.EXPLANATION_LEVEL_FULL if agent_detail else pb.EXPLANATION_LEVEL_SUMMARY

    def decide(
        self, request_id: str, cases: tuple[Case, ...], roster: Roster, now: datetime
    ) -> tuple[Decision, ...]:
        """Decide one case (Decide) or several against one roster (DecideBatch).

        Raises:
            RemoteCallError: If the call fails (its ``code`` says how).
        """
        timestamp = convert.datetime_to_timestamp(now)
        roster_msg = convert.roster_to_proto(roster)
        try:
            if len(cases) == 1:
                reply = self._stub.Decide(
                    pb.DecideRequest(
                        request_id=request_id,
                        ruleset=self._selector,
                        case=convert.case_to_proto(cases[0]),
                        roster=roster_msg,
                        now=timestamp,
                        explanation_level=self._level,
                    ),
                    timeout=self._timeout_s,
                    metadata=self._metadata,
                )
                return (convert.decision_from_proto(reply.decision),)
            batch = self._stub.DecideBatch(
                pb.DecideBatchRequest(
                    request_id=request_id,
                    ruleset=self._selector,
                    cases=[convert.case_to_proto(case) for case in cases],
                    roster=roster_msg,
                    now=timestamp,
                    explanation_level=self._level,
                ),
                timeout=self._timeout_s,
                metadata=self._metadata,
            )
        except grpc.RpcError as error:
            raise _explain(error) from None
        return tuple(convert.decision_from_proto(d) for d in batch.decisions)

    def close(self) -> None:
        """Close the channel."""
        self._channel.close()

    def __enter__(self) -> Self:
        """The client itself."""
        return self

    def __exit__(self, *_exc: object) -> None:
        """Close the channel."""
        self.close()
