"""An auditor's reads and every startup wait for a slow PostgreSQL, never for a frozen one.

An auditor's read (``caseroute audit verify|show|export|events``) may legitimately run long,
and a startup may wait for another replica's migration: neither is cut by a total-time bound.
A statement that has had no reply for ``liveness_s`` makes the sink check, on a connection of
its own, that the server still answers and still holds the statement's session: a server that
does keeps the statement going; one that does not (frozen, cut off) has it cut, and the command
fails naming the server's host:port, what it was doing and what to do.

These tests start a PostgreSQL of their own (frozen and thawed), as ``test_postgres_frozen``.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlsplit

import psycopg
import pytest

from caseroute.audit import pg_schema, pg_watchdog
from caseroute.audit.location import PostgresLocation
from caseroute.audit.postgres import PostgresAuditSink
from caseroute.cli import main
from caseroute.cli.entry import INTERRUPTED
from caseroute.testing import make_audit_record
from tests.audit.test_postgres_frozen import (
    DEADLINE_S,
    _frozen,
    _until,
    _within_deadline,
    cluster,
    db_url,
)
from tests.pg import Cluster

__all__ = ["cluster", "db_url"]  # fixtures, imported for pytest

LIVENESS_ENV = "CASEROUTE_AUDIT_PG_LIVENESS"


def _log_with_a_record(db_url: str) -> None:
    """A decision log holding one record."""
    sink = PostgresAuditSink(PostgresLocation(db_url))
    try:
        sink.append([make_audit_record(1, decision_id="dec_1")])
    finally:
        sink.close()


def _frozen_at_first_read(cluster: Cluster, monkeypatch: pytest.MonkeyPatch) -> Callable[[], None]:
    """The server freezes as an auditor's first read goes out (its pool connected); the thaw."""
    real = PostgresAuditSink._fetch
    frozen = _frozen(cluster)
    entered = threading.Event()

    def freeze_then(self: PostgresAuditSink, sql: str, params: tuple[object, ...]) -> list[Any]:
        if self._readonly and not entered.is_set():
            self._pool.wait(DEADLINE_S)  # its connection made: the read checks it out
            entered.set()
            frozen.__enter__()
        return real(self, sql, params)

    monkeypatch.setattr(PostgresAuditSink, "_fetch", freeze_then)

    def thaw() -> None:
        if entered.is_set():
            frozen.__exit__(None, None, None)

    return thaw


@pytest.mark.parametrize(
    "command",
    [
        ["audit", "verify"],  # reads in one snapshot, on the connection it holds
        ["audit", "show", "dec_1"],  # checks a pooled connection out for each read
    ],
)
def test_an_audit_read_on_a_server_frozen_after_the_open_fails_naming_it(
    cluster: Cluster,
    db_url: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    command: list[str],
) -> None:
    """`caseroute audit verify|show` exit naming host:port and what to do, not waiting.

    Both exit 3 (checked nothing: not tampering, not an edited record; show exited 1).
    """
    _log_with_a_record(db_url)
    monkeypatch.setenv(LIVENESS_ENV, "1")
    thaw = _frozen_at_first_read(cluster, monkeypatch)
    try:
        code = _within_deadline(lambda: main([*command, "--audit-db", db_url]))
    finally:
        thaw()
    out, err = capsys.readouterr()
    assert code == 3
    assert out == ""
    assert (
        f"caseroute: PostgreSQL at 127.0.0.1:{cluster.port} stopped answering while caseroute "
        "read the decision log "
    ) in err
    assert "check the server, then run the command again" in err
    password = urlsplit(db_url).password
    assert password
    assert password not in err


