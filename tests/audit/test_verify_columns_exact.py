"""verify holds every column a reader uses to the record: exactly, and the time index too.

Two holes review R28 found (both older than this pass): the columns were compared with the
hashed text as values, where 1.0 == 1 == True, so an input column's 1.0 rewritten as true
verified while export, show and replay read true; and ``now_us``, the index ``--since`` /
``--until`` reads select on, is not hashed and was not checked, so zeroing it hid a decision
from a period's export, report and replay while verify said ok.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from contextlib import closing
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from caseroute.audit.sql_rows import RECORD_COLUMNS, column_off_text
from caseroute.audit.store import SqliteAuditStore
from caseroute.audit.stream_check import StreamChecker
from caseroute.audit.verify import time_index_problem, verify_chain
from caseroute.cli import main
from caseroute.domain.case import Intent, Urgency
from caseroute.domain.fingerprint import canonical_json
from caseroute.engine.case_rules import EngineKind
from caseroute.service import DecideCommand, RulesetRegistry
from caseroute.testing import (
    NOW,
    audited_core,
    make_agent,
    make_case,
    make_roster,
    reference_ruleset,
)
from tests.audit.commit_sinks import Sink
from tests.audit.test_roster_blob import _record_on, log
from tests.pg import pg_server, pg_url

__all__ = ["log", "pg_server", "pg_url"]  # fixtures: both stores


@pytest.fixture
def audit_db(tmp_path: Path) -> Path:
    """A log of three decisions an hour apart, each case's confidence exactly 1.0."""
    registry = RulesetRegistry()
    registry.add(reference_ruleset(EngineKind.PYTHON))
    core = audited_core(registry, tmp_path)
    roster = make_roster(make_agent("a1"), make_agent("a2"))
    for i in range(3):
        case = make_case(
            case_id=f"C{i}",
            intent=Intent.BILLING,
            urgency=Urgency.ROUTINE,
            classification_confidence=1.0,
        )
        core.decide(DecideCommand(f"r{i}", "", "", (case,), roster, NOW + timedelta(hours=i)))
    core.audit.close()
    registry.close()
    return tmp_path / "audit.db"


