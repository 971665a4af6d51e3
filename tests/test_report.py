"""Operations KPIs from the decision log: exact values over a known log, and their rendering.

The expected values are worked out by hand from ``tests/report_log.DECISIONS`` (minutes
waited, outcome, reason, SLA clock, ladder step, continuity of each of the eleven decisions).
"""

from __future__ import annotations

import copy
import json
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest

from caseroute.audit.record import AuditRecord
from caseroute.audit.store import SqliteAuditStore
from caseroute.report import TriageStats, build_report, nearest_rank, report_data, source
from caseroute.report.kpis import triage_stats
from caseroute.report.render import (
    empty_message,
    render_json,
    render_markdown,
    render_plain,
    render_table,
)
from caseroute.testing import NOW
from tests.report_log import DAY2, PATIENT_NAME, record_ops_log


@pytest.fixture(scope="module")
def audit_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The log of ``record_ops_log``."""
    return record_ops_log(tmp_path_factory.mktemp("ops"))


@pytest.fixture(scope="module")
def records(audit_db: Path) -> list[AuditRecord]:
    """The eleven recorded decisions of ``record_ops_log``, in chain order."""
    store = SqliteAuditStore(audit_db, readonly=True)
    try:
        return list(store.records())
    finally:
        store.close()


def test_period_records_filters_by_instant_and_skips_other_rulesets_undecoded(
    audit_db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The period is since <= now < until; a record of another ruleset is never decoded."""
    store = SqliteAuditStore(audit_db, readonly=True)
    try:
        assert [r.case_id for r in source.period_records(store, since=DAY2)] == ["C9", "C10"]
        assert [r.case_id for r in source.period_records(store, until=NOW + _HOUR)] == [
            "C0",
            "C1",
        ]
        decoded: list[object] = []
        monkeypatch.setattr(source, "record_from_text", decoded.append)
        assert list(source.period_records(store, ruleset="other")) == []
        assert decoded == []
    finally:
        store.close()


_HOUR = timedelta(hours=1)


def _with_case(record: AuditRecord, **case: object) -> AuditRecord:
    """``record`` with its stored case's fields replaced (None deletes one)."""
    stored = copy.deepcopy(record.input)
    for key, value in case.items():
        if value is None:
            del stored["case"][key]
        else:
            stored["case"][key] = value
    return replace(record, input=stored)


def test_nearest_rank_is_the_textbook_definition() -> None:
    """Nearest rank of 15,20,35,40,50: p5=15, p30=20, p40=20, p50=35, p100=50."""
    ordered = [15.0, 20.0, 35.0, 40.0, 50.0]
    assert [nearest_rank(ordered, p) for p in (5, 30, 40, 50, 100)] == [
        15.0,
        20.0,
        20.0,
        35.0,
        50.0,
    ]


def test_percentiles_of_one_to_a_hundred_are_the_values_themselves() -> None:
    """Over 1..100 the p-th nearest-rank percentile is p; one value is every percentile."""
    assert TriageStats(100, 50.0, 90.0, 99.0) == triage_stats(float(v) for v in range(1, 101))
    assert TriageStats(1, 7.5, 7.5, 7.5) == triage_stats([7.5])
    assert triage_stats([]) is None


def test_outcome_mix_overall_and_per_ruleset_version(records: list[AuditRecord]) -> None:
    """5 ASSIGN, 3 ESCALATE, 2 QUEUE, 1 EXCEPTION of 11; test@1 made 9, test@2 made 2."""
    data = report_data(build_report(records))
    assert (data["decisions"], data["unreadable"]) == (11, 0)
    assert data["outcomes"] == {
        "ASSIGN": {"count": 5, "rate": 5 / 11},
        "ESCALATE": {"count": 3, "rate": 3 / 11},
        "QUEUE": {"count": 2, "rate": 2 / 11},
        "EXCEPTION": {"count": 1, "rate": 1 / 11},
    }
    assert data["by_ruleset_version"] == [
        {
            "ruleset_name": "test",
            "ruleset_version": "1",
            "decisions": 9,
            "outcomes": {
                "ASSIGN": {"count": 4, "rate": 4 / 9},
                "ESCALATE": {"count": 2, "rate": 2 / 9},
                "QUEUE": {"count": 2, "rate": 2 / 9},
                "EXCEPTION": {"count": 1, "rate": 1 / 9},
            },
        },
        {
            "ruleset_name": "test",
            "ruleset_version": "2",
            "decisions": 2,
            "outcomes": {
                "ASSIGN": {"count": 1, "rate": 0.5},
                "ESCALATE": {"count": 1, "rate": 0.5},
                "QUEUE": {"count": 0, "rate": 0.0},
                "EXCEPTION": {"count": 0, "rate": 0.0},
            },
        },
    ]
    assert data["period"] == {
        "since": None,
        "until": None,
        "first_decision_at": "2026-11-21T10:00:00Z",
        "last_decision_at": "2026-11-22T10:00:00Z",
    }


