"""A lone append commits in its caller's thread; overlapping appends still share the writer's."""

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from caseroute.audit.record import AuditRecord
from caseroute.audit.store import SqliteAuditStore
from caseroute.audit.verify import verify_chain
from caseroute.testing import make_audit_record


def _record(n: int) -> AuditRecord:
    return make_audit_record(
        n,
        decision_id=f"dec_r{n}_0",
        request_id=f"r{n}",
        request_sha256=f"sha-r{n}",
        input={"case": {"case_id": f"C{n}"}},
        decision={"outcome": "ASSIGN", "n": n},
    )


class _WatchedLock:
    """The store's commit lock, telling the test of every acquire attempt (thread, blocking)."""

    def __init__(self, real: Any) -> None:
        self._real = real
        self.attempts: list[tuple[str, bool]] = []
        self.writer_waits = threading.Event()

    def acquire(self, blocking: bool = True) -> bool:
        self.attempts.append((threading.current_thread().name, blocking))
        if blocking and threading.current_thread().name == "audit-writer":
            self.writer_waits.set()
        return bool(self._real.acquire(blocking))

    def release(self) -> None:
        self._real.release()

    def __enter__(self) -> bool:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


def _committers(store: SqliteAuditStore) -> list[tuple[str, list[str]]]:
    """Wrap the store's commit: each transaction's thread name and request ids, in order."""
    seen: list[tuple[str, list[str]]] = []
    commit = store._commit

    def traced(conn: Any, batch: list[Any]) -> None:
        ids = [r.record.request_id for item in batch for r in item.records]
        seen.append((threading.current_thread().name, ids))
        commit(conn, batch)

    store._commit = traced  # type: ignore[method-assign]
    return seen


def _counted_puts(store: SqliteAuditStore) -> tuple[threading.Semaphore, list[Any]]:
    """Wrap the writer queue's put: released once per item queued, and the items, in order."""
    queued, items = threading.Semaphore(0), []
    put = store._queue.put

    def counted_put(item: Any) -> None:
        items.append(item)
        put(item)
        queued.release()

    store._queue.put = counted_put  # type: ignore[method-assign,assignment]
    return queued, items


def test_a_lone_append_commits_in_the_calling_thread(tmp_path: Path) -> None:
    """The writer idle: the caller's own thread runs the transaction (no hand-off, no wake-up).

    The queue is not touched: a put would wake the writer thread for nothing (issue 13).
    """
    store = SqliteAuditStore(tmp_path / "audit.db")
    _, puts = _counted_puts(store)
    try:
        seen = _committers(store)
        stored = [store.append([_record(n)])[0] for n in (1, 2)]
        assert (seen, puts) == ([("MainThread", ["r1"]), ("MainThread", ["r2"])], [])
        assert [s.record.seq for s in stored] == [1, 2]
        assert (store.commits, verify_chain(store.records(), store.head()).ok) == (2, True)
    finally:
        store.close()


@contextmanager
def _leading(store: SqliteAuditStore) -> Iterator[tuple[threading.Thread, threading.Event]]:
    """A caller thread ``lead`` committing r0 itself, held at its process lock until released."""
    writing, release = threading.Event(), threading.Event()
    process_lock = store._process_lock

    @contextmanager
    def held_lock() -> Iterator[None]:
        writing.set()
        release.wait(30)
        with process_lock():
            yield

    store._process_lock = held_lock  # type: ignore[method-assign]
    lead = threading.Thread(target=store.append, args=([_record(0)],), name="lead")
    lead.start()
    assert writing.wait(30)
    yield lead, release
    release.set()
    lead.join(30)
    store._process_lock = process_lock  # type: ignore[method-assign]


