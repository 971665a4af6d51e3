"""The shadow report: how each shadow version of a ruleset compared with the live decisions.

Built from the decision log's shadow results (review data beside the chain), as data for JSON
and as lines for people; the CLI (``caseroute rules shadow-report``) and a future admin call
share it. Summaries hold no case data, so neither does the report.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from caseroute.audit.record import ShadowResult, ShadowSummary

SUMMARY_KEY = {
    "outcome": "outcome",
    "agent": "agent_id",
    "queue": "queue",
    "priority": "priority",
    "deciding_rule": "rule_id",
    "escalation": "escalation",
    "error": "error",
}
"""Which summary value shows each kind of difference (``relaxation`` and ``continuity`` show
several: ``_relaxation``, ``_continuity``)."""
DEFAULT_LIMIT = 10
"""Disagreements listed per shadow version unless asked otherwise."""
MAX_LIMIT = 1000
"""Most disagreements listed per shadow version (the store reads at most this many)."""


class ShadowSource(Protocol):
    """What the report reads (``SqliteAuditStore`` implements it)."""

    def shadow_summary(self, ruleset_name: str) -> list[ShadowSummary]:
        """Per shadow version: evaluated, agreed, counts per difference, dropped."""
        ...

    def shadow_results(
        self,
        ruleset_name: str,
        shadow_version: str | None = None,
        disagreements_only: bool = False,
        limit: int = 1000,
    ) -> list[ShadowResult]:
        """Shadow comparisons, oldest first."""
        ...


@dataclass(frozen=True, slots=True)
class ShadowVersionReport:
    """One shadow version's counts and its first disagreements.

    Attributes:
        summary: The counts.
        disagreements: The first disagreements, oldest first (at most the report's limit).
    """

    summary: ShadowSummary
    disagreements: tuple[ShadowResult, ...]


@dataclass(frozen=True, slots=True)
class ShadowReport:
    """The shadow report of one ruleset.

    Attributes:
        ruleset_name: The ruleset.
        shadow_version: The version asked for (None: every shadow version).
        versions: One entry per shadow version with results or drops, sorted by version.
    """

    ruleset_name: str
    shadow_version: str | None
    versions: tuple[ShadowVersionReport, ...]


def build_shadow_report(
    source: ShadowSource,
    ruleset_name: str,
    shadow_version: str | None = None,
    limit: int = DEFAULT_LIMIT,
) -> ShadowReport:
    """Read a ruleset's shadow summaries and first disagreements.

    Args:
        source: The decision log.
        ruleset_name: The ruleset.
        shadow_version: Only this shadow version (None: every one).
        limit: Disagreements listed per version (0 to ``MAX_LIMIT``).

    Returns:
        The report.

    Raises:
        ValueError: If ``limit`` is out of range.
        AuditUnavailableError: If the log cannot be read.
    """
    if not 0 <= limit <= MAX_LIMIT:
        raise ValueError(f"limit {limit} is out of range 0..{MAX_LIMIT}")
    versions = []
    for summary in source.shadow_summary(ruleset_name):
        if shadow_version is not None and summary.shadow_version != shadow_version:
            continue
        found = (
            source.shadow_results(
                ruleset_name, summary.shadow_version, disagreements_only=True, limit=limit
            )
            if limit and summary.disagreed
            else []
        )
        versions.append(ShadowVersionReport(summary, tuple(found)))
    return ShadowReport(ruleset_name, shadow_version, tuple(versions))


def shadow_report_data(report: ShadowReport) -> dict[str, Any]:
    """The report as JSON data (``rules shadow-report --format json``).

    Args:
        report: The report.

    Returns:
        ``{"ruleset", "shadow_version", "versions": [...]}``; each version holds its counts
        (``differences`` as ``{kind: count}``) and ``disagreements`` with both summaries.
    """
    return {
        "ruleset": report.ruleset_name,
        "shadow_version": report.shadow_version,
        "versions": [
            {
                "shadow_version": v.summary.shadow_version,
                "shadow_sha256s": list(v.summary.shadow_sha256s),
                "live_versions": list(v.summary.live_versions),
                "evaluated": v.summary.evaluated,
                "agreed": v.summary.agreed,
                "disagreed": v.summary.disagreed,
                "disagreement_rate": v.summary.disagreement_rate,
                "differences": dict(v.summary.differences),
                "dropped": v.summary.dropped,
                "first_recorded_at": v.summary.first_recorded_at,
                "last_recorded_at": v.summary.last_recorded_at,
                "disagreements": [_result_data(r) for r in v.disagreements],
            }
            for v in report.versions
        ],
    }


def _result_data(result: ShadowResult) -> dict[str, Any]:
    return {
        "decision_id": result.decision_id,
        "recorded_at": result.recorded_at,
        "live_version": result.live_version,
        "live_sha256": result.live_sha256,
        "shadow_sha256": result.shadow_sha256,
        "differences": list(result.differences),
        "live": result.live,
        "shadow": result.shadow,
    }


def render_shadow_report(report: ShadowReport) -> list[str]:
    """The report as lines for people (not yet terminal-escaped: the caller escapes each).

    Args:
        report: The report.

    Returns:
        The lines.
    """
    which = report.ruleset_name
    if report.shadow_version is not None:
        which = f"{which}@{report.shadow_version}"
    if not report.versions:
        return [
            (
                f"no shadow results recorded for {which}: set a shadow version in the ruleset's "
                "serving.yaml, let the server decide with it for a while, then run this again"
            )
        ]
    lines = [f"shadow report for {report.ruleset_name}"]
    for version in report.versions:
        lines.extend(_version_lines(version))
    return lines


def _version_lines(version: ShadowVersionReport) -> list[str]:
    s = version.summary
    shas = ", ".join(sha[:12] for sha in s.shadow_sha256s) or "-"
    lives = ", ".join(s.live_versions) or "-"
    rate = f" ({s.disagreement_rate:.1%})" if s.disagreement_rate is not None else ""
    lines = [
        f"shadow {s.shadow_version} (sha256 {shas}) beside live {lives}",
        (
            f"  evaluated {s.evaluated}, agreed {s.agreed}, disagreed {s.disagreed}{rate}, "
            f"dropped {s.dropped}"
        ),
    ]
    if s.differences:
        kinds = ", ".join(f"{kind} {count}" for kind, count in s.differences)
        lines.append(f"  differences: {kinds}")
    if s.evaluated:
        lines.append(f"  recorded {s.first_recorded_at} .. {s.last_recorded_at}")
    if s.dropped:
        lines.append(
            f"  {s.dropped} live decision(s) were not compared (the shadow queue was full)"
        )
    if version.disagreements:
        lines.append(f"  first {len(version.disagreements)} of {s.disagreed} disagreement(s):")
        lines.extend(f"    {_disagreement(r)}" for r in version.disagreements)
    return lines


def _disagreement(result: ShadowResult) -> str:
    changes = "; ".join(_change(kind, result.live, result.shadow) for kind in result.differences)
    return f"{result.decision_id} (live {result.live_version}): {changes}"


def _change(kind: str, live: dict[str, Any], shadow: dict[str, Any]) -> str:
    if kind == "relaxation":
        return f"{kind} {_relaxation(live)} -> {_relaxation(shadow)}"
    if kind == "continuity":
        return f"{kind} {_continuity(live)} -> {_continuity(shadow)}"
    key = SUMMARY_KEY[kind]
    return f"{kind} {_value(live.get(key))} -> {_value(shadow.get(key))}"


def _relaxation(summary: dict[str, Any]) -> str:
    """The ladder step and relaxed requirements, in replay's words (``(no ladder)``: none)."""
    step = summary.get("ladder_step")
    if step is None:
        return "(no ladder)"
    relaxed = summary.get("relaxed")
    names = ", ".join(str(n) for n in relaxed) if isinstance(relaxed, list) else ""
    return f"ladder step {step or '(none in force)'}, relaxed {names or 'nothing'}"


def _continuity(summary: dict[str, Any]) -> str:
    """The continuity outcome, with a held case's hold: ``held_for_preferred (hold 15 min)``."""
    hold = summary.get("hold_minutes")
    held = f" (hold {hold} min)" if hold is not None else ""
    return f"{_value(summary.get('continuity'))}{held}"


def _value(value: object) -> str:
    if value is None or value == "":
        return "(none)"
    return str(value)
