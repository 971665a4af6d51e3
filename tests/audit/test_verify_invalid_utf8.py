"""A SQLite log with one value edited into bytes that are not UTF-8 is TAMPERED, not unreadable.

SQLite keeps whatever bytes a writer gives a TEXT column; caseroute writes UTF-8 only. Read
with sqlite3's default text factory, one such value failed the whole read, so ``audit
verify`` said "the decision log cannot be read; retry later" (an outage) instead of naming the
edited record, and ``audit show`` / ``export`` of every other record failed with it. Every
TEXT column of the hash chain's tables and of the blobs is edited in turn here.
"""

from __future__ import annotations

import json
import sqlite3
from contextlib import closing
from pathlib import Path

import pytest

from caseroute.audit import sql_rows
from caseroute.audit.record import Blob, BlobKind
from caseroute.audit.sql_rows import RECORD_COLUMNS
from caseroute.audit.store import SqliteAuditStore
from caseroute.audit.verify import verify_chain
from caseroute.cli import main
from caseroute.service import request_decision_id
from tests.test_cli_audit import _add_events, _ruleset_event, audit_db

__all__ = ["audit_db"]  # the fixture: three decisions an hour apart (seq 1-3)

DECISION_COLUMNS = tuple(c for c in RECORD_COLUMNS if c != "seq")  # seq: an INTEGER key
EVENT_COLUMNS = tuple(c for c in sql_rows.EVENT_COLUMNS if c != "seq")
NOT_UTF8 = "CAST(X'C328' || {column} AS TEXT)"
"""The column's value behind two bytes that are not UTF-8 (0xC3 needs a continuation byte)."""


def _edit(db: Path, table: str, column: str, where: str) -> None:
    with closing(sqlite3.connect(db)) as conn, conn:
        sql = f"UPDATE {table} SET {column} = {NOT_UTF8.format(column=column)} WHERE {where}"
        assert conn.execute(sql).rowcount == 1


