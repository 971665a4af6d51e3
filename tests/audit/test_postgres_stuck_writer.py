"""A session stuck holding the chain head's lock stalls no replica for good.

Every replica's writer takes the head row ``FOR UPDATE``. A replica frozen inside its
transaction (paused, swapped out, cut off without a reset) used to hold that lock for as long
as PostgreSQL kept its session: every other replica's writer waited on it without a bound,
their callers hung past any deadline (never UNAVAILABLE), and health stayed SERVING. Each
test waits for the append itself to return, within a deadline, never for a fixed time.
"""

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import psycopg
import pytest

from caseroute.audit.location import PostgresLocation
from caseroute.audit.postgres import PostgresAuditSink
from caseroute.audit.verify import verify_chain
from caseroute.domain.errors import AuditUnavailableError
from caseroute.testing import make_audit_record
from tests.pg import pg_server, pg_url

__all__ = ["pg_server", "pg_url"]

DEADLINE_S = 60.0
"""Longest an append may take here; the sinks' own bounds are 1-2 s."""
LOCK_HEAD = "SELECT seq FROM chain_head WHERE id = 1 FOR UPDATE"


def _append_within_deadline(sink: PostgresAuditSink, n: int) -> BaseException | None:
    """Append record ``n`` on a thread: its error (None: stored); fails past the deadline."""
    outcome: list[BaseException | None] = []

    def append() -> None:
        try:
            sink.append([make_audit_record(n, decision_id=f"dec_{n}")])
        except Exception as exc:  # noqa: BLE001 - the outcome under test
            outcome.append(exc)
        else:
            outcome.append(None)

    thread = threading.Thread(target=append, daemon=True)
    thread.start()
    thread.join(DEADLINE_S)
    assert outcome, f"the append still waits after {DEADLINE_S} s: the head row's lock"
    return outcome[0]


@contextmanager
def _head_locked(connect: Callable[[], psycopg.Connection[object]]) -> Iterator[None]:
    """A session holding the head row's lock, idle inside its transaction, for the block."""
    with connect() as holder:
        holder.execute("BEGIN")
        holder.execute(LOCK_HEAD)
        try:
            yield
        finally:
            if not holder.closed and not holder.broken:
                holder.execute("ROLLBACK")


def test_a_writer_behind_a_held_head_lock_is_refused_in_time(pg_url: str) -> None:
    """Another session holds the head row: the append is refused UNAVAILABLE after timeout_s."""
    sink = PostgresAuditSink(PostgresLocation(pg_url), timeout_s=1)
    try:
        with _head_locked(lambda: psycopg.connect(pg_url, autocommit=True)):
            error = _append_within_deadline(sink, 1)
        assert isinstance(error, AuditUnavailableError)
        assert str(error).startswith("the decision log cannot be written")
        assert _append_within_deadline(sink, 2) is None  # the lock gone: writes again
        report = verify_chain(sink.records(), sink.head())
        assert (report.ok, report.records) == (True, 1)
    finally:
        sink.close()


def test_a_replica_stuck_inside_its_transaction_loses_the_head_lock(pg_url: str) -> None:
    """A caseroute session idle in its transaction is ended by PostgreSQL; the others write."""
    stuck = PostgresAuditSink(PostgresLocation(pg_url), timeout_s=1)
    other = PostgresAuditSink(PostgresLocation(pg_url), timeout_s=30)
    try:
        with stuck._pool.connection() as conn:  # one of its sessions, as its writer has them
            conn.execute("BEGIN")
            conn.execute(LOCK_HEAD)
            # The replica froze here. The other waits on the lock (30 s would refuse it)...
            assert _append_within_deadline(other, 1) is None
            # ...and the stuck session's transaction is gone, with whatever it had not
            # committed: its next statement finds the session ended.
            with pytest.raises(psycopg.errors.IdleInTransactionSessionTimeout):
                conn.execute("SELECT 1")
        report = verify_chain(other.records(), other.head())
        assert (report.ok, report.records) == (True, 1)
    finally:
        stuck.close()
        other.close()


def test_the_bounds_are_a_writers_not_an_auditors(pg_url: str) -> None:
    """A serving sink's sessions carry the three bounds; an auditor's keeps the defaults."""
    names = ("lock_timeout", "statement_timeout", "idle_in_transaction_session_timeout")
    query = "SELECT " + ", ".join(f"current_setting('{n}')" for n in names)
    writer = PostgresAuditSink(PostgresLocation(pg_url), timeout_s=2.5)
    auditor = PostgresAuditSink(PostgresLocation(pg_url), readonly=True)
    try:
        assert writer._fetch(query, ()) == [("2500ms", "2500ms", "2500ms")]
        assert auditor._fetch(query, ()) == [("0", "0", "0")]
    finally:
        writer.close()
        auditor.close()
