"""The PostgreSQL sink's hand-off to its writer: the same queue and outcome as SQLite's."""

from typing import Any

from caseroute.audit.location import PostgresLocation
from caseroute.audit.postgres import PostgresAuditSink
from caseroute.audit.sql_appends import AppendQueue
from caseroute.testing import make_audit_record
from tests.pg import pg_server, pg_url

__all__ = ["pg_server", "pg_url"]


def test_the_postgres_sink_queues_through_an_append_queue(pg_url: str) -> None:
    """Appends reach the writer through ``AppendQueue`` (a SimpleQueue), committed in order."""
    sink = PostgresAuditSink(PostgresLocation(pg_url))
    try:
        assert type(sink._queue) is AppendQueue
        put = sink._queue.put
        seen: list[Any] = []

        def counted_put(item: Any) -> None:
            seen.append(item)
            put(item)

        sink._queue.put = counted_put  # type: ignore[method-assign,assignment]
        records = [make_audit_record(n) for n in range(3)]
        stored = [sink.append([r])[0].record.seq for r in records]
        assert (len(seen), stored) == (3, [1, 2, 3])
    finally:
        sink.close()