def test_time_to_triage_percentiles_by_group(records: list[AuditRecord]) -> None:
    """Nearest-rank p50/p90/p99 of the minutes waited, overall, ASSIGN only, by intent/urgency."""
    triage = report_data(build_report(records))["time_to_triage_minutes"]
    # all: 1 2 3 4 5 12 12 12 20 30 40 -> ranks ceil(5.5)=6, ceil(9.9)=10, ceil(10.89)=11
    assert triage["all"] == {"count": 11, "p50": 12.0, "p90": 30.0, "p99": 40.0}
    # ASSIGN (C0 C5 C7 C8 C9): 3 12 12 20 40 -> ranks 3, 5, 5
    assert triage["assigned"] == {"count": 5, "p50": 12.0, "p90": 40.0, "p99": 40.0}
    assert triage["by_intent"] == {
        # C0 C1 C2 C4 C5 C6 C8 C9 C10: 1 2 3 4 5 12 12 20 40 -> ranks 5, 9, 9
        "clinical": {"count": 9, "p50": 5.0, "p90": 40.0, "p99": 40.0},
        "billing": {"count": 1, "p50": 30.0, "p90": 30.0, "p99": 30.0},
        "general": {"count": 1, "p50": 12.0, "p90": 12.0, "p99": 12.0},
    }
    assert triage["by_urgency"] == {
        # every case but C2 and C10: 1 3 5 12 12 12 20 30 40 -> ranks 5, 9, 9
        "routine": {"count": 9, "p50": 12.0, "p90": 40.0, "p99": 40.0},
        # C2 and C10: 2 4 -> ranks 1, 2, 2
        "critical": {"count": 2, "p50": 2.0, "p90": 4.0, "p99": 4.0},
    }
    assert (triage["percentile_method"], triage["no_created_at"]) == ("nearest-rank", 0)


def test_escalation_exception_reasons_and_sla_stage(records: list[AuditRecord]) -> None:
    """Reasons of ESCALATE / EXCEPTION decisions and the SLA stage, as rates of all 11."""
    data = report_data(build_report(records))
    assert data["escalations_by_reason"] == [
        {"reason": "critical_case", "count": 2, "rate": 2 / 11},
        {"reason": "safeguarding_concern", "count": 1, "rate": 1 / 11},
    ]
    assert data["exceptions_by_reason"] == [
        {"reason": "billing_by_hand", "count": 1, "rate": 1 / 11}
    ]
    assert data["sla_stage"] == {
        "ok": {"count": 1, "rate": 1 / 11},
        "at_risk": {"count": 1, "rate": 1 / 11},
        "breached": {"count": 1, "rate": 1 / 11},
        "no_clock": {"count": 8, "rate": 8 / 11},
    }


def test_ladder_steps_relaxed_requirements_and_continuity(records: list[AuditRecord]) -> None:
    """7 routed decisions by active step and relaxed requirement; 3 continuity outcomes."""
    data = report_data(build_report(records))
    assert data["relaxation"] == {
        "decisions": 7,
        "by_step": [
            {"ladder": "lang", "step": "any-language", "count": 4, "rate": 4 / 7},
            {"ladder": "lang", "step": None, "count": 2, "rate": 2 / 7},
            {"ladder": "lang", "step": "any-territory", "count": 1, "rate": 1 / 7},
        ],
        "relaxed": [
            # C0 and C8 only: C5-C7 name no preferred language, so nothing of theirs relaxed.
            {"requirement": "language", "count": 2, "rate": 2 / 7},
            {"requirement": "territory", "count": 1, "rate": 1 / 7},
        ],
    }
    assert data["continuity"] == {
        "decisions": 3,
        "outcomes": {
            "assigned_preferred": {"count": 1, "rate": 1 / 3},
            "held_for_preferred": {"count": 1, "rate": 1 / 3},
            "assigned_other": {"count": 1, "rate": 1 / 3},
            "none_eligible": {"count": 0, "rate": 0.0},
        },
    }


