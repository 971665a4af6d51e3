"""Turns decisions and finished calls into metric updates (the core's ``DecisionObserver``)."""

from __future__ import annotations

import threading

from caseroute.audit.store import SqliteAuditStore
from caseroute.domain.case import Case
from caseroute.domain.decision import Decision, Outcome, StepStatus
from caseroute.lifecycle import RulesetAdminCore, RulesetLifecycle
from caseroute.metrics.definitions import NONE_LABEL, Metrics
from caseroute.service import DecideResult, RoutingCore

TIMED_METHODS = frozenset({"Decide", "DecideBatch"})
"""RPC methods whose latency ``caseroute_decision_seconds`` measures."""


class MetricsRecorder:
    """Counts what the core decided and what the transport answered.

    Implements ``caseroute.service.DecisionObserver``: ``RoutingCore`` calls ``decided`` with
    each recorded result it returns and ``replayed`` with each stored result it returns to an
    idempotent retry. The gRPC layer calls ``rpc_finished`` once per call. It is also the
    decision log's ``CommitObserver``, the shadow runner's ``ShadowObserver`` and the ruleset
    lifecycle's ``LifecycleObserver``.
    """

    def __init__(self, metrics: Metrics) -> None:
        """Update ``metrics``."""
        self.metrics = metrics
        self._serving: set[tuple[str, str, str]] = set()
        self._serving_lock = threading.Lock()

    def observe(self, core: RoutingCore, admin: RulesetAdminCore | None = None) -> None:
        """Become the observer of ``core``, its decision log and shadow runner, and ``admin``.

        Args:
            core: The routing core (its SQLite decision log and shadow runner, if any, too).
            admin: The ruleset lifecycle (another admin core is not observed).
        """
        core.observer = self
        if isinstance(core.audit, SqliteAuditStore):
            core.audit.observer = self
        if core.shadow is not None:
            core.shadow.observer = self
        if isinstance(admin, RulesetLifecycle):
            admin.observer = self

    def decided(self, cases: tuple[Case, ...], result: DecideResult) -> None:
        """Count new decisions (one per case, in order) and their time-to-triage."""
        for case, decision in zip(cases, result.decisions, strict=True):
            self._count(decision)
            seconds = (result.now - case.created_at).total_seconds()
            # A created_at after `now` is a caller's clock skew, not a triage time: observing
            # it as 0 would pull the percentiles down, so it is left out.
            if seconds >= 0:
                self.metrics.time_to_triage.labels(
                    intent=case.intent.value, urgency=case.urgency.value
                ).observe(seconds)

    def replayed(self, result: DecideResult) -> None:
        """Count a retry answered from the decision log (its decisions were counted before)."""
        for decision in result.decisions:
            self.metrics.replays.labels(ruleset=decision.explanation.ruleset_name).inc()

    def _count(self, decision: Decision) -> None:
        m = self.metrics
        explanation = decision.explanation
        ruleset = explanation.ruleset_name
        m.decisions.labels(
            ruleset=ruleset, version=explanation.ruleset_version, outcome=decision.outcome.value
        ).inc()
        m.rule_hits.labels(ruleset=ruleset, rule_id=decision.rule_id).inc()
        by_reason = {Outcome.ESCALATE: m.escalations, Outcome.EXCEPTION: m.exceptions}.get(
            decision.outcome
        )
        if by_reason is not None:
            for reason in dict.fromkeys(decision.reason_codes):
                by_reason.labels(ruleset=ruleset, reason=reason).inc()
        if explanation.matching is not None:
            for check, count in explanation.matching.exclusion_counts:
                if count:
                    m.agents_excluded.labels(check=check).inc(count)
        relaxation = explanation.relaxation
        if relaxation is not None:
            active = next(
                (s.name for s in relaxation.steps if s.status is StepStatus.ACTIVE), NONE_LABEL
            )
            m.relaxations.labels(
                ruleset=ruleset, ladder=relaxation.ladder or NONE_LABEL, step=active
            ).inc()
            for requirement in dict.fromkeys(relaxation.relaxed):
                m.relaxed_requirements.labels(ruleset=ruleset, requirement=requirement).inc()
        continuity = explanation.continuity
        if continuity is not None:
            m.continuity.labels(ruleset=ruleset, outcome=continuity.outcome.value).inc()

    def rpc_finished(self, method: str, code: str, seconds: float) -> None:
        """Count one finished gRPC call.

        Args:
            method: The method's name without its service (``Decide``).
            code: The status code's name (``OK``, ``INVALID_ARGUMENT``...).
            seconds: Time the server spent handling it.
        """
        if code != "OK":
            self.metrics.requests_refused.labels(code=code).inc()
        elif method in TIMED_METHODS:
            self.metrics.decision_seconds.labels(method=method).observe(seconds)

    def committed(self, items: int, seconds: float) -> None:
        """Count one decision-log transaction of ``items`` appends."""
        self.metrics.audit_commit_seconds.observe(seconds)
        self.metrics.audit_commit_size.observe(items)

    def commit_failed(self, items: int) -> None:
        """Count the appends of a failed decision-log transaction."""
        self.metrics.audit_failures.inc(items)

    def lifecycle_done(
        self, action: str, result: str, serving: tuple[tuple[str, str, str], ...]
    ) -> None:
        """Count a lifecycle action; set the versions serving now to 1, the previous ones to 0."""
        self.metrics.reloads.labels(action=action, result=result).inc()
        now = set(serving)
        with self._serving_lock:  # the poller, SIGHUP and admin calls may end together
            for name, role, version in self._serving - now:
                self.metrics.ruleset_version.labels(ruleset=name, role=role, version=version).set(0)
            for name, role, version in now:
                self.metrics.ruleset_version.labels(ruleset=name, role=role, version=version).set(1)
            self._serving = now

    def shadow_compared(self, ruleset: str, shadow_version: str, kinds: tuple[str, ...]) -> None:
        """Count one shadow comparison and each kind of difference it found."""
        result = "disagree" if kinds else "agree"
        self.metrics.shadow_comparisons.labels(
            ruleset=ruleset, version=shadow_version, result=result
        ).inc()
        for kind in kinds:
            self.metrics.shadow_differences.labels(
                ruleset=ruleset, version=shadow_version, kind=kind
            ).inc()

    def shadow_dropped(self, ruleset: str, shadow_version: str) -> None:
        """Count a live decision the shadow queue had no room for."""
        self.metrics.shadow_dropped.labels(ruleset=ruleset, version=shadow_version).inc()
