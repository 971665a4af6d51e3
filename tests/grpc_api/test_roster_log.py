"""A roster sent by hash alone is loaded from the PostgreSQL log replicas share, within bounds.

Two in-process servers on one PostgreSQL database stand for two replicas: one is sent the
roster (and stores its snapshot), the other is sent only its ``roster_sha256``. The lookup
must use the stored roster only when it is exactly the one named and valid under the
receiving server's limits, and must answer FAILED_PRECONDITION (so the caller resends), never
INTERNAL, when the log cannot give it in time. ``tests/scale/test_replicas_roster_log.py``
runs the same with two `caseroute serve` processes.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any

import grpc
import psycopg
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from caseroute.audit.config import AuditConfig
from caseroute.audit.location import PostgresLocation
from caseroute.domain.fingerprint import roster_sha256
from caseroute.domain.limits import DEFAULT_LIMITS, InputLimits
from caseroute.engine.case_rules import EngineKind
from caseroute.grpc_api.roster_cache import RosterCache
from caseroute.grpc_api.roster_log import MAX_LOOKUPS, RosterLog, lookup_budget
from caseroute.grpc_api.server import RunningServer, ServerConfig, build_server
from caseroute.testing import REFERENCE_RULESET, TEST_AUDIT_KEY
from caseroute.v1 import routing_pb2 as pb
from caseroute.v1 import routing_pb2_grpc
from tests.pg import pg_server, pg_url

from .conftest import ROSTER, decide_request

__all__ = ["pg_server", "pg_url"]

SHA = roster_sha256(ROSTER)


def _by_hash(request: pb.DecideRequest, sha: str = SHA) -> pb.DecideRequest:
    request.ClearField("roster")
    request.roster_sha256 = sha
    return request


@pytest.fixture
def start(pg_url: str) -> Iterator[Callable[..., RunningServer]]:
    """Starts servers (python engine) recording into one PostgreSQL database; stops them."""
    started: list[RunningServer] = []

    def run(**options: Any) -> RunningServer:
        config = ServerConfig(
            rulesets=REFERENCE_RULESET.parent,
            port=0,
            engine=EngineKind.PYTHON,
            threads=4,
            audit=AuditConfig.at(PostgresLocation(pg_url), key_hex=TEST_AUDIT_KEY),
            audit_probe_s=0,
            reload_interval_s=0,
            **options,
        )
        server = build_server(config, reuse_port=False)
        started.append(server)
        server.load(config)
        return server

    yield run
    for server in started:
        server.stop(1)


def _call(server: RunningServer, method: str, request: Any, timeout: float = 30) -> Any:
    with grpc.insecure_channel(f"127.0.0.1:{server.port}") as chan:
        return getattr(routing_pb2_grpc.RoutingServiceStub(chan), method)(request, timeout=timeout)


def _refusal(server: RunningServer, request: Any, timeout: float = 30) -> tuple[Any, str]:
    """The status code and ErrorInfo reason of a Decide the server refuses."""
    with pytest.raises(grpc.RpcError) as raised:
        _call(server, "Decide", request, timeout)
    error: Any = raised.value  # unary errors are also grpc.Call objects
    status = rpc_status.from_call(error)
    reason = ""
    if status is not None and status.details:
        info = error_details_pb2.ErrorInfo()
        if status.details[0].Unpack(info):
            reason = info.reason
    return error.code(), reason


NOT_CACHED = (grpc.StatusCode.FAILED_PRECONDITION, "ROSTER_NOT_CACHED")


def test_a_replica_decides_by_hash_with_a_roster_another_stored(
    start: Callable[..., RunningServer],
) -> None:
    """B, never sent the roster, loads it from the log: the decision is the one A would make."""
    a, b = start(), start()
    _call(a, "Decide", decide_request("sent-1"))
    by_hash = _call(b, "Decide", _by_hash(decide_request("hash-1")))
    with_roster = _call(a, "Decide", decide_request("hash-1"))  # a retry: the stored decision
    assert with_roster.replayed
    assert by_hash.decision == with_roster.decision
    assert b.roster_cache is not None
    assert b.roster_cache.find(SHA) is not None  # kept: the next call by hash is a cache hit
    one = decide_request()
    batch = pb.DecideBatchRequest(request_id="hash-batch", cases=[one.case], roster_sha256=SHA)
    batch.now.CopyFrom(one.now)
    assert [d.case_id for d in _call(b, "DecideBatch", batch).decisions] == [one.case.case_id]


def test_a_roster_no_replica_stored_is_still_not_cached(
    start: Callable[..., RunningServer],
) -> None:
    """A hash the log does not hold: FAILED_PRECONDITION ROSTER_NOT_CACHED, as before."""
    a, b = start(), start()
    _call(a, "Decide", decide_request("sent-1"))
    assert _refusal(b, _by_hash(decide_request("hash-1"), "0" * 64)) == NOT_CACHED


def test_an_edited_snapshot_is_not_used(
    start: Callable[..., RunningServer], pg_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A chunk edited in the log (an agent's skills): the roster does not hash; resend asked."""
    a, b = start(), start()
    _call(a, "Decide", decide_request("sent-1"))
    with psycopg.connect(pg_url, autocommit=True) as conn:
        edited = conn.execute(
            "UPDATE blobs SET content = replace(content, '\"a2\"', '\"a9\"') "
            "WHERE kind = 'roster_chunk'"
        ).rowcount
    assert edited == 1
    with caplog.at_level(logging.INFO, logger="caseroute.server"):
        assert _refusal(b, _by_hash(decide_request("hash-1"))) == NOT_CACHED
    assert (
        f"roster {SHA[:12]} not loaded from the decision log (its stored text does not hash to "
        "its roster_sha256: edited in the log? run `caseroute audit verify`): the caller is "
        "asked to send it"
    ) in caplog.messages
    assert "a9" not in caplog.text  # the roster's values are never logged


