"""The replay report: totals and rates per class, breakdowns, samples; and its JSON form.

The JSON form (``report_data``) is the documented, stable schema of
``docs/replay-report.schema.json`` (``schema_version`` 1): fields are only ever added.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from caseroute.audit.stream_check import ChainCheck, chain_data
from caseroute.domain.decision_side import DecisionSide
from caseroute.replay.classify import (
    CLASSES,
    DIFFERENCE_CLASSES,
    NOT_REPLAYABLE,
    UNCHANGED,
    AgentCheckChange,
)
from caseroute.replay.evaluate import DIMENSIONS, NOT_REPLAYABLE_REASONS, RecordResult

SCHEMA_VERSION = 1
DEFAULT_SAMPLE = 5
"""Decision ids sampled per class, by default (the first in chain order)."""
CHANGED = "changed"
"""``--fail-on`` may also gate on every changed record, whatever its classes."""


@dataclass(frozen=True, slots=True)
class Sample:
    """One sampled record: the recorded and the candidate's decision side by side.

    Attributes:
        decision_id: The recorded decision.
        recorded: The recorded side (None when the record held none).
        candidate: The candidate's side (None when not replayed).
        agent_checks: Agents whose failed checks changed.
        reason: Why it is not replayable, else None.
    """

    decision_id: str
    recorded: DecisionSide | None
    candidate: DecisionSide | None
    agent_checks: tuple[AgentCheckChange, ...]
    reason: str | None


@dataclass(frozen=True, slots=True)
class DimensionRow:
    """Counts for one value of a breakdown dimension."""

    value: str
    total: int
    changed: int
    not_replayable: int


@dataclass(frozen=True, slots=True)
class ReplayReport:
    """What replaying recorded decisions under a candidate ruleset would change.

    Attributes:
        ruleset_name: The candidate's name (records of other names are skipped).
        ruleset_version: The candidate's version.
        ruleset_sha256: The candidate's sha256.
        total: Records replayed or found not replayable (``other_ruleset`` excluded).
        changed: Records in at least one difference class.
        not_replayable: Records that could not be replayed.
        other_ruleset: Records of another ruleset name, skipped.
        classes: Every class with its count, in ``CLASSES`` order.
        outcome_pairs: ``ASSIGN->ESCALATE`` -> count, sorted by pair.
        reasons: Not-replayable reason code -> count (codes with none omitted).
        breakdowns: Dimension -> rows sorted by value.
        samples: Class -> its first records in chain order (``unchanged`` and classes with
            none omitted).
        chain: What the chain checks of the records read found (None: not checked, as for
            records read from an export).
    """

    ruleset_name: str
    ruleset_version: str
    ruleset_sha256: str
    total: int
    changed: int
    not_replayable: int
    other_ruleset: int
    classes: tuple[tuple[str, int], ...]
    outcome_pairs: tuple[tuple[str, int], ...]
    reasons: tuple[tuple[str, int], ...]
    breakdowns: tuple[tuple[str, tuple[DimensionRow, ...]], ...]
    samples: tuple[tuple[str, tuple[Sample, ...]], ...]
    chain: ChainCheck | None = None

    def count(self, name: str) -> int:
        """Records in a class (or ``changed``)."""
        if name == CHANGED:
            return self.changed
        return dict(self.classes)[name]

    def rate(self, name: str) -> float:
        """A class's (or ``changed``'s) share of ``total``; 0.0 when nothing was replayed."""
        return self.count(name) / self.total if self.total else 0.0


class ReportBuilder:
    """Folds record results, in chain order, into a report."""

    def __init__(self, sample_size: int = DEFAULT_SAMPLE) -> None:
        """Keep ``sample_size`` records per class."""
        self._sample_size = sample_size
        self._classes: Counter[str] = Counter()
        self._pairs: Counter[str] = Counter()
        self._reasons: Counter[str] = Counter()
        self._dims: dict[str, dict[str, list[int]]] = {d: {} for d in DIMENSIONS}
        self._samples: dict[str, list[Sample]] = {c: [] for c in CLASSES}
        self.total = 0
        self.changed = 0
        self.other_ruleset = 0

    def skip_other_ruleset(self) -> None:
        """Count a record of another ruleset name."""
        self.other_ruleset += 1

    def add(self, result: RecordResult) -> None:
        """Count one record's result."""
        self.total += 1
        changed = any(c in DIFFERENCE_CLASSES for c in result.classes)
        self.changed += changed
        skipped = NOT_REPLAYABLE in result.classes
        self._classes.update(result.classes)
        if result.pair is not None:
            self._pairs[result.pair] += 1
        if result.reason_code is not None:
            self._reasons[result.reason_code] += 1
        for name, value in result.dimensions:
            row = self._dims[name].setdefault(value, [0, 0, 0])
            row[0] += 1
            row[1] += changed
            row[2] += skipped
        for name in result.classes:
            if name == UNCHANGED:
                continue  # nothing to show side by side
            kept = self._samples[name]
            if len(kept) < self._sample_size:
                kept.append(
                    Sample(
                        result.decision_id,
                        result.recorded,
                        result.candidate,
                        result.agent_checks,
                        result.reason,
                    )
                )

    def build(
        self, name: str, version: str, sha256: str, chain: ChainCheck | None = None
    ) -> ReplayReport:
        """The report for the candidate ``name@version`` (``sha256``), and the chain checks."""
        return ReplayReport(
            ruleset_name=name,
            ruleset_version=version,
            ruleset_sha256=sha256,
            total=self.total,
            changed=self.changed,
            not_replayable=self._classes[NOT_REPLAYABLE],
            other_ruleset=self.other_ruleset,
            classes=tuple((c, self._classes[c]) for c in CLASSES),
            outcome_pairs=tuple(sorted(self._pairs.items())),
            reasons=tuple(
                (r, self._reasons[r]) for r in NOT_REPLAYABLE_REASONS if self._reasons[r]
            ),
            breakdowns=tuple(
                (d, tuple(DimensionRow(v, *self._dims[d][v]) for v in sorted(self._dims[d])))
                for d in DIMENSIONS
            ),
            samples=tuple((c, tuple(self._samples[c])) for c in CLASSES if self._samples[c]),
            chain=chain,
        )


