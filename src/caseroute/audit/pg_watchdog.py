"""A client-side bound on each use of a PostgreSQL connection: an overrun's socket is shut down.

PostgreSQL's own bounds (``statement_timeout``, ``lock_timeout``,
``idle_in_transaction_session_timeout``) are enforced by the server: a server that is frozen
(``SIGSTOP``, a VM paused, a host swapping) or a network that silently drops packets never
answers, and psycopg waits on the socket without a limit (it has no client-side statement
timeout). Cancelling does not help: ``conn.cancel()`` and ``cancel_safe()`` send the request
through the postmaster, frozen too, and a cancel, even sent, is not acted on by a frozen backend.

So the writer's sink watches each use of a connection here, and when one lasts past its bound
the watchdog thread shuts the connection's socket down (``shutdown(SHUT_RDWR)``: the fd stays
open, so the thread waiting on it wakes with "server closed the connection unexpectedly", the
connection is broken and the pool discards it). The socket is shut down through a duplicate of
its fd taken when the use began, so a connection closed and its fd number reused meanwhile is
never touched. TCP keepalives and ``tcp_user_timeout`` are no substitute: a frozen server's
kernel still acknowledges every packet and answers every keepalive.

A use may instead be bounded by liveness (``probe``): past its bound it is not cut at once;
the watchdog asks, on a thread of its own, whether the server still answers (the caller's probe:
a new connection, itself bounded), and a server that does gives the use another bound, while
one that does not has it cut. An auditor's read or a startup's migration may take long on a
live server; a frozen one still fails within about two bounds.

Ctrl-C: psycopg answers a KeyboardInterrupt during a statement by sending a cancel through the
postmaster and waiting for the statement's end (5 s each): on a frozen server a Ctrl-C took 10
s and printed psycopg's warnings. ``interrupt_uses`` (a command's SIGINT handler) shuts down
the sockets of the uses the interrupted thread is in instead; each such use then raises
``KeyboardInterrupt`` as it fails, at once.

A use's end and the watchdog's cut are ordered by one lock: a use that has ended (left its block)
is never cut, and a use cut as its block was ending (its last answer already in) finds that out
as it ends, closes its connection (so the pool discards it, never handing it on shut down) and is
not reported: the server did answer. Only a use that was cut and then failed is reported.
"""

from __future__ import annotations

import os
import socket
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from typing import Any, Protocol

SCAN_S = 0.1
"""How often the watchdog looks for overruns: a use is cut at most this long after its bound."""


class _Socketed(Protocol):
    """What is watched: a psycopg connection (its libpq handle's socket)."""

    @property
    def pgconn(self) -> Any:  # psycopg's PGconn (its binary or its ctypes implementation)
        """The libpq connection."""

    def close(self) -> None:
        """Close the connection (a pool discards a closed connection returned to it)."""


class Use:
    """One use of one connection: when it must be over (or be checked), and whether it was cut.

    ``fired``: the watchdog shut its socket down (final once the use's block has ended).
    ``probe``: asked, past ``deadline``, whether the server still answers (None: cut then).
    ``probing``: a probe of this use is running; ``period``: the bound each answer renews.
    ``thread``: the thread in the use; ``interrupted``: cut for a Ctrl-C (``interrupt_uses``).
    """

    __slots__ = ("deadline", "fired", "interrupted", "period", "probe", "probing", "thread")

    def __init__(
        self, deadline: float, probe: Callable[[], bool] | None = None, period: float = 0.0
    ) -> None:
        self.deadline = deadline
        self.fired = False
        self.probe = probe
        self.probing = False
        self.period = period
        self.thread = threading.get_ident()
        self.interrupted = False