def test_a_stored_roster_over_this_server_s_limits_is_not_used(
    start: Callable[..., RunningServer],
) -> None:
    """B allows 2 agents; the stored roster has 3: refused as if never stored (a resend is told)."""
    a = start()
    b = start(limits=replace(DEFAULT_LIMITS, max_agents=2))
    _call(a, "Decide", decide_request("sent-1"))
    assert _refusal(b, _by_hash(decide_request("hash-1"))) == NOT_CACHED
    # The roster itself, sent to B, is refused for what is wrong with it, field by field.
    with pytest.raises(grpc.RpcError) as raised:
        _call(b, "Decide", decide_request("hash-1"))
    assert raised.value.code() is grpc.StatusCode.INVALID_ARGUMENT


def test_a_lookup_the_log_cannot_answer_in_time_asks_for_the_roster(
    start: Callable[..., RunningServer], pg_url: str
) -> None:
    """Blobs locked by another session: the lookup gives up; FAILED_PRECONDITION, not INTERNAL."""
    a, b = start(), start()
    _call(a, "Decide", decide_request("sent-1"))
    with psycopg.connect(pg_url) as locker:
        locker.execute("LOCK TABLE blobs IN ACCESS EXCLUSIVE MODE")  # reads of it wait
        assert _refusal(b, _by_hash(decide_request("hash-1")), timeout=60) == NOT_CACHED
        locker.rollback()
    # Released, the same roster loads: the refusal was the lookup's time, not the roster.
    assert _call(b, "Decide", _by_hash(decide_request("hash-2"))).decision.decision_id != ""


class _Blocking:
    """A StoredRosters whose reads wait until released; notes each sha256 asked for."""

    def __init__(self) -> None:
        self.asked: list[str] = []
        self.entered = threading.Semaphore(0)
        self.release = threading.Event()

    def roster_text(
        self, sha256: str, *, timeout_s: float, max_agents: int, max_bytes: int
    ) -> str | None:
        del timeout_s, max_agents, max_bytes
        self.asked.append(sha256)
        self.entered.release()
        self.release.wait()
        return None


class _Failing:
    """A StoredRosters that fails as no caller should see."""

    def roster_text(
        self, sha256: str, *, timeout_s: float, max_agents: int, max_bytes: int
    ) -> str | None:
        del timeout_s, max_agents, max_bytes
        raise RuntimeError(f"a bug quoting {sha256}")


def test_lookups_are_bounded_per_worker() -> None:
    """Past MAX_LOOKUPS distinct rosters at once, another is refused without reading the log."""
    source = _Blocking()
    loader = RosterLog(source, RosterCache(), max_bytes=1 << 20)
    limits = InputLimits()
    threads = [
        threading.Thread(target=loader.load, args=(f"{n:064x}", limits, 30.0))
        for n in range(MAX_LOOKUPS)
    ]
    for thread in threads:
        thread.start()
    for _ in threads:
        assert source.entered.acquire(timeout=30)
    assert loader.load("f" * 64, limits, 30.0) is None
    source.release.set()
    for thread in threads:
        thread.join(30)
    assert sorted(source.asked) == [f"{n:064x}" for n in range(MAX_LOOKUPS)]


def test_a_failing_lookup_never_raises(caplog: pytest.LogCaptureFixture) -> None:
    """An unexpected exception in the lookup is None (ROSTER_NOT_CACHED), its text not logged."""
    loader = RosterLog(_Failing(), RosterCache(), max_bytes=1 << 20)
    with caplog.at_level(logging.INFO, logger="caseroute.server"):
        assert loader.load(SHA, InputLimits(), None) is None
    assert caplog.messages == [
        (
            f"roster {SHA[:12]} not loaded from the decision log (unexpected RuntimeError): "
            "the caller is asked to send it"
        )
    ]


@pytest.mark.parametrize(
    ("remaining", "budget"), [(None, 1.0), (30.0, 1.0), (1.0, 0.5), (0.08, 0.0)]
)
def test_a_lookup_takes_at_most_half_the_time_left_and_a_second(
    remaining: float | None, budget: float
) -> None:
    """Half the call's remaining time, at most 1 s; none below 50 ms."""
    assert lookup_budget(remaining) == budget
