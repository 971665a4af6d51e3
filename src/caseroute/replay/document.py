"""The replay report read back from its stable JSON form (``report_data``'s inverse).

``caseroute replay --server`` receives the report as JSON and prints it with the same renderers
as a local replay; rebuilding the ``ReplayReport`` in the report's own orders (classes, reasons
and dimensions in their constant order, pairs and rows sorted) makes the two outputs identical.
"""

from __future__ import annotations

from typing import Any

from caseroute.audit.stream_check import ChainCheck
from caseroute.domain.decision_side import DecisionSide
from caseroute.replay.classify import (
    CLASSES,
    CONTINUITY_CHANGED,
    RELAXATION_CHANGED,
    AgentCheckChange,
)
from caseroute.replay.evaluate import DIMENSIONS, NOT_REPLAYABLE_REASONS
from caseroute.replay.report import SCHEMA_VERSION, DimensionRow, ReplayReport, Sample

ADDED_CLASSES = frozenset({RELAXATION_CHANGED, CONTINUITY_CHANGED})
"""Classes added after schema_version 1 was first published: a report without them counts 0."""


class ReportDocumentError(ValueError):
    """A JSON document is not a replay report of a schema version this code reads."""


def _side(data: Any) -> DecisionSide | None:
    if data is None:
        return None
    return DecisionSide(
        rule_id=data["rule_id"],
        outcome=data["outcome"],
        agent_id=data["agent_id"],
        queue=data["queue"],
        priority=data["priority"],
        escalation_level=data["escalation_level"],
        # Added with adaptive routing: a report from an older caseroute has none of them.
        ladder_step=data.get("ladder_step"),
        relaxed=tuple(data.get("relaxed") or ()),
        continuity=data.get("continuity"),
        held_until=data.get("held_for_preferred_until"),
        next_relaxation_at=data.get("next_relaxation_at"),
    )


def _checks(values: Any) -> tuple[str, ...] | None:
    return None if values is None else tuple(values)


def _sample(data: Any) -> Sample:
    return Sample(
        decision_id=data["decision_id"],
        recorded=_side(data["recorded"]),
        candidate=_side(data["candidate"]),
        agent_checks=tuple(
            AgentCheckChange(c["agent_id"], _checks(c["recorded"]), _checks(c["candidate"]))
            for c in data["agent_checks"]
        ),
        reason=data["reason"],
    )


def _chain(data: Any) -> ChainCheck | None:
    if data is None:
        return None
    return ChainCheck(data["problems"], data["first"])


def report_from_data(data: Any) -> ReplayReport:
    """The report ``report_data`` turned into ``data`` (whatever the order of its keys).

    Raises:
        ReportDocumentError: If ``data`` is not a schema-version-1 replay report.
    """
    if not isinstance(data, dict) or data.get("schema_version") != SCHEMA_VERSION:
        raise ReportDocumentError(
            f"not a replay report of schema_version {SCHEMA_VERSION}; upgrade caseroute to read it"
        )
    try:
        candidate = data["candidate"]
        classes = data["classes"]
        pairs = data["outcome_pairs"]
        reasons = data["not_replayable_reasons"]
        breakdowns = data["breakdowns"]
        samples = data["samples"]
        return ReplayReport(
            ruleset_name=candidate["ruleset_name"],
            ruleset_version=candidate["ruleset_version"],
            ruleset_sha256=candidate["ruleset_sha256"],
            total=data["total"],
            changed=data["changed"],
            not_replayable=data["not_replayable"],
            other_ruleset=data["other_ruleset"],
            classes=tuple(
                (c, classes.get(c, 0) if c in ADDED_CLASSES else classes[c]) for c in CLASSES
            ),
            outcome_pairs=tuple(sorted(pairs.items())),
            reasons=tuple((r, reasons[r]) for r in NOT_REPLAYABLE_REASONS if r in reasons),
            breakdowns=tuple(
                (
                    d,
                    tuple(
                        DimensionRow(v, row["total"], row["changed"], row["not_replayable"])
                        for v, row in sorted(breakdowns[d].items())
                    ),
                )
                for d in DIMENSIONS
            ),
            samples=tuple(
                (c, tuple(_sample(s) for s in samples[c])) for c in CLASSES if c in samples
            ),
            chain=_chain(data.get("chain")),  # added later: an older report has none
        )
    except (KeyError, TypeError, AttributeError) as exc:
        raise ReportDocumentError(
            f"the replay report lacks or misshapes {exc}; upgrade caseroute to read it"
        ) from None
