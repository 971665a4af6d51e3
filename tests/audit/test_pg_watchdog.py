"""``audit.pg_watchdog.ConnectionWatchdog`` on plain sockets: the mechanism without a database.

tests/audit/test_postgres_frozen.py proves it against a frozen PostgreSQL; here a socketpair
stands for the connection, so what it does is seen directly: a use past its bound has its socket
shut down (the blocked read returns), a use within it is untouched, a use cut just as it ended
closes its connection and is not reported, and a connection with no socket is not watched.
"""

from __future__ import annotations

import socket
import threading
from types import SimpleNamespace

import pytest

from caseroute.audit.pg_watchdog import ConnectionWatchdog


class _Conn:
    """What the watchdog uses of a psycopg connection: ``pgconn.socket`` and ``close``."""

    def __init__(self, sock: socket.socket) -> None:
        self.pgconn = SimpleNamespace(socket=sock.fileno())
        self.closed = False

    def close(self) -> None:
        self.closed = True


class _Closed:
    """A connection already closed: psycopg raises when asked for its socket."""

    @property
    def pgconn(self) -> object:
        raise OSError("the connection is closed")

    def close(self) -> None:
        """Nothing to close."""


def _read(sock: socket.socket) -> bytes:
    """One byte; end of stream fails, as psycopg's "server closed the connection" does."""
    data = sock.recv(1)
    if data == b"":
        raise ConnectionError
    return data


def test_a_use_past_its_bound_is_cut_and_reported() -> None:
    """A read blocked past the bound returns (end of stream); on_fire gets the bound."""
    ours, theirs = socket.socketpair()
    fired: list[float] = []
    told = threading.Event()

    def on_fire(seconds: float) -> None:
        fired.append(seconds)
        told.set()

    watchdog = ConnectionWatchdog(on_fire)
    conn = _Conn(ours)
    try:
        with pytest.raises(ConnectionError), watchdog.bound(conn, 0.05):
            _read(ours)  # nothing is ever sent: only the watchdog ends this wait
        assert told.wait(30)
        assert (fired, conn.closed) == ([0.05], True)
    finally:
        watchdog.close()
        ours.close()
        theirs.close()


def test_a_use_within_its_bound_is_untouched() -> None:
    """The socket still works after the block; nothing is reported."""
    ours, theirs = socket.socketpair()
    fired: list[float] = []
    watchdog = ConnectionWatchdog(fired.append)
    try:
        with watchdog.bound(_Conn(ours), 30):
            theirs.sendall(b"x")
            assert ours.recv(1) == b"x"
        theirs.sendall(b"y")
        assert ours.recv(1) == b"y"
        assert fired == []
    finally:
        watchdog.close()
        ours.close()
        theirs.close()


def test_a_use_cut_just_as_it_ended_closes_its_connection_unreported() -> None:
    """Cut after its last answer: the use succeeds, its connection is closed, nothing reported.

    Its socket is shut down, so handed on (a pool's next use) it would fail though the peer
    answers: closed, a pool discards it. Not reported: the peer did answer (no false alarm).
    """
    ours, theirs = socket.socketpair()
    fired: list[float] = []
    watchdog = ConnectionWatchdog(fired.append)
    conn = _Conn(ours)
    try:
        with watchdog.bound(conn, 0.0):
            theirs.sendall(b"x")
            assert ours.recv(1) == b"x"  # the use's work is done: its answer is in
            # Still inside the block when the watchdog cuts: wait for the cut itself (a peek
            # returns end of stream once the socket is shut down), then end normally.
            assert ours.recv(1, socket.MSG_PEEK) == b""
        watchdog.close()  # its thread is done: anything it would report is reported
        assert (conn.closed, fired) == (True, [])
    finally:
        watchdog.close()
        ours.close()
        theirs.close()


def test_a_connection_without_a_socket_is_not_watched() -> None:
    """A closed connection runs its block unwatched (it fails on its own); close() ends it all."""
    fired: list[float] = []
    watchdog = ConnectionWatchdog(fired.append)
    ran = False
    with watchdog.bound(_Closed(), 0.0):
        ran = True
    watchdog.close()
    assert (ran, fired) == (True, [])
    assert not watchdog._thread.is_alive()
