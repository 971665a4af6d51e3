"""`caseroute audit verify` of a log that replicas are writing: one snapshot, never a false alarm.

Verify reads the chain head, the key eras, then the records and events a page at a time.
Each of those reads used to be a statement of its own (its own snapshot), so a record that
another writer committed between them was seen by the later reads and not by the earlier: an
intact log being written verified ``TAMPERED: the chain ends at record 3 but the store's head
is record 2`` (both stores; a PostgreSQL log shared by replicas is never quiet). Here a second
writer commits exactly there: after verify has read the head, before it reads the records.
"""

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from caseroute.audit.location import PostgresLocation
from caseroute.audit.postgres import PostgresAuditSink
from caseroute.audit.record import RulesetEvent
from caseroute.audit.sql_reads import SqlLogReads
from caseroute.audit.store import SqliteAuditStore
from caseroute.cli import main
from caseroute.domain.errors import AuditUnavailableError
from tests.pg import pg_server, pg_url

__all__ = ["pg_server", "pg_url"]

Writer = SqliteAuditStore | PostgresAuditSink


@pytest.fixture(params=["sqlite", "postgresql"])
def log(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, Writer]]:
    """(the --audit-db text, a writer on it): a SQLite file, or a PostgreSQL database."""
    writer: Writer
    if request.param == "sqlite":
        db = str(tmp_path / "audit.db")
        writer = SqliteAuditStore(Path(db))
    else:
        db = request.getfixturevalue("pg_url")
        writer = PostgresAuditSink(PostgresLocation(db))
    yield db, writer
    writer.close()


def _append(writer: Writer, n: int) -> str:
    """Seal chain entry ``n`` (a ruleset event: it needs no blob); its record_hash."""
    [event] = writer.append_events(
        [
            RulesetEvent(
                seq=0,
                event_id=f"evt_{n}",
                recorded_at="2026-11-21T10:00:00Z",
                action="activate",
                actor="admin:ops",
                ruleset_name="test",
                role="active",
                from_version=f"{n}",
                from_sha256="a" * 64,
                to_version=f"{n + 1}",
                to_sha256="b" * 64,
                caseroute_version="0",
                prev_hash="",
                record_hash="",
            )
        ]
    )
    return event.record_hash


def _commit_after_first_head_read(
    monkeypatch: pytest.MonkeyPatch, commit: Callable[[], object]
) -> None:
    """The first ``head()`` any store reads returns, then ``commit`` runs (another writer)."""
    read_head = SqlLogReads.head
    done: list[bool] = []

    def head_then_commit(self: SqlLogReads) -> tuple[int, str]:
        head = read_head(self)
        if not done:
            done.append(True)
            commit()
        return head

    monkeypatch.setattr(SqlLogReads, "head", head_then_commit)


def test_a_record_committed_while_verify_reads_is_no_tampering(
    log: tuple[str, Writer],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A record committed after verify read the head: ok, for the chain as of that head."""
    db, writer = log
    _append(writer, 1)
    second = _append(writer, 2)
    _commit_after_first_head_read(monkeypatch, lambda: _append(writer, 3))

    code = main(["audit", "verify", "--audit-db", db])

    out = capsys.readouterr().out
    assert (code, out.splitlines()[0].split(";")[0]) == (
        0,
        "ok: 2 record(s) (2 of them ruleset event(s)), every link and blob verified",
    )
    assert f"head 2:{second} " in out
    assert writer.head()[0] == 3  # the later record is there, for the next verify


def test_a_read_failing_inside_a_snapshot_is_unavailable_and_ends_it(
    log: tuple[str, Writer],
) -> None:
    """A read refused mid-snapshot is AuditUnavailableError; the next read needs no snapshot."""
    _, writer = log
    _append(writer, 1)
    with writer.snapshot():
        assert writer.head()[0] == 1
        with pytest.raises(AuditUnavailableError, match="cannot be read"):
            writer._fetch("SELECT nothing FROM no_such_table", ())
    assert writer.head()[0] == 1


def test_a_snapshot_without_a_connection_is_unavailable(pg_url: str) -> None:
    """No connection to hold (the pool closed, the database gone): unavailable, as any read."""
    sink = PostgresAuditSink(PostgresLocation(pg_url), timeout_s=1)
    sink._pool.close()
    try:
        with pytest.raises(AuditUnavailableError, match="cannot be read"), sink.snapshot():
            pytest.fail("the block must not run without its snapshot")
    finally:
        sink.close()
