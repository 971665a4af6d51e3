"""A frozen PostgreSQL (every process SIGSTOPped) holds no caller past the sink's bounds.

A frozen server, like a network that silently drops packets, never answers: its own
``statement_timeout`` cannot fire, its kernel still acknowledges every packet (so keepalives and
``tcp_user_timeout`` see nothing), and a cancel request goes through its frozen postmaster.
Every Decide used to wait on the socket until the caller's deadline (DEADLINE_EXCEEDED, which
the published client does not retry) while health said SERVING. The sink now cuts each use of
a connection that outlives its bound (``caseroute.audit.pg_watchdog``): the caller gets
UNAVAILABLE, health goes NOT_SERVING, and both come back once the server runs again.

These tests start a PostgreSQL of their own: ``pg_server`` may be one server shared by every
test worker (``.ci/run``), and freezing it would stall the others' tests.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any, TypeVar

import grpc
import psycopg
import pytest

from caseroute.audit import pg_schema, postgres
from caseroute.audit.config import AuditConfig
from caseroute.audit.location import PostgresLocation
from caseroute.audit.postgres import PostgresAuditSink
from caseroute.audit.verify import verify_chain
from caseroute.cli import main
from caseroute.domain.errors import AuditUnavailableError
from caseroute.engine.case_rules import EngineKind
from caseroute.grpc_api.server import ServerConfig, build_server
from caseroute.service import RoutingCore, RulesetRegistry
from caseroute.testing import REFERENCE_RULESET, TEST_AUDIT_KEY, make_audit_record
from caseroute.v1 import routing_pb2_grpc
from tests.audit.test_postgres_serve import _claim, _health_of
from tests.grpc_api.conftest import decide_request
from tests.pg import NO_POSTGRES, Cluster, find_pg_bin, fresh_database, start_cluster

T = TypeVar("T")

DEADLINE_S = 60.0
"""Longest any one step may take here (the sink's own bounds are 1-10 s)."""


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    """A PostgreSQL server for this module alone (frozen and thawed by its tests)."""
    pytest.importorskip("psycopg", reason="the postgres extra is not installed")
    if not sys.platform.startswith("linux"):
        pytest.skip("finds the server's processes in /proc (Linux)")
    bindir = find_pg_bin()
    if bindir is None:
        pytest.skip(NO_POSTGRES)
    started = start_cluster(bindir)
    try:
        yield started
    finally:
        started.stop()


@pytest.fixture
def db_url(cluster: Cluster) -> Iterator[str]:
    """A new empty database on the module's server."""
    with fresh_database(cluster.url) as url:
        yield url


def _children(parent: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:  # ended meanwhile
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == parent:
            found.append(int(entry.name))
    return found


@contextmanager
def _frozen(cluster: Cluster) -> Iterator[None]:
    """The server's postmaster and every backend stopped (SIGSTOP) for the block."""
    postmaster = int((cluster.base / "data" / "postmaster.pid").read_text().split()[0])
    stopped = [postmaster]
    try:
        os.kill(postmaster, signal.SIGSTOP)  # first: it forks no backend while we look
        for pid in _children(postmaster):
            os.kill(pid, signal.SIGSTOP)
            stopped.append(pid)
        yield
    finally:
        for pid in stopped:
            try:
                os.kill(pid, signal.SIGCONT)
            except ProcessLookupError:
                continue


def _within_deadline(call: Callable[[], T]) -> T | BaseException:
    """Run ``call`` on a thread: its result or its error; fails if it is still running."""
    outcome: list[T | BaseException] = []

    def run() -> None:
        try:
            outcome.append(call())
        except Exception as exc:  # noqa: BLE001 - the outcome under test
            outcome.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(DEADLINE_S)
    assert outcome, f"still waiting on the frozen database after {DEADLINE_S} s"
    return outcome[0]


def _until(check: Callable[[], bool], what: str) -> None:
    """Poll ``check`` until it holds; fails if it does not within the deadline."""
    deadline = time.monotonic() + DEADLINE_S
    while not check():
        assert time.monotonic() < deadline, f"{what}: not within {DEADLINE_S} s"
        time.sleep(0.05)  # polling a condition, not standing in for an event


def _stored(sink: PostgresAuditSink, n: int) -> bool:
    try:
        sink.append([make_audit_record(n, decision_id=f"dec_{n}")])
    except AuditUnavailableError:
        return False
    return True


def test_a_connection_in_use_when_the_server_froze_is_cut_after_timeout_s(
    cluster: Cluster, db_url: str
) -> None:
    """A statement sent to a frozen server fails (connection closed); writes resume on thaw."""
    sink = PostgresAuditSink(PostgresLocation(db_url), timeout_s=2)
    try:
        assert _stored(sink, 1)
        with sink._connection() as conn, _frozen(cluster):  # checked out while it answered
            outcome = _within_deadline(lambda: conn.execute("SELECT 1").fetchall())
        assert isinstance(outcome, psycopg.OperationalError)
        assert conn.broken
        _until(lambda: _stored(sink, 2), "the sink writes again after the server thawed")
        report = verify_chain(sink.records(), sink.head())
        assert (report.ok, report.records) == (True, 2)
    finally:
        sink.close()


def test_appends_and_reads_on_a_frozen_server_are_refused_not_held(
    cluster: Cluster, db_url: str
) -> None:
    """The writer's append and a read are refused UNAVAILABLE while frozen, with no decision."""
    sink = PostgresAuditSink(PostgresLocation(db_url), timeout_s=10)
    try:
        assert _stored(sink, 1)
        with _frozen(cluster):
            appended = _within_deadline(lambda: _stored(sink, 2))
            read = _within_deadline(lambda: sink.by_request("req2"))
        assert appended is False
        assert isinstance(read, AuditUnavailableError)
        assert str(read).startswith("the decision log cannot be read")
        _until(lambda: _stored(sink, 2), "the sink writes again after the server thawed")
        assert [r.decision_id for r in sink.by_request("req2")] == ["dec_2"]
    finally:
        sink.close()


def test_decide_on_a_frozen_database_is_unavailable_and_health_follows(
    cluster: Cluster, db_url: str
) -> None:
    """Decide: UNAVAILABLE (not DEADLINE_EXCEEDED), NOT_SERVING; after SIGCONT: SERVING, OK."""
    audit = AuditConfig.at(PostgresLocation(db_url), key_hex=TEST_AUDIT_KEY)
    config = ServerConfig(
        rulesets=REFERENCE_RULESET.parent,
        port=0,
        engine=EngineKind.PYTHON,
        threads=2,
        audit=audit,
        audit_probe_s=0.2,  # health comes back by itself, as serve's probe makes it
    )
    sink = PostgresAuditSink(PostgresLocation(db_url))  # serve's bounds: timeout_s 10 s
    sink.claim_key(*_claim())
    core = RoutingCore(RulesetRegistry(), sink, audit.masker())
    server = build_server(config, reuse_port=False, core=core)
    try:
        server.load(config)
        with grpc.insecure_channel(f"127.0.0.1:{server.port}") as chan:
            routing: Any = routing_pb2_grpc.RoutingServiceStub(chan)
            assert _health_of(chan) == "SERVING"
            with _frozen(cluster):
                refused = _within_deadline(
                    lambda: routing.Decide(decide_request("pg-frozen"), timeout=30)
                )
                health = _health_of(chan)
            _until(lambda: _health_of(chan) == "SERVING", "health SERVING after the thaw")
            after = routing.Decide(decide_request("pg-thawed"), timeout=30)
    finally:
        server.stop(1)
    assert isinstance(refused, grpc.RpcError)
    assert refused.code() == grpc.StatusCode.UNAVAILABLE
    # Its append refused, the read that would answer a stored retry refused too: it says so.
    assert refused.details() == (
        "the decision log cannot be read; nothing was decided or changed; retry later or with "
        "another replica"
    )
    assert health == "NOT_SERVING"
    assert after.decision.decision_id


def test_a_roster_lookup_on_a_server_that_froze_after_checkout_is_cut(
    cluster: Cluster, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``roster_text`` (a replica loading a roster by hash, a caller waiting) is cut too.

    Its own bound is PostgreSQL's ``statement_timeout``, which a frozen server never fires:
    the connection, checked out while the server answered, is cut client-side instead.
    """
    sink = PostgresAuditSink(PostgresLocation(db_url), timeout_s=2)
    real = sink._pool.connection
    checked_out, frozen = threading.Event(), threading.Event()

    @contextmanager
    def frozen_after_checkout(timeout: float | None = None) -> Iterator[Any]:
        with real(timeout=timeout) as conn:
            checked_out.set()
            assert frozen.wait(DEADLINE_S)
            yield conn

    outcome: list[object] = []

    def look_up() -> None:
        try:
            outcome.append(sink.roster_text("ab" * 32, timeout_s=2, max_agents=10, max_bytes=1000))
        except Exception as exc:  # noqa: BLE001 - the outcome under test
            outcome.append(exc)

    try:
        assert _stored(sink, 1)
        monkeypatch.setattr(sink._pool, "connection", frozen_after_checkout)
        thread = threading.Thread(target=look_up, daemon=True)
        thread.start()
        assert checked_out.wait(DEADLINE_S)
        with _frozen(cluster):
            frozen.set()
            thread.join(DEADLINE_S)
            still_waiting = thread.is_alive()
        thread.join(DEADLINE_S)  # thawed: a lookup that was held ends now
        assert not still_waiting, "the roster lookup was held by the frozen server"
        assert len(outcome) == 1
        assert isinstance(outcome[0], AuditUnavailableError)
    finally:
        monkeypatch.undo()
        sink.close()


@contextmanager
def _frozen_once_connected(cluster: Cluster, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The server is frozen as the opening sink's first statement goes out (after the connect)."""
    real = pg_schema.require_utf8
    held = ExitStack()

    def freeze_then(conn: psycopg.Connection[Any]) -> None:
        held.enter_context(_frozen(cluster))
        real(conn)

    monkeypatch.setattr(postgres, "require_utf8", freeze_then)
    try:
        yield
    finally:
        held.close()  # thawed
        monkeypatch.undo()


def test_serve_s_startup_on_a_server_frozen_after_the_connect_fails_naming_it(
    cluster: Cluster, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A writer's open (serve) is refused once the server answers no check, saying where."""
    with _frozen_once_connected(cluster, monkeypatch):
        outcome = _within_deadline(
            lambda: PostgresAuditSink(PostgresLocation(db_url), timeout_s=2, liveness_s=2)
        )
    assert isinstance(outcome, AuditUnavailableError)
    port = cluster.port
    assert str(outcome) == (
        f"cannot open the decision log {PostgresLocation(db_url)}: PostgreSQL at 127.0.0.1:{port} "
        "did not answer during startup (reading or creating the decision log's schema), after "
        "accepting the connection: no reply for 2 s, and no answer to a check on a new "
        "connection: it may be frozen, overloaded or cut off by the network; check the server, "
        "then start again (a migration that is slow on a live server is waited for; "
        "--audit-pg-liveness, [audit] pg_liveness or $CASEROUTE_AUDIT_PG_LIVENESS sets how "
        "long a statement may go without a reply before the server is checked)"
    )
    PostgresAuditSink(PostgresLocation(db_url), timeout_s=2).close()  # thawed: it opens


def test_audit_verify_on_a_server_frozen_after_the_connect_exits_non_zero(
    cluster: Cluster,
    db_url: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`caseroute audit verify` exits 3 (checked nothing) with the error, not waiting for good."""
    PostgresAuditSink(PostgresLocation(db_url)).close()  # a decision log to verify
    with _frozen_once_connected(cluster, monkeypatch):
        code = _within_deadline(lambda: main(["audit", "verify", "--audit-db", db_url]))
    err = capsys.readouterr().err
    assert code == 3
    assert f"PostgreSQL at 127.0.0.1:{cluster.port} did not answer during startup" in err
    assert "no reply for 10 s, and no answer to a check on a new connection" in err
    assert "check the server" in err
