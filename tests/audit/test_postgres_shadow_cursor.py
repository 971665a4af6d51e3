"""The PostgreSQL sink closes its shadow insert's cursor on every path, a refused call's too.

The shadow rows' insert is pipelined with ``RETURNING`` (to count the rows that were new), so
its cursor outlives ``_insert_shadow``. A call the server refuses surfaces at the call's sync,
one the driver refuses inside ``_insert_shadow`` itself: either way that call is refused alone,
and the cursor must not be left to the garbage collector.

``append_shadow`` now refuses before queuing every value found to reach those paths (a count
over BIGINT, NUL, lone surrogates: ``test_shadow_fails_alone.py``), and the dropped sum stops
at BIGINT's largest, so the refusals here are injected: a DataError raised by the driver's
``executemany`` after the cursor is made, and one raised by the pipeline's sync after the
server ran the call (as a server-side refusal is reported).
"""

from collections.abc import Iterator
from typing import Any, Self

import psycopg
import pytest

from caseroute.audit.location import PostgresLocation
from caseroute.audit.postgres import PostgresAuditSink
from caseroute.domain.errors import RecordRefusedError
from tests.audit.test_shadow_store import _result
from tests.pg import pg_server, pg_url

__all__ = ["pg_server", "pg_url"]


class _Refusing:
    """A cursor whose next ``executemany`` raises DataError when ``refuse`` is set."""

    def __init__(self, cursor: psycopg.Cursor[Any], refuse: bool) -> None:
        self.cursor = cursor
        self.refuse = refuse

    def executemany(self, *args: Any, **kwargs: Any) -> None:
        if self.refuse:
            raise psycopg.DataError("injected: the driver refuses a value")
        self.cursor.executemany(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.cursor, name)

    def __enter__(self) -> Self:
        self.cursor.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.cursor.__exit__(*exc)  # type: ignore[arg-type]


class _CursorsMade:
    """A connection that remembers every cursor made through it (the rest passes through)."""

    def __init__(self, conn: psycopg.Connection[Any], refuse: bool) -> None:
        self._conn = conn
        self._refuse = refuse
        self.made: list[psycopg.Cursor[Any]] = []

    def cursor(self, *args: Any, **kwargs: Any) -> _Refusing:
        made: psycopg.Cursor[Any] = self._conn.cursor(*args, **kwargs)
        self.made.append(made)
        refusing, self._refuse = self._refuse, False  # the first cursor: the RETURNING one
        return _Refusing(made, refusing)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)


class _Watch:
    """What the test arms: the next ``_insert_shadow``'s driver refusal or its sync's."""

    def __init__(self) -> None:
        self.calls: list[_CursorsMade] = []
        self.driver_refuses = False
        self.sync_refuses = False


@pytest.fixture
def watched(
    pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[PostgresAuditSink, _Watch]]:
    """A sink whose ``_insert_shadow`` calls are watched (the cursors each made) and armed."""
    sink = PostgresAuditSink(PostgresLocation(pg_url))
    watch = _Watch()
    insert_shadow = sink._insert_shadow
    sync = psycopg.Pipeline.sync

    def watching(conn: psycopg.Connection[Any], *args: Any) -> Any:
        proxy = _CursorsMade(conn, watch.driver_refuses)
        watch.driver_refuses = False
        watch.calls.append(proxy)
        return insert_shadow(proxy, *args)  # type: ignore[arg-type]

    def refusing_sync(pipe: psycopg.Pipeline) -> None:
        sync(pipe)  # the server ran the call; its refusal is reported here
        if watch.sync_refuses:
            watch.sync_refuses = False
            raise psycopg.DataError("injected: the server refuses the call")

    monkeypatch.setattr(sink, "_insert_shadow", watching)
    monkeypatch.setattr(psycopg.Pipeline, "sync", refusing_sync)
    yield sink, watch
    sink.close()


def _refused(sink: PostgresAuditSink) -> None:
    # The call's own values (review R32c F2): refused alone, not an outage of the log.
    with pytest.raises(RecordRefusedError, match="refused this call's records"):
        sink.append_shadow([_result(1)], {("test", "2"): 1})


def test_a_call_refused_at_its_sync_closes_the_shadow_cursor(
    watched: tuple[PostgresAuditSink, _Watch],
) -> None:
    """Refused at its sync: both cursors closed, nothing stored, the next call goes on."""
    sink, watch = watched
    watch.sync_refuses = True
    _refused(sink)
    ((returning, dropped),) = [call.made for call in watch.calls]
    assert (returning.closed, dropped.closed) == (True, True)
    assert sink.shadow_results("test") == []  # the call was refused whole
    assert sink.shadow_summary("test") == []
    sink.append_shadow([_result(1)], {("test", "2"): 1})  # the next call goes on
    assert [_result(1)] == sink.shadow_results("test")
    assert [c.closed for call in watch.calls for c in call.made] == [True] * 4


def test_a_call_the_driver_refuses_closes_the_shadow_cursor(
    watched: tuple[PostgresAuditSink, _Watch],
) -> None:
    """Refused inside ``_insert_shadow``, after the cursor was made: that cursor is closed."""
    sink, watch = watched
    watch.driver_refuses = True
    _refused(sink)
    ((returning,),) = [call.made for call in watch.calls]
    assert returning.closed
    assert sink.shadow_results("test") == []
    sink.append_shadow([_result(1)])  # the next call goes on
    assert [_result(1)] == sink.shadow_results("test")
