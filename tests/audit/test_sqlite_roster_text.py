"""``SqliteAuditStore.roster_text``: a roster snapshot read within a caller's time and size.

The workers of one ``caseroute serve`` (or replicas sharing one file) share a SQLite log: a
worker sent a ``roster_sha256`` it has not seen loads the snapshot another stored
(``grpc_api.roster_log``), bounded as the PostgreSQL sink's read is
(tests/audit/test_postgres_roster_text.py).
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any

import pytest

from caseroute.audit.record import Blob, BlobKind
from caseroute.audit.roster_blob import roster_blobs
from caseroute.audit.sqlite_lookups import LOOKUP_THREADS
from caseroute.audit.store import RosterTooLargeError, SqliteAuditStore
from caseroute.domain.errors import AuditUnavailableError
from caseroute.domain.fingerprint import fingerprint_roster, roster_json
from caseroute.domain.roster import Roster
from caseroute.testing import make_agent, make_roster

ROSTER = make_roster(*(make_agent(f"n{i}") for i in range(40)))
BIG = 1 << 24


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteAuditStore]:
    """A store over a new log (its blobs written straight into the table by the tests)."""
    opened = SqliteAuditStore(tmp_path / "audit.db")
    yield opened
    opened.close()


def _store(store: SqliteAuditStore, blobs: list[Blob]) -> None:
    with closing(sqlite3.connect(store.path)) as conn, conn:  # closed: no lock kept after
        conn.executemany(
            "INSERT INTO blobs (sha256, kind, content) VALUES (?, ?, ?)",
            [(b.sha256, b.kind.value, b.content) for b in blobs],
        )


def _in_parts(roster: Roster = ROSTER) -> tuple[str, list[Blob]]:
    fingerprint = fingerprint_roster(roster, keep_texts=True)
    texts = fingerprint.take_texts() or ()
    blobs = roster_blobs(
        fingerprint.sha256,
        fingerprint.header_json,
        fingerprint.agent_digests,
        lambda start, end: texts[start:end],
        lambda _key: False,
    )
    return fingerprint.sha256, blobs


def test_a_roster_stored_in_parts_or_whole_reads_as_its_canonical_json(
    store: SqliteAuditStore,
) -> None:
    """Manifest and chunks assemble to roster_json; a whole blob is returned as stored."""
    sha, parts = _in_parts()
    assert store.roster_text(sha, timeout_s=5, max_agents=40, max_bytes=BIG) is None
    assert len(parts) > 2  # a manifest and several chunks
    _store(store, parts)
    assert store.roster_text(sha, timeout_s=5, max_agents=40, max_bytes=BIG) == roster_json(ROSTER)
    whole = "0" * 64
    _store(store, [Blob(whole, BlobKind.ROSTER, roster_json(ROSTER))])
    assert store.roster_text(whole, timeout_s=5, max_agents=40, max_bytes=BIG) == roster_json(
        ROSTER
    )


def test_a_ruleset_a_missing_chunk_or_an_edited_value_is_no_roster(
    store: SqliteAuditStore,
) -> None:
    """Another kind, a manifest whose chunk is gone, bytes where text was: None."""
    sha, (manifest, _first, *rest) = _in_parts()  # the first chunk never stored
    _store(store, [manifest, *rest, Blob("1" * 64, BlobKind.RULESET, "name: x")])
    assert store.roster_text("1" * 64, timeout_s=5, max_agents=40, max_bytes=BIG) is None
    assert store.roster_text(sha, timeout_s=5, max_agents=40, max_bytes=BIG) is None
    with sqlite3.connect(store.path) as conn:
        conn.execute(
            "INSERT INTO blobs (sha256, kind, content) VALUES (?, ?, ?)",
            ("2" * 64, BlobKind.ROSTER.value, roster_json(ROSTER).encode()),
        )
    assert store.roster_text("2" * 64, timeout_s=5, max_agents=40, max_bytes=BIG) is None


@pytest.mark.parametrize(
    ("max_agents", "max_bytes", "why"),
    [
        (40, 100, "bytes, over 100"),  # the manifest alone is larger
        (1, BIG, "its manifest lists"),  # more chunks than agents allowed
        (40, 2_000, "more than 2000"),  # the manifest fits, the chunks do not
    ],
)
def test_a_roster_over_the_bounds_is_refused_without_its_content(
    store: SqliteAuditStore, max_agents: int, max_bytes: int, why: str
) -> None:
    """Too many chunks for the agents allowed, or too many bytes: RosterTooLargeError."""
    sha, parts = _in_parts()
    _store(store, parts)
    with pytest.raises(RosterTooLargeError, match=why):
        store.roster_text(sha, timeout_s=5, max_agents=max_agents, max_bytes=max_bytes)


def test_a_read_past_its_time_is_interrupted_and_the_next_one_works(
    store: SqliteAuditStore,
) -> None:
    """No time left: the statements are interrupted (AuditUnavailableError), then read again."""
    big = make_roster(*(make_agent(f"m{i}") for i in range(3000)))
    sha, parts = _in_parts(big)
    _store(store, parts)
    for _ in range(3):
        with pytest.raises(AuditUnavailableError):
            store.roster_text(sha, timeout_s=0, max_agents=3000, max_bytes=BIG)
    # Each failed read's connection was closed, not kept beside its replacement.
    assert len(store._idle_lookups) <= 1
    assert store.roster_text(sha, timeout_s=30, max_agents=3000, max_bytes=BIG) == roster_json(big)


def test_a_log_another_connection_holds_exclusively_gives_up_by_the_deadline(
    store: SqliteAuditStore,
) -> None:
    """A log held in exclusive locking mode: AuditBusyError in the lookup's time, not 10 s.

    SQLite's busy wait (the store's 10 s busy timeout) calls no progress handler; a connection
    in exclusive locking mode (an operator's shell, a tool) that took the file while no
    caseroute connection had it open blocks even a WAL reader. Once released, it reads.
    """
    sha, parts = _in_parts()
    _store(store, parts)
    locker = sqlite3.connect(store.path, isolation_level=None)
    try:
        locker.execute("PRAGMA locking_mode=EXCLUSIVE")
        locker.execute("SELECT count(*) FROM blobs").fetchall()  # takes the lock, kept
        started = time.monotonic()
        with pytest.raises(AuditUnavailableError) as raised:
            store.roster_text(sha, timeout_s=0.3, max_agents=40, max_bytes=BIG)
        assert time.monotonic() - started < 5  # an upper bound on the hang (10 s before)
        assert type(raised.value).__name__ == "AuditBusyError"  # roster_log counts it busy
    finally:
        locker.close()
    assert store.roster_text(sha, timeout_s=5, max_agents=40, max_bytes=BIG) == roster_json(ROSTER)


_HOLD_READ_LOCKS = """
import fcntl, os, sys
fd = os.open(sys.argv[1], os.O_RDWR)
# SQLite's WAL-index locks (unix VFS, from byte 120): checkpoint, recover, the five read marks:
# what a process recovering the log holds (here held, as by one frozen mid-recovery).
fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 7, 121, os.SEEK_SET)
print("held", flush=True)
sys.stdin.read()
"""


@contextmanager
def _read_locks_held(store: SqliteAuditStore) -> Iterator[subprocess.Popen[str]]:
    """Every WAL read lock of ``store``'s log held by another process for the block."""
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLD_READ_LOCKS, f"{store.path}-shm"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline() == "held\n"
        yield holder
    finally:
        holder.communicate(timeout=30)  # stdin closed: the locks are released