def test_records_from_before_adaptive_routing_are_skipped_silently(
    records: list[AuditRecord],
) -> None:
    """A decision without relaxation/continuity keys counts everywhere else, not there."""
    old = []
    for record in records:
        decision = copy.deepcopy(record.decision)
        del decision["explanation"]["relaxation"], decision["explanation"]["continuity"]
        del decision["next_relaxation_at"], decision["held_for_preferred_until"]
        old.append(replace(record, decision=decision))
    data = report_data(build_report(old))
    assert (
        data["decisions"],
        data["relaxation"]["decisions"],
        data["relaxation"]["by_step"],
        data["continuity"]["decisions"],
    ) == (11, 0, [], 0)


def test_ruleset_filter_counts_only_that_ruleset(records: list[AuditRecord]) -> None:
    """`ruleset=` keeps that ruleset's decisions; another name leaves none."""
    assert (
        build_report(records, ruleset="test").decisions,
        build_report(records, ruleset="other").decisions,
    ) == (11, 0)


def test_masked_or_unknown_intent_is_grouped_never_printed(records: list[AuditRecord]) -> None:
    """An intent that is a digest counts as (masked), free text as (unknown); neither printed."""
    masked = _with_case(records[0], intent="hmac-sha256:" + "ab" * 32)
    unknown = _with_case(records[1], intent=PATIENT_NAME, urgency="Ada's own words")
    report = build_report([masked, unknown])
    assert report_data(report)["time_to_triage_minutes"]["by_intent"] == {
        "(masked)": {"count": 1, "p50": 12.0, "p90": 12.0, "p99": 12.0},
        "(unknown)": {"count": 1, "p50": 5.0, "p90": 5.0, "p99": 5.0},
    }
    for text in (render_plain(report), render_json(report), render_markdown(report)):
        assert "Ada" not in text
        assert "hmac-sha256" not in text


def test_damaged_decision_is_counted_unreadable_and_missing_created_at_is_not_timed(
    records: list[AuditRecord],
) -> None:
    """A record whose decision cannot be decoded is skipped and counted; no created_at: untimed."""
    damaged = replace(records[0], decision={"outcome": "ASSIGN"})
    untimed = _with_case(records[1], created_at=None)
    report = build_report([damaged, untimed, records[2]])
    data = report_data(report)
    assert (
        data["decisions"],
        data["unreadable"],
        data["time_to_triage_minutes"]["no_created_at"],
        data["time_to_triage_minutes"]["all"],
    ) == (2, 1, 1, {"count": 1, "p50": 2.0, "p90": 2.0, "p99": 2.0})
    assert render_plain(report).splitlines()[0] == (
        "caseroute report: 2 decision(s) between the start of the log and the end of the log "
        "(first 2026-11-21T10:00:00Z, last 2026-11-21T11:00:00Z); 1 unreadable record(s) "
        "skipped (run `caseroute audit verify`)"
    )
    assert "  no readable created_at (not timed)      1    -    -    -" in (
        render_plain(report).splitlines()
    )


def _day2(records: list[AuditRecord]) -> list[AuditRecord]:
    """The two version-2 decisions of the second day."""
    return [r for r in records if r.ruleset_version == "2"]


