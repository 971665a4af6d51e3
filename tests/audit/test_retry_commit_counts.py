"""A retry's append stores nothing: the log's commit counters do not count it as a commit.

A retry reaching a worker that never saw it is evaluated again and appended; the log finds the
stored records and returns them (``existed``). Its transaction wrote nothing for it, so neither
``commits`` nor the commit observer (``caseroute_audit_commit_size`` and ``_seconds``) counts it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from caseroute.audit.config import PostgresLocation
from caseroute.audit.postgres import PostgresAuditSink
from caseroute.audit.record import Appended
from caseroute.audit.sql_log import Pending, PendingItem, PendingShadow, stored_appends
from caseroute.audit.store import SqliteAuditStore
from caseroute.domain.errors import IdempotencyConflictError
from caseroute.testing import make_audit_record
from tests.pg import pg_server, pg_url

__all__ = ["pg_server", "pg_url"]  # fixtures used by the PostgreSQL case

Sink = SqliteAuditStore | PostgresAuditSink


class _Observer:
    """What a store tells its commit observer."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, int]] = []

    def committed(self, items: int, seconds: float) -> None:
        assert seconds >= 0
        self.seen.append(("committed", items))

    def commit_failed(self, items: int) -> None:
        self.seen.append(("failed", items))


@pytest.fixture(params=["sqlite", "postgres"])
def two_workers(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Sink, Sink]]:
    """Two sinks over one decision log (two worker processes), each with its own observer."""
    opened: list[Sink] = []
    make: Callable[[], Sink]
    if request.param == "sqlite":
        make = lambda: SqliteAuditStore(tmp_path / "audit.db")  # noqa: E731 - two calls below
    else:
        url = request.getfixturevalue("pg_url")
        make = lambda: PostgresAuditSink(PostgresLocation(url))  # noqa: E731
    for _ in range(2):
        sink = make()
        sink.observer = _Observer()
        opened.append(sink)
    yield opened[0], opened[1]
    for sink in opened:
        sink.close()


def _observer(sink: Sink) -> _Observer:
    observer = sink.observer
    assert isinstance(observer, _Observer)
    return observer


def test_a_retry_appended_by_another_worker_is_not_a_commit(
    two_workers: tuple[Sink, Sink],
) -> None:
    """The second worker's append finds the stored records: 0 commits, the observer not told."""
    first, second = two_workers
    stored = first.append([make_audit_record(1), make_audit_record(2)])
    again = second.append([make_audit_record(1), make_audit_record(2)])
    assert [a.existed for a in again] == [True, True]
    assert [a.record for a in again] == [a.record for a in stored]
    assert (first.commits, _observer(first).seen) == (1, [("committed", 1)])
    assert (second.commits, _observer(second).seen) == (0, [])


def test_a_new_append_after_a_retry_counts_as_before(two_workers: tuple[Sink, Sink]) -> None:
    """The retry is not counted, the next new append on that worker is: one commit of 1."""
    first, second = two_workers
    first.append([make_audit_record(1)])
    second.append([make_audit_record(1)])
    second.append([make_audit_record(2)])
    assert (second.commits, _observer(second).seen) == (1, [("committed", 1)])


def _pending(existed: str) -> Pending:
    """A decision append whose records came back stored before ("E") or new ("N")."""
    item = Pending([], [], None)  # type: ignore[arg-type]
    item.stored = [Appended(make_audit_record(i), existed=e == "E") for i, e in enumerate(existed)]
    return item


def test_stored_appends_counts_what_a_transaction_stored() -> None:
    """New records and shadow rows count; a retry stored before, a refusal and a probe do not."""
    refused: Exception = IdempotencyConflictError("used")
    results: list[tuple[PendingItem, Exception | None]] = [
        (_pending("NN"), None),  # new decisions
        (_pending("EE"), None),  # a retry: every record stored before
        (_pending("N"), refused),  # refused (its savepoint rolled back)
        (PendingShadow([], {}, None), None),  # type: ignore[arg-type]
        (_pending(""), None),  # an empty append (the health probe's write)
    ]
    # Was 3: the probe's empty append counted, the defect test_commit_counts_nothing_stored.py
    # pins fixed (a commit that stored nothing is no commit).
    assert stored_appends(results) == 2
