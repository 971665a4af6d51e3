"""``audit.pg_watchdog.ConnectionWatchdog`` on plain sockets: the mechanism without a database.

tests/audit/test_postgres_frozen.py proves it against a frozen PostgreSQL; here a socketpair
stands for the connection, so what it does is seen directly: a use past its bound has its socket
shut down (the blocked read returns), a use within it is untouched, a use cut just as it ended
closes its connection and is not reported, and a connection with no socket is not watched. A use
bounded by liveness runs on while its probe says the server answers and is cut when it does not;
``interrupt_uses`` (Ctrl-C) cuts the calling thread's use alone, which raises KeyboardInterrupt.
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


def test_a_use_whose_server_answers_its_probe_runs_on_past_its_bound() -> None:
    """With a probe that says the server answers, a use outlives several bounds uncut."""
    ours, theirs = socket.socketpair()
    probes: list[int] = []
    probed_twice = threading.Event()

    def answers() -> bool:
        probes.append(1)
        if len(probes) >= 2:
            probed_twice.set()
        return True

    watchdog = ConnectionWatchdog(lambda _s: None, scan_s=0.01)
    try:
        with watchdog.bound(_Conn(ours), 0.05, probe=answers) as use:
            assert probed_twice.wait(10)  # two bounds ran out; each probe renewed it
            theirs.sendall(b"x")  # the answer comes, late
            assert _read(ours) == b"x"
        assert use.fired is False
    finally:
        watchdog.close()
        ours.close()
        theirs.close()


@pytest.mark.parametrize("verdict", ["no", "raises"])
def test_a_use_whose_server_fails_its_probe_is_cut(verdict: str) -> None:
    """A probe that says no (or fails) has the use cut: its blocked read returns."""
    ours, theirs = socket.socketpair()

    def answers() -> bool:
        if verdict == "raises":
            raise OSError("no route to host")
        return False

    watchdog = ConnectionWatchdog(lambda _s: None, scan_s=0.01)
    conn = _Conn(ours)
    try:
        with pytest.raises(ConnectionError), watchdog.bound(conn, 0.05, probe=answers) as use:
            _read(ours)
        assert (use.fired, conn.closed) == (True, True)
    finally:
        watchdog.close()
        ours.close()
        theirs.close()


def test_interrupt_uses_cuts_the_calling_thread_s_use_and_raises_keyboard_interrupt() -> None:
    """A Ctrl-C handler's interrupt_uses: the thread's blocked use raises KeyboardInterrupt."""
    from caseroute.audit.pg_watchdog import interrupt_uses

    ours, theirs = socket.socketpair()
    other, other_peer = socket.socketpair()
    watchdog = ConnectionWatchdog(lambda _s: None)
    entered, release = threading.Event(), threading.Event()
    other_use: list[bool] = []

    def elsewhere() -> None:  # another thread's use: not this thread's Ctrl-C
        with watchdog.bound(_Conn(other), 60) as use:
            entered.set()
            release.wait(10)
        other_use.append(use.fired)

    thread = threading.Thread(target=elsewhere)
    thread.start()
    try:
        assert entered.wait(10)
        cut: list[int] = []

        def interrupted_read() -> None:
            with watchdog.bound(_Conn(ours), 60):
                cut.append(interrupt_uses())  # as the SIGINT handler does, on this thread
                _read(ours)  # shut down: returns at once, and the use says why

        with pytest.raises(KeyboardInterrupt):
            interrupted_read()
        assert cut == [1]
        release.set()
        thread.join(10)
        assert other_use == [False]
    finally:
        release.set()
        watchdog.close()
        for sock in (ours, theirs, other, other_peer):
            sock.close()
