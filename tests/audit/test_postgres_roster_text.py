"""``PostgresAuditSink.roster_text``: a roster snapshot read within a caller's time and size."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager
from typing import Any

import psycopg
import pytest

from caseroute.audit.location import PostgresLocation
from caseroute.audit.postgres import PostgresAuditSink
from caseroute.audit.record import Blob, BlobKind
from caseroute.audit.roster_blob import roster_blobs
from caseroute.audit.store import RosterTooLargeError
from caseroute.domain.errors import AuditUnavailableError
from caseroute.domain.fingerprint import fingerprint_roster, roster_json
from caseroute.testing import make_agent, make_roster
from tests.pg import pg_server, pg_url

__all__ = ["pg_server", "pg_url"]

ROSTER = make_roster(*(make_agent(f"n{i}") for i in range(40)))
FINGERPRINT = fingerprint_roster(ROSTER, keep_texts=True)
SHA = FINGERPRINT.sha256
TEXTS = FINGERPRINT.take_texts() or ()
BIG = 1 << 20


@pytest.fixture
def sink(pg_url: str) -> Iterator[PostgresAuditSink]:
    """A sink over an empty log (read here; blobs are written straight into the table)."""
    opened = PostgresAuditSink(PostgresLocation(pg_url), timeout_s=5)
    yield opened
    opened.close()


def _store(pg_url: str, blobs: list[Blob]) -> None:
    with psycopg.connect(pg_url, autocommit=True) as conn:
        for blob in blobs:
            conn.execute(
                "INSERT INTO blobs (sha256, kind, content) VALUES (%s, %s, %s)",
                (blob.sha256, blob.kind.value, blob.content),
            )


def _in_parts() -> list[Blob]:
    return roster_blobs(
        SHA,
        FINGERPRINT.header_json,
        FINGERPRINT.agent_digests,
        lambda start, end: TEXTS[start:end],
        lambda _key: False,
    )


def test_a_roster_stored_in_parts_or_whole_reads_as_its_canonical_json(
    sink: PostgresAuditSink, pg_url: str
) -> None:
    """Manifest and chunks assemble to roster_json; a whole blob is returned as stored."""
    assert sink.roster_text(SHA, timeout_s=5, max_agents=40, max_bytes=BIG) is None
    parts = _in_parts()
    assert len(parts) > 2  # a manifest and several chunks
    _store(pg_url, parts)
    assert sink.roster_text(SHA, timeout_s=5, max_agents=40, max_bytes=BIG) == roster_json(ROSTER)
    whole = "0" * 64
    _store(pg_url, [Blob(whole, BlobKind.ROSTER, roster_json(ROSTER))])
    assert sink.roster_text(whole, timeout_s=5, max_agents=40, max_bytes=BIG) == roster_json(ROSTER)


def test_a_ruleset_or_a_missing_chunk_is_no_roster(sink: PostgresAuditSink, pg_url: str) -> None:
    """A blob of another kind, or a manifest whose chunk is gone: None (not stored)."""
    manifest, _first, *rest = _in_parts()  # the first chunk never stored
    _store(pg_url, [manifest, *rest, Blob("1" * 64, BlobKind.RULESET, "name: x")])
    assert sink.roster_text("1" * 64, timeout_s=5, max_agents=40, max_bytes=BIG) is None
    assert sink.roster_text(SHA, timeout_s=5, max_agents=40, max_bytes=BIG) is None


@pytest.mark.parametrize(
    ("max_agents", "max_bytes", "why"),
    [
        (40, 100, "bytes, over 100"),  # the manifest alone is larger
        (1, BIG, "its manifest lists"),  # more chunks than agents allowed
        (40, 2_000, "bytes, over 2000"),  # the manifest fits, the chunks do not
    ],
)
def test_a_roster_over_the_bounds_is_refused_without_its_content(
    sink: PostgresAuditSink, pg_url: str, max_agents: int, max_bytes: int, why: str
) -> None:
    """Too many chunks for the agents allowed, or too many bytes: RosterTooLargeError."""
    _store(pg_url, _in_parts())
    with pytest.raises(RosterTooLargeError, match=why):
        sink.roster_text(SHA, timeout_s=5, max_agents=max_agents, max_bytes=max_bytes)


def test_a_read_past_its_time_is_unavailable(sink: PostgresAuditSink, pg_url: str) -> None:
    """The blobs table locked by another session: the read gives up (AuditUnavailableError)."""
    _store(pg_url, _in_parts())
    with psycopg.connect(pg_url) as locker:
        locker.execute("LOCK TABLE blobs IN ACCESS EXCLUSIVE MODE")
        with pytest.raises(AuditUnavailableError):
            sink.roster_text(SHA, timeout_s=0.2, max_agents=40, max_bytes=BIG)
        locker.rollback()
    assert sink.roster_text(SHA, timeout_s=5, max_agents=40, max_bytes=BIG) == roster_json(ROSTER)


def test_no_part_of_a_lookup_is_bounded_past_its_time(
    sink: PostgresAuditSink, pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Checkout's check and the reads are cut within ``timeout_s``, not the writer's 1 s.

    Each is cut client-side by the watchdog after the seconds it is given: a frozen server
    held a lookup with 0.2 s to spend for the check's 1 s, past a short call's deadline.
    """
    _store(pg_url, _in_parts())
    given: list[float] = []
    real = sink._bounded
    caller = threading.get_ident()

    def spy(
        conn: psycopg.Connection[Any], seconds: float, *, report: bool = True
    ) -> AbstractContextManager[object]:
        # The lookup's own uses only: the pool's workers configure new connections in their
        # threads meanwhile (bounded by the sink's timeout_s), whenever the pool grows.
        if threading.get_ident() == caller:
            given.append(seconds)
        return real(conn, seconds, report=report)

    monkeypatch.setattr(sink, "_bounded", spy)
    assert sink.roster_text(SHA, timeout_s=0.2, max_agents=40, max_bytes=BIG) == roster_json(ROSTER)
    assert len(given) == 2  # the pool's check on checkout, then the reads
    assert [seconds <= 0.2 for seconds in given] == [True, True]


def test_a_lookup_with_no_time_left_reads_nothing(sink: PostgresAuditSink, pg_url: str) -> None:
    """A deadline already past when the statements would run: AuditUnavailableError, no read."""
    _store(pg_url, _in_parts())
    assert sink.roster_text(SHA, timeout_s=5, max_agents=40, max_bytes=BIG) is not None  # warm
    with pytest.raises(AuditUnavailableError):
        sink.roster_text(SHA, timeout_s=0, max_agents=40, max_bytes=BIG)
