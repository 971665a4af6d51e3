"""The PostgreSQL sink closes its shadow insert's cursor on every path, a refused call's too.

The shadow rows' insert is pipelined with ``RETURNING`` (to count the rows that were new), so
its cursor outlives ``_insert_shadow``. A value the server refuses surfaces at the call's sync,
and one the driver refuses inside ``_insert_shadow`` itself: either way that call is refused
alone, and the cursor must not be left to the garbage collector.
"""

from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from caseroute.audit.config import PostgresLocation
from caseroute.audit.postgres import PostgresAuditSink
from caseroute.audit.record import ShadowResult
from caseroute.domain.errors import AuditUnavailableError
from tests.audit.test_shadow_store import _result
from tests.pg import pg_server, pg_url

__all__ = ["pg_server", "pg_url"]

BIGINT_MAX = 2**63 - 1


class _CursorsMade:
    """A connection that remembers every cursor made through it (the rest passes through)."""

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self._conn = conn
        self.made: list[psycopg.Cursor[Any]] = []

    def cursor(self, *args: Any, **kwargs: Any) -> psycopg.Cursor[Any]:
        made: psycopg.Cursor[Any] = self._conn.cursor(*args, **kwargs)
        self.made.append(made)
        return made

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)


@pytest.fixture
def watched(
    pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[PostgresAuditSink, list[_CursorsMade]]]:
    """A sink whose ``_insert_shadow`` calls are watched: the cursors each one made."""
    sink = PostgresAuditSink(PostgresLocation(pg_url))
    calls: list[_CursorsMade] = []
    insert_shadow = sink._insert_shadow

    def watching(conn: psycopg.Connection[Any], *args: Any) -> Any:
        proxy = _CursorsMade(conn)
        calls.append(proxy)
        return insert_shadow(proxy, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(sink, "_insert_shadow", watching)
    yield sink, calls
    sink.close()


def _refused(sink: PostgresAuditSink, results: list[ShadowResult], dropped: int) -> None:
    with pytest.raises(AuditUnavailableError, match="cannot be written"):
        sink.append_shadow(results, {("test", "2"): dropped})


def test_a_call_refused_at_its_sync_closes_the_shadow_cursor(
    watched: tuple[PostgresAuditSink, list[_CursorsMade]],
) -> None:
    """A dropped count that overflows the stored BIGINT fails the call at its sync.

    The RETURNING cursor is closed. (``append_shadow`` refuses a single count over BIGINT
    before queuing it; the sum with the count already kept is the server's to refuse.)
    """
    sink, calls = watched
    sink.append_shadow([], {("test", "2"): BIGINT_MAX})  # the most the column holds
    _refused(sink, [_result(1)], 1)
    _, (returning, dropped) = [call.made for call in calls]  # the first call's, then this one's
    assert (returning.closed, dropped.closed) == (True, True)
    assert sink.shadow_results("test") == []  # the call was refused whole
    sink.append_shadow([_result(1)], {("test", "3"): BIGINT_MAX})  # the next call goes on
    assert [_result(1)] == sink.shadow_results("test")
    assert [c.closed for call in calls for c in call.made] == [True] * 5


def test_a_call_the_driver_refuses_closes_the_shadow_cursor(
    watched: tuple[PostgresAuditSink, list[_CursorsMade]],
) -> None:
    """A NUL the driver refuses inside ``_insert_shadow``: the cursor it had made is closed."""
    sink, calls = watched
    _refused(sink, [_result(1, ruleset_name="test\x00")], 1)
    ((returning,),) = [call.made for call in calls]
    assert returning.closed
    assert sink.shadow_results("test") == []
