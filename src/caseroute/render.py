"""Render a decision and its explanation as text a non-programmer can follow, or as JSON.

Also the one home of terminal-safe output: ``escape_text`` for human-readable lines and
``safe_json`` for JSON, used by every command that prints stored or caller/operator text.
"""

from __future__ import annotations

import json
import textwrap
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from caseroute.domain.decision import (
    ContinuityOutcome,
    ContinuityTrace,
    Decision,
    LadderStepTrace,
    MatchingTrace,
    Outcome,
    RelaxationTrace,
    RuleTrace,
    Signals,
    StepStatus,
)
from caseroute.domain.fingerprint import format_timestamp

_SHORT_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape_char(char: str) -> str:
    if char == " " or char.isprintable():
        return char
    short = _SHORT_ESCAPES.get(char)
    if short is not None:
        return short
    code = ord(char)
    return (
        f"\\x{code:02x}"
        if code < 0x100
        else f"\\u{code:04x}"
        if code < 0x10000
        else (f"\\U{code:08x}")
    )


def escape_text(text: str) -> str:
    r"""``text`` with every character a terminal could act on spelled out as an escape.

    Caller and operator strings (case ids, rule text, stored records, file names) may hold
    newlines, carriage returns, ANSI/C1 escape sequences (ESC, ``\x9b``), bidi overrides
    (U+202E), zero-width and line-separator characters that forge or hide lines on a
    reader's screen. Everything ``str.isprintable`` rejects except the plain space becomes
    ``\n``, ``\r``, ``\t``, ``\xNN``, ``\uNNNN`` or ``\UNNNNNNNN``; other text,
    including non-ASCII letters, is unchanged. Apply it to each line, never to text whose
    line breaks are wanted (see ``escape_lines``).
    """
    if text.isprintable():
        return text
    return "".join(_escape_char(c) for c in text)


def escape_lines(text: str) -> str:
    """Multi-line text (an error message) with each line escaped and the line breaks kept."""
    return "\n".join(escape_text(line) for line in text.split("\n"))


def safe_json(data: object, **options: Any) -> str:
    r"""JSON in which nothing a terminal acts on appears raw (safe to print).

    ``json.dumps`` escapes only U+0000-U+001F: C1 controls (``\x9b`` starts an escape
    sequence on some terminals), DEL, bidi overrides and line separators stay raw. Those
    (everything ``str.isprintable`` rejects) are written as ``\uNNNN`` escapes; readable
    non-ASCII text stays as it is, and ``json.loads`` reads the result back unchanged.
    """
    text = json.dumps(data, ensure_ascii=False, **options)
    if text.isprintable():
        return text
    # Outside strings JSON holds only ASCII punctuation, digits, letters, space and the
    # newlines of ``indent``; so every other non-printable character is inside a string.
    return "".join(c if c in "\n " or c.isprintable() else _json_escape(c) for c in text)


def _json_escape(char: str) -> str:
    code = ord(char)
    if code < 0x10000:
        return f"\\u{code:04x}"
    code -= 0x10000
    return f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}"


def _headline(d: Decision) -> str:
    where = f"queue {d.queue}"
    if d.outcome is Outcome.ASSIGN:
        what = f"ASSIGN to {d.agent_id} ({where})"
    elif d.outcome is Outcome.ESCALATE:
        target = f"{d.agent_id} ({where})" if d.agent_id else where
        what = f"ESCALATE (level {d.escalation_level}) to {target}"
    elif d.outcome is Outcome.QUEUE and d.held_for_preferred_until is not None:
        until = format_timestamp(d.held_for_preferred_until)
        what = f"QUEUE in {d.queue} (held for a preferred agent until {until})"
    elif d.outcome is Outcome.QUEUE:
        what = f"QUEUE in {d.queue} (no eligible agent)"
    else:
        what = f"EXCEPTION to {d.queue}"
    return f"{d.case_id}: {what}, priority {d.priority.value}"


def _clauses(trace: RuleTrace) -> list[str]:
    return [
        f"      {'holds' if c.value else 'fails'}: {c.text}   [{c.actual}]" for c in trace.clauses
    ]