def test_a_log_whose_read_locks_another_process_holds_gives_up_by_the_deadline(
    store: SqliteAuditStore,
) -> None:
    """Every WAL read lock held elsewhere: AuditBusyError in the lookup's time, not ~10 s.

    SQLite then retries inside the statement for about 10 s (``locking protocol`` at the end),
    calling neither the busy handler nor the progress handler: the caller stops waiting.
    """
    sha, parts = _in_parts()
    _store(store, parts)
    assert store.roster_text(sha, timeout_s=5, max_agents=40, max_bytes=BIG) is not None
    with _read_locks_held(store):
        started = time.monotonic()
        with pytest.raises(AuditUnavailableError) as raised:
            store.roster_text(sha, timeout_s=0.3, max_agents=40, max_bytes=BIG)
        assert time.monotonic() - started < 5  # an upper bound on the hang (~10 s before)
        assert type(raised.value).__name__ == "AuditBusyError"
    assert store.roster_text(sha, timeout_s=30, max_agents=40, max_bytes=BIG) == roster_json(ROSTER)


class _Recorded:
    """A connection whose close is recorded (as ``closed <n>``, n: the order it was opened)."""

    def __init__(self, conn: sqlite3.Connection, n: int, events: list[str]) -> None:
        self._conn, self._n, self._events = conn, n, events
        self.closed = threading.Event()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)

    def close(self) -> None:
        self._events.append(f"closed {self._n}")
        self._conn.close()
        self.closed.set()


def _recording(
    store: SqliteAuditStore, monkeypatch: pytest.MonkeyPatch
) -> tuple[list[str], list[_Recorded]]:
    """Every connection the store opens from now on, recorded; the events their closes add."""
    events: list[str] = []
    opened: list[_Recorded] = []
    real = store._open

    def recorded(*args: Any) -> _Recorded:
        opened.append(_Recorded(real(*args), len(opened), events))
        return opened[-1]

    monkeypatch.setattr(store, "_open", recorded)
    return events, opened


