"""Replay reports as text: a terminal table (rich), plain lines, Markdown, or JSON.

Every value that came from a record or a ruleset (rule ids, agent ids, queue names, breakdown
values) is escaped: a stored string must not act on the reader's terminal or break a table.
"""

from __future__ import annotations

import io

from caseroute.audit.stream_check import chain_warning
from caseroute.domain.decision_side import DecisionSide
from caseroute.render import escape_text, safe_json
from caseroute.replay.classify import AgentCheckChange
from caseroute.replay.report import ReplayReport, Sample, report_data


def render_json(report: ReplayReport) -> str:
    """The report in the stable JSON schema (docs/replay-report.schema.json)."""
    return safe_json(report_data(report), indent=2)


def _pct(count: int, total: int) -> str:
    return f"{count / total:.2%}" if total else "-"


def _side(side: DecisionSide | None) -> str:
    if side is None:
        return "-"
    agent = f" agent {side.agent_id}" if side.agent_id else ""
    level = f" level {side.escalation_level}" if side.escalation_level is not None else ""
    return (
        f"{side.outcome} by {side.rule_id}{agent} queue {side.queue} "
        f"priority {side.priority}{level}{_adaptive(side)}"
    )


def _adaptive(side: DecisionSide) -> str:
    """The ladder step, relaxed requirements, continuity and hold; empty when none applied."""
    parts = []
    if side.ladder_step is not None:
        step = side.ladder_step or "(none in force)"
        relaxed = ", ".join(side.relaxed) or "nothing"
        parts.append(f"ladder step {step}, relaxed {relaxed}")
    if side.continuity is not None:
        parts.append(f"continuity {side.continuity}")
    if side.held_until is not None:
        parts.append(f"held until {side.held_until}")
    if side.next_relaxation_at is not None:
        parts.append(f"ask again at {side.next_relaxation_at}")
    return "".join(f"; {p}" for p in parts)


def _checks(changes: tuple[AgentCheckChange, ...]) -> str:
    def names(checks: tuple[str, ...] | None) -> str:
        if checks is None:
            return "not evaluated"
        return ",".join(checks) if checks else "eligible"

    return "; ".join(f"{c.agent_id}: {names(c.recorded)} -> {names(c.candidate)}" for c in changes)


def _headline(report: ReplayReport) -> str:
    skipped = (
        f"; {report.other_ruleset} record(s) of other rulesets skipped"
        if report.other_ruleset
        else ""
    )
    return (
        f"replay under {report.ruleset_name}@{report.ruleset_version} "
        f"({report.ruleset_sha256[:12]}): {report.total} record(s), {report.changed} changed "
        f"({_pct(report.changed, report.total)}), {report.not_replayable} not replayable"
        f"{skipped}"
    )


def _id(sample: Sample) -> str:
    """A sample's decision id; a record exported without its decision has none to show."""
    return sample.decision_id or "(no decision id)"


def _sample_lines(sample: Sample) -> list[str]:
    if sample.reason is not None:
        return [f"  {_id(sample)}: {sample.reason}"]
    lines = [f"  {sample.decision_id}"]
    lines.append(f"    recorded:  {_side(sample.recorded)}")
    lines.append(f"    candidate: {_side(sample.candidate)}")
    if sample.agent_checks:
        lines.append(f"    agent checks: {_checks(sample.agent_checks)}")
    return lines


def render_plain(report: ReplayReport) -> str:
    """The report as plain lines (for a pipe or a file), every stored value escaped."""
    warning = chain_warning(report.chain)
    lines = [*([warning, ""] if warning else []), _headline(report), ""]
    lines.append("class                    count    rate")
    lines += [
        f"{name:<24} {count:>5} {_pct(count, report.total):>7}" for name, count in report.classes
    ]
    if report.outcome_pairs:
        lines += ["", "outcome changes:"]
        lines += [f"  {pair}: {count}" for pair, count in report.outcome_pairs]
    if report.reasons:
        lines += ["", "not replayable, by reason:"]
        lines += [f"  {code}: {count}" for code, count in report.reasons]
    for dim, rows in report.breakdowns:
        if not rows:
            continue
        lines += ["", f"by {dim}: value total changed not_replayable"]
        lines += [f"  {r.value} {r.total} {r.changed} {r.not_replayable}" for r in rows]
    for name, samples in report.samples:
        lines += ["", f"sample of {name}:"]
        for sample in samples:
            lines += _sample_lines(sample)
    return "\n".join(escape_text(line) for line in lines)