def _rules(d: Decision) -> list[str]:
    e = d.explanation
    if not e.rules:
        return ["Rules were not evaluated: " + "; ".join(e.data_problems or ("see reasons",))]
    lines = ["Rules (tried in order; the first that applies decides):"]
    decided_at = next((i for i, t in enumerate(e.rules) if t.decided), len(e.rules))
    for i, trace in enumerate(e.rules):
        if trace.decided:
            status = "APPLIES - decided"
        elif i > decided_at:
            status = "would apply (not reached)" if trace.fired else "does not apply"
        else:
            status = "does not apply"
        lines.append(f"  {i + 1}. {trace.rule_id}: {status}")
        if trace.decided and trace.description:
            lines.append(f"      ({' '.join(trace.description.split())})")
        if i <= decided_at or trace.fired:
            lines += _clauses(trace)
    return lines


def _signals(s: Signals) -> list[str]:
    lines = ["Signals:", f"  case received {s.case_age_minutes:.0f} min ago"]
    lines.extend(
        f"  SLA {clock.name}: {clock.minutes_remaining:.0f} min left -> "
        f"{clock.risk.value} (at risk within {s.sla_at_risk_minutes:g} min)"
        for clock in s.sla_clocks
    )
    if not s.sla_clocks:
        lines.append("  no SLA clocks")
    t = s.sentiment
    if t.count:
        change = "n/a" if t.change is None else f"{t.change:+.2f}"
        lines.append(
            f"  sentiment: {_count(t.count, 'reply', 'replies')}, latest {t.latest:+.2f}, "
            f"lowest {t.minimum:+.2f}, change {change} over the last "
            f"{_count(s.sentiment_window, 'reply', 'replies')}, "
            f"{t.consecutive_negative} negative in a row (<= {s.negative_sentiment:g})"
        )
    else:
        lines.append("  sentiment: no replies scored")
    return lines