def _verify(db: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = main(["audit", "verify", "--audit-db", str(db)])
    captured = capsys.readouterr()
    assert "cannot be read" not in captured.out + captured.err
    return code, captured.out


@pytest.mark.parametrize("column", DECISION_COLUMNS)
def test_a_decision_column_not_utf8_is_named_tampered(
    audit_db: Path, capsys: pytest.CaptureFixture[str], column: str
) -> None:
    """Record 2's column edited: verify names record 2; show and export read the others.

    Export still writes every line, each from its hashed text, so record 2's decision still
    rebuilds unless that text itself was edited; it names record 2 as edited and exits 1.
    """
    _edit(audit_db, "decisions", column, "seq = 2")
    code, out = _verify(audit_db, capsys)
    assert code == 1
    assert out.startswith("TAMPERED: record 2 ")
    assert "\\x" not in out  # no bytes shown as if they were an id
    first = main(["audit", "show", request_decision_id("r0", 0), "--audit-db", str(audit_db)])
    assert (first, "Audit record 1:" in capsys.readouterr().out) == (0, True)
    assert main(["audit", "export", "--audit-db", str(audit_db)]) == 1
    err = capsys.readouterr().err
    assert "exported 3 decision(s)" in err
    assert "1 record(s) exported from a row edited after it was recorded (first: record 2 " in err
    undecided = "1 record(s) exported without their decision (first: record 2, " in err
    assert undecided == (column == "content")  # only the hashed text itself edited


@pytest.mark.parametrize("column", EVENT_COLUMNS)
def test_an_event_column_not_utf8_is_named_tampered(
    audit_db: Path, capsys: pytest.CaptureFixture[str], column: str
) -> None:
    """The ruleset event at seq 4 edited: verify names it."""
    _add_events(audit_db, _ruleset_event(1))
    assert _verify(audit_db, capsys)[0] == 0
    _edit(audit_db, "ruleset_events", column, "seq = 4")
    code, out = _verify(audit_db, capsys)
    assert code == 1
    assert out.startswith("TAMPERED: event seq 4 ")
    assert "\\x" not in out


@pytest.mark.parametrize("kind", ["roster_parts", "roster_chunk", "ruleset"])
def test_a_blob_not_utf8_is_named_tampered(
    audit_db: Path, capsys: pytest.CaptureFixture[str], kind: str
) -> None:
    """A blob's content edited: verify names the blob and the first record using it."""
    _edit(audit_db, "blobs", "content", f"kind = '{kind}'")
    code, out = _verify(audit_db, capsys)
    assert code == 1
    blob = "ruleset" if kind == "ruleset" else "roster"
    start = {  # a chunk that cannot be read is missing, as get_blob's assembly finds it
        "roster_parts": f"TAMPERED: the {blob} blob ",
        "roster_chunk": f"TAMPERED: record 1 references a {blob} blob ",
        "ruleset": f"TAMPERED: the {blob} blob ",
    }[kind]
    assert out.startswith(start)
    assert ("that is missing" if kind == "roster_chunk" else "(used by record 1) was edited") in out


def test_the_head_not_utf8_is_named_tampered(
    audit_db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The chain head's hash edited: the chain no longer ends where the head says."""
    _edit(audit_db, "chain_head", "record_hash", "id = 1")
    code, out = _verify(audit_db, capsys)
    assert (code, out.startswith("TAMPERED: ")) == (1, True)


def test_a_recorded_at_that_is_no_instant_still_exports(
    audit_db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An edited ``recorded_at`` (UTF-8, but no instant): export writes the hashed one, warns.

    It raised ValueError out of ``audit export``, so no record after it was exported; then it
    wrote record 2 without it, exit 0. Every line is now read from its hashed text.
    """
    with closing(sqlite3.connect(audit_db)) as conn, conn:
        hashed = conn.execute("SELECT recorded_at FROM decisions WHERE seq = 2").fetchone()[0]
        conn.execute("UPDATE decisions SET recorded_at = 'yesterday' WHERE seq = 2")
    assert main(["audit", "export", "--audit-db", str(audit_db)]) == 1
    captured = capsys.readouterr()
    lines = [json.loads(line) for line in captured.out.splitlines()]
    assert "exported 3 decision(s)" in captured.err
    assert "exported from a row edited after it was recorded (first: record 2 " in captured.err
    assert [(line.get("recorded_at", "")[:19], line["seq"]) for line in lines][1] == (
        hashed[:19],
        "2",
    )
    assert [("recorded_at" in line, line["seq"]) for line in lines] == [
        (True, "1"),
        (True, "2"),
        (True, "3"),
    ]
    assert _verify(audit_db, capsys)[1].startswith("TAMPERED: record 2 was edited")


def test_the_server_s_own_connections_keep_sqlite_s_text_factory(tmp_path: Path) -> None:
    """Only an auditor's (read-only) store reads edited text leniently.

    The server's reads (on the request path) keep sqlite3's own factory.
    """
    writer = SqliteAuditStore(tmp_path / "audit.db")
    reader = SqliteAuditStore(tmp_path / "audit.db", readonly=True)
    try:
        assert writer._connect().text_factory is str
        assert reader._connect().text_factory is not str
    finally:
        reader.close()
        writer.close()


@pytest.mark.parametrize("edit", ["CAST(content AS BLOB)", "CAST(X'C328' || content AS TEXT)"])
def test_a_manifest_edited_into_no_text_reads_as_no_roster_both_ways(
    audit_db: Path, edit: str
) -> None:
    """get_blob of such a manifest is no roster's JSON (edited), as verify by parts says."""
    with closing(sqlite3.connect(audit_db)) as conn, conn:
        (sha,) = conn.execute("SELECT sha256 FROM blobs WHERE kind = 'roster_parts'").fetchone()
        conn.execute(f"UPDATE blobs SET content = {edit} WHERE sha256 = ?", (sha,))
    store = SqliteAuditStore(audit_db, readonly=True)
    try:
        assert Blob(sha, BlobKind.ROSTER, "") == store.get_blob(sha)
        for get in (store.get_blob, store.stored_blob):
            report = verify_chain(store.records(), store.head(), get)
            assert (report.ok, report.problem) == (
                False,
                f"the roster blob {sha} (used by record 1) was edited",
            )
    finally:
        store.close()
