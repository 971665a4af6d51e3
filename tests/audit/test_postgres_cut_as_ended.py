"""A PostgreSQL connection cut by the watchdog just as its use ended raises no false alarm.

The watchdog (``caseroute.audit.pg_watchdog``) shuts down the socket of a use that outlives its
bound. A use whose last answer was already in when the cut came used to go back to the pool
with its socket shut down: the sink was marked unreachable and logged "AUDIT DATABASE NOT
ANSWERING", and the next call checking it out failed its check (a refused Decide, health
NOT_SERVING) though the server answered all along. Each test here waits, inside the use and
after its work, for the cut itself (a peek at the socket returns end of stream once it is shut
down), then lets the use end normally.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
import pytest
from psycopg_pool import ConnectionPool

from caseroute.audit.location import PostgresLocation
from caseroute.audit.postgres import PostgresAuditSink
from caseroute.audit.record import BlobKind
from caseroute.domain.errors import AuditUnavailableError
from caseroute.domain.fingerprint import roster_json
from caseroute.testing import make_agent, make_audit_record, make_roster
from tests.pg import pg_server, pg_url

__all__ = ["pg_server", "pg_url"]

ROSTER_TEXT = roster_json(make_roster(make_agent("n1")))
SHA = "0" * 64


def _wait_for_the_cut(conn: psycopg.Connection[Any]) -> None:
    """Block until the watchdog has shut ``conn``'s socket down (nothing else is sent on it)."""
    with socket.socket(fileno=os.dup(conn.pgconn.socket)) as sock:
        sock.settimeout(30)  # an upper bound on a hang, not a stand-in for the event
        assert sock.recv(1, socket.MSG_PEEK) == b""


def _no_false_alarm(sink: PostgresAuditSink, caplog: pytest.LogCaptureFixture) -> None:
    assert sink._unreachable is False
    assert [r for r in caplog.records if "NOT ANSWERING" in r.getMessage()] == []
    sink.append([make_audit_record(2, decision_id="dec_2")])  # the next use: fine
    assert [r.decision_id for r in sink.by_request("req2")] == ["dec_2"]


def test_a_writer_use_cut_as_it_ended_is_no_outage(
    pg_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A writer's use answered, then cut before it ended: not unreachable, the next use works."""
    caplog.set_level(logging.INFO, logger="caseroute.audit")
    sink = PostgresAuditSink(PostgresLocation(pg_url), timeout_s=1)
    try:
        sink.append([make_audit_record(1, decision_id="dec_1")])
        with sink._connection() as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
            _wait_for_the_cut(conn)  # bound: timeout_s
        _no_false_alarm(sink, caplog)
        assert conn.closed  # never handed to the next use shut down
    finally:
        sink.close()


def test_a_roster_lookup_cut_as_it_ended_returns_its_roster_and_no_alarm(
    pg_url: str, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A lookup whose read answered, cut before it ended: the roster; no alarm, next use works."""
    caplog.set_level(logging.INFO, logger="caseroute.audit")
    sink = PostgresAuditSink(PostgresLocation(pg_url), timeout_s=5)
    with psycopg.connect(pg_url, autocommit=True) as admin:
        admin.execute(
            "INSERT INTO blobs (sha256, kind, content) VALUES (%s, %s, %s)",
            (SHA, BlobKind.ROSTER.value, ROSTER_TEXT),
        )
    real_connection = sink._pool.connection
    used: list[psycopg.Connection[Any]] = []

    @contextmanager
    def noted(timeout: float | None = None) -> Iterator[Any]:
        with real_connection(timeout=timeout) as conn:
            used.append(conn)
            real_transaction = conn.transaction

            @contextmanager
            def then_cut() -> Iterator[Any]:
                with real_transaction() as tx:
                    yield tx
                _wait_for_the_cut(conn)  # its reads and commit answered; bound: the 0.3 s

            monkeypatch.setattr(conn, "transaction", then_cut)
            yield conn

    try:
        sink.append([make_audit_record(1, decision_id="dec_1")])
        monkeypatch.setattr(sink._pool, "connection", noted)
        text = sink.roster_text(SHA, timeout_s=0.3, max_agents=10, max_bytes=1 << 20)
        monkeypatch.undo()
        assert text == ROSTER_TEXT
        _no_false_alarm(sink, caplog)
        assert used[-1].closed
    finally:
        monkeypatch.undo()
        sink.close()


def test_a_roster_lookup_whose_checkout_check_fails_is_no_outage(
    pg_url: str, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A lookup's check failing (cut by its own short deadline): unavailable, never an outage."""
    caplog.set_level(logging.INFO, logger="caseroute.audit")
    sink = PostgresAuditSink(PostgresLocation(pg_url), timeout_s=5)
    checked: list[psycopg.Connection[Any]] = []

    def no_answer(conn: psycopg.Connection[Any]) -> None:
        checked.append(conn)
        raise psycopg.OperationalError("consuming input failed: server closed the connection")

    try:
        sink.append([make_audit_record(1, decision_id="dec_1")])
        monkeypatch.setattr(ConnectionPool, "check_connection", staticmethod(no_answer))
        with pytest.raises(AuditUnavailableError):
            sink.roster_text(SHA, timeout_s=0.3, max_agents=10, max_bytes=1 << 20)
        monkeypatch.undo()
        assert checked  # the check ran, and failed, for the lookup
        _no_false_alarm(sink, caplog)
    finally:
        monkeypatch.undo()
        sink.close()


def test_a_checkout_check_cut_as_it_answered_takes_another_connection(
    pg_url: str, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A writer's check answered but its connection was cut closing: another one, no alarm."""
    caplog.set_level(logging.INFO, logger="caseroute.audit")
    sink = PostgresAuditSink(PostgresLocation(pg_url), timeout_s=5)
    real_check = ConnectionPool.check_connection
    cut: list[psycopg.Connection[Any]] = []

    def answered_then_cut(conn: psycopg.Connection[Any]) -> None:
        real_check(conn)
        if not cut:  # what the watchdog does to a use cut as it ended: closes it
            cut.append(conn)
            conn.close()

    try:
        sink.append([make_audit_record(1, decision_id="dec_1")])
        monkeypatch.setattr(ConnectionPool, "check_connection", staticmethod(answered_then_cut))
        used: list[psycopg.Connection[Any]] = []
        real_getconn = sink._pool.getconn

        def noted(timeout: float | None = None) -> psycopg.Connection[Any]:
            conn = real_getconn(timeout=timeout)
            used.append(conn)
            return conn

        monkeypatch.setattr(sink._pool, "getconn", noted)
        sink.append([make_audit_record(2, decision_id="dec_2")])
        monkeypatch.undo()
        assert len(cut) == 1
        assert used
        assert cut[0] not in used  # the closed one was never handed to the writer
        assert sink._unreachable is False
        assert [r for r in caplog.records if "NOT ANSWERING" in r.getMessage()] == []
        assert [r.decision_id for r in sink.by_request("req2")] == ["dec_2"]
    finally:
        monkeypatch.undo()
        sink.close()