def test_calls_behind_a_callers_commit_go_to_the_writer_together_in_order(
    tmp_path: Path,
) -> None:
    """A caller's commit under way: later calls wait for the writer, which commits them as one."""
    store = SqliteAuditStore(tmp_path / "audit.db")
    watched = _WatchedLock(store._committing)
    store._committing = watched  # type: ignore[assignment]
    queued, _ = _counted_puts(store)
    try:
        seen = _committers(store)
        with _leading(store):  # r0 committed by its own caller, never queued
            first = threading.Thread(target=store.append, args=([_record(1)],), name="first")
            first.start()
            assert queued.acquire(timeout=30)
            assert watched.writer_waits.wait(30)  # the writer took r1 and waits for the lock
            second = threading.Thread(target=store.append, args=([_record(2)],), name="second")
            second.start()
            assert queued.acquire(timeout=30)  # r2 queued before the lead is released
        for t in (first, second):
            t.join(30)
        assert seen == [("lead", ["r0"]), ("audit-writer", ["r1", "r2"])]
        assert (store.commits, verify_chain(store.records(), store.head()).ok) == (2, True)
    finally:
        store.close()


def test_with_group_commit_off_a_lone_call_commits_only_its_own_item(tmp_path: Path) -> None:
    """max_batch=1: the calling thread's transaction holds its one item, as the writer's would."""
    store = SqliteAuditStore(tmp_path / "audit.db", max_batch=1)
    try:
        seen = _committers(store)
        store.append([_record(1)])
        assert (seen, store.commits) == ([("MainThread", ["r1"])], 1)
    finally:
        store.close()


class _PausedWriterLock(_WatchedLock):
    """The commit lock, holding the writer thread back just before it takes the lock."""

    def __init__(self, real: Any) -> None:
        super().__init__(real)
        self.go = threading.Event()

    def acquire(self, blocking: bool = True) -> bool:
        if blocking and threading.current_thread().name == "audit-writer":
            self.writer_waits.set()
            assert self.go.wait(30)
        return bool(self._real.acquire(blocking))


def test_a_call_while_the_writer_holds_an_item_queues_behind_it(tmp_path: Path) -> None:
    """The writer took an item but has not locked yet: a new call leaves the commit to it.

    The commit lock is free at that instant; committing here would put this call before one
    that queued earlier. The writer takes both, in order, in one transaction.
    """
    store = SqliteAuditStore(tmp_path / "audit.db")
    paused = _PausedWriterLock(store._committing)
    store._committing = paused  # type: ignore[assignment]
    queued, _ = _counted_puts(store)
    try:
        seen = _committers(store)
        with _leading(store) as (lead, release):
            first = threading.Thread(target=store.append, args=([_record(1)],), name="first")
            first.start()
            assert queued.acquire(timeout=30)
            assert paused.writer_waits.wait(30)  # the writer holds r1, before the lock
            release.set()
            lead.join(30)  # r0 committed: the commit lock is free, the writer still paused
        second = threading.Thread(target=store.append, args=([_record(2)],), name="second")
        second.start()
        assert queued.acquire(timeout=30)  # r2 queued, not committed by its caller
        paused.go.set()
        for t in (first, second):
            t.join(30)
        assert seen == [("lead", ["r0"]), ("audit-writer", ["r1", "r2"])]
        assert (store.commits, verify_chain(store.records(), store.head()).ok) == (2, True)
    finally:
        paused.go.set()
        store.close()


def test_a_stop_marker_met_while_gathering_stays_queued_for_the_writer(tmp_path: Path) -> None:
    """Closing right behind a call: its record is committed and the writer still stops."""
    store = SqliteAuditStore(tmp_path / "audit.db")
    gather = store._gather

    def close_then_gather(batch: list[Any]) -> list[Any]:
        if threading.current_thread().name == "MainThread" and not store._closed:
            with store._closing:  # as close() would, right behind this call
                store._closed = True
                store._queue.put(None)
        return gather(batch)

    store._gather = close_then_gather  # type: ignore[method-assign]
    (stored,) = store.append([_record(1)])
    store.close()
    assert store._writer is not None
    assert (stored.record.seq, store.commits, store._writer.is_alive()) == (1, 1, False)
