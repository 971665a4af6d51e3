"""Where audit records live by default: the embedded SQLite store (group commit).

The log holds decision records and ruleset lifecycle events in one hash chain (one ``seq``
space, one head), and, outside the chain, shadow evaluation results for review.

Durability: SQLite in WAL mode with ``synchronous=FULL``; ``append`` (and ``append_events``,
``append_shadow``) returns only after the transaction holding the records has committed
(fsynced). A call that finds no commit under way commits its own append in its own thread;
otherwise a writer thread gathers every append waiting at that moment into one transaction, so
concurrent calls share one fsync (group commit). Several server processes may share one file:
each transaction takes SQLite's write lock (``BEGIN IMMEDIATE``) and extends the chain from the
stored head.

Here: opening the log, the write transaction, key claims and rotations, the bounded reads and
close(). Its parts are modules of their own: the schema (``sqlite_schema``), the lock file and
the check of the files it writes (``sqlite_files``), the roster lookups' threads
(``sqlite_lookups``); the reads and the queued appends are shared with the PostgreSQL sink
(``sql_reads``, ``sql_appends``). The sink protocol (``sink``) is re-exported here.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import AbstractContextManager, closing, contextmanager, suppress
from pathlib import Path
from typing import Any

from caseroute.audit.record import (
    GENESIS,
    Appended,
    AuditRecord,
    BlobKind,
    EditedText,
    hashed_text,
    placed,
    text_hash,
    with_hashed_text,
)
from caseroute.audit.roster_blob import RosterTooLargeError, assemble_roster, bounded_roster
from caseroute.audit.sink import AuditorReads, AuditSink, KeyMismatchError
from caseroute.audit.sql_appends import (
    WRITE_UNAVAILABLE,
    AppendQueue,
    CommitObserver,
    Pending,
    PendingEvents,
    PendingItem,
    PendingShadow,
    QueuedAppends,
    insert_events,
    stored_appends,
)
from caseroute.audit.sql_reads import (
    CHUNKS_PER_READ,
    READ_UNAVAILABLE,
    SqlLogReads,
    shadow_summary_sql,
)
from caseroute.audit.sql_rows import (
    RECORD_COLUMNS,
    RECORD_FIELDS,
    SHADOW_COLUMNS,
    KeyEra,
    RecordRow,
    add_dropped_sql,
    blobs_as_text,
    era_of,
    insert_record_sql,
    insert_rotation,
    record_from_row,
    record_values,
    require_key_fingerprint,
)
from caseroute.audit.sqlite_files import (
    FilesLostError,
    Flocked,
    WrittenFiles,
    open_lock_file,
    own_process_lock,
)
from caseroute.audit.sqlite_lookups import LookupReads, RosterLookups
from caseroute.audit.sqlite_schema import (
    NEW_LOG_PAGE_SIZE,
    SCHEMA,
    add_text_column,
    has_text_column,
)
from caseroute.domain.errors import (
    AuditBusyError,
    AuditUnavailableError,
    IdempotencyConflictError,
    withheld_cause,
)

# AuditSink, AuditorReads and KeyMismatchError live in sink; RECORD_COLUMNS, KeyEra, RecordRow
# and record_from_row in sql_rows (shared with the PostgreSQL sink); NEW_LOG_PAGE_SIZE in
# sqlite_schema. All are re-exported here, where their users have always imported them.
__all__ = [
    "NEW_LOG_PAGE_SIZE",
    "READ_UNAVAILABLE",
    "RECORD_COLUMNS",
    "WRITE_UNAVAILABLE",
    "AuditSink",
    "AuditorReads",
    "CommitObserver",
    "KeyEra",
    "KeyMismatchError",
    "RecordRow",
    "RosterTooLargeError",
    "SqliteAuditStore",
    "era_of",
    "record_from_row",
]

log = logging.getLogger("caseroute.audit")

_SCHEMA = SCHEMA
"""``sqlite_schema.SCHEMA``, by the name tests and benchmarks import from here."""


PROGRESS_STEPS = 1000
"""SQLite virtual-machine steps between checks of a bounded read's deadline (a few us each)."""


