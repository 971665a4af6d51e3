"""Decision-log sinks over one log, each with an observer of what its commits were.

Shared by the commit-count tests (``test_retry_commit_counts.py``,
``test_commit_counts_nothing_stored.py``): import ``opener`` (and the PostgreSQL fixtures it
needs) into a test module to use it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from caseroute.audit.location import PostgresLocation
from caseroute.audit.postgres import PostgresAuditSink
from caseroute.audit.store import SqliteAuditStore

Sink = SqliteAuditStore | PostgresAuditSink


class CommitObserver:
    """What a store tells its commit observer."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, int]] = []

    def committed(self, items: int, seconds: float) -> None:
        """A commit of ``items`` appends."""
        assert seconds >= 0
        self.seen.append(("committed", items))

    def commit_failed(self, items: int) -> None:
        """A failed commit of ``items`` appends."""
        self.seen.append(("failed", items))


@pytest.fixture(params=["sqlite", "postgres"])
def opener(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[[], Sink]]:
    """Opens sinks over one decision log (each a worker process), each with its own observer."""
    opened: list[Sink] = []
    make: Callable[[], Sink]
    if request.param == "sqlite":
        make = lambda: SqliteAuditStore(tmp_path / "audit.db")  # noqa: E731 - called below
    else:
        url = request.getfixturevalue("pg_url")
        make = lambda: PostgresAuditSink(PostgresLocation(url))  # noqa: E731

    def open_one() -> Sink:
        sink = make()
        sink.observer = CommitObserver()
        opened.append(sink)
        return sink

    yield open_one
    for sink in opened:
        sink.close()


def seen(sink: Sink) -> list[tuple[str, int]]:
    """What ``sink``'s observer was told, in order."""
    observer = sink.observer
    assert isinstance(observer, CommitObserver)
    return observer.seen
