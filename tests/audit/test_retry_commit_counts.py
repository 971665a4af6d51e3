"""A retry's append stores nothing: the log's commit counters do not count it as a commit.

A retry reaching a worker that never saw it is evaluated again and appended; the log finds the
stored records and returns them (``existed``). Its transaction wrote nothing for it, so neither
``commits`` nor the commit observer (``caseroute_audit_commit_size`` and ``_seconds``) counts it.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from caseroute.audit.record import Appended
from caseroute.audit.sql_appends import Pending, PendingItem, PendingShadow, stored_appends
from caseroute.domain.errors import IdempotencyConflictError
from caseroute.testing import make_audit_record
from tests.audit.commit_sinks import Sink, opener, seen
from tests.pg import pg_server, pg_url

__all__ = ["opener", "pg_server", "pg_url"]  # fixtures: the sinks and the PostgreSQL case


@pytest.fixture
def two_workers(opener: Callable[[], Sink]) -> tuple[Sink, Sink]:
    """Two sinks over one decision log (two worker processes), each with its own observer."""
    return opener(), opener()


def test_a_retry_appended_by_another_worker_is_not_a_commit(
    two_workers: tuple[Sink, Sink],
) -> None:
    """The second worker's append finds the stored records: 0 commits, the observer not told."""
    first, second = two_workers
    stored = first.append([make_audit_record(1), make_audit_record(2)])
    again = second.append([make_audit_record(1), make_audit_record(2)])
    assert [a.existed for a in again] == [True, True]
    assert [a.record for a in again] == [a.record for a in stored]
    assert (first.commits, seen(first)) == (1, [("committed", 1)])
    assert (second.commits, seen(second)) == (0, [])


def test_a_new_append_after_a_retry_counts_as_before(two_workers: tuple[Sink, Sink]) -> None:
    """The retry is not counted, the next new append on that worker is: one commit of 1."""
    first, second = two_workers
    first.append([make_audit_record(1)])
    second.append([make_audit_record(1)])
    second.append([make_audit_record(2)])
    assert (second.commits, seen(second)) == (1, [("committed", 1)])


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
