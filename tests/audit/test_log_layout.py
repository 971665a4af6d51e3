"""The SQLite log's file layout: a new log's page size; a log created before it is kept as is."""

import sqlite3
from contextlib import closing
from pathlib import Path

from caseroute.audit.store import _SCHEMA, NEW_LOG_PAGE_SIZE, SqliteAuditStore
from caseroute.audit.verify import verify_chain
from caseroute.testing import make_audit_record


def _page_size(path: Path) -> int:
    with closing(sqlite3.connect(path)) as conn:
        return int(conn.execute("PRAGMA page_size").fetchone()[0])


def _old_log(path: Path) -> None:
    """A log as the store created it before NEW_LOG_PAGE_SIZE: SQLite's default 4096 pages."""
    with closing(sqlite3.connect(path, isolation_level=None)) as conn:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.executescript(_SCHEMA)


def _stored_rows(path: Path) -> list[tuple[object, ...]]:
    with closing(sqlite3.connect(path)) as conn:
        return conn.execute("SELECT * FROM decisions ORDER BY seq").fetchall()


def test_a_new_log_has_2048_byte_pages(tmp_path: Path) -> None:
    """A log the store creates is written in 2048-byte pages (fewer bytes per commit)."""
    store = SqliteAuditStore(tmp_path / "audit.db")
    store.append([make_audit_record(1)])
    store.close()
    assert (NEW_LOG_PAGE_SIZE, _page_size(tmp_path / "audit.db")) == (2048, 2048)


def test_a_log_created_with_4096_byte_pages_keeps_them_and_its_bytes(tmp_path: Path) -> None:
    """An older log keeps 4096-byte pages; it appends, verifies and reads, row for row alike."""
    old, new = tmp_path / "old.db", tmp_path / "new.db"
    _old_log(old)
    records = [make_audit_record(n) for n in (1, 2, 3)]
    for path in (old, new):
        store = SqliteAuditStore(path)
        store.append(records[:2])
        store.append(records[2:])
        report = verify_chain(store.records(), store.head())
        assert (report.ok, report.records) == (True, 3)
        assert [r.decision_id for r in store.by_request("req2")] == ["dec_2"]
        store.close()
    reader = SqliteAuditStore(old, readonly=True)
    assert [r.seq for r in reader.records()] == [1, 2, 3]
    reader.close()
    assert (_page_size(old), _page_size(new)) == (4096, 2048)
    assert _stored_rows(old) == _stored_rows(new)
