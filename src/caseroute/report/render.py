"""Operations reports as text: a terminal table (rich), plain lines, Markdown, or JSON.

The three text forms are drawn from one list of sections (title, columns, rows), so they show
the same numbers in the same order. Values that came from the log or a ruleset (ruleset names
and versions, reason codes, ladder and step names) are escaped for the terminal.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import datetime

from caseroute.audit.stream_check import chain_warning
from caseroute.domain.fingerprint import format_timestamp
from caseroute.render import escape_text, safe_json
from caseroute.report.kpis import PERCENTILE_METHOD, OpsReport, TriageStats, report_data


@dataclass(frozen=True, slots=True)
class Section:
    """One table of the report.

    Attributes:
        title: What it shows.
        columns: Column headings; the first is the row's label, the rest are numbers.
        rows: One tuple of cells per row, already formatted.
    """

    title: str
    columns: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]


def render_json(report: OpsReport) -> str:
    """The report as the stable JSON document (docs/operations.md)."""
    return safe_json(report_data(report), indent=2)


def _pct(count: int, total: int) -> str:
    return f"{count / total:.2%}" if total else "-"


def _minutes(value: float) -> str:
    return f"{value:.1f}"


def _bound(value: datetime | None, missing: str) -> str:
    return format_timestamp(value) if value is not None else missing


def _period(report: OpsReport) -> str:
    return (
        f"between {_bound(report.since, 'the start of the log')} and "
        f"{_bound(report.until, 'the end of the log')}"
    )


def empty_message(report: OpsReport) -> str:
    """What an empty period prints instead of tables."""
    which = f" of ruleset {report.ruleset}" if report.ruleset is not None else ""
    unreadable = f" ({report.unreadable} unreadable record(s) skipped)" if report.unreadable else ""
    return (
        f"no decisions{which} {_period(report)}{unreadable}; widen --since/--until, or check "
        "--audit-db names the server's decision log"
    )


def headline(report: OpsReport) -> str:
    """One line: how many decisions, which period, which ruleset."""
    which = f" of ruleset {report.ruleset}" if report.ruleset is not None else ""
    seen = (
        f" (first {format_timestamp(report.first_decision_at)}, last "
        f"{format_timestamp(report.last_decision_at)})"
        if report.first_decision_at is not None and report.last_decision_at is not None
        else ""
    )
    unreadable = (
        f"; {report.unreadable} unreadable record(s) skipped (run `caseroute audit verify`)"
        if report.unreadable
        else ""
    )
    return f"{report.decisions} decision(s){which} {_period(report)}{seen}{unreadable}"


def _counts(pairs: tuple[tuple[str, int], ...], total: int) -> tuple[tuple[str, ...], ...]:
    return tuple((key, str(n), _pct(n, total)) for key, n in pairs)


def _triage_row(label: str, stats: TriageStats | None) -> tuple[str, ...] | None:
    if stats is None:
        return None
    return (label, str(stats.count), *(_minutes(v) for v in (stats.p50, stats.p90, stats.p99)))


def sections(report: OpsReport) -> list[Section]:
    """The report's tables in print order (empty tables left out)."""
    total = report.decisions
    out = [Section("outcomes", ("outcome", "count", "rate"), _counts(report.outcomes, total))]
    out.append(
        Section(
            "outcomes by ruleset version",
            ("ruleset@version", "decisions", *(o for o, _ in report.outcomes)),
            tuple(
                (
                    f"{v.ruleset_name}@{v.ruleset_version}",
                    str(v.decisions),
                    *(f"{n} ({_pct(n, v.decisions)})" for _, n in v.outcomes),
                )
                for v in report.by_version
            ),
        )
    )
    triage = [
        _triage_row("all", report.triage_all),
        _triage_row("ASSIGN only", report.triage_assigned),
        *(_triage_row(f"intent {k}", s) for k, s in report.triage_by_intent),
        *(_triage_row(f"urgency {k}", s) for k, s in report.triage_by_urgency),
    ]
    if report.no_created_at:
        triage.append(("no readable created_at (not timed)", str(report.no_created_at), *"---"))
    out.append(
        Section(
            f"time to triage, minutes (created_at to decision; {PERCENTILE_METHOD} percentiles)",
            ("group", "count", "p50", "p90", "p99"),
            tuple(row for row in triage if row is not None),
        )
    )
    out.append(
        Section(
            "escalations by reason (rate of all decisions)",
            ("reason", "count", "rate"),
            _counts(report.escalation_reasons, total),
        )
    )
    out.append(
        Section(
            "exceptions by reason (rate of all decisions)",
            ("reason", "count", "rate"),
            _counts(report.exception_reasons, total),
        )
    )
    out.append(
        Section(
            "SLA clock at decision (the most urgent clock)",
            ("stage", "count", "rate"),
            _counts(report.sla_stages, total),
        )
    )
    relaxing = report.relaxation_decisions
    out.append(
        Section(
            f"relaxation ladders: active step ({relaxing} decision(s) with soft requirements)",
            ("ladder / step", "count", "rate"),
            tuple(
                (
                    f"{s.ladder or '(no ladder)'} / {s.step or '(none yet: as written)'}",
                    str(s.count),
                    _pct(s.count, relaxing),
                )
                for s in report.ladder_steps
            ),
        )
    )
    out.append(
        Section(
            f"requirements relaxed (of the {relaxing} decision(s) with soft requirements)",
            ("requirement", "count", "rate"),
            _counts(report.relaxed, relaxing),
        )
    )
    if report.continuity_decisions:
        out.append(
            Section(
                f"continuity of care ({report.continuity_decisions} decision(s) naming "
                "preferred agents)",
                ("outcome", "count", "rate"),
                _counts(report.continuity_outcomes, report.continuity_decisions),
            )
        )
    return [s for s in out if s.rows]


