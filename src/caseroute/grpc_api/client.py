"""The CLI's client of the admin and health services: ``health`` and the ``rules`` commands.

RoutingService and DecisionLog calls go through the published client, ``caseroute.client``
(``decide --server`` and ``simulate --server`` too), so there is one implementation of them.
"""

from __future__ import annotations

from typing import Any, cast

import grpc
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from caseroute.domain.errors import CaserouteError
from caseroute.grpc_api.no_answer import made_by_the_channel, no_answer_text
from caseroute.grpc_api.tls import ClientTls, open_channel
from caseroute.v1 import admin_pb2 as apb
from caseroute.v1 import admin_pb2_grpc


class RemoteCallError(CaserouteError):
    """The server refused or failed a call; the message carries its status and field errors.

    ``answered`` is False for a status the channel made (nothing answered: the message then
    names the target and what to do, ``grpc_api/no_answer.py``).
    """

    def __init__(self, code: grpc.StatusCode, message: str, *, answered: bool = True) -> None:
        super().__init__(f"server answered {code.name}: {message}" if answered else message)
        self.code = code
        self.detail = message


def _explain(
    error: grpc.RpcError, target: str, timeout_s: float, *, health: bool = False
) -> RemoteCallError:
    # Errors raised by unary calls are also grpc.Call objects (grpc's _InactiveRpcError).
    call = cast("grpc.Call", error)
    if made_by_the_channel(call):
        retry = "run the command again"
        text = no_answer_text(
            call.code(), call.details() or "", target, timeout_s, retry, suggest_health=not health
        )
        return RemoteCallError(call.code(), text, answered=False)
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
            raise _explain(error, target, timeout_s, health=True) from None
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
                explained = _explain(error, self._target, self._timeout_s)
                if explained.code is grpc.StatusCode.UNAUTHENTICATED and not self._metadata:
                    # The server's words name the header; the CLI user sets a file (R37b 8).
                    raise RemoteCallError(
                        explained.code,
                        f"{explained.detail} (no token was sent: pass "
                        "--token-file FILE holding your admin token, or set "
                        "$CASEROUTE_TOKEN_FILE)",
                    ) from None
                raise explained from None

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
