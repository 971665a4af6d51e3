"""The SQLite decision log's write transaction: its statements, its lock file, other writers."""

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import fields, replace
from pathlib import Path
from typing import Any

import pytest

from caseroute.audit.record import GENESIS, AuditRecord, Blob, BlobKind, blob_sha256, placed
from caseroute.audit.store import SqliteAuditStore
from caseroute.audit.verify import verify_chain
from caseroute.domain.errors import AuditUnavailableError, IdempotencyConflictError
from caseroute.testing import make_audit_record


def _record(n: int, request: str = "req", body: str = "x") -> AuditRecord:
    return make_audit_record(
        n,
        decision_id=f"dec_{request}_{n}",
        request_id=request,
        request_sha256=f"sha-{request}-{body}",
        input={"case": {"case_id": f"C{n}"}},
        decision={"outcome": "ASSIGN", "n": n},
    )


def _traced(store: SqliteAuditStore, statements: list[str]) -> None:
    """Record every statement of the connections the store opens from now on (its writer's)."""
    connect = store._connect

    def traced() -> sqlite3.Connection:
        conn = connect()
        conn.set_trace_callback(lambda sql: statements.append(" ".join(sql.split()[:3])))
        return conn

    store._connect = traced  # type: ignore[method-assign]


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteAuditStore]:
    """A fresh store in a temporary directory."""
    made = SqliteAuditStore(tmp_path / "audit.db")
    yield made
    made.close()


@pytest.fixture
def other(store: SqliteAuditStore) -> Iterator[SqliteAuditStore]:
    """A second writer on the same file (another worker process: its own connection and lock)."""
    made = SqliteAuditStore(store.path)
    yield made
    made.close()


def test_a_lone_call_commits_in_five_statements(tmp_path: Path) -> None:
    """One call alone in its transaction: no savepoint, key and head in one read, head updated."""
    statements: list[str] = []
    store = SqliteAuditStore(tmp_path / "audit.db")
    _traced(store, statements)
    store.append([_record(1, "r1")])  # the head row exists from here on
    del statements[:]
    store.append([_record(2, "r2")])
    store.close()
    assert statements == [
        "BEGIN IMMEDIATE",
        "SELECT (SELECT new_fingerprint",
        "INSERT INTO decisions",
        "UPDATE chain_head SET",
        "COMMIT",
    ]


def test_a_retry_alone_writes_no_head(tmp_path: Path) -> None:
    """A retry's transaction inserts nothing, so it reads the stored record and leaves the head."""
    statements: list[str] = []
    store = SqliteAuditStore(tmp_path / "audit.db")
    _traced(store, statements)
    (first,) = store.append([_record(1)])
    del statements[:]
    (again,) = store.append([_record(1)])
    store.close()
    assert (again.existed, again.record) == (True, first.record)
    assert statements == [
        "BEGIN IMMEDIATE",
        "SELECT (SELECT new_fingerprint",
        "INSERT INTO decisions",
        "SELECT seq, decision_id,",
        "COMMIT",
    ]


def test_the_first_record_of_a_log_creates_its_head(store: SqliteAuditStore) -> None:
    """An empty log has no head row: the first record starts at GENESIS and inserts the head."""
    (first,) = store.append([_record(1)])
    assert (first.record.seq, first.record.prev_hash) == (1, GENESIS)
    assert (1, first.record.record_hash) == store.head()


def test_another_writers_record_between_two_of_ours_is_chained_after(
    store: SqliteAuditStore, other: SqliteAuditStore
) -> None:
    """The head is read in each transaction: a record another process wrote in between is kept."""
    (a1,) = store.append([_record(1, "a")])
    (b1,) = other.append([_record(1, "b")])
    (a2,) = store.append([_record(2, "a")])
    assert [a1.record.seq, b1.record.seq, a2.record.seq] == [1, 2, 3]
    assert b1.record.record_hash == a2.record.prev_hash
    report = verify_chain(store.records(), store.head())
    assert (report.ok, report.records) == (True, 3)