def test_an_audit_read_on_a_server_frozen_before_its_pool_connected_fails_naming_it(
    cluster: Cluster,
    db_url: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """No pooled connection to read on (frozen once the schema was checked): host:port named."""
    _log_with_a_record(db_url)
    real = PostgresAuditSink._open_schema
    frozen = _frozen(cluster)

    def checked_then_frozen(self: PostgresAuditSink, conn: psycopg.Connection[Any]) -> None:
        real(self, conn)
        frozen.__enter__()

    monkeypatch.setattr(PostgresAuditSink, "_open_schema", checked_then_frozen)
    try:
        code = _within_deadline(lambda: main(["audit", "events", "--audit-db", db_url]))
    finally:
        frozen.__exit__(None, None, None)
    out, err = capsys.readouterr()
    assert (code, out) == (3, "")  # an outage (exit 1 before, as for a finding)
    assert (
        f"caseroute: PostgreSQL at 127.0.0.1:{cluster.port} gave caseroute no working "
        "connection within 10 s while it read the decision log "
    ) in err
    assert "check the server, then run the command again" in err


def test_an_audit_read_waiting_on_a_live_server_is_not_cut(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A read held past the liveness period by a lock on a live server completes, uncut."""
    _log_with_a_record(db_url)
    checked = threading.Event()
    real = pg_watchdog.ConnectionWatchdog._scan

    def scan(self: pg_watchdog.ConnectionWatchdog, now: float) -> int:
        due = any(now >= use.deadline for use, _ in list(self._watches.values()))
        cut = real(self, now)
        if due:
            checked.set()  # a scan reached a use's bound and decided on it
        return cut

    monkeypatch.setattr(pg_watchdog.ConnectionWatchdog, "_scan", scan)
    auditor = PostgresAuditSink(PostgresLocation(db_url), readonly=True, liveness_s=0.5)
    try:
        with psycopg.connect(db_url) as holder, holder.transaction():
            holder.execute("LOCK TABLE decisions IN ACCESS EXCLUSIVE MODE")
            read = threading.Thread(target=lambda: outcome.append(list(auditor.records())))
            outcome: list[object] = []
            read.start()
            assert checked.wait(DEADLINE_S), "the read was never checked"
        read.join(DEADLINE_S)
        assert [r.decision_id for r in outcome[0]] == ["dec_1"]  # type: ignore[attr-defined]
    finally:
        auditor.close()


@pytest.fixture
def migration_held(db_url: str) -> Iterator[psycopg.Connection[Any]]:
    """Another replica's migration in progress: the migrations' advisory lock held."""
    with psycopg.connect(db_url, autocommit=True) as holder:
        holder.execute("SELECT pg_advisory_lock(%s)", (pg_schema._LOCK_KEY,))
        yield holder


def test_a_startup_waiting_on_a_slow_migration_past_timeout_s_is_not_cut(
    db_url: str, migration_held: psycopg.Connection[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A writer's open waits for another replica's migration past timeout_s, then opens."""
    past_bound = threading.Event()
    real = pg_watchdog.ConnectionWatchdog._scan

    def scan(self: pg_watchdog.ConnectionWatchdog, now: float) -> int:
        due = any(now >= use.deadline for use, _ in list(self._watches.values()))
        cut = real(self, now)
        if due:
            past_bound.set()  # the startup's use reached its bound and was decided on
        return cut

    monkeypatch.setattr(pg_watchdog.ConnectionWatchdog, "_scan", scan)
    outcome: list[object] = []

    def open_sink() -> None:
        try:
            outcome.append(PostgresAuditSink(PostgresLocation(db_url), timeout_s=1))
        except Exception as exc:  # noqa: BLE001 - the outcome under test
            outcome.append(exc)

    opening = threading.Thread(target=open_sink, daemon=True)
    opening.start()
    assert past_bound.wait(DEADLINE_S), "the startup's bound was never reached"
    migration_held.execute("SELECT pg_advisory_unlock(%s)", (pg_schema._LOCK_KEY,))
    opening.join(DEADLINE_S)
    assert len(outcome) == 1
    sink = outcome[0]
    assert isinstance(sink, PostgresAuditSink), sink
    sink.close()


LAUNCHER = """\
import signal
import sys

# Ctrl-C raises, as in a process a shell starts in the foreground (a background test run
# inherits SIGINT ignored).
signal.signal(signal.SIGINT, signal.default_int_handler)
from caseroute.cli import main

sys.exit(main(sys.argv[1:]))
"""
"""Run with ``-c``: ``caseroute`` with SIGINT raising KeyboardInterrupt."""

CTRL_C_S = 3.0
"""How soon after Ctrl-C a command waiting on a frozen server must have exited."""


def _waiting_on_lock(db_url: str) -> bool:
    """Whether a caseroute session is waiting for a lock (its read sent, not answered)."""
    with psycopg.connect(db_url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'caseroute' "
            "AND wait_event_type = 'Lock'"
        ).fetchone()
    return bool(row and row[0])


@pytest.mark.parametrize(
    "locked",
    [
        "chain_head",  # verify's first read, in its snapshot
        "caseroute_schema",  # the startup's schema check
    ],
)
def test_ctrl_c_during_a_read_hung_on_a_frozen_server_exits_promptly(
    cluster: Cluster, db_url: str, locked: str
) -> None:
    """Ctrl-C while `audit verify` waits on a frozen server: 130 and one line, within 3 s."""
    _log_with_a_record(db_url)
    env = {**os.environ, LIVENESS_ENV: "0"}  # never cut: only the Ctrl-C ends the wait
    with psycopg.connect(db_url) as holder, holder.transaction():
        holder.execute(f"LOCK TABLE {locked} IN ACCESS EXCLUSIVE MODE")
        proc = subprocess.Popen(
            [sys.executable, "-c", LAUNCHER, "audit", "verify", "--audit-db", db_url],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        try:
            _until(lambda: _waiting_on_lock(db_url), "verify's read waits on the lock")
            with _frozen(cluster):
                proc.send_signal(signal.SIGINT)
                interrupted = time.monotonic()
                try:
                    proc.wait(DEADLINE_S)
                finally:
                    took = time.monotonic() - interrupted
        finally:
            proc.kill()
            out, err = proc.communicate()
    assert (proc.returncode, out, err) == (130, "", INTERRUPTED)
    assert took < CTRL_C_S, f"exited {took:.1f} s after Ctrl-C"