_INSERT_RECORD = insert_record_sql("?") + " ON CONFLICT (decision_id) DO NOTHING"
"""A record's insert; a decision_id stored already inserts nothing (``rowcount`` 0: a retry).

Invariant: only the decision_id UNIQUE constraint is waived; any other conflict (a seq taken)
still fails the transaction. That constraint, checked under the write lock, is the
authoritative idempotency check across processes (a SELECT before the insert was the same
check, once more per record)."""
_ADD_DROPPED = add_dropped_sql("?")
"""Add to a shadow version's dropped count, stopping at ``MAX_STORED_COUNT``."""


_KEY_AND_HEAD = (
    "SELECT (SELECT new_fingerprint FROM key_history ORDER BY era DESC LIMIT 1), "
    "(SELECT seq FROM chain_head WHERE id = 1), (SELECT record_hash FROM chain_head WHERE id = 1)"
)
"""The current key's fingerprint and the chain head, read in one statement per transaction."""


def _busy(exc: sqlite3.Error) -> bool:
    """Whether a statement failed waiting for another connection's lock (SQLITE_BUSY, any kind)."""
    return getattr(exc, "sqlite_errorcode", 0) & 0xFF == sqlite3.SQLITE_BUSY


def _text_as_stored(value: bytes) -> str:
    """A TEXT value read by an auditor's (read-only) connection; ``EditedText`` if not UTF-8.

    Read with the default factory, one value edited into other bytes failed the whole read
    ("the decision log cannot be read", as an outage would). As text with U+FFFD where it
    fails, show, export, events, report and replay read it like any other value, and ``audit
    verify`` names the record, event or blob holding it as edited. The server's own (writable)
    connections keep the default factory: their reads are on the request path.
    """
    try:
        return value.decode()
    except UnicodeDecodeError:
        return EditedText(value.decode(errors="replace"))


