"""``audit.pg_watchdog.ConnectionWatchdog`` on plain sockets: the mechanism without a database.

tests/audit/test_postgres_frozen.py proves it against a frozen PostgreSQL; here a socketpair
stands for the connection, so what it does is seen directly: a use past its bound has its socket
shut down (the blocked read returns), a use within it is untouched, and a connection with no
socket is not watched.
"""

from __future__ import annotations

import socket
import threading
from types import SimpleNamespace

from caseroute.audit.pg_watchdog import ConnectionWatchdog


class _Conn:
    """What the watchdog reads of a psycopg connection: ``pgconn.socket``."""

    def __init__(self, sock: socket.socket) -> None:
        self.pgconn = SimpleNamespace(socket=sock.fileno())


class _Closed:
    """A connection already closed: psycopg raises when asked for its socket."""

    @property
    def pgconn(self) -> object:
        raise OSError("the connection is closed")


def test_a_use_past_its_bound_is_cut_and_reported() -> None:
    """A read blocked past the bound returns (end of stream); on_fire gets the bound."""
    ours, theirs = socket.socketpair()
    fired: list[float] = []
    told = threading.Event()

    def on_fire(seconds: float) -> None:
        fired.append(seconds)
        told.set()

    watchdog = ConnectionWatchdog(on_fire)
    try:
        with watchdog.bound(_Conn(ours), 0.05):
            data = ours.recv(1)  # nothing is ever sent: only the watchdog ends this wait
        assert data == b""
        assert told.wait(30)
        assert fired == [0.05]
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
