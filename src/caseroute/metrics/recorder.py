"""Turns decisions and finished calls into metric updates (the core's ``DecisionObserver``)."""

from __future__ import annotations

import threading
from typing import Any

from caseroute.audit.sql_appends import QueuedAppends
from caseroute.domain.case import Case
from caseroute.domain.decision import Decision, Outcome, StepStatus
from caseroute.lifecycle import RulesetAdminCore, RulesetLifecycle
from caseroute.metrics.definitions import NONE_LABEL, Metrics
from caseroute.service import DecideResult, RoutingCore

TIMED_METHODS = frozenset({"Decide", "DecideBatch"})
"""RPC methods whose latency ``caseroute_decision_seconds`` measures."""


class _Children:
    """A labelled metric's children, each resolved once per label values.

    ``metric.labels(...)`` checks and converts the values and takes the metric's lock on every
    call (~1-2 us); each decision and each call asks for the same few children again and again.
    Keyed by the values in the metric's label order. It holds the children the metric itself
    holds (prometheus_client keeps every child it made, and caseroute never removes one), so it
    is bounded as the metric's label values are (``definitions.py``: bounded values only).
    """

    __slots__ = ("_by_values", "_metric")

    def __init__(self, metric: Any) -> None:
        """Children of ``metric``."""
        self._metric = metric
        self._by_values: dict[tuple[str, ...], Any] = {}

    def __call__(self, *values: str) -> Any:
        """``metric.labels(*values)``, resolved on the first call with these values."""
        child = self._by_values.get(values)
        if child is None:  # two threads may both resolve it: labels() gives both the same
            child = self._by_values[values] = self._metric.labels(*values)
        return child


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
        # The children of every decision and every call, resolved once (see _Children).
        self._decisions = _Children(metrics.decisions)
        self._rule_hits = _Children(metrics.rule_hits)
        self._time_to_triage = _Children(metrics.time_to_triage)
        self._by_reason = {
            Outcome.ESCALATE: _Children(metrics.escalations),
            Outcome.EXCEPTION: _Children(metrics.exceptions),
        }
        self._agents_excluded = _Children(metrics.agents_excluded)
        self._relaxations = _Children(metrics.relaxations)
        self._relaxed_requirements = _Children(metrics.relaxed_requirements)
        self._continuity = _Children(metrics.continuity)
        self._replays = _Children(metrics.replays)
        self._requests_refused = _Children(metrics.requests_refused)
        self._decision_seconds = _Children(metrics.decision_seconds)
        self._serving: set[tuple[str, str, str]] = set()
        self._serving_lock = threading.Lock()

    def observe(self, core: RoutingCore, admin: RulesetAdminCore | None = None) -> None:
        """Become the observer of ``core``, its decision log and shadow runner, and ``admin``.

        Args:
            core: The routing core (its SQLite or PostgreSQL decision log and shadow runner, if
                any, too).
            admin: The ruleset lifecycle (another admin core is not observed).
        """
        core.observer = self
        if isinstance(core.audit, QueuedAppends):  # SQLite and PostgreSQL alike
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
                self._time_to_triage(case.intent.value, case.urgency.value).observe(seconds)

    def replayed(self, result: DecideResult) -> None:
        """Count a retry answered from the decision log (its decisions were counted before)."""
        for decision in result.decisions:
            self._replays(decision.explanation.ruleset_name).inc()

    def _count(self, decision: Decision) -> None:
        explanation = decision.explanation
        ruleset = explanation.ruleset_name
        self._decisions(ruleset, explanation.ruleset_version, decision.outcome.value).inc()
        self._rule_hits(ruleset, decision.rule_id).inc()
        by_reason = self._by_reason.get(decision.outcome)
        if by_reason is not None:
            for reason in dict.fromkeys(decision.reason_codes):
                by_reason(ruleset, reason).inc()
        if explanation.matching is not None:
            for check, count in explanation.matching.exclusion_counts:
                if count:
                    self._agents_excluded(check).inc(count)
        relaxation = explanation.relaxation
        if relaxation is not None:
            active = next(
                (s.name for s in relaxation.steps if s.status is StepStatus.ACTIVE), NONE_LABEL
            )
            self._relaxations(ruleset, relaxation.ladder or NONE_LABEL, active).inc()
            for requirement in dict.fromkeys(relaxation.relaxed):
                self._relaxed_requirements(ruleset, requirement).inc()
        continuity = explanation.continuity
        if continuity is not None:
            self._continuity(ruleset, continuity.outcome.value).inc()

    def rpc_finished(self, method: str, code: str, seconds: float) -> None:
        """Count one finished gRPC call.

        Args:
            method: The method's name without its service (``Decide``).
            code: The status code's name (``OK``, ``INVALID_ARGUMENT``...).
            seconds: Time the server spent handling it.
        """
        if code != "OK":
            self._requests_refused(code).inc()
        elif method in TIMED_METHODS:
            self._decision_seconds(method).observe(seconds)

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

    def roster_looked_up(self, result: str) -> None:
        """Count a lookup of a roster by hash in the shared log (``roster_log.RESULTS``)."""
        self.metrics.roster_log_lookups.labels(result=result).inc()
