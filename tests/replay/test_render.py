"""Replay report renderers: stored strings never act on a terminal or break a table."""

from __future__ import annotations

from dataclasses import replace

from caseroute.replay.classify import DecisionSide
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