class SqliteAuditStore(SqlLogReads, QueuedAppends):
    """The embedded decision log: one SQLite file, hash-chained records, group commit."""

    _P = "?"
    _SHADOW_SUMMARY = shadow_summary_sql(
        "?", "SUM(instr(differences, {kind}) > 0)", "group_concat(DISTINCT {column})"
    )

    def __init__(
        self,
        path: Path,
        *,
        max_batch: int = 512,
        busy_timeout_ms: int = 10_000,
        readonly: bool = False,
    ) -> None:
        """Open the store at ``path``, creating it (mode 0600) unless ``readonly``.

        Args:
            path: The SQLite file.
            max_batch: Most appends committed in one transaction (1 turns group commit off).
            busy_timeout_ms: How long a write waits for another process's lock.
            readonly: Open for reading only (``caseroute audit``): no schema, no writer.

        Raises:
            AuditUnavailableError: If the file cannot be opened or initialised.
        """
        self.path = path
        self._target = path
        self._lock_path = path.with_name(path.name + ".lock")
        self._max_batch = max_batch
        self._busy_ms = busy_timeout_ms
        self._readonly = readonly
        self._local = threading.local()
        self._readers: list[sqlite3.Connection] = []
        self._readers_lock = threading.Lock()
        # Roster lookups (``roster_text``) read on daemon threads of their own, each on a
        # connection that thread alone uses and closes; idle ones are kept under _readers_lock.
        self._lookups = RosterLookups(path, self._readers_lock)
        self.commits = 0
        self.failures = 0
        self.observer: CommitObserver | None = None
        """Set to be told of every commit and failed transaction (``caseroute.metrics``)."""
        self._batch_started = 0.0  # perf_counter() when the current transaction's batch began
        # Invariant: one thread at a time commits (the writer, or a caller finding the writer
        # idle): it alone uses the writing connection and the kept lock file.
        self._committing = threading.Lock()
        self._holding = False  # the writer thread has taken an item it has not yet settled
        self._conn: sqlite3.Connection | None = None  # the writing connection, opened lazily
        # The files that connection writes: the database's and, once it committed, the WAL's
        # (device, inode). Either deleted or replaced under it is refused for good.
        self._files = WrittenFiles(path)
        self._fingerprint: str | None = None  # the key this writer masks with (claim_key)
        self._lock_fd: int | None = None  # the committing thread's lock file, kept open
        self._known: OrderedDict[str, None] = OrderedDict()
        self._known_lock = threading.Lock()
        self._queue = AppendQueue()
        # Invariant: nothing is queued after the writer's stop marker (it would wait forever).
        self._closed = False
        self._closing = threading.Lock()
        self._writer: threading.Thread | None = None
        self._select = ", ".join(RECORD_COLUMNS)
        try:
            if readonly:
                with closing(self._connect()) as conn:
                    conn.execute("SELECT 1 FROM chain_head LIMIT 1")
                    if not has_text_column(conn):  # a log from before the text was kept
                        self._select = f"{', '.join(RECORD_FIELDS)}, NULL"
            else:
                path.parent.mkdir(parents=True, exist_ok=True)
                created = not path.exists()
                with closing(self._open(NEW_LOG_PAGE_SIZE if created else 0)) as conn:
                    conn.executescript(SCHEMA)
                    add_text_column(conn)
                if created:
                    path.chmod(0o600)  # decisions are business records; -wal/-shm inherit it
        except (OSError, sqlite3.Error) as exc:
            # Startup and the audit CLI only (never a caller's request): the operator needs
            # the file and the cause.
            raise AuditUnavailableError(
                f"cannot open the decision log {path}: {exc}; check that --audit-db names a "
                "caseroute decision log and that this user can read (and, to serve, write) it "
                "and its directory"
            ) from exc
        if not readonly:
            self._writer = threading.Thread(
                target=self._write_loop, name="audit-writer", daemon=True
            )
            self._writer.start()

    def _connect(self) -> sqlite3.Connection:
        """A connection to the log (every one but the one creating it)."""
        return self._open(0)

    def _open(self, page_size: int, busy_ms: int | None = None) -> sqlite3.Connection:
        """A connection to the log; ``page_size`` (bytes, 0: as stored) when creating it.

        ``busy_ms``: how long its statements wait for another connection's lock (None: the
        store's busy timeout), opening it included (``journal_mode`` reads the file).
        """
        wait_ms = self._busy_ms if busy_ms is None else busy_ms
        if self._readonly:
            conn = sqlite3.connect(
                f"{self.path.resolve().as_uri()}?mode=ro",
                uri=True,
                timeout=wait_ms / 1000,
                isolation_level=None,
                check_same_thread=False,
            )
            conn.text_factory = _text_as_stored
        else:
            conn = sqlite3.connect(
                self.path,
                timeout=wait_ms / 1000,
                isolation_level=None,
                check_same_thread=False,
            )
            if page_size:  # Invariant: before WAL mode, which fixes a new file's page size
                conn.execute(f"PRAGMA page_size={int(page_size)}")
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")
        conn.execute(f"PRAGMA busy_timeout={int(wait_ms)}")
        return conn

    def claim_key(self, fingerprint: str, at: str) -> None:
        """Bind this writer to a masking key: recorded on first use, else it must match.

        Args:
            fingerprint: ``key_fingerprint`` of the key this writer masks with.
            at: Now, ISO-8601 UTC (recorded with the first era).

        Raises:
            ValueError: If ``fingerprint`` is no key fingerprint (a caller's mistake).
            KeyMismatchError: If the log's current key is another one.
            AuditUnavailableError: If the log cannot be read or written.
        """
        require_key_fingerprint(fingerprint)
        try:
            with closing(self._connect()) as conn, own_process_lock(self._lock_path):
                conn.execute("BEGIN IMMEDIATE")
                try:
                    current = _current_fingerprint(conn)
                    if current is None:
                        # A log from before fingerprints: its records are taken to be masked
                        # with this key (the first key ever offered to it).
                        conn.execute(
                            "INSERT INTO key_history (era, at, old_fingerprint, "
                            "new_fingerprint, first_seq) VALUES (1, ?, '', ?, 1)",
                            (at, fingerprint),
                        )
                    conn.execute("COMMIT")
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise
        except (OSError, sqlite3.Error) as exc:
            log.exception("AUDIT KEY CHECK FAILED on %s", self.path)
            raise AuditUnavailableError(WRITE_UNAVAILABLE) from exc
        if current is not None and current != fingerprint:
            raise KeyMismatchError(current)
        self._fingerprint = fingerprint

    def rotate_key(self, fingerprint: str, at: str) -> KeyEra:
        """Start a new key era, sealed into the chain (``caseroute audit rotate-key``).

        The rotation takes the next chain position and its era starts at the record after it.
        Writers still bound to the old key refuse to append from then on.

        Args:
            fingerprint: The new key's fingerprint.
            at: Now, ISO-8601 UTC.

        Returns:
            The new era.

        Raises:
            ValueError: If ``fingerprint`` is no key fingerprint (a caller's mistake).
            AuditUnavailableError: If the log cannot be written.
        """
        require_key_fingerprint(fingerprint)
        try:
            with closing(self._connect()) as conn, own_process_lock(self._lock_path):
                conn.execute("BEGIN IMMEDIATE")
                try:
                    head = conn.execute(
                        "SELECT seq, record_hash FROM chain_head WHERE id = 1"
                    ).fetchone()
                    last = conn.execute(
                        "SELECT era, new_fingerprint FROM key_history ORDER BY era DESC LIMIT 1"
                    ).fetchone()
                    era = insert_rotation(
                        conn.execute,
                        "?",
                        (int(head[0]), str(head[1])) if head else (0, GENESIS),
                        (int(last[0]), str(last[1])) if last else None,
                        fingerprint,
                        at,
                    )
                    conn.execute("COMMIT")
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise
        except (OSError, sqlite3.Error) as exc:
            log.exception("AUDIT KEY ROTATION FAILED on %s", self.path)
            raise AuditUnavailableError(WRITE_UNAVAILABLE) from exc
        self._fingerprint = fingerprint
        return era

    def _enqueue(self, item: PendingItem) -> None:
        """Commit ``item`` in this thread when no other thread is committing, else queue it.

        A lone call (the writer idle, holding nothing) commits its own record in its own
        thread, and never touches the queue: no hand-off to the writer, and no wake-up of a
        writer thread that would find nothing to do (~5 % of a warm Decide's CPU, issue 13).
        When calls overlap, the one committing holds ``_committing``: the others queue, and
        the writer thread commits them together (group commit) once it is free.
        """
        with self._closing:
            # Under ``_closing``: close() cannot slip between this check and the commit lock,
            # and the writer's exit waits for ``_committing`` before closing the connection.
            self._refuse_unless_open()
            # The writer holding an item is committing (or about to): leave the queue to it,
            # so calls queued behind a running commit share the writer's next transaction.
            mine = not self._holding and self._committing.acquire(blocking=False)
            if not mine:
                self._queue.put(item)
                return
        try:
            batch = self._gather([])  # calls queued before this one go first
            batch.append(item)
            self._write(batch)
        finally:
            self._committing.release()

    def _write_loop(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                break
            self._holding = True
            try:
                with self._committing:
                    self._write(self._gather([first]))
            finally:
                self._holding = False
        with self._committing:  # a caller may be committing on the connection: wait for it
            if self._conn is not None:
                self._conn.close()
                self._conn = None
            if self._lock_fd is not None:
                os.close(self._lock_fd)  # releases the flock, should one still be held
                self._lock_fd = None

    def _write(self, batch: list[PendingItem]) -> None:
        """Commit ``batch`` in one transaction and settle its items (``_committing`` held).

        Never raises: a failure settles every item with the fixed refusal.
        """
        self._batch_started = time.perf_counter()
        try:
            self._files.refuse_if_lost()
            if self._conn is None:
                self._conn = self._connect()
                self._files.opened()
            with self._process_lock():
                self._files.check()
                self._commit(self._conn, batch)
            self._files.committed()
        except Exception as exc:
            self.failures += 1
            self._observe(len(batch), None)
            # The cause and the path go to the log; callers get a fixed text (no paths,
            # no SQLite or Python error text). Anything else (a bug, a value SQLite cannot
            # encode) must not end the writer: every later append would wait forever.
            # Its text is withheld: an unexpected error may quote a record's values.
            if isinstance(exc, FilesLostError):
                log.error(  # noqa: TRY400 - the cause was logged once, when found
                    "AUDIT WRITE REFUSED (%d calls) on %s: its files were deleted or replaced "
                    "under the server (logged once, when found); restart the server",
                    len(batch),
                    self.path,
                )
            elif isinstance(exc, OSError | sqlite3.Error | KeyMismatchError):
                log.exception(
                    "AUDIT WRITE FAILED (%d calls refused) on %s: %s: %s",
                    len(batch),
                    self.path,
                    type(exc).__name__,
                    exc,  # noqa: TRY401 - the cause on the first line, for grep
                )
            else:
                log.error(  # noqa: TRY400 - exc_info would print the message
                    "AUDIT WRITE FAILED (%d calls refused) on %s: %s",
                    len(batch),
                    self.path,
                    withheld_cause(exc, "record values"),
                )
            error = AuditUnavailableError(WRITE_UNAVAILABLE)
            for item in batch:
                if not item.done.done():
                    item.done.set_exception(error)
            if self._conn is not None:
                self._conn.close()
            self._conn = None

    def _process_lock(self) -> AbstractContextManager[None]:
        """Serialise writers of all processes sharing the file with a blocking flock.

        SQLite's own busy handler polls with sleeps of up to 100 ms, so two worker processes
        contending for the write lock waited tens of milliseconds (p99 115 ms at 8 clients).
        A kernel file lock wakes the next writer as soon as the previous one commits.

        The committing thread only (``_committing`` held): its lock file stays open from the
        first transaction until the writer stops (an open and a close per transaction cost ~10 us
        of CPU). A flock belongs to an open file, so nothing else may lock through this one
        (``own_process_lock``).
        """
        if self._lock_fd is None:
            self._lock_fd = open_lock_file(self._lock_path)
        return Flocked(self._lock_fd)

    def _commit(self, conn: sqlite3.Connection, batch: list[PendingItem]) -> None:
        conn.execute("BEGIN IMMEDIATE")
        try:
            current, head_seq, head_hash = conn.execute(_KEY_AND_HEAD).fetchone()
            self._check_key(current)
            seq, prev = (head_seq, head_hash) if head_seq is not None else (0, GENESIS)
            results: list[tuple[PendingItem, Exception | None]] = []
            seen: dict[str, AuditRecord] = {}
            # A call alone in its transaction needs no savepoint: the transaction's own
            # rollback undoes it just as well (two statements fewer in the common case).
            alone = len(batch) == 1
            for item in batch:
                # Invariant: one call's records are stored all together or not at all.
                if not alone:
                    conn.execute("SAVEPOINT item")
                mark = (seq, prev, dict(seen))
                inserted: tuple[int, str] | Exception
                if isinstance(item, PendingEvents):
                    inserted = insert_events(conn.execute, self._P, item, seq, prev)
                elif isinstance(item, PendingShadow):
                    inserted = self._insert_shadow(conn, item, seq, prev)
                else:
                    inserted = self._insert_item(conn, item, seq, prev, seen)
                if isinstance(inserted, Exception):
                    conn.execute("ROLLBACK" if alone else "ROLLBACK TO item")
                    seq, prev, seen = mark
                    results.append((item, inserted))
                else:
                    seq, prev = inserted
                    results.append((item, None))
                if not alone:
                    conn.execute("RELEASE item")
            # The head moves only with records (never after a refused lone call: ``seq`` is
            # back at the head then); a retry, shadow results or a refusal leave it as read.
            if head_seq is None and seq:
                conn.execute(
                    "INSERT INTO chain_head (id, seq, record_hash) VALUES (1, ?, ?)", (seq, prev)
                )
            elif head_seq is not None and seq != head_seq:
                conn.execute(
                    "UPDATE chain_head SET seq = ?, record_hash = ? WHERE id = 1", (seq, prev)
                )
            if conn.in_transaction:  # not when a lone call was refused (rolled back above)
                conn.execute("COMMIT")
        except BaseException:
            conn.rollback()  # none when a lone call's rollback already ended the transaction
            raise
        stored = stored_appends(results)
        if stored:  # a transaction of retries (or refusals) only stored nothing: no commit
            self.commits += 1
            # Before the callers are released: a caller that got its decision sees it counted.
            self._observe(stored, time.perf_counter() - self._batch_started)
        self._settle(results)

    def _check_key(self, current: str | None) -> None:
        """Invariant: a record is masked with the key of the era it falls in.

        After a rotation, a writer still holding the old key must stop (restart it).

        Args:
            current: The log's current key fingerprint (None: none recorded yet).
        """
        if self._fingerprint is None:
            return
        if current != self._fingerprint:
            raise KeyMismatchError(current or "")

    def _insert_item(
        self,
        conn: sqlite3.Connection,
        item: Pending,
        seq: int,
        prev: str,
        seen: dict[str, AuditRecord],
    ) -> tuple[int, str] | Exception:
        for blob in item.blobs:
            conn.execute(
                "INSERT OR IGNORE INTO blobs (sha256, kind, content) VALUES (?, ?, ?)",
                (blob.sha256, blob.kind.value, blob.content),
            )
        stored: list[Appended] = []
        for encoded in item.records:
            record = encoded.record
            existing = seen.get(record.decision_id)
            if existing is None:
                text = hashed_text(encoded, seq + 1)
                record_hash = text_hash(prev, text)
                sealed = with_hashed_text(placed(record, seq + 1, prev, record_hash), text)
                inserted = conn.execute(
                    _INSERT_RECORD, record_values(sealed, encoded.input_text, text)
                )
                if inserted.rowcount == 1:
                    seq, prev = sealed.seq, record_hash
                    seen[sealed.decision_id] = sealed
                    stored.append(Appended(sealed, existed=False))
                    continue
                # Stored by an earlier transaction (this process's or another's): a retry.
                existing = self._stored(conn, record.decision_id)
            if existing.request_sha256 != record.request_sha256:
                return IdempotencyConflictError.for_request(record.request_id)
            stored.append(Appended(existing, existed=True))
        item.stored = stored
        return seq, prev

    def _insert_shadow(
        self, conn: sqlite3.Connection, item: PendingShadow, seq: int, prev: str
    ) -> tuple[int, str]:
        inserted = conn.executemany(
            f"INSERT OR IGNORE INTO shadow_results ({', '.join(SHADOW_COLUMNS)}, agreed) "
            f"VALUES ({', '.join('?' * (len(SHADOW_COLUMNS) + 1))})",
            item.rows,
        )
        item.added = inserted.rowcount  # the rows of all executions; an ignored one adds 0
        conn.executemany(
            _ADD_DROPPED,
            [(name, version, count) for (name, version), count in item.dropped.items()],
        )
        return seq, prev  # outside the chain: the head does not move

    def _stored(self, conn: sqlite3.Connection, decision_id: str) -> AuditRecord:
        """The record the insert found stored (its row exists: the insert conflicted on it)."""
        row = conn.execute(
            f"SELECT {self._select} FROM decisions WHERE decision_id = ?", (decision_id,)
        ).fetchone()
        return record_from_row(row)

    def _has_table(self, name: str) -> bool:
        """Whether a table exists.

        A log written by an older caseroute and opened read-only lacks the newer tables (a
        writable open creates them).
        """
        return bool(
            self._fetch("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,))
        )

    def _has_column(self, table: str, column: str) -> bool:
        """Whether a table has a column (a log opened read-only keeps its older layout)."""
        return bool(
            self._fetch("SELECT 1 FROM pragma_table_info(?) WHERE name = ?", (table, column))
        )

    def roster_text(
        self, sha256: str, *, timeout_s: float, max_agents: int, max_bytes: int
    ) -> str | None:
        """A roster snapshot's canonical JSON as ``get_blob`` gives it, read within bounds.

        For a worker asked for a roster by its ``roster_sha256`` alone that another worker
        sharing this log stored (or this server before a restart): ``grpc_api.roster_log``. A
        caller is waiting, so unlike an auditor's ``get_blob`` the read is bounded: a WAL
        reader never waits for the writer, the statements are interrupted once ``timeout_s``
        has passed (a progress handler), and a wait for another connection's lock (the log
        held in exclusive locking mode, a recovery after a crash: SQLite's busy wait calls no
        progress handler) ends by then too (the busy timeout, set to the time left before each
        statement and the connection's opening); nothing larger than ``max_bytes`` (the
        manifest and its chunks summed) is fetched, nor any chunk when the manifest lists more
        than ``max_agents`` (a chunk holds at least one agent).

        Args:
            sha256: The snapshot's ``roster_sha256``.
            timeout_s: Longest the read may take.
            max_agents: Most agents the caller would accept.
            max_bytes: Most bytes of JSON the caller would read.

        Returns:
            The text (unverified: the caller checks its hash), or None when the log holds no
            such snapshot, or not all of it, or an edited value where text should be.

        Raises:
            RosterTooLargeError: If it is larger than ``max_agents`` or ``max_bytes`` allow (or
                its manifest is no manifest caseroute writes).
            AuditBusyError: If another connection's lock was held past ``timeout_s``.
            AuditUnavailableError: If the log cannot be read within ``timeout_s``.
        """
        return self._lookups.run(
            sha256,
            timeout_s,
            lambda deadline: self._read_roster(
                sha256, deadline, max_agents=max_agents, max_bytes=max_bytes
            ),
        )

    @property
    def _idle_lookups(self) -> list[sqlite3.Connection]:
        """The lookup connections kept idle between lookups (``RosterLookups.idle``)."""
        return self._lookups.idle

    def _reads(self) -> threading.local | LookupReads:
        """This thread's read state: its lookup's own (``RosterLookups``), else the store's."""
        reads = getattr(self._lookups.local, "reads", None)
        return self._local if reads is None else reads

    def _read_roster(
        self, sha256: str, deadline: float, *, max_agents: int, max_bytes: int
    ) -> str | None:
        """``roster_text``'s read, on a lookup thread (its connection kept for the next)."""
        with self._interrupted_after(deadline - time.monotonic()):
            rows = self._fetch(
                "SELECT kind, length(CAST(content AS BLOB)), "
                "CASE WHEN length(CAST(content AS BLOB)) <= ? THEN content END "
                "FROM blobs WHERE sha256 = ? LIMIT 2",
                (max_bytes, sha256),
            )
            stored = bounded_roster(
                rows[0] if len(rows) == 1 else None, max_agents=max_agents, max_bytes=max_bytes
            )
            if stored is None:
                return None
            if stored.manifest is None:
                return stored.whole
            wanted = stored.chunks
            total = len(stored.manifest.encode())
            for start in range(0, len(wanted), CHUNKS_PER_READ):
                part = wanted[start : start + CHUNKS_PER_READ]
                marks = ", ".join("?" * len(part))
                ((part_bytes,),) = self._fetch(
                    "SELECT COALESCE(SUM(length(CAST(content AS BLOB))), 0) FROM blobs "
                    f"WHERE kind = ? AND sha256 IN ({marks})",
                    (BlobKind.ROSTER_CHUNK.value, *part),
                )
                total += int(part_bytes)
                if total > max_bytes:
                    raise RosterTooLargeError(f"over {total} bytes, more than {max_bytes}")
            return assemble_roster(stored.manifest, self._chunks(wanted))

    @contextmanager
    def _interrupted_after(self, seconds: float) -> Iterator[None]:
        """This thread's reads in the block end once ``seconds`` have passed.

        A statement running then is interrupted (a progress handler) and fails as any failed
        read does (``AuditUnavailableError``); a wait for another connection's lock, which
        calls no progress handler, is bounded by the time left (``_fetch`` sets the busy
        timeout before each statement) and fails with ``AuditBusyError``.
        """
        deadline = time.monotonic() + seconds
        reads = self._reads()
        reads.until = deadline
        try:
            self._fetch("SELECT 1", ())  # this thread's connection, opened (and errors mapped)
            conn = reads.conn
            assert conn is not None  # noqa: S101 - _fetch succeeded, so it keeps one open
            conn.set_progress_handler(lambda: time.monotonic() > deadline, PROGRESS_STEPS)
            try:
                yield
            finally:
                with suppress(sqlite3.Error):  # closed when a read failed: nothing to unset
                    conn.set_progress_handler(None, PROGRESS_STEPS)
                    conn.execute(f"PRAGMA busy_timeout={int(self._busy_ms)}")
        finally:
            reads.until = None

    @contextmanager
    def snapshot(self) -> Iterator[None]:
        """Every read of this thread in the block sees the log as one instant (one snapshot).

        A read transaction on this thread's connection: WAL keeps it at the commit its first
        read saw, whatever other processes commit meanwhile. ``audit verify`` reads the head,
        the key eras, then the chain a page at a time; read one statement apiece, a record
        committed in between made an intact live log verify TAMPERED.

        Raises:
            AuditUnavailableError: If the read transaction cannot begin (logged).
        """
        self._fetch("BEGIN", ())
        try:
            yield
        finally:
            conn = getattr(self._reads(), "conn", None)
            if conn is not None and conn.in_transaction:
                conn.execute("ROLLBACK")  # read only: nothing to keep

    def _fetch(self, sql: str, params: tuple[object, ...]) -> list[Any]:
        """Run a read on this thread's connection (opened once per thread, then reused).

        Inside ``_interrupted_after`` a wait for another connection's lock lasts at most the
        time left (the busy timeout, opening the connection included), then fails with
        ``AuditBusyError``.
        """
        reads = self._reads()
        conn = getattr(reads, "conn", None)
        until: float | None = getattr(reads, "until", None)
        left_ms = None if until is None else int((until - time.monotonic()) * 1000)
        try:
            if left_ms is not None and left_ms < 1:
                raise sqlite3.OperationalError("interrupted: no time left to read")
            if conn is None:
                conn = self._open(0, left_ms)
                reads.conn = conn
                if not isinstance(reads, LookupReads):  # a lookup's is its thread's to close
                    with self._readers_lock:
                        self._readers.append(conn)
            elif left_ms is not None:
                conn.execute(f"PRAGMA busy_timeout={left_ms}")
            rows = conn.execute(sql, params).fetchall()
        except sqlite3.Error as exc:
            reads.conn = None
            if conn is not None:  # dropped for a new one: closed, not kept until close()
                with self._readers_lock:
                    if conn in self._readers:
                        self._readers.remove(conn)
                with suppress(sqlite3.Error):
                    conn.close()
            log.error(  # noqa: TRY400 - the cause is one SQLite message, no traceback needed
                "AUDIT READ FAILED on %s: %s: %s", self.path, type(exc).__name__, exc
            )
            if until is not None and _busy(exc):
                raise AuditBusyError(READ_UNAVAILABLE) from exc
            if self._readonly:  # an auditor at a terminal: the file, the cause, what to do
                raise AuditUnavailableError(
                    f"the decision log {self.path} cannot be read: {type(exc).__name__}: {exc}; "
                    "nothing was changed; check that --audit-db names a caseroute decision "
                    "log that this user can read, then run the command again"
                ) from exc
            raise AuditUnavailableError(READ_UNAVAILABLE) from exc
        if self._readonly:  # an auditor's read: a value edited into a BLOB is no text either
            rows = [blobs_as_text(row) for row in rows]
        return rows

    def close(self) -> None:
        """Finish pending appends, stop the writer and close the readers.

        A roster lookup still reading (its caller answered ``busy`` at its deadline) is not
        waited for, nor is its connection closed: closing a connection while another thread
        runs a statement on it crashed the process (a segfault in SQLite, seen in CI), and
        waiting held a server's shutdown ~10 s where SQLite retries without checking the busy
        timeout, the progress handler or ``interrupt()`` (every WAL read lock held by another
        process). The lookup's own daemon thread closes that connection when its read ends
        (``RosterLookups``); idle lookup connections are closed here. Nothing is interrupted
        here: the writer's commit must not be.
        """
        self._lookups.close()
        if self._writer is not None:
            with self._closing:
                already, self._closed = self._closed, True
                if not already:
                    self._queue.put(None)
            self._writer.join(timeout=30)
        with self._readers_lock:
            for conn in self._readers:
                conn.close()
            self._readers.clear()
            self._local = threading.local()  # later reads (tools, tests) open afresh


def _current_fingerprint(conn: sqlite3.Connection) -> str | None:
    row = conn.execute(
        "SELECT new_fingerprint FROM key_history ORDER BY era DESC LIMIT 1"
    ).fetchone()
    return None if row is None else str(row[0])