def render_plain(report: OpsReport) -> str:
    """The report as aligned plain lines (for a pipe or a file), every value escaped."""
    warning = chain_warning(report.chain)
    lines = [*([warning, ""] if warning else []), f"caseroute report: {headline(report)}"]
    for section in sections(report):
        cells = [section.columns, *section.rows]
        widths = [max(len(row[i]) for row in cells) for i in range(len(section.columns))]
        lines += ["", f"{section.title}:"]
        for row in cells:
            first = row[0].ljust(widths[0])
            rest = (cell.rjust(width) for cell, width in zip(row[1:], widths[1:], strict=True))
            lines.append("  " + "  ".join([first, *rest]).rstrip())
    return "\n".join(escape_text(line) for line in lines)


def render_table(report: OpsReport, width: int = 120) -> str:
    """The report as rich tables for a terminal (ANSI colours), every value escaped.

    Args:
        report: The report.
        width: The terminal's width in columns.

    Returns:
        The text, with ANSI styling.
    """
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    def cell(text: str) -> str:
        return escape(escape_text(text))

    buffer = io.StringIO()
    console = Console(file=buffer, force_terminal=True, width=width, highlight=False)
    warning = chain_warning(report.chain)
    if warning:
        console.print(cell(warning), style="bold red")
    console.print(cell(f"caseroute report: {headline(report)}"), style="bold")
    for section in sections(report):
        table = Table(title=cell(section.title))
        table.add_column(cell(section.columns[0]))
        for heading in section.columns[1:]:
            table.add_column(cell(heading), justify="right")
        for row in section.rows:
            table.add_row(*(cell(c) for c in row))
        console.print(table)
    return buffer.getvalue().rstrip("\n")


def _md(text: str) -> str:
    """A Markdown table cell: escaped, pipes and backticks neutralised."""
    return escape_text(text).replace("\\", "\\\\").replace("|", "\\|").replace("`", "\\`")


def render_markdown(report: OpsReport) -> str:
    """The report as Markdown, to paste into the weekly operations review."""
    warning = chain_warning(report.chain)
    lines = ["## Operations report", "", *([f"**{_md(warning)}**", ""] if warning else [])]
    lines.append(_md(headline(report)))
    for section in sections(report):
        lines += ["", f"### {_md(section.title)}", ""]
        lines.append("| " + " | ".join(_md(c) for c in section.columns) + " |")
        lines.append("|---|" + "---:|" * (len(section.columns) - 1))
        lines += ["| " + " | ".join(_md(c) for c in row) + " |" for row in section.rows]
    return "\n".join(lines)
