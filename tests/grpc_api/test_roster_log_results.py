"""Each way a lookup of a roster by hash in the shared log ends is counted, by its result.

``caseroute_roster_log_lookups_total{result}`` (docs/operations.md) tells operators how often
replicas load rosters from the log and why they do not; an edited snapshot is tampering and is
logged as a WARNING, not the INFO of an ordinary miss.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from caseroute.audit.record import BlobKind
from caseroute.audit.store import RosterTooLargeError, SqliteAuditStore
from caseroute.domain.errors import AuditUnavailableError
from caseroute.domain.fingerprint import roster_json, roster_sha256
from caseroute.domain.limits import InputLimits
from caseroute.grpc_api import roster_log
from caseroute.grpc_api.roster_cache import RosterCache
from caseroute.grpc_api.roster_log import MAX_LOOKUPS, RESULTS, RosterLog
from caseroute.metrics import MetricsRecorder, define_metrics
from caseroute.testing import make_agent, make_roster

from .conftest import ROSTER

SHA = roster_sha256(ROSTER)
OTHER = make_roster(make_agent("z9"))


class _Answers:
    """A StoredRosters giving one fixed answer (a text, None, or an error to raise)."""

    def __init__(self, answer: str | BaseException | None) -> None:
        self.answer = answer

    def roster_text(
        self, sha256: str, *, timeout_s: float, max_agents: int, max_bytes: int
    ) -> str | None:
        del sha256, timeout_s, max_agents, max_bytes
        if isinstance(self.answer, BaseException):
            raise self.answer
        return self.answer


def _result(
    answer: str | BaseException | None,
    limits: InputLimits | None = None,
    time_remaining: float | None = None,
) -> tuple[list[str], bool]:
    seen: list[str] = []
    loader = RosterLog(_Answers(answer), RosterCache(), max_bytes=1 << 20, observer=seen.append)
    found = loader.load(SHA, limits or InputLimits(), time_remaining)
    return seen, found is not None


@pytest.mark.parametrize(
    ("answer", "limits", "remaining", "result"),
    [
        (roster_json(ROSTER), None, None, "loaded"),
        (None, None, None, "not_stored"),
        (AuditUnavailableError("down"), None, None, "unreadable"),
        (RosterTooLargeError("9 bytes, over 1"), None, None, "too_large"),
        (roster_json(ROSTER), InputLimits(max_agents=1), None, "refused"),
        (roster_json(OTHER), None, None, "edited"),
        ("{not json", None, None, "edited"),
        (roster_json(ROSTER).replace('"max":5', '"max":NaN', 1), None, None, "edited"),
        # A repeated key read as last-wins gives a roster other than the one named: refused.
        (
            roster_json(ROSTER).replace('"taken_at":', '"snapshot_id":"forged","taken_at":', 1),
            None,
            None,
            "edited",
        ),
        (roster_json(ROSTER), None, 0.01, "no_time"),
        (RuntimeError("a bug"), None, None, "error"),
    ],
)
def test_each_lookup_reports_its_result(
    answer: str | BaseException | None,
    limits: InputLimits | None,
    remaining: float | None,
    result: str,
) -> None:
    """One result per lookup, loaded only when the roster is used."""
    assert result in RESULTS
    assert _result(answer, limits, remaining) == ([result], result == "loaded")


def test_a_lookup_refused_as_busy_is_counted() -> None:
    """Past MAX_LOOKUPS rosters at once: ``busy``."""
    entered, release = threading.Semaphore(0), threading.Event()

    class Blocking:
        def roster_text(
            self, sha256: str, *, timeout_s: float, max_agents: int, max_bytes: int
        ) -> str | None:
            del sha256, timeout_s, max_agents, max_bytes
            entered.release()
            release.wait()
            return None

    seen: list[str] = []
    loader = RosterLog(Blocking(), RosterCache(), max_bytes=1 << 20, observer=seen.append)
    threads = [
        threading.Thread(target=loader.load, args=(f"{n:064x}", InputLimits(), 30.0))
        for n in range(MAX_LOOKUPS)
    ]
    for thread in threads:
        thread.start()
    for _ in threads:
        assert entered.acquire(timeout=30)
    assert loader.load("f" * 64, InputLimits(), 30.0) is None
    assert seen == ["busy"]
    release.set()
    for thread in threads:
        thread.join(30)
    assert sorted(seen) == ["busy", "not_stored", "not_stored"]


def test_an_edited_snapshot_is_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    """Tampering is logged at WARNING, saying what to run; a plain miss stays at INFO."""
    with caplog.at_level(logging.INFO, logger="caseroute.server"):
        _result(roster_json(OTHER))
        _result(None)
    levels = [(r.levelno, "edited in the log" in r.getMessage()) for r in caplog.records]
    assert levels == [(logging.WARNING, True), (logging.INFO, False)]
    assert "caseroute audit verify" in caplog.records[0].getMessage()


def test_the_metric_counts_by_result() -> None:
    """``MetricsRecorder.roster_looked_up`` feeds caseroute_roster_log_lookups_total."""
    registry = CollectorRegistry()
    recorder = MetricsRecorder(define_metrics(registry))
    loader = RosterLog(
        _Answers(None), RosterCache(), max_bytes=1 << 20, observer=recorder.roster_looked_up
    )
    for _ in range(2):
        loader.load(SHA, InputLimits(), None)
    sample = registry.get_sample_value
    assert sample("caseroute_roster_log_lookups_total", {"result": "not_stored"}) == 2.0
    assert sample("caseroute_roster_log_lookups_total", {"result": "loaded"}) is None


def test_calls_for_a_roster_being_looked_up_share_the_lookup(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A second call for the same roster waits for the first's lookup and gets its roster."""
    entered, waiting, release = threading.Semaphore(0), threading.Semaphore(0), threading.Event()
    reads: list[str] = []

    class NotedWait(threading.Event):
        def wait(self, timeout: float | None = None) -> bool:
            waiting.release()  # a follower has started waiting on the leader
            return super().wait(timeout)

    @dataclass
    class Flight:
        done: threading.Event = field(default_factory=NotedWait)
        result: object = None

    monkeypatch.setattr(roster_log, "_Flight", Flight)

    class Slow:
        def roster_text(
            self, sha256: str, *, timeout_s: float, max_agents: int, max_bytes: int
        ) -> str | None:
            del timeout_s, max_agents, max_bytes
            reads.append(sha256)
            entered.release()
            release.wait()
            return roster_json(ROSTER)

    seen: list[str] = []
    loader = RosterLog(Slow(), RosterCache(), max_bytes=1 << 20, observer=seen.append)
    found: list[object] = []

    def call() -> None:
        found.append(loader.load(SHA, InputLimits(), 30.0))

    leader = threading.Thread(target=call)
    leader.start()
    assert entered.acquire(timeout=30)  # the leader is reading
    follower = threading.Thread(target=call)
    follower.start()
    assert waiting.acquire(timeout=30)  # the follower waits for the leader's lookup
    release.set()
    for thread in (leader, follower):
        thread.join(30)
    assert reads == [SHA]  # one read of the log for both calls
    assert len(found) == 2
    assert all(known is not None for known in found)
    assert seen == ["loaded"]  # counted once: one lookup


