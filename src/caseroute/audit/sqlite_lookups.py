"""The SQLite log's roster lookups: each read on a daemon thread of its own, bounded in time.

``SqliteAuditStore.roster_text`` owns one ``RosterLookups`` and runs its read through it: at
most ``LOOKUP_THREADS`` lookups read at once, each on a connection its thread alone uses, kept
between lookups while idle; the caller stops waiting at its deadline even where SQLite does not.
The read itself (its statements and bounds) is the store's.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path

from caseroute.audit.sql_reads import READ_UNAVAILABLE
from caseroute.domain.errors import AuditBusyError

log = logging.getLogger("caseroute.audit")

LOOKUP_THREADS = 2
"""Roster lookups (``roster_text``) reading at once, each on a daemon thread of its own:
``roster_log.MAX_LOOKUPS``. A read still running after its caller gave up keeps its slot."""
LOOKUP_GRACE_S = 0.05
"""How long past its deadline a lookup's caller waits for the read, which ends by then itself
but where SQLite waits without calling a handler."""


@dataclass(slots=True)
class LookupReads:
    """A roster lookup's read state, owned by its thread alone (``RosterLookups.run``).

    Invariant: ``conn`` is used and closed by that thread only; it is never in the store's
    ``_readers``, so ``close()`` cannot close it under a statement (only an idle one, handed
    back).
    """

    conn: sqlite3.Connection | None = None
    until: float | None = None


class RosterLookups:
    """The lookup threads of one store, their slots and their idle connections.

    Roster lookups run on daemon threads of their own, so a caller stops waiting at its
    deadline even where SQLite does not, and neither close() nor the interpreter's exit waits
    for a read SQLite holds ~10 s (``roster_text``). At most LOOKUP_THREADS read at once; their
    connections are few and kept between lookups in ``idle``.
    """

    def __init__(self, path: Path, readers_lock: threading.Lock) -> None:
        """Lookups of the log at ``path``.

        Args:
            path: The log's file, as logged.
            readers_lock: The store's ``_readers_lock``, which guards ``idle`` too.
        """
        self._path = path
        self._slots = threading.BoundedSemaphore(LOOKUP_THREADS)
        self.local = threading.local()
        """``reads``: a lookup thread's ``LookupReads`` (the store's ``_reads`` picks it)."""
        self._readers_lock = readers_lock
        self.idle: list[sqlite3.Connection] = []  # under _readers_lock
        self._closed = False  # under _readers_lock: a lookup then closes its own

    def run(self, sha256: str, timeout_s: float, read: Callable[[float], str | None]) -> str | None:
        """``read(deadline)`` on a lookup thread; its result, or busy once ``timeout_s`` passed.

        Args:
            sha256: The snapshot's ``roster_sha256`` (logged).
            timeout_s: Longest the caller waits (and ``read``'s deadline, from now).
            read: The read, given its ``time.monotonic()`` deadline; its ``_fetch`` calls use
                the thread's ``LookupReads`` (``local.reads``).

        Returns:
            What ``read`` returned.

        Raises:
            AuditBusyError: If no slot or no result came within ``timeout_s`` (logged).
            Exception: Whatever ``read`` raised.
        """
        deadline = time.monotonic() + timeout_s
        if not self._slots.acquire(timeout=max(timeout_s, 0.0)):
            log.warning(
                "roster %s not read from %s: %d earlier lookups are still reading (the log's "
                "locks are held by another process)",
                sha256[:12],
                self._path,
                LOOKUP_THREADS,
            )
            raise AuditBusyError(READ_UNAVAILABLE)
        result: Future[str | None] = Future()
        try:
            # A daemon thread per lookup, not a pool's worker: a read SQLite holds (below) must
            # hold up neither close() nor the interpreter's exit (which joins a pool's workers).
            threading.Thread(
                target=self._lookup,
                args=(result, read, deadline),
                name="roster-lookup",
                daemon=True,
            ).start()
        except BaseException:
            self._slots.release()
            raise
        try:
            # A little past the deadline: the read ends by it on its own, unless SQLite waits
            # where neither its busy timeout nor its progress handler reaches (every WAL read
            # lock held by another process: it retries ~10 s inside one statement, whatever
            # the busy timeout, then fails with SQLITE_PROTOCOL).
            return result.result(timeout=max(deadline - time.monotonic(), 0.0) + LOOKUP_GRACE_S)
        except TimeoutError:
            log.warning(
                "roster %s not read from %s within %.2f s: the log's locks are held by "
                "another process (the read goes on in the background)",
                sha256[:12],
                self._path,
                timeout_s,
            )
            raise AuditBusyError(READ_UNAVAILABLE) from None

    def _lookup(
        self,
        result: Future[str | None],
        read: Callable[[float], str | None],
        deadline: float,
    ) -> None:
        """``run``'s thread: the read on a connection it alone uses, then its result.

        The connection is an idle one taken from ``idle`` (or opened by the read) and handed
        back when the read ends, or closed here if the store was closed meanwhile: ``close()``
        closes only idle ones, never this one under a running statement. Handed back (and the
        slot freed) before the result is set, so a caller that has it and then closes the store
        leaves no connection open.
        """
        with self._readers_lock:
            reads = LookupReads(self.idle.pop() if self.idle else None)
        self.local.reads = reads
        outcome: str | Exception | None = None
        try:
            outcome = read(deadline)
        except Exception as exc:  # noqa: BLE001 - handed to the caller, as a pool's worker does
            outcome = exc
        finally:
            conn, reads.conn = reads.conn, None
            if conn is not None:
                with self._readers_lock:
                    kept = not self._closed
                    if kept:
                        self.idle.append(conn)
                if not kept:
                    conn.close()  # this thread's own: no statement runs on it now
            self._slots.release()
        if isinstance(outcome, Exception):
            result.set_exception(outcome)
        else:
            result.set_result(outcome)

    def close(self) -> None:
        """Close the idle lookup connections; a lookup still reading closes its own after.

        Not waited for, nor is its connection closed here: closing a connection while another
        thread runs a statement on it crashed the process (``SqliteAuditStore.close``).
        """
        with self._readers_lock:
            self._closed = True
            idle, self.idle = self.idle, []
        for conn in idle:
            conn.close()
