"""A root log handler whose lines are formatted and written by one thread, after the call.

A served call used to render its ``rpc`` line (JSON encoding, the write and its flush) on
the request thread before grpcio sent the reply. ``DeferredHandler`` takes the record and
hands it to its writer thread instead, which formats and writes it in order with every other
line of the process, and writes whatever queued meanwhile with one write and one flush.

What is deferred: a "plain" stdlib record (no ``%``-args, no exception, no stack, a ``str``
message), whose fields are final when it is made (the call line, the lifecycle lines). Any
other record is rendered on the calling thread as before (its args or traceback may change
or vanish once the call returns) and only its text is queued, so the order stays the order
of the calls. After the first line of a batch the writer lingers (50 ms) so that the lines
of that window share one wake-up, one write and one flush; a warning or error ends the
linger at once, so a crash that follows it cannot take it along. The line's ``timestamp`` is
the record's creation instant either way (``setup._add_timestamp``), never the moment the
writer got to it.

Bounds: at most ``capacity`` items wait in the queue (plus one per calling thread that
passed the check at the same moment). When the sink is slower than the callers, a caller
finding the queue full waits until the writer has taken the queue (back-pressure, as a
synchronous handler gave by blocking in its write); no line is dropped. ``flush`` waits for
every line queued before it, ``close`` drains the queue and stops the writer, each for at
most ``bound_s`` seconds (a sink that hangs must not hang the process's exit).
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from queue import Empty, SimpleQueue
from typing import TextIO

DEFAULT_CAPACITY = 10_000
"""Items (records or rendered lines) the queue holds before callers wait for room."""

DEFAULT_BOUND_S = 10.0
"""How long ``flush`` and ``close`` wait for the writer."""

DEFAULT_LINGER_S = 0.05
"""How long the writer waits, after the first line of a batch, for more to write with it."""


class _Stop:
    """Queued by ``close``: the writer writes what came before it and ends."""


_STOP = _Stop()

_Item = logging.LogRecord | str | threading.Event | _Stop


def is_plain(record: logging.LogRecord) -> bool:
    """True when ``record`` can be rendered later exactly as now (see the module docstring)."""
    return (
        not record.args
        and not record.exc_info
        and not record.stack_info
        and isinstance(record.msg, str)
    )


class DeferredHandler(logging.Handler):
    """Writes each record's line to ``stream`` from one writer thread, in the order handled."""

    def __init__(
        self,
        stream: TextIO,
        capacity: int = DEFAULT_CAPACITY,
        bound_s: float = DEFAULT_BOUND_S,
        linger_s: float = DEFAULT_LINGER_S,
    ) -> None:
        """Start the writer thread.

        Args:
            stream: Where lines go (written and flushed once per batch).
            capacity: Items queued before callers wait (at least 1).
            bound_s: Longest wait of ``flush`` and ``close`` for the writer.
            linger_s: After the first line of a batch, how long the writer waits for more
                (0: it writes at once).
        """
        super().__init__()
        self.stream = stream
        self._capacity = max(1, capacity)
        self._bound_s = bound_s
        self._linger_s = linger_s
        # Set to end a linger early: by ``flush``, ``close``, a caller waiting for room and a
        # warning or error.
        self._wake = threading.Event()
        self._queue: SimpleQueue[_Item] = SimpleQueue()
        # Invariant: a caller waits on ``_room`` only after counting itself in ``_waiting``
        # and seeing the queue full under it; the writer notifies after every take when
        # anyone is counted, so no wait outlives the take that made room.
        self._room = threading.Condition()
        self._waiting = 0
        # Held while deciding between queueing and writing directly, so no record is queued
        # after ``close`` took the queue's last item. Reentrant: a signal handler that logs
        # runs on the thread it interrupted, which may hold it.
        self._gate = threading.RLock()
        self._closed = False
        self._pid = os.getpid()
        self._writer = threading.Thread(target=self._write_lines, name="log-writer", daemon=True)
        self._writer.start()

    def handle(self, record: logging.LogRecord) -> bool:
        """Filter and queue ``record`` without the handler lock (the queue takes its own).

        The lock ``Handler.handle`` takes would only serialise the callers around a put.
        """
        if not self.filter(record):
            return False
        self.emit(record)
        return True

    def emit(self, record: logging.LogRecord) -> None:
        """Queue ``record`` (or its line, rendered now when it is not plain)."""
        try:
            item: _Item = record if is_plain(record) else self.format(record)
        except Exception:  # noqa: BLE001 - logging never raises into the caller
            self.handleError(record)
            return
        if self._writer.ident == threading.get_ident() or not self._writer.is_alive():
            # The writer itself logging (it would wait on itself for room), or no writer any
            # more (it ended, or this is a forked child): written here, after what is queued.
            self._write_direct(item)
            return
        if self._queue.qsize() >= self._capacity:
            self._wait_for_room()
        with self._gate:
            if not self._closed:
                self._queue.put(item)
                if record.levelno >= logging.WARNING:
                    # No linger for a warning or error: out before a crash that may follow.
                    self._wake.set()
                return
        with self._gate:  # after close (a line at interpreter exit): written here, in turn
            self._write_now([item])

    def _write_direct(self, item: _Item) -> None:
        """Write what is queued, then ``item``, on this thread, in turn with other callers."""
        with self._gate:
            if os.getpid() != self._pid:  # a forked child: what is queued is the parent's
                self._pid = os.getpid()
                self._queue = SimpleQueue()
            self._write_now([*self._drain(), item])

    def _drain(self) -> list[_Item]:
        """Everything queued now."""
        items: list[_Item] = []
        while True:
            try:
                items.append(self._queue.get_nowait())
            except Empty:
                return items

    def _report(self, record: logging.LogRecord) -> None:
        """``handleError``, which itself raises when stderr is closed: never ends the writer."""
        with contextlib.suppress(Exception):  # nowhere left to report to
            self.handleError(record)

    def _wait_for_room(self) -> None:
        """Until the writer takes the queue (or has ended): the sink is slower than callers."""
        self._wake.set()
        with self._room:
            self._waiting += 1
            try:
                while self._queue.qsize() >= self._capacity and self._writer.is_alive():
                    self._room.wait(self._bound_s)
            finally:
                self._waiting -= 1

    def _take(self, first: _Item) -> list[_Item]:
        """``first`` and everything queued behind it now; wakes callers waiting for room."""
        batch = [first, *self._drain()]
        if self._waiting:
            with self._room:
                self._room.notify_all()
        return batch

    def _write_lines(self) -> None:
        """The writer thread: take what is queued, write it, repeat until ``_STOP``."""
        while True:
            first = self._queue.get()
            if self._linger_s > 0 and isinstance(first, logging.LogRecord | str):
                # The lines of the next ``linger_s`` share this wake-up, write and flush: a
                # caller's put wakes nothing while the writer lingers.
                self._wake.wait(self._linger_s)
                self._wake.clear()  # anything queued before a set is taken just below
            batch = self._take(first)
            if not self._write_now(batch):
                return

    def _write_now(self, batch: list[_Item]) -> bool:
        """Render and write ``batch`` with one write and one flush, then release its flushes.

        Returns:
            False when the batch held ``_STOP`` (the writer ends after it).
        """
        lines: list[str] = []
        flushed: list[threading.Event] = []
        going = True
        for item in batch:
            if isinstance(item, str):
                lines.append(item)
            elif isinstance(item, logging.LogRecord):
                try:
                    lines.append(self.format(item))
                except Exception:  # noqa: BLE001 - one bad record must not end the writer
                    self._report(item)
            elif isinstance(item, threading.Event):
                flushed.append(item)
            else:
                going = False
        if lines:
            try:
                self.stream.write("\n".join(lines) + "\n")
                self.stream.flush()
            except Exception:  # noqa: BLE001 - a failing sink must not end the writer
                self._report(logging.makeLogRecord({"msg": f"writing {len(lines)} line(s)"}))
        for event in flushed:
            event.set()
        return going

    def flush(self) -> None:
        """Wait (at most ``bound_s``) until every line queued before this call is written."""
        if self._closed or not self._writer.is_alive():
            return  # no writer: every line since was written directly
        written = threading.Event()
        self._queue.put(written)
        self._wake.set()  # after the put: the writer takes the marker in this batch
        written.wait(self._bound_s)

    def close(self) -> None:
        """Write what is queued (waiting at most ``bound_s``), stop the writer, then close."""
        with self._gate:
            closing = not self._closed
            self._closed = True
            if os.getpid() != self._pid:  # a forked child: what is queued is the parent's
                self._queue = SimpleQueue()
        if closing:
            self._queue.put(_STOP)
            self._wake.set()
            self._writer.join(self._bound_s)
            if not self._writer.is_alive():
                # A flush that queued its marker behind ``_STOP`` is released here. (A writer
                # still alive is stuck in its sink: nothing more can be written to it.)
                self._write_now(self._take(_STOP))
        super().close()