def test_a_call_s_store_serves_its_loaded_roster_and_defers_the_rest() -> None:
    """The loaded roster is found by its hash whatever the cache did; anything else defers."""
    from caseroute.grpc_api.servicer import _Loaded
    from caseroute.wire.convert import roster_to_proto

    known = RosterCache().parse(roster_to_proto(ROSTER), limits=InputLimits())
    store = _Loaded(RosterCache(), known)  # the call's cache has evicted it meanwhile
    assert store.find(SHA, limits=InputLimits()) is known
    assert store.find(roster_sha256(OTHER), limits=InputLimits()) is None
    parsed = store.parse(roster_to_proto(OTHER), limits=InputLimits())
    assert parsed.fingerprint.sha256 == roster_sha256(OTHER)


def test_a_sqlite_log_locked_past_the_lookup_s_time_is_busy_within_it(tmp_path: Path) -> None:
    """Another connection holds the SQLite log: counted busy, None (ROSTER_NOT_CACHED) in time.

    The lookup had 0.3 s (half the call's 0.6 s); SQLite's busy wait held it the store's 10 s,
    past the call's deadline (DEADLINE_EXCEEDED instead of the roster being asked for).
    """
    store = SqliteAuditStore(tmp_path / "audit.db")
    with sqlite3.connect(store.path) as conn:
        conn.execute(
            "INSERT INTO blobs (sha256, kind, content) VALUES (?, ?, ?)",
            (SHA, BlobKind.ROSTER.value, roster_json(ROSTER)),
        )
    conn.close()
    seen: list[str] = []
    loader = RosterLog(store, RosterCache(), max_bytes=1 << 20, observer=seen.append)
    locker = sqlite3.connect(store.path, isolation_level=None)
    try:
        locker.execute("PRAGMA locking_mode=EXCLUSIVE")
        locker.execute("SELECT count(*) FROM blobs").fetchall()  # takes the lock, kept
        started = time.monotonic()
        found = loader.load(SHA, InputLimits(), 0.6)
        took = time.monotonic() - started
    finally:
        locker.close()
        store.close()
    assert (found, seen) == (None, ["busy"])
    assert took < 5  # an upper bound on the hang (10 s before)