def _side_data(side: DecisionSide | None) -> dict[str, Any] | None:
    if side is None:
        return None
    return {
        "rule_id": side.rule_id,
        "outcome": side.outcome,
        "agent_id": side.agent_id,
        "queue": side.queue,
        "priority": side.priority,
        "escalation_level": side.escalation_level,
        "ladder_step": side.ladder_step,
        "relaxed": list(side.relaxed),
        "continuity": side.continuity,
        "held_for_preferred_until": side.held_until,
        "next_relaxation_at": side.next_relaxation_at,
    }


def _checks_data(checks: Iterable[AgentCheckChange]) -> list[dict[str, Any]]:
    return [
        {
            "agent_id": c.agent_id,
            "recorded": None if c.recorded is None else list(c.recorded),
            "candidate": None if c.candidate is None else list(c.candidate),
        }
        for c in checks
    ]


def report_data(report: ReplayReport) -> dict[str, Any]:
    """The report as JSON data (the stable schema: docs/replay-report.schema.json)."""
    return {
        "schema_version": SCHEMA_VERSION,
        "candidate": {
            "ruleset_name": report.ruleset_name,
            "ruleset_version": report.ruleset_version,
            "ruleset_sha256": report.ruleset_sha256,
        },
        "total": report.total,
        "changed": report.changed,
        "unchanged": report.count(UNCHANGED),
        "not_replayable": report.not_replayable,
        "other_ruleset": report.other_ruleset,
        "classes": dict(report.classes),
        "rates": {name: report.rate(name) for name, _ in report.classes},
        "outcome_pairs": dict(report.outcome_pairs),
        "not_replayable_reasons": dict(report.reasons),
        "breakdowns": {
            dim: {
                row.value: {
                    "total": row.total,
                    "changed": row.changed,
                    "not_replayable": row.not_replayable,
                }
                for row in rows
            }
            for dim, rows in report.breakdowns
        },
        "samples": {
            name: [
                {
                    "decision_id": s.decision_id,
                    "recorded": _side_data(s.recorded),
                    "candidate": _side_data(s.candidate),
                    "agent_checks": _checks_data(s.agent_checks),
                    "reason": s.reason,
                }
                for s in samples
            ]
            for name, samples in report.samples
        },
        "chain": chain_data(report.chain),
    }


@dataclass(frozen=True, slots=True)
class Gate:
    """``--fail-on CLASS=RATE``: fail when the class's share of ``total`` exceeds ``rate``."""

    name: str
    rate: float


def exceeded(report: ReplayReport, gates: Iterable[Gate]) -> list[str]:
    """Each gate the report exceeds, in words (empty: every gate passed)."""
    return [
        f"{g.name}: {report.count(g.name)} of {report.total} = {report.rate(g.name):.4%} "
        f"exceeds {g.rate:.4%}"
        for g in gates
        if report.rate(g.name) > g.rate
    ]
