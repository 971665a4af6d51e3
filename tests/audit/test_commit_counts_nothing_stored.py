"""A transaction that stored nothing is no commit: the health probe's empty append, events stored.

The health check probes the decision log with an empty append (``RoutingCore.probe_audit``), and
a ruleset event whose event_id is stored already is handed back, not written again. Neither
stores anything, so neither ``commits`` nor the commit observer (``caseroute_audit_commit_size``
and ``_seconds``) counts it; ``stored_appends`` is the one rule both stores follow.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from caseroute.audit.record import Appended, Blob, BlobKind, RulesetEvent
from caseroute.audit.sql_appends import Pending, PendingEvents, PendingItem, stored_appends
from caseroute.testing import make_audit_record
from tests.audit.commit_sinks import Sink, opener, seen
from tests.pg import pg_server, pg_url

__all__ = ["opener", "pg_server", "pg_url"]  # fixtures: the sinks and the PostgreSQL case


def _event(event_id: str) -> RulesetEvent:
    """An activation of reference@v1 to seal (seq and hashes are set by the store)."""
    return RulesetEvent(
        seq=0,
        event_id=event_id,
        recorded_at="2026-12-01T12:00:00Z",
        action="load",
        actor="test",
        ruleset_name="reference",
        role="active",
        from_version="",
        from_sha256="",
        to_version="v1",
        to_sha256="a" * 64,
        caseroute_version="0",
        prev_hash="",
        record_hash="",
    )


def test_the_health_probes_empty_append_is_no_commit(opener: Callable[[], Sink]) -> None:
    """Probes on an empty log and after a record: one commit of 1; head unchanged by probes."""
    sink = opener()
    assert sink.append([], []) == []
    sink.append([make_audit_record(1)])
    head = sink.head()
    assert sink.append([]) == []
    assert (sink.commits, seen(sink), sink.head()) == (1, [("committed", 1)], head)


def test_an_empty_append_beside_a_new_one_does_not_add_to_the_commit_size() -> None:
    """A probe and a new record in one transaction: a commit of 1, not 2."""
    assert stored_appends([(_pending(""), None), (_pending("N"), None)]) == 1


def test_events_stored_by_another_worker_are_no_commit(opener: Callable[[], Sink]) -> None:
    """The second worker's append of the same event_ids gets them back: 0 commits there."""
    first, second = opener(), opener()
    stored = first.append_events([_event("e1"), _event("e2")])
    again = second.append_events([_event("e1"), _event("e2")])
    assert again == stored
    assert (first.commits, seen(first)) == (1, [("committed", 1)])
    assert (second.commits, seen(second)) == (0, [])


def test_an_append_of_one_stored_and_one_new_event_is_a_commit(
    opener: Callable[[], Sink],
) -> None:
    """One event stored before, one new: the append stored something, a commit of 1."""
    first, second = opener(), opener()
    first.append_events([_event("e1")])
    again = second.append_events([_event("e1"), _event("e2")])
    assert [e.seq for e in again] == [1, 2]
    assert (second.commits, seen(second)) == (1, [("committed", 1)])


def test_an_empty_event_append_is_no_commit(opener: Callable[[], Sink]) -> None:
    """append_events([]) stores nothing: no commit, the observer not told."""
    sink = opener()
    assert sink.append_events([]) == []
    assert (sink.commits, seen(sink)) == (0, [])


def _pending(existed: str, blobs: int = 0) -> Pending:
    """A decision append whose records came back stored before ("E") or new ("N")."""
    records = [make_audit_record(i) for i in range(len(existed))]
    blob = Blob("b" * 64, BlobKind.ROSTER, "{}")
    item = Pending(records, [blob] * blobs, None)  # type: ignore[arg-type]
    item.stored = [Appended(r, existed=e == "E") for r, e in zip(records, existed, strict=True)]
    return item


def _events(added: int) -> PendingEvents:
    """An events append whose transaction sealed ``added`` new events."""
    item = PendingEvents([_event("e1")], None)  # type: ignore[arg-type]
    item.stored = [_event("e1")]
    item.added = added
    return item


_APPENDS: dict[str, Callable[[], PendingItem]] = {
    "the health probe's empty append": lambda: _pending(""),
    "a retry: every record stored before": lambda: _pending("EE"),
    "one record of two new": lambda: _pending("EN"),
    "blobs alone": lambda: _pending("", blobs=1),
    "a retry's blobs, stored with its records": lambda: _pending("E", blobs=1),
    "every event stored before": lambda: _events(0),
    "one event new": lambda: _events(1),
}


@pytest.mark.parametrize(
    ("append", "counted"),
    [
        ("the health probe's empty append", 0),
        ("a retry: every record stored before", 0),
        ("one record of two new", 1),
        ("blobs alone", 1),
        ("a retry's blobs, stored with its records", 0),
        ("every event stored before", 0),
        ("one event new", 1),
    ],
)
def test_stored_appends_counts_an_append_only_when_it_stored_something(
    append: str, counted: int
) -> None:
    """Each kind of append alone in a transaction: counted exactly when it stored something."""
    assert stored_appends([(_APPENDS[append](), None)]) == counted


def test_a_retry_of_a_record_and_its_blob_is_no_commit(opener: Callable[[], Sink]) -> None:
    """A retry carrying the blob it was stored with (another worker): 0 commits there."""
    first, second = opener(), opener()
    blob = Blob("c" * 64, BlobKind.ROSTER, '{"agents": []}')
    record = make_audit_record(1)
    first.append([record], [blob])
    second.append([record], [blob])
    assert (second.commits, seen(second)) == (0, [])
