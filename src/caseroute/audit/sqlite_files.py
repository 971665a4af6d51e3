"""The files a SQLite log's writers hold: the lock file and its flock, and the files checked.

``SqliteAuditStore`` serialises the writers of every process sharing the log with a flock on a
lock file beside it (``Flocked``, ``own_process_lock``), and refuses, for good, to write once
the database or its WAL was deleted or replaced under its writing connection (``WrittenFiles``).
"""

from __future__ import annotations

import fcntl
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

log = logging.getLogger("caseroute.audit")


class FilesLostError(OSError):
    """The log's files were deleted or replaced under the writer (``WrittenFiles.check``).

    Its cause is logged once, when found ("AUDIT FILES LOST"); each write refused after it
    logs one line, with no traceback (a traceback per refused call flooded the log).
    """


class WrittenFiles:
    """The files the writing connection writes, and whether they were found replaced.

    The database's and, once it committed, the WAL's (device, inode). Either deleted or
    replaced under it is refused for good (``check``). The committing thread only
    (``_committing`` held), as the writing connection.
    """

    __slots__ = ("_database", "_db_name", "_lost", "_path", "_wal")

    def __init__(self, path: Path) -> None:
        """The files of the log at ``path``, none identified yet (no connection open)."""
        self._path = path
        self._db_name = str(path)  # the WAL is this name + "-wal" (SQLite's naming)
        self._database: tuple[int, int] | None = None
        self._wal: tuple[int, int] | None = None
        self._lost: str | None = None

    def opened(self) -> None:
        """Identify the database file, for a writing connection just opened on it."""
        self._database, self._wal = identity(self._db_name), None

    def committed(self) -> None:
        """Identify the WAL once the connection committed (it exists from then on)."""
        if self._wal is None:
            self._wal = identity(self._db_name + "-wal")

    def refuse_if_lost(self) -> None:
        """Raise OSError once the log's files were found replaced (``check``)."""
        if self._lost is not None:
            raise FilesLostError(self._lost)

    def check(self) -> None:
        """Refuse, for good, to write once the files this connection writes were replaced.

        SQLite keeps writing to a deleted WAL (or database) through its open descriptor: the
        decisions committed after ``rm audit.db-wal`` were answered OK and then lost, or left
        the database malformed, when the server was killed (review R31c, 2). The WAL is never
        deleted while this connection is open, so a WAL gone or another file is someone else's
        doing. Stopping the server checkpoints what the open files hold into the database.

        Raises:
            OSError: Naming what was replaced; every later write is refused the same way.
        """
        found = None
        if identity(self._db_name) != self._database:
            found = "the database file"
        elif self._wal is not None and identity(self._db_name + "-wal") != self._wal:
            found = "its write-ahead log (-wal)"
        if found is not None:
            self._lost = (
                f"{found} was deleted or replaced while the server was writing to it: every "
                "write is refused until the server restarts (stopping it checkpoints the "
                "decisions its open files hold into the database); never delete a live log's "
                "-wal or -shm file"
            )
            log.error("AUDIT FILES LOST on %s: %s", self._path, self._lost)
            raise FilesLostError(self._lost)


def identity(path: str) -> tuple[int, int] | None:
    """``path``'s (device, inode), or None when there is no such file.

    ``os.stat`` on a ``str``: ~2 us, a third less than ``Path.stat`` (it runs per transaction).
    """
    try:
        found = os.stat(path)  # noqa: PTH116 - see above
    except FileNotFoundError:
        return None
    return found.st_dev, found.st_ino


class Flocked:
    """An exclusive flock on an open file, held for a ``with`` block (``_process_lock``).

    A class rather than a ``@contextmanager`` generator: it is entered once per transaction,
    and the generator's frame and wrapper cost ~1.5 us more per transaction (issue 13).
    """

    __slots__ = ("_fd",)

    def __init__(self, fd: int) -> None:
        self._fd = fd

    def __enter__(self) -> None:
        fcntl.flock(self._fd, fcntl.LOCK_EX)

    def __exit__(self, *_: object) -> None:
        fcntl.flock(self._fd, fcntl.LOCK_UN)


def open_lock_file(path: Path) -> int:
    """Open (creating) the lock file beside the log; 0600 like the database."""
    # The file is empty, but nothing beside the log is loose.
    return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)


@contextmanager
def own_process_lock(path: Path) -> Iterator[None]:
    """The writers' flock through an open file of its own (key claims and rotations).

    Not the writer thread's kept file: two holders of one open file both get its flock.
    """
    fd = open_lock_file(path)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the flock