def test_a_decision_another_writer_stored_comes_back_and_conflicts(
    store: SqliteAuditStore, other: SqliteAuditStore
) -> None:
    """Across processes: the other writer's record comes back; a changed input is refused."""
    (stored,) = other.append([_record(1)])
    (again,) = store.append([_record(1)])
    assert (True, stored.record) == (again.existed, again.record)
    with pytest.raises(IdempotencyConflictError):
        store.append([_record(1, body="changed")])
    assert (1, stored.record.record_hash) == store.head()


def test_a_lone_refused_call_stores_neither_its_records_nor_its_blobs(
    store: SqliteAuditStore,
) -> None:
    """Without a savepoint the transaction's rollback undoes the call: records, blobs, head."""
    store.append([_record(2)])
    blob = Blob(blob_sha256(BlobKind.RULESET, "rules: []"), BlobKind.RULESET, "rules: []")
    with pytest.raises(IdempotencyConflictError):
        store.append([_record(1), _record(2, body="changed")], [blob])
    assert (store.get("dec_req_1"), store.get_blob(blob.sha256)) == (None, None)
    (next_one,) = store.append([_record(3)])
    assert next_one.record.seq == 2
    assert verify_chain(store.records(), store.head()).ok


def _in_one_batch(
    store: SqliteAuditStore, calls: list[tuple[list[AuditRecord], list[Blob]]]
) -> list[str]:
    """Append ``calls`` so that they share one transaction, in order; the refused calls' ids.

    A first call, committing in its own thread, holds the commit (at its process lock) until
    every call is queued.
    """
    writing, release = threading.Event(), threading.Event()
    queued = threading.Semaphore(0)
    process_lock, put = store._process_lock, store._queue.put

    @contextmanager
    def held_lock() -> Iterator[None]:
        writing.set()
        release.wait(30)
        with process_lock():
            yield

    def counted_put(item: Any) -> None:
        put(item)
        queued.release()

    store._process_lock = held_lock  # type: ignore[method-assign]
    store._queue.put = counted_put  # type: ignore[method-assign,assignment]
    refused: list[str] = []

    def append(records: list[AuditRecord], blobs: list[Blob]) -> None:
        try:
            store.append(records, blobs)
        except IdempotencyConflictError:
            refused.append(records[0].request_id)

    blocker = threading.Thread(target=append, args=([_record(1, "first")], []))
    blocker.start()
    assert writing.wait(30)  # the blocker's caller commits it alone, never queued
    threads = []
    for call in calls:
        threads.append(threading.Thread(target=append, args=call))
        threads[-1].start()
        assert queued.acquire(timeout=30)  # queued before the next one starts
    release.set()
    for t in [blocker, *threads]:
        t.join(30)
    store._process_lock = process_lock  # type: ignore[method-assign]
    store._queue.put = put  # type: ignore[method-assign]
    return refused