def _verify(db: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = main(["audit", "verify", "--audit-db", str(db)])
    return code, capsys.readouterr().out


def _edit(db: Path, sql: str) -> None:
    with closing(sqlite3.connect(db)) as conn, conn:
        assert conn.execute(sql).rowcount == 1


@pytest.mark.parametrize(("was", "now"), [("1.0", "true"), ("1.0", "1")])
def test_a_value_rewritten_as_an_equal_value_of_another_type_is_an_edit(
    audit_db: Path, capsys: pytest.CaptureFixture[str], was: str, now: str
) -> None:
    """Record 2's input: confidence 1.0 written as true (or 1) is TAMPERED (it verified)."""
    assert _verify(audit_db, capsys)[0] == 0
    old = f'"classification_confidence":{was}'
    _edit(
        audit_db,
        f"UPDATE decisions SET input = replace(input, '{old}', "
        f"'\"classification_confidence\":{now}') WHERE seq = 2",
    )
    code, out = _verify(audit_db, capsys)
    assert (code, out.split(" (decision")[0]) == (
        1,
        "TAMPERED: record 2 was edited or moved: its content no longer matches its hash",
    )


def test_an_edited_time_index_is_named(audit_db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """now_us zeroed on record 2: the period's export lost it; verify now says so."""
    _edit(audit_db, "UPDATE decisions SET now_us = 0 WHERE seq = 2")
    period = ["--since", "2026-11-21T00:00:00Z", "--until", "2026-11-22T00:00:00Z"]
    assert main(["audit", "export", *period, "--audit-db", str(audit_db)]) == 0
    assert "exported 2 decision(s)" in capsys.readouterr().err  # what the index hides
    code, out = _verify(audit_db, capsys)
    assert (code, out) == (
        1,
        (
            "TAMPERED: record 2's time index (now_us) does not match its now: it was edited, "
            "which hides or moves the record in --since/--until reads; the chain itself "
            "verified (3 record(s))\n"
        ),
    )


@pytest.mark.parametrize(
    ("row", "seq"),
    [
        ((1, "2026-11-21T10:00:00Z", 1795255200000000), None),
        ((1, "2026-11-21T10:00:00Z", 1795255200000001), 1),
        ((2, "2026-11-21T10:00:00Z", "1795255200000000"), 2),
        ((3, "yesterday", 0), 3),
        ((4, "2026-11-21T10:00:00", 1795255200000000), 4),
    ],
)
def test_time_index_problem_reads_each_row(
    row: tuple[int, object, object], seq: int | None
) -> None:
    """Exactly the microseconds of now: off by one, text, no instant or no zone is named."""
    found = time_index_problem([row])
    assert (found[0] if found else None) == seq


def test_both_stores_give_the_time_index_in_chain_order(
    log: tuple[Sink, Callable[[str], None]],
) -> None:
    """SQLite and PostgreSQL: (seq, now, now_us) per decision, matching until edited."""
    sink, tamper = log
    roster = make_roster(make_agent("a1"))
    for n in (1, 2):
        _record_on(sink, n, roster)
    rows = list(sink.time_index())
    assert [(seq, datetime.fromisoformat(now)) for seq, now, _ in rows] == [
        (1, NOW),
        (2, NOW),
    ]
    assert time_index_problem(rows) is None
    assert verify_chain(sink.records(), sink.head(), sink.stored_blob).ok
    tamper("UPDATE decisions SET now_us = now_us + 1 WHERE seq = 2")
    assert time_index_problem(sink.time_index()) == (
        2,
        (
            "record 2's time index (now_us) does not match its now: it was edited, which "
            "hides or moves the record in --since/--until reads"
        ),
    )


def test_a_case_built_in_code_with_int_attribute_keys_still_verifies(tmp_path: Path) -> None:
    """Keys JSON turns into text (10 and 9 sort as ints when written, as text when read).

    The Python API recorded such a case before it read code-built commands through the
    parsers (which now refuse int keys); ``parsed=True`` writes one as those versions did.
    Its columns read back do not re-encode to the stored text byte for byte, yet mean exactly
    what it holds: verify compares the two as parsed JSON then (review R28b: the exact
    comparison alone called this log TAMPERED).
    """
    registry = RulesetRegistry()
    registry.add(reference_ruleset(EngineKind.PYTHON))
    core = audited_core(registry, tmp_path)
    case = make_case(case_id="C1", attributes={10: "x", 9: "y"})  # ints: not the declared str
    roster = make_roster(make_agent("a1"))
    core.decide(DecideCommand("r1", "", "", (case,), roster, NOW, parsed=True))
    store = core.audit
    assert isinstance(store, SqliteAuditStore)
    try:
        assert verify_chain(store.records(), store.head(), store.stored_blob).ok
    finally:
        store.close()
        registry.close()


SAME_MEANING_OTHER_BYTES = {
    # json.loads keeps the last of two keys: the column read by value said the hashed roster,
    # while SQL (json_extract(input, '$.roster.sha256')) reads the first, another snapshot.
    "a repeated key": (
        '\'{"roster":{"assigned_before":[],"sha256":"' + "a" * 64 + "\"},' || substr(input, 2)"
    ),
    "a space": "replace(input, '\"case\":', '\"case\": ')",
    "1.0 written 1.00": (
        "replace(input, '\"classification_confidence\":1.0', '\"classification_confidence\":1.00')"
    ),
}
COLUMN_EDITED = (
    "record {} was edited: its {} column is not byte for byte what its hashed text holds"
)


@pytest.mark.parametrize("edit", SAME_MEANING_OTHER_BYTES.values(), ids=SAME_MEANING_OTHER_BYTES)
def test_an_input_column_meaning_the_same_in_other_bytes_is_named(
    audit_db: Path, capsys: pytest.CaptureFixture[str], edit: str
) -> None:
    """Record 2's input column with a repeated key, a space, 1.00: TAMPERED naming the column.

    Compared as parsed values, each verified (review R34c F4), though docs/audit.md says the
    columns must encode to the hashed text byte for byte, and an auditor's SQL read the column.
    """
    _edit(audit_db, f"UPDATE decisions SET input = {edit} WHERE seq = 2")
    code, out = _verify(audit_db, capsys)
    assert (code, out.split(" (decision")[0]) == (
        1,
        "TAMPERED: " + COLUMN_EDITED.format(2, "input"),
    )


def _decision_slice(audit_db: Path, seq: int) -> str:
    """The decision in record ``seq``'s hashed text, as the text holds it."""
    with closing(sqlite3.connect(audit_db)) as conn:
        (text,) = conn.execute("SELECT content FROM decisions WHERE seq = ?", (seq,)).fetchone()
    return canonical_json(json.loads(text)["decision"])


def test_a_decision_column_is_empty_or_exactly_the_texts_decision(
    audit_db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Left empty by the writer; its exact copy verifies, the same decision spaced out does not."""
    exact = _decision_slice(audit_db, 2)
    with closing(sqlite3.connect(audit_db)) as conn, conn:
        conn.execute("UPDATE decisions SET decision = ? WHERE seq = 2", (exact,))
    assert _verify(audit_db, capsys)[0] == 0
    spaced = json.dumps(json.loads(exact), sort_keys=True, ensure_ascii=False)
    with closing(sqlite3.connect(audit_db)) as conn, conn:
        conn.execute("UPDATE decisions SET decision = ? WHERE seq = 2", (spaced,))
    code, out = _verify(audit_db, capsys)
    assert (code, out.split(" (decision")[0]) == (
        1,
        "TAMPERED: " + COLUMN_EDITED.format(2, "decision"),
    )


def test_both_stores_and_the_streamed_check_name_an_input_column_in_other_bytes(
    log: tuple[Sink, Callable[[str], None]],
) -> None:
    """SQLite and PostgreSQL: verify and replay's/report's streamed check hold the same rule."""
    sink, tamper = log
    roster = make_roster(make_agent("a1"))
    for n in (1, 2, 3):
        _record_on(sink, n, roster)
    assert verify_chain(sink.records(), sink.head(), sink.get_blob).ok
    tamper("UPDATE decisions SET input = replace(input, '\"case\":', '\"case\": ') WHERE seq = 2")
    report = verify_chain(sink.records(), sink.head(), sink.get_blob)
    checker = StreamChecker(sink, whole=True)
    streamed = [checker.check(row) for row in sink.record_rows()]
    expected = COLUMN_EDITED.format(2, "input")
    assert (report.ok, report.seq, report.problem, streamed) == (
        False,
        2,
        expected,
        [None, expected, None],
    )


def test_the_writers_copy_check_names_whichever_column_is_off(audit_db: Path) -> None:
    """column_off_text: None for a row as written; each column edited alone is the one named."""
    store = SqliteAuditStore(audit_db, readonly=True)
    try:
        row = next(iter(store.record_rows()))
    finally:
        store.close()
    assert column_off_text(row) is None
    named = {}
    for index, name in enumerate(RECORD_COLUMNS[:-1]):
        if name in ("prev_hash", "record_hash"):
            continue  # not in the hashed text: the hash check holds them
        value = row[index]
        edited = value + 1 if name == "seq" else " " + value if name == "input" else value + "x"
        named[name] = column_off_text((*row[:index], edited, *row[index + 1 :]))
    assert named == {name: name for name in named}
    assert column_off_text((*row[:-1], None)) == "content"