def _value(value: object, name: str = "") -> str:
    """A criterion value: numbers in shortest form (the same whether local or over gRPC)."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if value is None:
        # Continuity and soft-preference criteria are absent for agents they do not favour.
        return "no" if name.startswith(("preferred", "prefers ")) else "never"
    if isinstance(value, int | float) and not isinstance(value, bool):
        text = f"{value:g}"
        # Never fewer digits than the value holds: the ranking shows an unrounded value only
        # where it decided, and six significant digits could show that as a tie again.
        return text if float(text) == value else repr(float(value))
    return str(value)


def _ordinal(n: int) -> str:
    """1st, 2nd, 3rd, 4th, ..., 11th, 12th, 13th, 21st."""
    suffix = "th" if n % 100 in (11, 12, 13) else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def _criterion(name: str, value: object, continuity: ContinuityTrace | None) -> str:
    """One candidate's value for one criterion, e.g. ``utilisation 0.4``.

    ``preferred agent`` carries the agent's place in the case's preferred list (the order it
    ranked by), shown with the reason the continuity trace gives for that place:
    ``1st preferred (previous_contact)``. Records made before the place was kept carry the
    reason alone, and are shown as they were.
    """
    if name == "preferred agent" and isinstance(value, int) and not isinstance(value, bool):
        text = f"{_ordinal(value)} preferred"
        if continuity is not None and 0 < value <= len(continuity.preferred):
            text += f" ({continuity.preferred[value - 1].reason})"
        return text
    return f"{name} {_value(value, name)}"


def _failed_from_masks(m: MatchingTrace, agent_ids: Sequence[str]) -> list[str]:
    failed: dict[int, list[str]] = {}
    for check, mask_hex in m.failed_masks:
        mask = int(mask_hex, 16)
        for i in range(len(agent_ids)):
            if mask >> i & 1:
                failed.setdefault(i, []).append(check)
    return [
        f"  x {agent_ids[i]}: failed {', '.join(checks)}" for i, checks in sorted(failed.items())
    ]


def _matching(d: Decision, agent_ids: Sequence[str] | None) -> list[str]:
    m = d.explanation.matching
    if m is None:
        return []
    excluded = m.considered - m.eligible
    lines = [
        f"Agents: {m.considered} considered, {m.eligible} eligible, {excluded} excluded",
        "  requirements: " + "; ".join(m.requirements),
    ]
    if m.exclusion_counts:
        lines.append("  excluded by: " + ", ".join(f"{c} {n}" for c, n in m.exclusion_counts))
    lines.extend(
        f"  x {v.agent_id}: " + "; ".join(str(f) for f in v.failures)
        for v in m.agents
        if not v.eligible
    )
    if not m.agents and m.failed_masks and agent_ids is not None:
        lines += _failed_from_masks(m, agent_ids)
    if m.ranking:
        lines.append(f"Ranking ({', then '.join(m.ranking_criteria)}):")
        for cand in m.ranking:
            values = ", ".join(
                _criterion(name, v, d.explanation.continuity) for name, v in cand.criteria
            )
            mark = "   <- chosen" if cand.agent_id == d.agent_id else ""
            lines.append(f"  {cand.rank}. {cand.agent_id}: {values}{mark}")
        if len(m.ranking) < m.eligible:
            lines.append(f"  ... {m.eligible - len(m.ranking)} more eligible (detail off)")
    return lines


WIDTH = 100
"""Lines of free text (a step's ``why``, the summary) are wrapped to this many columns."""


def _wrap(text: str, first: str, indent: str) -> list[str]:
    """``first`` + ``text`` wrapped at ``WIDTH`` with ``indent`` on continuation lines.

    The text is escaped before wrapping: ``textwrap`` would otherwise turn a newline or a tab
    in operator text into a space instead of spelling it out.
    """
    return textwrap.wrap(
        escape_text(text),
        WIDTH,
        initial_indent=first,
        subsequent_indent=indent,
        break_on_hyphens=False,
    ) or [first.rstrip()]


def _ask_again(d: Decision, at: datetime) -> str:
    """When time alone could change the decision, and what happens then."""
    causes = []
    if d.held_for_preferred_until == at:
        causes.append("the hold for a preferred agent ends")
    relax = d.explanation.relaxation
    if relax is not None and relax.next_relaxation_at == at:
        names = [s.name for s in relax.steps if s.status == "pending" and s.at == at]
        causes.append(f"ladder step {', '.join(names)} takes effect")
    matching = d.explanation.matching
    if matching is not None and any(
        line.startswith("licence dates: ") for line in matching.requirements
    ):
        causes.append("a compact membership starts")
    if not causes:
        causes.append("a continuity preference leaves its window")
    why = f" ({' and '.join(causes)})"
    if d.agent_id is not None:
        # Assigned: nothing to ask unless the assignment fails; still say when it would differ.
        return f"Time alone could change this at {format_timestamp(at)}{why}"
    return f"Ask again at {format_timestamp(at)}{why}"


def _minutes(value: float | None) -> str:
    return "-" if value is None else f"{value:g} min"


def _step_change(step: LadderStepTrace) -> str:
    dropped = [n for n in step.relaxes if n not in step.prefers]
    parts = []
    if dropped:
        parts.append("relaxes " + ", ".join(dropped))
    if step.prefers:
        parts.append("prefers " + ", ".join(step.prefers))
    return "; ".join(parts) or "-"


def _relaxation(r: RelaxationTrace) -> list[str]:
    """The ladder as a table: summary first, then one row per step and its reason."""
    ladder = f" (ladder {r.ladder})" if r.ladder else " (no ladder)"
    lines = _wrap(r.summary, f"Relaxation{ladder}: ", "    ")
    lines.append(
        f"  waiting {r.waiting_minutes:g} min since {r.anchor} {format_timestamp(r.anchor_at)}"
    )
    lines.append(f"  never relax: {', '.join(r.hard) or 'none in force'}")
    lines.append(
        f"  soft: {', '.join(r.soft) or 'none'}; relaxed now: {', '.join(r.relaxed) or 'none'}"
        f"; ranking preferences: {', '.join(r.preferences) or 'none'}"
    )
    lines.append(f"  eligible with nothing relaxed: {r.eligible_as_written}")
    if r.steps:
        header = ("step", "status", "at (UTC)", "after", "relaxes / prefers", "eligible")
        rows = [
            (
                s.name,
                s.status.value,
                "never" if s.at is None else format_timestamp(s.at),
                _minutes(s.after_minutes),
                _step_change(s),
                str(s.eligible),
            )
            for s in r.steps
        ]
        widths = [max(len(row[i]) for row in (header, *rows)) for i in range(len(header) - 1)]

        def cells(row: tuple[str, ...]) -> str:
            padded = [cell.ljust(width) for cell, width in zip(row, widths, strict=False)]
            return "  " + "  ".join([*padded, row[-1]])

        lines.append(cells(header))
        for row, step in zip(rows, r.steps, strict=True):
            lines.append(cells(row))
            if step.why:
                lines += _wrap(" ".join(step.why.split()), "      why: ", "           ")
    if r.next_relaxation_at is not None:
        lines.append(f"  next step at {format_timestamp(r.next_relaxation_at)}")
    elif any(s.status is StepStatus.PENDING for s in r.steps):
        # Pending steps that could not change the decision (review R33a L1; the summary says
        # which, and why).
        lines.append("  no next step: no pending step can change this decision")
    else:
        lines.append("  no step pending: time alone relaxes nothing more")
    return lines


_OUTCOME_WORDS = {
    ContinuityOutcome.ASSIGNED_PREFERRED: "assigned to a preferred agent",
    ContinuityOutcome.HELD_FOR_PREFERRED: "held for a preferred agent",
    ContinuityOutcome.ASSIGNED_OTHER: "no preferred agent could take it; the best other agent did",
    ContinuityOutcome.NONE_ELIGIBLE: "no agent could take it",
}


def _continuity(d: Decision, c: ContinuityTrace) -> list[str]:
    """Each preferred agent with reason, last contact, status and why; then the outcome."""
    outcome = _OUTCOME_WORDS.get(c.outcome, c.outcome.value)
    if c.outcome is ContinuityOutcome.HELD_FOR_PREFERRED and d.held_for_preferred_until:
        outcome += f" until {format_timestamp(d.held_for_preferred_until)}"
    hold = (
        f"hold up to {c.hold_minutes:g} min from the wait anchor"
        + (f" (until {format_timestamp(c.hold_until)})" if c.hold_until is not None else "")
        if c.hold_minutes > 0
        else "not held at this urgency"
    )
    lines = [
        f"Continuity of care: {outcome}",
        f"  window {c.window_days:g} days; {hold}",
    ]
    for p in c.preferred:
        contact = (
            ""
            if p.last_contact_at is None
            else f", last contact {format_timestamp(p.last_contact_at)}"
        )
        lines.append(f"  {p.agent_id} ({p.reason}{contact}): {p.status}")
        if p.detail:
            lines += _wrap(p.detail, "      ", "      ")
    return lines


def render_text(decision: Decision, agent_ids: Sequence[str] | None = None) -> str:
    """The decision and why, in plain words.

    Args:
        decision: The decision.
        agent_ids: The roster's agent ids in order; with them, a summary explanation's
            failure masks are spelled out per agent (the audit log keeps the roster).

    Returns:
        Multi-line text.
    """
    d, e = decision, decision.explanation
    lines = [_headline(d), f"Decided by: {d.rule_id}; reasons: {', '.join(d.reason_codes)}"]
    lines += [f"  data problem: {p}" for p in e.data_problems]
    if d.next_relaxation_at is not None:
        lines.append(_ask_again(d, d.next_relaxation_at))
    lines += ["", *_rules(d), "", *_signals(e.signals)]
    if e.relaxation is not None:
        lines += ["", *_relaxation(e.relaxation)]
    if e.continuity is not None:
        lines += ["", *_continuity(d, e.continuity)]
    match = _matching(d, agent_ids)
    if match:
        lines += ["", *match]
    lines += [
        "",
        "Provenance:",
        f"  decision {e.decision_id} at now={format_timestamp(e.now)}",
        f"  ruleset {e.ruleset_name} version {e.ruleset_version} (sha256 {e.ruleset_sha256})",
        f"  engine {e.engine}; caseroute {e.caseroute_version}",
        f"  input sha256 {e.input_sha256}",
    ]
    # Invariant: each element is one line; escaping it keeps caller text on that line.
    return "\n".join(escape_text(line) for line in lines)


def _count(n: int, one: str, many: str) -> str:
    return f"{n} {one if n == 1 else many}"
