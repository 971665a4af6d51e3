"""A PostgreSQL log that cannot be reached: calls are refused fast, and writes resume on their own.

During an outage every call used to wait the whole ``timeout_s`` (10 s) for a connection the
pool could not make, and a Decide waits twice (its append, then the read that answers a
stored retry while writes fail): 20 s before UNAVAILABLE. The published client's default
deadline is 30 s, so its first attempt ate two thirds of it and the retry on the next replica
ended DEADLINE_EXCEEDED, which it does not retry: callers never saw the UNAVAILABLE that
scaling.md promises. Once a connection could not be had, the next calls waited at most
``caseroute.audit.postgres.DOWN_WAIT_S`` (1 s) for one, until one is had again.

The first call to find the database gone still waited ``timeout_s``, and every worker and
replica has a first call of its own: with two of them, the published client's four attempts
(10 + 1 s, 10 + 1 s, then 1 + 1 s twice, and its back-off) ended UNAVAILABLE at 27.7 s of its
30 s. Now a call waits ``DOWN_WAIT_S`` first, and the rest of ``timeout_s`` only when nothing
says the database is down (no pooled connection failed its check, no connection attempt cut):
a busy pool.
"""

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
import pytest

from caseroute.audit.location import PostgresLocation
from caseroute.audit.postgres import PostgresAuditSink
from caseroute.audit.record import AuditRecord
from caseroute.audit.verify import verify_chain
from caseroute.domain.errors import AuditUnavailableError
from caseroute.testing import make_audit_record
from tests.pg import pg_server, pg_url

__all__ = ["pg_server", "pg_url"]

TIMEOUT_S = 10.0
"""The sink's wait for a connection (serve's default)."""
RECOVERY_S = 120.0
"""Longest the pool may take to reconnect once the database is back (its back-off)."""


@contextmanager
def _cut_off(server_url: str, url: str) -> Iterator[None]:
    """The database refuses new connections and loses its sessions for the block."""
    name = url.rsplit("/", 1)[1]
    with psycopg.connect(server_url, autocommit=True) as admin:
        admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
        admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
            (name,),
        )
        try:
            yield
        finally:
            admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')


def _append(sink: PostgresAuditSink, n: int) -> None:
    sink.append([make_audit_record(n, decision_id=f"dec_{n}")])


def test_calls_are_refused_fast_once_the_log_is_unreachable_and_writes_resume(
    pg_server: str, pg_url: str
) -> None:
    """Every call, the first included, waits DOWN_WAIT_S; then the pool reconnects alone."""
    sink = PostgresAuditSink(PostgresLocation(pg_url), timeout_s=TIMEOUT_S)
    try:
        _append(sink, 1)
        with _cut_off(pg_server, pg_url):
            started = time.monotonic()
            with pytest.raises(AuditUnavailableError, match="cannot be written"):
                _append(sink, 2)  # finds the database gone: its pooled session fails its check
            with pytest.raises(AuditUnavailableError, match="cannot be read"):
                sink.by_request("req2")  # a Decide's read after its failed append
            with pytest.raises(AuditUnavailableError, match="cannot be written"):
                _append(sink, 2)  # the caller's retry
            waited = time.monotonic() - started
        # three calls, each DOWN_WAIT_S (1 s); the first used to wait the whole timeout_s
        assert waited < TIMEOUT_S / 2
        deadline = time.monotonic() + RECOVERY_S
        while True:  # each attempt itself waits (DOWN_WAIT_S) for the pool's reconnection
            try:
                _append(sink, 2)
                break
            except AuditUnavailableError:
                assert time.monotonic() < deadline, "the sink never wrote again"
        assert [r.decision_id for r in sink.by_request("req2")] == ["dec_2"]
        report = verify_chain(sink.records(), sink.head())
        assert (report.ok, report.records) == (True, 2)
    finally:
        sink.close()


def test_a_busy_pool_still_waits_past_down_wait_s(pg_url: str) -> None:
    """Every connection busy, the database fine: a call keeps waiting after DOWN_WAIT_S."""
    sink = PostgresAuditSink(PostgresLocation(pg_url), timeout_s=TIMEOUT_S, pool_size=2)
    held = []
    try:
        _append(sink, 1)
        held = [sink._pool.getconn(), sink._pool.getconn()]  # the pool's two connections
        queued = sink._pool.get_stats().get("requests_queued", 0)
        outcome: list[list[AuditRecord]] = []
        reader = threading.Thread(target=lambda: outcome.append(sink.by_request("req1")))
        reader.start()
        deadline = time.monotonic() + RECOVERY_S
        # Its first wait (DOWN_WAIT_S) ended with no connection; it waits again, queued anew.
        while sink._pool.get_stats().get("requests_queued", 0) < queued + 2:
            assert time.monotonic() < deadline, "the read never waited a second time"
            time.sleep(0.05)  # polling the pool's counter, not standing in for an event
        sink._pool.putconn(held.pop())
        reader.join(RECOVERY_S)
        assert [[r.decision_id for r in rows] for rows in outcome] == [["dec_1"]]
    finally:
        for conn in held:
            sink._pool.putconn(conn)
        sink.close()