def test_calls_sharing_a_transaction_are_refused_alone(tmp_path: Path) -> None:
    """One batch, a savepoint per call: each refused call is undone alone, blobs included."""
    statements: list[str] = []
    store = SqliteAuditStore(tmp_path / "audit.db")
    _traced(store, statements)
    store.append([_record(9, "old")])
    blob_b = Blob(blob_sha256(BlobKind.RULESET, "b: 1"), BlobKind.RULESET, "b: 1")
    blob_c = Blob(blob_sha256(BlobKind.RULESET, "c: 1"), BlobKind.RULESET, "c: 1")
    blob_d = Blob(blob_sha256(BlobKind.RULESET, "d: 1"), BlobKind.RULESET, "d: 1")
    calls = [
        ([_record(2, "a")], []),
        ([_record(3, "b"), _record(9, "old", body="changed")], [blob_b]),
        ([_record(9, "old", body="changed")], [blob_c]),
        ([_record(4, "d")], [blob_d]),
    ]
    del statements[:]
    refused = _in_one_batch(store, calls)
    store.close()
    # Sorted: the refused callers wake in whatever order the scheduler picks.
    assert sorted(refused) == ["b", "old"]
    assert statements[5:] == [  # after the blocker's own transaction
        "BEGIN IMMEDIATE",
        "SELECT (SELECT new_fingerprint",
        "SAVEPOINT item",
        "INSERT INTO decisions",  # a
        "RELEASE item",
        "SAVEPOINT item",
        "INSERT OR IGNORE",  # b's blob
        "INSERT INTO decisions",  # b's first record
        "INSERT INTO decisions",  # b's second: stored already
        "SELECT seq, decision_id,",
        "ROLLBACK TO item",
        "RELEASE item",
        "SAVEPOINT item",
        "INSERT OR IGNORE",  # c's blob
        "INSERT INTO decisions",  # c: stored already
        "SELECT seq, decision_id,",
        "ROLLBACK TO item",
        "RELEASE item",
        "SAVEPOINT item",
        "INSERT OR IGNORE",  # d's blob
        "INSERT INTO decisions",  # d
        "RELEASE item",
        "UPDATE chain_head SET",
        "COMMIT",
    ]
    stored = [r.decision_id for r in store.query(after_seq=1)]
    assert stored == ["dec_first_1", "dec_a_2", "dec_d_4"]
    assert [store.get_blob(b.sha256) for b in (blob_b, blob_c, blob_d)] == [None, None, blob_d]
    assert verify_chain(store.records(), store.head()).ok


def _lock_fds(store: SqliteAuditStore) -> list[str]:
    """This process's descriptors open on the store's lock file."""
    lock = store.path.with_name(store.path.name + ".lock")
    fds = []
    for fd in Path("/proc/self/fd").iterdir():
        try:
            if fd.readlink() == lock:
                fds.append(fd.name)
        except OSError:  # closed since the listing
            continue
    return fds


def test_the_writer_keeps_its_lock_file_open_until_closed(store: SqliteAuditStore) -> None:
    """One descriptor on the lock file serves every transaction; close() releases it."""
    store.append([_record(1)])
    kept = _lock_fds(store)
    store.append([_record(2)])
    assert (1, kept) == (len(kept), _lock_fds(store))
    store.close()
    assert _lock_fds(store) == []


def test_a_rotation_by_another_process_stops_this_writer(
    store: SqliteAuditStore, other: SqliteAuditStore
) -> None:
    """The key is read in each transaction: after another process rotates it, we refuse."""
    store.claim_key("f1" * 8, "2026-11-21T10:00:00Z")
    store.append([_record(1)])
    other.rotate_key("f2" * 8, "2026-11-21T11:00:00Z")
    with pytest.raises(AuditUnavailableError):
        store.append([_record(2)])
    assert store.head()[0] == 2  # record 1, then the rotation sealed at 2: nothing after it


def test_placed_is_replace_of_the_position_and_hashes() -> None:
    """The writer's field-by-field copy equals dataclasses.replace, every other field kept."""
    values: dict[str, object] = {f.name: f.name for f in fields(AuditRecord)}
    record = AuditRecord(**{**values, "seq": 0, "input": {"i": 1}, "decision": {"d": 2}})  # type: ignore[arg-type]
    assert replace(record, seq=9, prev_hash="p" * 64, record_hash="h" * 64) == placed(
        record, 9, "p" * 64, "h" * 64
    )
    assert placed(record, 9, "p", "h").hashed_text is None


def test_a_decision_id_repeated_in_one_transaction_is_stored_once(
    store: SqliteAuditStore,
) -> None:
    """The second copy is the first's retry (returned, not inserted); a changed one conflicts."""
    first, again = store.append([_record(1), _record(1)])
    assert (False, True, first.record) == (first.existed, again.existed, again.record)
    with pytest.raises(IdempotencyConflictError):
        store.append([_record(2), _record(2, body="changed")])
    assert (store.head()[0], store.get("dec_req_2")) == (1, None)
