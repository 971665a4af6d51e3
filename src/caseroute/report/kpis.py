"""Operations KPIs computed from the decision log over a period (``caseroute report``).

One pass over the recorded decisions, in chain order, read through the audit store (paged, so
the log is never loaded at once; ``report.source``). Each record is decoded with the functions
``caseroute audit show`` and replay use (``record_from_row`` for the row,
``decision_from_dict`` for the decision, its agent matching left out); the stored case is read
only for ``created_at``, ``intent`` and ``urgency``.

Aggregate only: the report holds counts, rates and durations keyed by values of bounded
cardinality (outcomes, intents, urgencies, reason codes, ruleset versions, ladder steps,
requirement names). Never a case id, agent id or case value: an intent or urgency that is not
one of the enum's values (masked by the operator's masking paths, or damaged) is counted as
``(masked)`` or ``(unknown)``, never printed.

Percentiles use the **nearest-rank** method: the p-th percentile of n sorted values is the
value at 1-based rank ``ceil(p / 100 * n)``. Why: it is always a time some decision actually
took (an ops lead can find such a case), it is exact and defined for any n >= 1, and it is what
a reader can check by hand. ``statistics.quantiles`` interpolates between observations (its
result for a small group is a time no case took) and needs at least two values. The
durations of a group are kept in memory to sort them (exact, not estimated).

Time-to-triage is per decision: ``case.created_at`` to the decision instant ``now``, in
minutes (as the explanation's ``case_age_minutes``). A case decided twice (queued, asked
again) counts twice; the ASSIGN-only view is the time to the decision that placed the case.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from caseroute.audit.masking import MASK_PREFIX
from caseroute.audit.record import AuditRecord
from caseroute.audit.stream_check import ChainCheck, chain_data
from caseroute.domain.case import Intent, Urgency
from caseroute.domain.codec import parse_timestamp
from caseroute.domain.decision import (
    ContinuityOutcome,
    Decision,
    Outcome,
    SlaRisk,
    StepStatus,
)
from caseroute.domain.decision_codec import decision_from_dict
from caseroute.domain.fingerprint import format_timestamp

PERCENTILES = (50, 90, 99)
"""The time-to-triage percentiles reported."""
PERCENTILE_METHOD = "nearest-rank"
"""How percentiles are computed (see the module docstring)."""
REPORT_SCHEMA_VERSION = 1
"""Version of the JSON document (docs/operations.md); bumped when a key changes meaning."""
MASKED = "(masked)"
UNKNOWN = "(unknown)"
NO_CLOCK = "no_clock"
"""SLA stage of a decision whose case had no SLA clock."""
SLA_STAGES = (*(r.value for r in SlaRisk), NO_CLOCK)
"""SLA stages in report order: ok, at_risk, breached, no_clock."""


def nearest_rank(ordered: list[float], percentile: float) -> float:
    """The nearest-rank percentile of sorted values.

    Args:
        ordered: The values, sorted ascending (at least one).
        percentile: In (0, 100].

    Returns:
        The value at 1-based rank ``ceil(percentile / 100 * n)``.
    """
    rank = max(1, math.ceil(percentile / 100 * len(ordered)))
    return ordered[rank - 1]


@dataclass(frozen=True, slots=True)
class TriageStats:
    """Time-to-triage of one group of decisions, in minutes.

    Attributes:
        count: Decisions in the group (with a readable ``created_at``).
        p50: Median (nearest rank).
        p90: 90th percentile (nearest rank).
        p99: 99th percentile (nearest rank).
    """

    count: int
    p50: float
    p90: float
    p99: float


def triage_stats(minutes: Iterable[float]) -> TriageStats | None:
    """Nearest-rank percentiles of a group (None for an empty group)."""
    ordered = sorted(minutes)
    if not ordered:
        return None
    p50, p90, p99 = (nearest_rank(ordered, p) for p in PERCENTILES)
    return TriageStats(len(ordered), p50, p90, p99)


@dataclass(frozen=True, slots=True)
class VersionMix:
    """The outcome mix of one ruleset version.

    Attributes:
        ruleset_name: The ruleset.
        ruleset_version: Its version.
        decisions: Decisions it made in the period.
        outcomes: Outcome -> count, every outcome (zeros included), in ``Outcome`` order.
    """

    ruleset_name: str
    ruleset_version: str
    decisions: int
    outcomes: tuple[tuple[str, int], ...]


@dataclass(frozen=True, slots=True)
class StepCount:
    """Decisions whose deciding rule's ladder stood at one step.

    Attributes:
        ladder: The ladder's name ("" when the rule has soft requirements but no ladder).
        step: The active step (None: no step in force yet, requirements as written).
        count: Decisions.
    """

    ladder: str
    step: str | None
    count: int


@dataclass(frozen=True, slots=True)
class OpsReport:
    """The KPIs of the decisions made in a period.

    Attributes:
        since: Decisions with ``now >= since`` (None: from the start of the log).
        until: Decisions with ``now < until`` (None: to the end of the log).
        ruleset: Only this ruleset's decisions (None: all rulesets).
        decisions: Decisions counted.
        unreadable: Records in the period whose decision could not be decoded (skipped).
        first_decision_at: The earliest decision instant counted (None when none).
        last_decision_at: The latest (None when none).
        outcomes: Outcome -> count, every outcome, in ``Outcome`` order.
        by_version: The outcome mix per ruleset version, by name then version.
        triage_all: Time-to-triage of every decision (None when none had ``created_at``).
        triage_assigned: Of ASSIGN decisions only.
        triage_by_intent: Intent -> stats, in ``Intent`` order, then masked/unknown.
        triage_by_urgency: Urgency -> stats, in ``Urgency`` order, then masked/unknown.
        no_created_at: Decisions whose stored case has no readable ``created_at``.
        escalation_reasons: Reason code -> ESCALATE decisions carrying it, most first.
        exception_reasons: Reason code -> EXCEPTION decisions carrying it, most first.
        sla_stages: Stage of the most urgent SLA clock at decision -> count (``SLA_STAGES``).
        relaxation_decisions: Decisions whose deciding rule had soft requirements.
        ladder_steps: Of those, how many stood at each ladder step, most first.
        relaxed: Requirement -> decisions in which it was relaxed, most first.
        continuity_decisions: Decisions with a continuity of care trace.
        continuity_outcomes: Outcome -> count, every ``ContinuityOutcome``, in its order.
        chain: What the chain checks of the records read found (None: not checked).
    """

    since: datetime | None
    until: datetime | None
    ruleset: str | None
    decisions: int
    unreadable: int
    first_decision_at: datetime | None
    last_decision_at: datetime | None
    outcomes: tuple[tuple[str, int], ...]
    by_version: tuple[VersionMix, ...]
    triage_all: TriageStats | None
    triage_assigned: TriageStats | None
    triage_by_intent: tuple[tuple[str, TriageStats], ...]
    triage_by_urgency: tuple[tuple[str, TriageStats], ...]
    no_created_at: int
    escalation_reasons: tuple[tuple[str, int], ...]
    exception_reasons: tuple[tuple[str, int], ...]
    sla_stages: tuple[tuple[str, int], ...]
    relaxation_decisions: int
    ladder_steps: tuple[StepCount, ...]
    relaxed: tuple[tuple[str, int], ...]
    continuity_decisions: int
    continuity_outcomes: tuple[tuple[str, int], ...]
    chain: ChainCheck | None = None


def _bounded(value: object, kind: type[StrEnum]) -> str:
    """An enum value as stored, or ``(masked)`` / ``(unknown)``: never free text."""
    if isinstance(value, str):
        if value in {member.value for member in kind}:
            return value
        if value.startswith(MASK_PREFIX):
            return MASKED
    return UNKNOWN


def _most_first(counter: Counter[str]) -> tuple[tuple[str, int], ...]:
    return tuple(sorted(counter.items(), key=lambda item: (-item[1], item[0])))


def _in_order(counter: Counter[str], order: Iterable[str]) -> tuple[tuple[str, int], ...]:
    return tuple((key, counter[key]) for key in order)


def _grouped(
    groups: Mapping[str, list[float]], kind: type[StrEnum]
) -> tuple[tuple[str, TriageStats], ...]:
    order = [*(m.value for m in kind), MASKED, UNKNOWN]
    out = []
    for key in order:
        stats = triage_stats(groups.get(key, ()))
        if stats is not None:
            out.append((key, stats))
    return tuple(out)


def _without_matching(stored: Mapping[str, Any]) -> dict[str, Any]:
    """The stored decision with its agent matching left out (shallow copies only).

    The report reads no per-agent data, and rebuilding every agent's verdict was about 40% of
    the time per record (100 agents per decision); the rest goes through the one decoder.
    """
    explanation = stored["explanation"]
    return {**stored, "explanation": {**explanation, "matching": None}}


@dataclass(slots=True)
class ReportBuilder:
    """Accumulates records one at a time; ``build`` computes the report.

    Attributes:
        since: The period's start (as asked; the store already filtered on it).
        until: The period's end (as asked).
        ruleset: Only records of this ruleset are counted (None: all).
    """

    since: datetime | None = None
    until: datetime | None = None
    ruleset: str | None = None
    _decisions: int = 0
    _unreadable: int = 0
    _first: datetime | None = None
    _last: datetime | None = None
    _outcomes: Counter[str] = field(default_factory=Counter)
    _versions: dict[tuple[str, str], Counter[str]] = field(default_factory=dict)
    _triage_all: list[float] = field(default_factory=list)
    _triage_assigned: list[float] = field(default_factory=list)
    _by_intent: dict[str, list[float]] = field(default_factory=dict)
    _by_urgency: dict[str, list[float]] = field(default_factory=dict)
    _no_created_at: int = 0
    _escalations: Counter[str] = field(default_factory=Counter)
    _exceptions: Counter[str] = field(default_factory=Counter)
    _sla: Counter[str] = field(default_factory=Counter)
    _relaxation: int = 0
    _steps: Counter[tuple[str, str | None]] = field(default_factory=Counter)
    _relaxed: Counter[str] = field(default_factory=Counter)
    _continuity: int = 0
    _continuity_outcomes: Counter[str] = field(default_factory=Counter)

    def add(self, record: AuditRecord) -> None:
        """Count one record (skipped if of another ruleset; ``unreadable`` if damaged)."""
        if self.ruleset is not None and record.ruleset_name != self.ruleset:
            return
        try:
            decision = decision_from_dict(_without_matching(record.decision))
        except (KeyError, ValueError, TypeError, AttributeError):
            self._unreadable += 1
            return
        self._decisions += 1
        now = decision.explanation.now
        self._first = now if self._first is None else min(self._first, now)
        self._last = now if self._last is None else max(self._last, now)
        self._outcomes[decision.outcome.value] += 1
        version = (record.ruleset_name, record.ruleset_version)
        self._versions.setdefault(version, Counter())[decision.outcome.value] += 1
        self._add_triage(record.input, decision)
        if decision.outcome is Outcome.ESCALATE:
            self._escalations.update(dict.fromkeys(decision.reason_codes, 1))
        elif decision.outcome is Outcome.EXCEPTION:
            self._exceptions.update(dict.fromkeys(decision.reason_codes, 1))
        sla = decision.explanation.signals.sla
        self._sla[sla.risk.value if sla is not None else NO_CLOCK] += 1
        self._add_adaptive(decision)

    def _add_triage(self, stored_input: Mapping[str, Any], decision: Decision) -> None:
        case = stored_input.get("case") if isinstance(stored_input, Mapping) else None
        if not isinstance(case, Mapping):
            case = {}
        created_at = parse_timestamp(case.get("created_at"))
        if created_at is None:
            self._no_created_at += 1
            return
        minutes = (decision.explanation.now - created_at).total_seconds() / 60.0
        self._triage_all.append(minutes)
        if decision.outcome is Outcome.ASSIGN:
            self._triage_assigned.append(minutes)
        self._by_intent.setdefault(_bounded(case.get("intent"), Intent), []).append(minutes)
        self._by_urgency.setdefault(_bounded(case.get("urgency"), Urgency), []).append(minutes)

    def _add_adaptive(self, decision: Decision) -> None:
        relaxation = decision.explanation.relaxation
        if relaxation is not None:
            self._relaxation += 1
            active = next((s.name for s in relaxation.steps if s.status is StepStatus.ACTIVE), None)
            self._steps[relaxation.ladder, active] += 1
            self._relaxed.update(dict.fromkeys(relaxation.relaxed, 1))
        continuity = decision.explanation.continuity
        if continuity is not None:
            self._continuity += 1
            self._continuity_outcomes[continuity.outcome.value] += 1

    def build(self) -> OpsReport:
        """The report of every record added so far."""
        outcome_order = [o.value for o in Outcome]
        return OpsReport(
            since=self.since,
            until=self.until,
            ruleset=self.ruleset,
            decisions=self._decisions,
            unreadable=self._unreadable,
            first_decision_at=self._first,
            last_decision_at=self._last,
            outcomes=_in_order(self._outcomes, outcome_order),
            by_version=tuple(
                VersionMix(name, version, sum(c.values()), _in_order(c, outcome_order))
                for (name, version), c in sorted(self._versions.items())
            ),
            triage_all=triage_stats(self._triage_all),
            triage_assigned=triage_stats(self._triage_assigned),
            triage_by_intent=_grouped(self._by_intent, Intent),
            triage_by_urgency=_grouped(self._by_urgency, Urgency),
            no_created_at=self._no_created_at,
            escalation_reasons=_most_first(self._escalations),
            exception_reasons=_most_first(self._exceptions),
            sla_stages=_in_order(self._sla, SLA_STAGES),
            relaxation_decisions=self._relaxation,
            ladder_steps=tuple(
                StepCount(ladder, step, count)
                for (ladder, step), count in sorted(
                    self._steps.items(),
                    key=lambda item: (-item[1], item[0][0], item[0][1] or ""),
                )
            ),
            relaxed=_most_first(self._relaxed),
            continuity_decisions=self._continuity,
            continuity_outcomes=_in_order(
                self._continuity_outcomes, [o.value for o in ContinuityOutcome]
            ),
        )


def build_report(
    records: Iterable[AuditRecord],
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    ruleset: str | None = None,
) -> OpsReport:
    """The KPIs of ``records`` (already filtered to the period by the store).

    Args:
        records: Decision records in chain order, streamed.
        since: The period's start, as asked (reported, not applied).
        until: The period's end, as asked (reported, not applied).
        ruleset: Only this ruleset's records are counted (None: all).

    Returns:
        The report.
    """
    builder = ReportBuilder(since, until, ruleset)
    for record in records:
        builder.add(record)
    return builder.build()


def _rate(count: int, total: int) -> float | None:
    return count / total if total else None


def _counted(pairs: Iterable[tuple[str, int]], total: int) -> dict[str, dict[str, Any]]:
    return {key: {"count": n, "rate": _rate(n, total)} for key, n in pairs}


def _listed(pairs: Iterable[tuple[str, int]], name: str, total: int) -> list[dict[str, Any]]:
    return [{name: key, "count": n, "rate": _rate(n, total)} for key, n in pairs]


def _stats(stats: TriageStats | None) -> dict[str, Any] | None:
    if stats is None:
        return None
    return {"count": stats.count, "p50": stats.p50, "p90": stats.p90, "p99": stats.p99}


def _instant(value: datetime | None) -> str | None:
    return None if value is None else format_timestamp(value)


def report_data(report: OpsReport) -> dict[str, Any]:
    """The report as the stable JSON document (keys in docs/operations.md)."""
    total = report.decisions
    return {
        "schema_version": REPORT_SCHEMA_VERSION,
        "period": {
            "since": _instant(report.since),
            "until": _instant(report.until),
            "first_decision_at": _instant(report.first_decision_at),
            "last_decision_at": _instant(report.last_decision_at),
        },
        "ruleset": report.ruleset,
        "decisions": total,
        "unreadable": report.unreadable,
        "outcomes": _counted(report.outcomes, total),
        "by_ruleset_version": [
            {
                "ruleset_name": v.ruleset_name,
                "ruleset_version": v.ruleset_version,
                "decisions": v.decisions,
                "outcomes": _counted(v.outcomes, v.decisions),
            }
            for v in report.by_version
        ],
        "time_to_triage_minutes": {
            "percentile_method": PERCENTILE_METHOD,
            "all": _stats(report.triage_all),
            "assigned": _stats(report.triage_assigned),
            "by_intent": {k: _stats(s) for k, s in report.triage_by_intent},
            "by_urgency": {k: _stats(s) for k, s in report.triage_by_urgency},
            "no_created_at": report.no_created_at,
        },
        "escalations_by_reason": _listed(report.escalation_reasons, "reason", total),
        "exceptions_by_reason": _listed(report.exception_reasons, "reason", total),
        "sla_stage": _counted(report.sla_stages, total),
        "relaxation": {
            "decisions": report.relaxation_decisions,
            "by_step": [
                {
                    "ladder": s.ladder,
                    "step": s.step,
                    "count": s.count,
                    "rate": _rate(s.count, report.relaxation_decisions),
                }
                for s in report.ladder_steps
            ],
            "relaxed": _listed(report.relaxed, "requirement", report.relaxation_decisions),
        },
        "continuity": {
            "decisions": report.continuity_decisions,
            "outcomes": _counted(report.continuity_outcomes, report.continuity_decisions),
        },
        "chain": chain_data(report.chain),
    }