def render_table(report: ReplayReport, width: int = 120) -> str:
    """The report as rich tables for a terminal (ANSI colours), every stored value escaped.

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
    console.print(cell(_headline(report)), style="bold")
    classes = Table("class", "count", "rate", title="classes")
    for name, count in report.classes:
        style = "red" if count and name != "unchanged" else None
        classes.add_row(name, str(count), _pct(count, report.total), style=style)
    console.print(classes)
    if report.outcome_pairs or report.reasons:
        pairs = Table("outcome change / not replayable reason", "count")
        for pair, count in (*report.outcome_pairs, *report.reasons):
            pairs.add_row(cell(pair), str(count))
        console.print(pairs)
    for dim, rows in report.breakdowns:
        if not rows:
            continue
        table = Table(dim, "total", "changed", "not replayable", title=f"by {dim}")
        for r in rows:
            table.add_row(cell(r.value), str(r.total), str(r.changed), str(r.not_replayable))
        console.print(table)
    for name, samples in report.samples:
        table = Table(title=f"sample: {name}")
        table.add_column("decision", no_wrap=True)  # an id must be copyable whole
        for heading in ("recorded", "candidate", "agent checks"):
            table.add_column(heading, overflow="fold")  # long ids wrap, never lose characters
        for s in samples:
            if s.reason is not None:
                table.add_row(cell(_id(s)), cell(s.reason), "-", "")
            else:
                table.add_row(
                    cell(s.decision_id),
                    cell(_side(s.recorded)),
                    cell(_side(s.candidate)),
                    "\n".join(cell(_checks((c,))) for c in s.agent_checks),
                )
        console.print(table)
    return buffer.getvalue().rstrip("\n")


def _md(text: str) -> str:
    """A Markdown table cell: escaped, pipes and backticks neutralised."""
    return escape_text(text).replace("\\", "\\\\").replace("|", "\\|").replace("`", "\\`")


def render_markdown(report: ReplayReport) -> str:
    """The report as Markdown, to paste into a change request."""
    lines = [
        f"## Replay under `{_md(report.ruleset_name)}@{_md(report.ruleset_version)}`",
        "",
        *([f"**{_md(w)}**", ""] if (w := chain_warning(report.chain)) else []),
        _md(_headline(report)),
        "",
        "| class | count | rate |",
        "|---|---:|---:|",
    ]
    lines += [f"| {n} | {c} | {_pct(c, report.total)} |" for n, c in report.classes]
    if report.outcome_pairs:
        lines += ["", "| outcome change | count |", "|---|---:|"]
        lines += [f"| {_md(p)} | {c} |" for p, c in report.outcome_pairs]
    if report.reasons:
        lines += ["", "| not replayable reason | count |", "|---|---:|"]
        lines += [f"| {r} | {c} |" for r, c in report.reasons]
    for dim, rows in report.breakdowns:
        if not rows:
            continue
        lines += ["", f"### By {dim}", "", f"| {dim} | total | changed | not replayable |"]
        lines.append("|---|---:|---:|---:|")
        lines += [
            f"| {_md(r.value)} | {r.total} | {r.changed} | {r.not_replayable} |" for r in rows
        ]
    for name, samples in report.samples:
        lines += [
            "",
            f"### Sample: {name}",
            "",
            "| decision | recorded | candidate | agent checks |",
        ]
        lines.append("|---|---|---|---|")
        for s in samples:
            if s.reason is not None:
                lines.append(f"| {_md(_id(s))} | {_md(s.reason)} | - | |")
            else:
                lines.append(
                    f"| {_md(s.decision_id)} | {_md(_side(s.recorded))} | "
                    f"{_md(_side(s.candidate))} | {_md(_checks(s.agent_checks))} |"
                )
    return "\n".join(lines)