def test_closing_the_store_leaves_a_lookup_still_reading_to_close_its_own_connection(
    store: SqliteAuditStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """close() neither waits for a lookup still reading nor closes its connection (a segfault).

    The lookup's caller gives up at its deadline while the read goes on; close() closes the
    idle lookup connections and returns; the read, released after, ends on its connection and
    closes it itself. close() used to wait for the read (~10 s where SQLite retries).
    """
    sha, parts = _in_parts()
    _store(store, parts)
    events, opened = _recording(store, monkeypatch)
    assert store.roster_text(sha, timeout_s=5, max_agents=40, max_bytes=BIG) is not None
    entered, release = threading.Event(), threading.Event()
    real = store._read_roster
    read: list[str | None] = []

    def held(sha256: str, deadline: float, **kwargs: Any) -> str | None:
        if entered.is_set():  # only the first read is held
            return real(sha256, deadline, **kwargs)
        entered.set()
        release.wait(10)  # released by the test (the bound: before the fix close() waited)
        # Past its caller's deadline now: given time of its own, it reads all it would.
        read.append(real(sha256, time.monotonic() + 30, **kwargs))
        events.append("read ended")
        return read[-1]

    monkeypatch.setattr(store, "_read_roster", held)
    with pytest.raises(AuditUnavailableError):
        store.roster_text(sha, timeout_s=0.05, max_agents=40, max_bytes=BIG)
    assert entered.is_set()
    # Another lookup meanwhile: its own connection (the held one's is taken), idle once done.
    assert store.roster_text(sha, timeout_s=5, max_agents=40, max_bytes=BIG) is not None
    assert len(opened) == 2
    store.close()
    events.append("store closed")
    release.set()
    assert opened[0].closed.wait(30)  # the held lookup's: closed by its thread
    assert events == ["closed 1", "store closed", "read ended", "closed 0"]
    assert read == [roster_json(ROSTER)]  # on its connection, open after close()


def test_closing_the_store_does_not_wait_for_a_lookup_sqlite_holds(
    store: SqliteAuditStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every WAL read lock held elsewhere: close() returns while the lookup's read still retries.

    SQLite retries that read ~10 s inside one statement, checking neither the busy timeout nor
    the progress handler nor ``interrupt()``: close() waited for it, holding up a server's
    shutdown. Now the read's daemon thread (not joined at the interpreter's exit either) closes
    its connection once the locks are released and the read ends.
    """
    sha, parts = _in_parts()
    _store(store, parts)
    _events, opened = _recording(store, monkeypatch)
    assert store.roster_text(sha, timeout_s=5, max_agents=40, max_bytes=BIG) is not None
    with _read_locks_held(store) as holder:
        with pytest.raises(AuditUnavailableError):
            store.roster_text(sha, timeout_s=0.3, max_agents=40, max_bytes=BIG)
        store.close()
        # Returned while the locks are held: the read still retries on its connection.
        assert holder.poll() is None
        assert [conn.closed.is_set() for conn in opened] == [False]
        lookups = [t for t in threading.enumerate() if t.name == "roster-lookup"]
        assert lookups
        assert all(t.daemon for t in lookups)
    assert opened[0].closed.wait(30)  # the read ended: its thread closed its connection


def test_with_every_lookup_slot_held_by_a_stuck_read_a_lookup_is_busy_at_once(
    store: SqliteAuditStore, caplog: pytest.LogCaptureFixture
) -> None:
    """Reads SQLite holds keep their slots past their callers' deadlines: a new one is busy.

    LOOKUP_THREADS lookups given up at their deadline still read (SQLite retries ~10 s where
    every WAL read lock is held elsewhere); another lookup then waits its own deadline for a
    slot and answers busy, saying why, instead of starting yet another stuck thread.
    """
    sha, parts = _in_parts()
    _store(store, parts)
    assert store.roster_text(sha, timeout_s=5, max_agents=40, max_bytes=BIG) is not None
    with _read_locks_held(store):
        for _ in range(LOOKUP_THREADS):
            with pytest.raises(AuditUnavailableError):
                store.roster_text(sha, timeout_s=0.2, max_agents=40, max_bytes=BIG)
        caplog.clear()
        with pytest.raises(AuditUnavailableError) as raised:
            store.roster_text(sha, timeout_s=0.2, max_agents=40, max_bytes=BIG)
        assert type(raised.value).__name__ == "AuditBusyError"
        assert f"{LOOKUP_THREADS} earlier lookups are still reading" in caplog.text
    # The locks released, the stuck reads end and hand their slots back.
    assert store.roster_text(sha, timeout_s=30, max_agents=40, max_bytes=BIG) == roster_json(ROSTER)


def test_a_lookup_whose_thread_cannot_start_gives_its_slot_back(
    store: SqliteAuditStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No thread to read on (the process at its thread limit): the error, and no slot lost."""
    sha, parts = _in_parts()
    _store(store, parts)

    def refused(_self: threading.Thread) -> None:
        raise RuntimeError("can't start new thread")

    with monkeypatch.context() as patched:
        patched.setattr(threading.Thread, "start", refused)
        for _ in range(LOOKUP_THREADS + 1):
            with pytest.raises(RuntimeError, match="can't start new thread"):
                store.roster_text(sha, timeout_s=5, max_agents=40, max_bytes=BIG)
    assert store.roster_text(sha, timeout_s=5, max_agents=40, max_bytes=BIG) == roster_json(ROSTER)
