"""RulesetAdmin RPCs: convert the request, call the lifecycle, convert the reply.

Every call has passed ``auth.AuthInterceptor`` (RulesetAdmin is never open); the identity it
established becomes the actor recorded in the decision log (``admin:<identity>``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TypeVar

import grpc

from caseroute.domain.errors import RulesetError, RulesetStateError
from caseroute.grpc_api import admin_convert
from caseroute.grpc_api.auth import Authenticated, authenticated
from caseroute.grpc_api.servicer import RefusedRequest, _refuse_unread, _serve
from caseroute.lifecycle import LifecycleOutcome, RulesetAdminCore
from caseroute.replay_admin import ReplayAdminCore
from caseroute.v1 import admin_pb2 as apb
from caseroute.v1 import admin_pb2_grpc

log = logging.getLogger("caseroute.admin")

R = TypeVar("R")


class UnauthenticatedAdminCallError(Exception):
    """An admin method ran without the auth interceptor's check (a wiring bug: INTERNAL)."""


class RulesetAdminServicer(admin_pb2_grpc.RulesetAdminServicer):
    """Thin servicer over a ``RulesetAdminCore`` (``RulesetLifecycle`` in the server)."""

    def __init__(
        self,
        core: RulesetAdminCore,
        *,
        who: Callable[[], Authenticated | None] = authenticated,
        after_change: Callable[[], None] | None = None,
        replays: ReplayAdminCore | None = None,
    ) -> None:
        """Serve administration from ``core``.

        Args:
            core: The lifecycle.
            who: Who passed the auth check of the current call (tests may stand in for it).
            after_change: Called after each activation, rollback or reload that succeeded
                (the server lets its health follow the rulesets).
            replays: What Replay runs on (None: ``core`` when it replays, as
                ``RulesetLifecycle`` does; else Replay is refused).
        """
        self._core = core
        self._who = who
        self._after_change = after_change
        self._replays = (
            replays if replays is not None or not isinstance(core, ReplayAdminCore) else core
        )

    def _changed(self, outcome: LifecycleOutcome) -> apb.LifecycleOutcome:
        if self._after_change is not None:
            self._after_change()
        return admin_convert.outcome_to_proto(outcome)

    def _actor(self) -> str:
        who = self._who()
        if who is None or not who.identity:
            raise UnauthenticatedAdminCallError
        return f"admin:{who.identity}"

    def _run(
        self,
        context: grpc.ServicerContext,
        method: str,
        work: Callable[[], R],
        empty: Callable[[], R],
    ) -> R:
        """Log who calls, run ``work``; any error ends the call with the status table's answer."""

        def logged() -> R:
            log.info("%s by %s", method, self._actor())
            return work()

        return _serve(context, method, method, logged, empty)

    def ListRulesets(  # noqa: N802 - gRPC method name
        self,
        request: apb.ListRulesetsRequest | RefusedRequest,
        context: grpc.ServicerContext,
    ) -> apb.ListRulesetsResponse:
        """Every ruleset name, its versions and its state."""
        if isinstance(request, RefusedRequest):
            return _refuse_unread(context, "ListRulesets", request, apb.ListRulesetsResponse())
        return self._run(
            context,
            "ListRulesets",
            lambda: admin_convert.list_response(self._core.list_rulesets()),
            apb.ListRulesetsResponse,
        )

    def GetRuleset(  # noqa: N802 - gRPC method name
        self, request: apb.GetRulesetRequest | RefusedRequest, context: grpc.ServicerContext
    ) -> apb.GetRulesetResponse:
        """The source of one loaded version."""
        if isinstance(request, RefusedRequest):
            return _refuse_unread(context, "GetRuleset", request, apb.GetRulesetResponse())
        return self._run(
            context,
            "GetRuleset",
            lambda: admin_convert.source_response(
                self._core.get_source(
                    *admin_convert.ruleset_ref(
                        request.name, request.version, version_required=False
                    )
                )
            ),
            apb.GetRulesetResponse,
        )

    def ValidateRuleset(  # noqa: N802 - gRPC method name
        self,
        request: apb.ValidateRulesetRequest | RefusedRequest,
        context: grpc.ServicerContext,
    ) -> apb.ValidateRulesetResponse:
        """Every problem of a source; nothing activated."""
        if isinstance(request, RefusedRequest):
            return _refuse_unread(
                context, "ValidateRuleset", request, apb.ValidateRulesetResponse()
            )
        return self._run(
            context,
            "ValidateRuleset",
            lambda: admin_convert.validate_response(
                self._core.validate(*admin_convert.validate_source(request))
            ),
            apb.ValidateRulesetResponse,
        )

    def ActivateRuleset(  # noqa: N802 - gRPC method name
        self,
        request: apb.ActivateRulesetRequest | RefusedRequest,
        context: grpc.ServicerContext,
    ) -> apb.LifecycleOutcome:
        """Make a loaded version active."""
        if isinstance(request, RefusedRequest):
            return _refuse_unread(context, "ActivateRuleset", request, apb.LifecycleOutcome())

        def work() -> apb.LifecycleOutcome:
            name, version = admin_convert.ruleset_ref(
                request.name, request.version, version_required=True
            )
            return self._changed(self._core.activate(name, version, actor=self._actor()))

        return self._run(context, "ActivateRuleset", work, apb.LifecycleOutcome)

    def Rollback(  # noqa: N802 - gRPC method name
        self, request: apb.RollbackRequest | RefusedRequest, context: grpc.ServicerContext
    ) -> apb.LifecycleOutcome:
        """Make the previously active version active again."""
        if isinstance(request, RefusedRequest):
            return _refuse_unread(context, "Rollback", request, apb.LifecycleOutcome())

        def work() -> apb.LifecycleOutcome:
            name, _ = admin_convert.ruleset_ref(request.name, "", version_required=False)
            return self._changed(self._core.rollback(name, actor=self._actor()))

        return self._run(context, "Rollback", work, apb.LifecycleOutcome)

    def Reload(  # noqa: N802 - gRPC method name
        self, request: apb.ReloadRequest | RefusedRequest, context: grpc.ServicerContext
    ) -> apb.LifecycleOutcome:
        """Re-read the rulesets directory."""
        if isinstance(request, RefusedRequest):
            return _refuse_unread(context, "Reload", request, apb.LifecycleOutcome())
        return self._run(
            context,
            "Reload",
            lambda: self._changed(self._core.reload(actor=self._actor())),
            apb.LifecycleOutcome,
        )

    def Replay(  # noqa: N802 - gRPC method name
        self, request: apb.ReplayRequest | RefusedRequest, context: grpc.ServicerContext
    ) -> apb.ReplayResponse:
        """Replay the server's decision log under a candidate and report what would change."""
        if isinstance(request, RefusedRequest):
            return _refuse_unread(context, "Replay", request, apb.ReplayResponse())

        def work() -> apb.ReplayResponse:
            candidate, where, sample_size = admin_convert.replay_request(request)
            if self._replays is None:
                raise RulesetStateError("this server does not replay; replay its log locally")
            try:
                result = self._replays.replay(candidate, where, sample_size)
            except RulesetError as exc:
                field = "candidate.ruleset" if candidate.name else "candidate.source"
                raise admin_convert.candidate_problems(exc.problems, field) from None
            return admin_convert.replay_response(result)

        return self._run(context, "Replay", work, apb.ReplayResponse)
