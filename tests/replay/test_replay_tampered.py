"""Replay of an edited log says so: the chain checks of the rows it streams (review R32b F3).

The log of tests/replay/recorded.py (records 1-3: C1, C3, C2) is copied and edited as someone
with write access to the database could: a forged decision column, a deleted record. Replay
decodes each record from its hashed text only, refuses to compare one whose stored content
fails its check, and reports every problem at the top of the report and in its JSON.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
from contextlib import closing
from pathlib import Path

import pytest

from caseroute.audit.record import RulesetEvent
from caseroute.audit.store import SqliteAuditStore
from caseroute.audit.stream_check import ChainCheck
from caseroute.engine.case_rules import EngineKind
from caseroute.replay import RecordFilter, ReplayOptions, SinkRecords, replay, report_data
from caseroute.replay.render import render_plain
from caseroute.testing import audit_config, make_audit_record
from tests.replay.recorded import candidate, record_log

PY = ReplayOptions(EngineKind.PYTHON)
FORGED = {
    "rule_id": "rest",
    "outcome": "EXCEPTION",
    "agent_id": None,
    "queue": "exceptions",
    "priority": "normal",
    "escalation_level": None,
}


@pytest.fixture(scope="module")
def original(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The recorded log, closed."""
    directory = tmp_path_factory.mktemp("tampered")
    record_log(directory).close()
    return directory / "audit.db"


def _edited(original: Path, tmp_path: Path, *statements: str) -> SqliteAuditStore:
    """A copy of the log with ``statements`` run on it, opened read-only."""
    copy = tmp_path / "audit.db"
    shutil.copyfile(original, copy)
    with closing(sqlite3.connect(copy)) as conn:
        for statement in statements:
            conn.execute(statement)
        conn.commit()
    return SqliteAuditStore(copy, readonly=True)


def test_an_intact_log_reports_its_chain_verified(original: Path, tmp_path: Path) -> None:
    """No edit: no problem, and the JSON says the chain verified."""
    store = _edited(original, tmp_path)
    report = replay(SinkRecords(store), candidate("identity"), PY)
    store.close()
    assert (report.chain, report_data(report)["chain"], report.count("unchanged")) == (
        ChainCheck(),
        {"verified": True, "problems": 0, "first": None},
        3,
    )


def test_a_forged_decision_column_is_not_compared_and_the_report_says_so(
    original: Path, tmp_path: Path
) -> None:
    """A decision column rewritten (ASSIGN -> EXCEPTION) is no change: it is chain_broken."""
    forged = json.dumps(FORGED).replace("'", "''")
    store = _edited(original, tmp_path, f"UPDATE decisions SET decision = '{forged}' WHERE seq = 1")
    report = replay(SinkRecords(store), candidate("identity"), PY)
    store.close()
    problem = "record 1 was edited or moved: its content no longer matches its hash"
    data = report_data(report)
    assert (data["chain"], data["changed"], data["not_replayable_reasons"]) == (
        {"verified": False, "problems": 1, "first": problem},
        0,
        {"chain_broken": 1},
    )
    assert data["samples"]["not_replayable"][0]["reason"] == (
        f"{problem} (run `caseroute audit verify`)"
    )
    assert render_plain(report).splitlines()[0] == (
        f"WARNING: the decision log fails its chain checks (1 problem(s); first: {problem}): it "
        "was edited or damaged, so these figures cannot be trusted; run `caseroute audit verify`"
    )


def test_an_edited_input_column_is_never_replayed(original: Path, tmp_path: Path) -> None:
    """The input column edited (C3 made urgent): replay decides the hashed input, and warns."""
    store = _edited(
        original,
        tmp_path,
        "UPDATE decisions SET input = replace(input, '\"routine\"', '\"urgent\"') WHERE seq = 2",
    )
    report = replay(SinkRecords(store), candidate("identity"), PY)
    store.close()
    assert (report.chain, report.changed, dict(report.reasons)) == (
        ChainCheck(1, "record 2 was edited or moved: its content no longer matches its hash"),
        0,
        {"chain_broken": 1},
    )


def test_a_deleted_record_is_named(original: Path, tmp_path: Path) -> None:
    """Record 2 deleted: the others replay, and the report names the missing record."""
    store = _edited(original, tmp_path, "DELETE FROM decisions WHERE seq = 2")
    report = replay(SinkRecords(store), candidate("identity"), PY)
    store.close()
    assert (report.total, report.count("unchanged"), report.chain) == (
        2,
        2,
        ChainCheck(1, "record 2 is missing (deleted?): the next stored record is 3"),
    )


def test_a_truncated_tail_with_its_head_left_behind_is_named(
    original: Path, tmp_path: Path
) -> None:
    """The head rewound below the last record (records rewritten): named at the end."""
    store = _edited(original, tmp_path, "UPDATE chain_head SET seq = 2")
    report = replay(SinkRecords(store), candidate("identity"), PY)
    store.close()
    assert report.chain == ChainCheck(
        1,
        "the chain ends at record 3 but the store's head is record 2 (the head edited, or "
        "records rewritten)",
    )


def test_filtered_reads_and_events_raise_no_false_alarm(original: Path, tmp_path: Path) -> None:
    """A case filter skips records, and an event takes a seq (4, before record 5): no problem."""
    shutil.copyfile(original, tmp_path / "audit.db")
    (tmp_path / "audit.db").chmod(0o600)
    store = audit_config(tmp_path).open_store()
    store.append_events([_event()])
    store.append([make_audit_record(5)])
    store.close()
    store = SqliteAuditStore(tmp_path / "audit.db", readonly=True)
    whole = replay(SinkRecords(store), candidate("identity"), PY)
    one = replay(SinkRecords(store, RecordFilter(case_id="C2")), candidate("identity"), PY)
    limited = replay(SinkRecords(store, RecordFilter(limit=1)), candidate("identity"), PY)
    store.close()
    assert (whole.chain, one.chain, limited.chain, one.total) == (
        ChainCheck(),
        ChainCheck(),
        ChainCheck(),
        1,
    )


def _event() -> RulesetEvent:
    return RulesetEvent(
        seq=0,
        event_id="evt_1",
        recorded_at="2026-11-21T11:00:00Z",
        action="activate",
        actor="admin:ops",
        ruleset_name="test",
        role="active",
        from_version="1",
        from_sha256="a" * 64,
        to_version="2",
        to_sha256="b" * 64,
        caseroute_version="0",
        prev_hash="",
        record_hash="",
    )


def test_a_roster_snapshot_missing_from_the_log_says_so(original: Path, tmp_path: Path) -> None:
    """A snapshot deleted from the log: roster_missing, advising verify (not --input advice)."""
    with closing(sqlite3.connect(original)) as conn:
        (text,) = conn.execute("SELECT input FROM decisions WHERE seq = 3").fetchone()
    sha = json.loads(text)["roster"]["sha256"]
    store = _edited(original, tmp_path, f"DELETE FROM blobs WHERE sha256 = '{sha}'")
    report = replay(SinkRecords(store), candidate("identity"), PY)
    store.close()
    reason = (
        f"roster snapshot {sha[:12]} is not available (the decision log lacks it: deleted or "
        "damaged? run `caseroute audit verify`)"
    )
    reasons = {s.reason for s in dict(report.samples)["not_replayable"]}
    assert (report.not_replayable, dict(report.reasons), reasons) == (
        3,
        {"roster_missing": 3},
        {reason},
    )
