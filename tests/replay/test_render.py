"""Replay report renderers: stored strings never act on a terminal or break a table."""

from __future__ import annotations

from dataclasses import replace

from caseroute.domain.decision_side import DecisionSide
from caseroute.replay.classify import AgentCheckChange
from caseroute.replay.evaluate import RecordResult
from caseroute.replay.render import render_json, render_markdown, render_plain, render_table
from caseroute.replay.report import ReplayReport, ReportBuilder

HOSTILE = "q|\x1b[31mred\n"


def _report() -> ReplayReport:
    builder = ReportBuilder()
    recorded = DecisionSide("rest", "ASSIGN", "a1", "general", "normal", None)
    builder.add(
        RecordResult(
            "dec_1",
            ("queue_changed",),
            (("intent", "general"), ("region", HOSTILE)),
            recorded=recorded,
            candidate=DecisionSide("rest", "ASSIGN", "a1", HOSTILE, "normal", None),
        )
    )
    return builder.build("test", "2", "ab" * 32)


def test_plain_escapes_control_characters() -> None:
    """Plain text spells ESC and newlines out; the sample line shows both queues."""
    text = render_plain(_report())
    assert "\x1b" not in text
    assert (
        "    candidate: ASSIGN by rest agent a1 queue q|\\x1b[31mred\\n priority normal"
        in text.splitlines()
    )


def test_markdown_escapes_pipes_and_controls() -> None:
    """A pipe in a stored value cannot add a column to a Markdown table."""
    lines = render_markdown(_report()).splitlines()
    assert "| q\\|\\\\x1b[31mred\\\\n | 1 | 1 | 0 |" in lines


def test_table_is_coloured_for_a_terminal_but_stored_text_is_escaped() -> None:
    """The rich table carries its own ANSI styling, never a stored escape sequence."""
    text = render_table(_report())
    assert "\x1b[" in text  # rich's styling
    assert "\x1b[31mred" not in text
    assert "x1b[31mred" in text


def test_json_escapes_controls() -> None:
    """The JSON form holds no raw ESC character."""
    text = render_json(_report())
    assert "\x1b" not in text
    assert '"q|\\u001b[31mred\\n"' in text


def test_table_never_truncates_a_decision_id() -> None:
    """Even a narrow terminal shows the sample's whole decision id (it is what one looks up)."""
    builder = ReportBuilder()
    side = DecisionSide("rest", "ASSIGN", "a1", "general", "normal", None)
    long_id = "dec_94dca6e48fef9ccbe3d1dc51a6b8"
    builder.add(
        RecordResult(
            long_id, ("queue_changed",), (), recorded=side, candidate=replace(side, queue="x")
        )
    )
    assert long_id in render_table(builder.build("test", "2", "ab" * 32), width=80)


def test_table_folds_long_rule_ids_instead_of_cutting_them() -> None:
    """A rule id longer than its column wraps onto the next line, every character kept."""
    builder = ReportBuilder()
    side = DecisionSide("unhappy-sla-at-risk-and-more", "ASSIGN", "a1", "general", "normal", None)
    builder.add(
        RecordResult(
            "dec_1", ("queue_changed",), (), recorded=side, candidate=replace(side, queue="x")
        )
    )
    text = render_table(builder.build("test", "2", "ab" * 32), width=60)
    assert "…" not in text


def _mixed() -> ReplayReport:
    """An outcome change with agent checks and a not-replayable record."""
    builder = ReportBuilder()
    assigned = DecisionSide("rest", "ASSIGN", "a1", "general", "normal", None)
    escalated = DecisionSide("urgent", "ESCALATE", None, "senior", "high", 2)
    builder.add(
        RecordResult(
            "dec_1",
            ("outcome_changed", "agent_changed"),
            (("intent", "general"),),
            "ASSIGN->ESCALATE",
            assigned,
            escalated,
            (AgentCheckChange("a1", (), ("role",)), AgentCheckChange("a2", None, ())),
        )
    )
    builder.add(
        RecordResult(
            "dec_2",
            ("not_replayable",),
            (("intent", "general"),),
            reason_code="roster_missing",
            reason="roster snapshot abc is not available",
        )
    )
    return builder.build("test", "2", "ab" * 32)


def test_markdown_lists_pairs_reasons_and_samples() -> None:
    """Markdown has the outcome pairs, the reasons, and samples side by side."""
    lines = render_markdown(_mixed()).splitlines()
    expected = [
        "| ASSIGN->ESCALATE | 1 |",
        "| roster_missing | 1 |",
        "| general | 2 | 1 | 1 |",
        (
            "| dec_1 | ASSIGN by rest agent a1 queue general priority normal | ESCALATE by urgent "
            "queue senior priority high level 2 | a1: eligible -> role; a2: not evaluated -> "
            "eligible |"
        ),
        "| dec_2 | roster snapshot abc is not available | - | |",
    ]
    assert [line for line in expected if line not in lines] == []


def test_plain_lists_pairs_reasons_and_samples() -> None:
    """Plain text has the outcome pairs, the reasons and each sample's sides."""
    lines = render_plain(_mixed()).splitlines()
    expected = [
        "  ASSIGN->ESCALATE: 1",
        "  roster_missing: 1",
        "  general 2 1 1",
        "    agent checks: a1: eligible -> role; a2: not evaluated -> eligible",
        "  dec_2: roster snapshot abc is not available",
    ]
    assert [line for line in expected if line not in lines] == []


def test_table_shows_pairs_reasons_and_not_replayable_samples() -> None:
    """The terminal table holds the pair, the reason code and the not-replayable reason."""
    text = render_table(_mixed(), width=200)
    assert [
        t for t in ("ASSIGN->ESCALATE", "roster_missing", "not available") if t not in text
    ] == []


def test_empty_report_renders_dashes_for_rates() -> None:
    """With nothing replayed, rates print as '-' rather than dividing by zero."""
    empty = ReportBuilder().build("test", "2", "ab" * 32)
    assert "unchanged                    0       -" in render_plain(empty).splitlines()