def test_plain_text_of_a_small_report(records: list[AuditRecord]) -> None:
    """Plain text: headline, then aligned tables; empty tables are left out."""
    report = build_report(_day2(records), since=DAY2, until=DAY2 + (DAY2 - NOW))
    assert render_plain(report).splitlines() == (
        [
            (
                "caseroute report: 2 decision(s) between 2026-11-22T10:00:00Z and "
                "2026-11-23T10:00:00Z (first 2026-11-22T10:00:00Z, last 2026-11-22T10:00:00Z)"
            ),
            "",
            "outcomes:",
            "  outcome    count    rate",
            "  ASSIGN         1  50.00%",
            "  ESCALATE       1  50.00%",
            "  QUEUE          0   0.00%",
            "  EXCEPTION      0   0.00%",
            "",
            "outcomes by ruleset version:",
            "  ruleset@version  decisions      ASSIGN    ESCALATE      QUEUE  EXCEPTION",
            "  test@2                   2  1 (50.00%)  1 (50.00%)  0 (0.00%)  0 (0.00%)",
            "",
            "time to triage, minutes (created_at to decision; nearest-rank percentiles):",
            "  group             count  p50  p90  p99",
            "  all                   2  3.0  4.0  4.0",
            "  ASSIGN only           1  3.0  3.0  3.0",
            "  intent clinical       2  3.0  4.0  4.0",
            "  urgency routine       1  3.0  3.0  3.0",
            "  urgency critical      1  4.0  4.0  4.0",
            "",
            "escalations by reason (rate of all decisions):",
            "  reason         count    rate",
            "  critical_case      1  50.00%",
            "",
            "SLA clock at decision (the most urgent clock):",
            "  stage     count     rate",
            "  ok            0    0.00%",
            "  at_risk       0    0.00%",
            "  breached      0    0.00%",
            "  no_clock      2  100.00%",
            "",
            "relaxation ladders: active step (1 decision(s) with soft requirements):",
            "  ladder / step                  count     rate",
            "  lang / (none yet: as written)      1  100.00%",
        ]
    )


def test_markdown_of_a_small_report(records: list[AuditRecord]) -> None:
    """Markdown: a heading, the headline, one table per section with numbers right-aligned."""
    text = render_markdown(build_report(_day2(records), since=DAY2))
    assert text.splitlines()[:16] == [
        "## Operations report",
        "",
        (
            "2 decision(s) between 2026-11-22T10:00:00Z and the end of the log (first "
            "2026-11-22T10:00:00Z, last 2026-11-22T10:00:00Z)"
        ),
        "",
        "### outcomes",
        "",
        "| outcome | count | rate |",
        "|---|---:|---:|",
        "| ASSIGN | 1 | 50.00% |",
        "| ESCALATE | 1 | 50.00% |",
        "| QUEUE | 0 | 0.00% |",
        "| EXCEPTION | 0 | 0.00% |",
        "",
        "### outcomes by ruleset version",
        "",
        "| ruleset@version | decisions | ASSIGN | ESCALATE | QUEUE | EXCEPTION |",
    ]
    assert text.count("### ") == 6


def test_rich_table_and_json_carry_the_same_numbers(records: list[AuditRecord]) -> None:
    """The terminal table shows the headline and tables; JSON reads back as report_data."""
    report = build_report(_day2(records))
    table = render_table(report, width=100)
    assert "2 decision(s) between the start of the log and the end of the log" in table
    assert "critical_case" in table
    assert "\x1b[" in table  # styled for a terminal
    assert report_data(report) == json.loads(render_json(report))


def test_stored_names_are_escaped_in_every_text_format(records: list[AuditRecord]) -> None:
    """A ruleset version holding an ESC or a pipe cannot drive the terminal or break a table."""
    odd = replace(records[0], ruleset_version="1\x1b[2J|x")
    report = build_report([odd])
    assert "  test@1\\x1b[2J|x" in render_plain(report)
    assert "| test@1\\\\x1b[2J\\|x |" in render_markdown(report)
    assert "\x1b[2J" not in render_table(report)
    assert "\x1b[2J" not in render_json(report)


def test_empty_period_message_names_the_period_and_ruleset() -> None:
    """No decisions: one line naming the bounds (or the log's ends) and the ruleset."""
    assert empty_message(build_report([], since=NOW, ruleset="test")) == (
        "no decisions of ruleset test between 2026-11-21T10:00:00Z and the end of the log; "
        "widen --since/--until, or check --audit-db names the server's decision log"
    )


def test_report_data_keys_are_documented() -> None:
    """Every top-level key of the JSON document is named in docs/operations.md."""
    doc = (Path(__file__).resolve().parents[1] / "docs" / "operations.md").read_text()
    for key in report_data(build_report([])):
        assert f"`{key}`" in doc, key