class ConnectionWatchdog:
    """One thread that shuts down the socket of every watched use past its deadline."""

    def __init__(self, on_fire: Callable[[float], None], scan_s: float = SCAN_S) -> None:
        """Start the watchdog thread.

        Args:
            on_fire: Called with a use's bound in seconds each time a use was cut: its socket
                was shut down and its block then failed (called on the use's thread as it
                leaves the block, unless the use asked not to be reported); must not raise.
            scan_s: How often to look for overruns.
        """
        self._on_fire = on_fire
        self._scan_s = scan_s
        self._lock = threading.Lock()
        # Each watched use with its socket (a duplicate): only a use with a socket is watched.
        self._watches: dict[int, tuple[Use, socket.socket]] = {}
        # Set while a use is watched (and on close): an idle sink's thread sleeps until then
        # instead of waking every scan_s, and a busy one pays no wake-up per use.
        self._busy = threading.Event()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="audit-watchdog", daemon=True)
        self._thread.start()
        _WATCHDOGS.add(self)

    @contextmanager
    def bound(
        self,
        conn: _Socketed,
        seconds: float,
        *,
        report: bool = True,
        probe: Callable[[], bool] | None = None,
    ) -> Iterator[Use]:
        """Shut ``conn``'s socket down if the block is still running ``seconds`` from now.

        With ``probe``, the block is not cut then: ``probe`` is called (on a thread of its
        own) and, if it returns True (the server answers), the block gets another ``seconds``;
        if it returns False or raises, the block is cut.

        A connection with no socket (closed) is not watched: whatever the block does with it
        fails on its own. A connection whose socket was shut down is closed as the block ends,
        whether the block failed or not: it can never answer again, and a pool must not hand
        it to the next use (which would fail though the server answers).

        Args:
            conn: The connection the block uses.
            seconds: The block's bound.
            report: Whether a cut (the socket shut down, then the block failed) is passed to
                ``on_fire``: False for a use whose bound is the caller's own (a roster lookup's
                share of a call's deadline), which says nothing of whether the server answers,
                or whose caller reports the cut itself (startup).
            probe: Whether the server still answers, asked each time the bound runs out; it
                must bound itself (it runs on its own thread, never under the lock).

        Yields:
            The use: after the block, ``fired`` says whether it was cut.
        """
        sock = _duplicate(conn)
        if sock is None:
            yield Use(0.0)
            return
        watch = Use(time.monotonic() + seconds, probe, seconds)
        key = id(watch)
        with self._lock:
            self._watches[key] = (watch, sock)
            if not self._busy.is_set():
                self._busy.set()
        failed = False
        try:
            yield watch
        except BaseException:
            failed = True
            with self._lock:
                interrupted = watch.interrupted
            if interrupted:  # cut for a Ctrl-C: the caller is told so, not of a broken link
                raise KeyboardInterrupt from None
            raise
        finally:
            # Invariant: the use ends here, under the lock the watchdog cuts under: once
            # removed, the watchdog cannot touch this socket, and ``fired`` read here is final.
            # The duplicate is closed only then (closing it never closes the connection).
            with self._lock:
                del self._watches[key]
                cut = watch.fired
            sock.close()
            if cut:
                with suppress(Exception):  # already broken: closing only marks it so
                    conn.close()
                if failed and report:
                    self._on_fire(seconds)

    def _run(self) -> None:
        while True:
            with self._lock:
                if not self._watches and not self._stopping.is_set():
                    # Invariant: cleared under the lock `bound` sets it under, so a use
                    # added after this check sets it again and ends the wait below.
                    self._busy.clear()
            self._busy.wait()
            if self._stopping.wait(self._scan_s):
                return
            self._scan(time.monotonic())

    def _scan(self, now: float) -> int:
        """Cut every use still running past its deadline at ``now``; how many were cut."""
        cut = 0
        with self._lock:
            # Invariant: a use is in ``_watches`` until it ended (``bound``, under this lock):
            # checking its deadline and shutting its socket down under the lock means a use
            # that has ended is never shut down, nor its connection, back in a pool, in use.
            for key, (watch, sock) in self._watches.items():
                if watch.fired or watch.probing or now < watch.deadline:
                    continue
                if watch.probe is not None:
                    watch.probing = True
                    threading.Thread(
                        target=self._check,
                        args=(key, watch),
                        name="audit-liveness",
                        daemon=True,
                    ).start()
                    continue
                _cut(watch, sock)
                cut += 1
        return cut

    def _check(self, key: int, watch: Use) -> None:
        """Ask ``watch``'s probe whether the server answers: another bound if so, else cut."""
        assert watch.probe is not None  # noqa: S101 - only a use with a probe is checked
        started = time.monotonic()
        try:
            alive = watch.probe()
        except BaseException:  # noqa: BLE001 - a probe that fails is a server that did not answer
            alive = False
        with self._lock:
            watched = self._watches.get(key)
            if watched is None or watched[0] is not watch:
                return  # the use ended meanwhile: nothing to extend or cut
            watch.probing = False
            if alive:
                # Its bound runs again from when the server was last seen answering.
                watch.deadline = started + watch.period
                return
            _cut(watch, watched[1])

    def interrupt(self, thread: int) -> int:
        """Cut every use ``thread`` is in, for a Ctrl-C; how many were cut."""
        cut = 0
        with self._lock:
            for watch, sock in self._watches.values():
                if watch.thread != thread or watch.fired:
                    continue
                watch.interrupted = True
                _cut(watch, sock)
                cut += 1
        return cut

    def close(self) -> None:
        """Stop the thread (uses still running are no longer watched)."""
        self._stopping.set()
        self._busy.set()
        self._thread.join(timeout=5)


_WATCHDOGS: weakref.WeakSet[ConnectionWatchdog] = weakref.WeakSet()
"""Every watchdog of the process (``interrupt_uses``)."""


def interrupt_uses() -> int:
    """Cut every watched use the calling thread is in (a SIGINT handler's), for a Ctrl-C.

    Each such use then raises ``KeyboardInterrupt`` as its block fails, at once, instead of
    psycopg's cancel and wait on a server that may be frozen.

    Returns:
        How many uses were cut: 0 when the thread waits on no watched connection (the handler
        then raises ``KeyboardInterrupt`` itself).
    """
    thread = threading.get_ident()
    return sum(watchdog.interrupt(thread) for watchdog in list(_WATCHDOGS))


def _cut(watch: Use, sock: socket.socket) -> None:
    """Mark ``watch`` cut and shut its socket down (under the watchdog's lock)."""
    watch.fired = True
    with suppress(OSError):  # the peer closed it already: nothing to wake
        sock.shutdown(socket.SHUT_RDWR)


def _duplicate(conn: _Socketed) -> socket.socket | None:
    """A socket object on a duplicate of ``conn``'s fd; None when it has none (closed)."""
    try:
        return socket.socket(fileno=os.dup(conn.pgconn.socket))
    except Exception:  # noqa: BLE001 - psycopg's OperationalError (closed) or an OSError
        return None
