"""Where audit records live: the sink protocol and the embedded SQLite store (group commit).

The log holds decision records and ruleset lifecycle events in one hash chain (one ``seq``
space, one head), and, outside the chain, shadow evaluation results for review.

Durability: SQLite in WAL mode with ``synchronous=FULL``; ``append`` (and ``append_events``,
``append_shadow``) returns only after the transaction holding the records has committed
(fsynced). A writer thread gathers every append
waiting at that moment into one transaction, so concurrent calls share one fsync (group
commit). Several server processes may share one file: each transaction takes SQLite's write
lock (``BEGIN IMMEDIATE``) and extends the chain from the stored head.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import queue
import sqlite3
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import Future
from contextlib import closing, contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from caseroute.audit.record import (
    GENESIS,
    SHADOW_DIFFERENCES,
    Appended,
    AuditRecord,
    Blob,
    BlobKind,
    EncodedRecord,
    RulesetEvent,
    ShadowResult,
    ShadowSummary,
    encode_record,
    event_problem,
    hashed_text,
    seal_event,
    shadow_problem,
    text_hash,
    with_hashed_text,
)
from caseroute.domain.errors import (
    AuditUnavailableError,
    IdempotencyConflictError,
    withheld_cause,
)

log = logging.getLogger("caseroute.audit")

WRITE_UNAVAILABLE = (
    "the decision log cannot be written; no decision was made; retry later or with another replica"
)
"""What a caller is told when records cannot be committed (the cause goes to the log only)."""
READ_UNAVAILABLE = (
    "the decision log cannot be read; nothing was decided or changed; retry later or with "
    "another replica"
)
"""What a caller is told when the log cannot be read (the cause goes to the log only)."""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS decisions (
    seq INTEGER PRIMARY KEY,
    decision_id TEXT NOT NULL UNIQUE,
    request_id TEXT NOT NULL,
    request_sha256 TEXT NOT NULL,
    case_id TEXT NOT NULL,
    recorded_at TEXT NOT NULL,
    now TEXT NOT NULL,
    ruleset_name TEXT NOT NULL,
    ruleset_version TEXT NOT NULL,
    ruleset_sha256 TEXT NOT NULL,
    caseroute_version TEXT NOT NULL,
    caller TEXT NOT NULL,
    input TEXT NOT NULL,
    decision TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    record_hash TEXT NOT NULL,
    now_us INTEGER NOT NULL, -- ``now`` as epoch microseconds, for range queries (not hashed)
    content TEXT             -- the text hashed (canonical JSON of the content), exactly; NULL
                             -- in rows written before it was kept (see _TEXT_COLUMN)
);
CREATE INDEX IF NOT EXISTS decisions_request ON decisions (request_id);
CREATE INDEX IF NOT EXISTS decisions_case ON decisions (case_id, seq);
CREATE INDEX IF NOT EXISTS decisions_now ON decisions (now_us);
CREATE INDEX IF NOT EXISTS decisions_ruleset ON decisions (ruleset_name, ruleset_version);
CREATE TABLE IF NOT EXISTS ruleset_events (
    seq INTEGER PRIMARY KEY,         -- shared with decisions: one chain, one head
    event_id TEXT NOT NULL UNIQUE,
    recorded_at TEXT NOT NULL,
    action TEXT NOT NULL,
    actor TEXT NOT NULL,
    ruleset_name TEXT NOT NULL,
    role TEXT NOT NULL,
    from_version TEXT NOT NULL,
    from_sha256 TEXT NOT NULL,
    to_version TEXT NOT NULL,
    to_sha256 TEXT NOT NULL,
    caseroute_version TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    record_hash TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS ruleset_events_name ON ruleset_events (ruleset_name, seq);
CREATE TABLE IF NOT EXISTS shadow_results (  -- review data, NOT in the hash chain
    id INTEGER PRIMARY KEY,
    decision_id TEXT NOT NULL,
    recorded_at TEXT NOT NULL,
    ruleset_name TEXT NOT NULL,
    live_version TEXT NOT NULL,
    live_sha256 TEXT NOT NULL,
    shadow_version TEXT NOT NULL,
    shadow_sha256 TEXT NOT NULL,
    differences TEXT NOT NULL,       -- JSON list of kinds; [] = agreed
    agreed INTEGER NOT NULL,
    live TEXT NOT NULL,              -- JSON summary: outcome, agent_id, queue, priority, rule_id
    shadow TEXT NOT NULL,
    UNIQUE (decision_id, shadow_version, shadow_sha256)  -- sha256 is '' when shadow failed
);
CREATE INDEX IF NOT EXISTS shadow_results_version
    ON shadow_results (ruleset_name, shadow_version, agreed, id);
CREATE TABLE IF NOT EXISTS shadow_dropped (
    ruleset_name TEXT NOT NULL,
    shadow_version TEXT NOT NULL,
    dropped INTEGER NOT NULL,        -- live decisions never compared (shadow queue full)
    PRIMARY KEY (ruleset_name, shadow_version)
);
CREATE TABLE IF NOT EXISTS blobs (
    sha256 TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    content TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS key_history (
    era INTEGER PRIMARY KEY,         -- 1, 2, ...: one per masking key, in order of use
    at TEXT NOT NULL,                -- when the key was first used or rotated in (UTC)
    old_fingerprint TEXT NOT NULL,   -- the previous key's fingerprint ("" for era 1)
    new_fingerprint TEXT NOT NULL,   -- this era's key fingerprint (never the key)
    first_seq INTEGER NOT NULL       -- records from this seq on are masked with this key
);
CREATE TABLE IF NOT EXISTS chain_head (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    seq INTEGER NOT NULL,
    record_hash TEXT NOT NULL
);
"""
_COLUMNS = (
    "seq",
    "decision_id",
    "request_id",
    "request_sha256",
    "case_id",
    "recorded_at",
    "now",
    "ruleset_name",
    "ruleset_version",
    "ruleset_sha256",
    "caseroute_version",
    "caller",
    "input",
    "decision",
    "prev_hash",
    "record_hash",
)
_EVENT_COLUMNS = RulesetEvent.__slots__
_SHADOW_COLUMNS = (
    "decision_id",
    "recorded_at",
    "ruleset_name",
    "live_version",
    "live_sha256",
    "shadow_version",
    "shadow_sha256",
    "differences",
    "live",
    "shadow",
)


class AuditSink(Protocol):
    """What the service needs from a decision log (SQLite here; PostgreSQL later)."""

    def append(self, records: Sequence[AuditRecord], blobs: Sequence[Blob] = ()) -> list[Appended]:
        """Store records (and the blobs they reference) durably, in one transaction.

        Returns when committed. A record whose decision_id is stored already is not written
        again: the stored one comes back with ``existed=True``.

        Raises:
            AuditUnavailableError: If nothing could be committed.
            IdempotencyConflictError: If a decision_id is stored with a different request input.
        """
        ...

    def has_blob(self, sha256: str) -> bool:
        """Whether a blob is known to be stored (False may be wrong, True never is).

        Lets callers skip building content the store already has.
        """
        ...

    def get_blob(self, sha256: str) -> Blob | None:
        """One blob."""
        ...

    def query(
        self,
        *,
        case_id: str = "",
        since: datetime | None = None,
        until: datetime | None = None,
        after_seq: int = 0,
        limit: int = 100,
    ) -> list[AuditRecord]:
        """Records in chain order after ``after_seq``, by case and decision instant.

        ``since <= now < until``; None = unbounded.
        """
        ...

    def by_request(self, request_id: str) -> list[AuditRecord]:
        """Records of one request, in position order."""
        ...

    def get(self, decision_id: str) -> AuditRecord | None:
        """One record."""
        ...

    def records(
        self,
        after_seq: int = 0,
        *,
        case_id: str = "",
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> Iterator[AuditRecord]:
        """Every matching record in chain order after ``after_seq`` (verify, export)."""
        ...

    def head(self) -> tuple[int, str]:
        """(seq, record_hash) of the last committed record; (0, GENESIS) when empty."""
        ...

    def append_events(self, events: Sequence[RulesetEvent]) -> list[RulesetEvent]:
        """Seal ruleset lifecycle events into the chain and store them durably.

        Returns when committed. An event whose event_id is stored already is not written
        again: the stored one comes back.

        Raises:
            AuditUnavailableError: If nothing could be committed.
        """
        ...

    def events(
        self, ruleset_name: str | None = None, after_seq: int = 0, limit: int = 1000
    ) -> list[RulesetEvent]:
        """Ruleset lifecycle events in chain order after ``after_seq`` (None name = all)."""
        ...

    def last_event(self, ruleset_name: str, role: str) -> RulesetEvent | None:
        """The most recent event of one role (active / shadow) of a ruleset, if any."""
        ...

    def decided_sha256s(self, ruleset_name: str, ruleset_version: str) -> frozenset[str]:
        """The distinct ruleset_sha256 of the decisions made by ``ruleset_name@ruleset_version``.

        Raises:
            AuditUnavailableError: If the log cannot be read.
        """
        ...

    def append_shadow(
        self,
        results: Sequence[ShadowResult],
        dropped: int | Mapping[tuple[str, str], int] = 0,
    ) -> None:
        """Store shadow comparisons (outside the chain) and count dropped ones.

        Raises:
            AuditUnavailableError: If nothing could be committed.
        """
        ...

    def shadow_results(
        self,
        ruleset_name: str,
        shadow_version: str | None = None,
        disagreements_only: bool = False,
        limit: int = 1000,
    ) -> list[ShadowResult]:
        """Shadow comparisons of a ruleset, oldest first."""
        ...

    def shadow_summary(self, ruleset_name: str) -> list[ShadowSummary]:
        """Per shadow version of a ruleset: how its decisions compared with the live ones."""
        ...

    def close(self) -> None:
        """Stop accepting appends and release resources."""
        ...


_TEXT_COLUMN = "content"
"""The column holding a record's hashed text (added to logs written before it was kept).

New rows store the text once: ``decision`` (the bulk of a record) is '' in them, and ``input``
keeps the canonical text of the input (a tenth of a record) so replay can find a record's
roster snapshot without decoding its decision. The other columns are copies of the text's
scalars for indexes and filters; verify checks each against the text."""
RECORD_COLUMNS = (*_COLUMNS, _TEXT_COLUMN)
"""The fields of a ``RecordRow``, in order (``AuditRecord``'s fields, then the hashed text)."""
RecordRow = tuple[Any, ...]
"""A stored record as read, undecoded: ``RECORD_COLUMNS`` order, ``input`` and ``decision`` as
the JSON text stored, then the hashed text or None (``SqliteAuditStore.record_rows``)."""


def record_from_row(row: RecordRow) -> AuditRecord:
    """The ``AuditRecord`` of a ``RecordRow`` (decodes its JSON)."""
    return _row_to_record(row)


def _loads(text: str) -> Any:
    """JSON of a stored column; a damaged one decodes as {} (verify then names the record)."""
    try:
        return json.loads(text) if text else {}
    except ValueError:
        return {}


def _row_to_record(row: sqlite3.Row | RecordRow) -> AuditRecord:
    """The record of a row: its columns, with ``decision`` from the hashed text when kept.

    Every column is taken as stored (a decision column is decoded when it holds one), so a
    column edited after the fact shows in the record and verify sees it disagree with the text.
    """
    *columns, text = row
    values = dict(zip(_COLUMNS, columns, strict=True))
    values["input"] = _loads(values["input"])
    if text is None or values["decision"]:
        values["decision"] = _loads(values["decision"])
    else:
        content = _loads(text)
        values["decision"] = content.get("decision", {}) if isinstance(content, dict) else {}
    return with_hashed_text(AuditRecord(**values), text)


@dataclass(frozen=True, slots=True)
class KeyEra:
    """One masking key's time in the log.

    Attributes:
        era: 1 for the first key, then one more per rotation.
        at: When it was first used (era 1) or rotated in (ISO-8601 UTC).
        old_fingerprint: The previous key's fingerprint ("" for era 1).
        new_fingerprint: This key's fingerprint.
        first_seq: The first record masked with this key.
    """

    era: int
    at: str
    old_fingerprint: str
    new_fingerprint: str
    first_seq: int


class KeyMismatchError(Exception):
    """The log is masked with another key than the one offered (carries the stored one)."""

    def __init__(self, stored: str) -> None:
        super().__init__(
            f"the decision log's masking key is now {stored or '(none)'}, not this writer's "
            "(rotated with `caseroute audit rotate-key`?); restart it with the current key"
        )
        self.stored = stored


def era_of(seq: int, history: Sequence[KeyEra]) -> KeyEra | None:
    """The key era a record belongs to (None before any key was recorded)."""
    return next((e for e in reversed(history) if e.first_seq <= seq), None)


@dataclass(slots=True)
class _Pending:
    """Decision records (and their blobs) waiting for the writer."""

    records: Sequence[EncodedRecord]
    blobs: Sequence[Blob]
    done: Future[list[Appended]]
    stored: list[Appended] = field(default_factory=list)


@dataclass(slots=True)
class _PendingEvents:
    """Ruleset lifecycle events waiting for the writer (sealed into the same chain)."""

    events: Sequence[RulesetEvent]
    done: Future[list[RulesetEvent]]
    stored: list[RulesetEvent] = field(default_factory=list)


@dataclass(slots=True)
class _PendingShadow:
    """Shadow results, already turned into rows (so nothing can fail the batch on encoding)."""

    rows: list[tuple[object, ...]]
    dropped: dict[tuple[str, str], int]
    done: Future[None]


_Item = _Pending | _PendingEvents | _PendingShadow


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_KNOWN_BLOBS = 4096
_PAGE = 1000


class CommitObserver(Protocol):
    """Told about each transaction of the writer (metrics); must not block or raise."""

    def committed(self, items: int, seconds: float) -> None:
        """A transaction of ``items`` appends committed after ``seconds`` (lock wait included)."""

    def commit_failed(self, items: int) -> None:
        """A transaction failed: its ``items`` appends were refused."""


class SqliteAuditStore:
    """The embedded decision log: one SQLite file, hash-chained records, group commit."""

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
        self._lock_path = path.with_name(path.name + ".lock")
        self._max_batch = max_batch
        self._busy_ms = busy_timeout_ms
        self._readonly = readonly
        self._local = threading.local()
        self._readers: list[sqlite3.Connection] = []
        self._readers_lock = threading.Lock()
        self.commits = 0
        self.failures = 0
        self.observer: CommitObserver | None = None
        """Set to be told of every commit and failed transaction (``caseroute.metrics``)."""
        self._batch_started = 0.0  # perf_counter() when the writer began its current batch
        self._fingerprint: str | None = None  # the key this writer masks with (claim_key)
        self._known: OrderedDict[str, None] = OrderedDict()
        self._known_lock = threading.Lock()
        self._queue: queue.Queue[_Item | None] = queue.Queue()
        # Invariant: nothing is queued after the writer's stop marker (it would wait forever).
        self._closed = False
        self._closing = threading.Lock()
        self._writer: threading.Thread | None = None
        self._select = ", ".join(RECORD_COLUMNS)
        try:
            if readonly:
                with closing(self._connect()) as conn:
                    conn.execute("SELECT 1 FROM chain_head LIMIT 1")
                    if not _has_text_column(conn):  # a log from before the text was kept
                        self._select = f"{', '.join(_COLUMNS)}, NULL"
            else:
                path.parent.mkdir(parents=True, exist_ok=True)
                created = not path.exists()
                with closing(self._connect()) as conn:
                    conn.executescript(_SCHEMA)
                    _add_text_column(conn)
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
        if self._readonly:
            conn = sqlite3.connect(
                f"{self.path.resolve().as_uri()}?mode=ro",
                uri=True,
                timeout=self._busy_ms / 1000,
                isolation_level=None,
                check_same_thread=False,
            )
        else:
            conn = sqlite3.connect(
                self.path,
                timeout=self._busy_ms / 1000,
                isolation_level=None,
                check_same_thread=False,
            )
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")
        conn.execute(f"PRAGMA busy_timeout={int(self._busy_ms)}")
        return conn

    def key_history(self) -> list[KeyEra]:
        """Every masking key era, oldest first (empty for a log written before fingerprints)."""
        if not self._fetch(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'key_history'", ()
        ):
            return []  # a log written before key history (opened read-only)
        rows = self._fetch(
            "SELECT era, at, old_fingerprint, new_fingerprint, first_seq FROM key_history "
            "ORDER BY era",
            (),
        )
        return [KeyEra(*row) for row in rows]

    def has_records(self) -> bool:
        """Whether any record or key fingerprint is stored (a key is then already bound)."""
        return self.head()[0] > 0 or bool(self.key_history())

    def claim_key(self, fingerprint: str, at: str) -> None:
        """Bind this writer to a masking key: recorded on first use, else it must match.

        Args:
            fingerprint: ``key_fingerprint`` of the key this writer masks with.
            at: Now, ISO-8601 UTC (recorded with the first era).

        Raises:
            KeyMismatchError: If the log's current key is another one.
            AuditUnavailableError: If the log cannot be read or written.
        """
        try:
            with closing(self._connect()) as conn, self._process_lock():
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
        """Start a new key era at the next record (``caseroute audit rotate-key``).

        Writers still bound to the old key refuse to append from then on.

        Args:
            fingerprint: The new key's fingerprint.
            at: Now, ISO-8601 UTC.

        Returns:
            The new era.

        Raises:
            AuditUnavailableError: If the log cannot be written.
        """
        try:
            with closing(self._connect()) as conn, self._process_lock():
                conn.execute("BEGIN IMMEDIATE")
                try:
                    head = conn.execute("SELECT seq FROM chain_head WHERE id = 1").fetchone()
                    last = conn.execute(
                        "SELECT era, new_fingerprint FROM key_history ORDER BY era DESC LIMIT 1"
                    ).fetchone()
                    era = KeyEra(
                        (last[0] if last else 0) + 1,
                        at,
                        last[1] if last else "",
                        fingerprint,
                        (head[0] if head else 0) + 1,
                    )
                    conn.execute(
                        "INSERT INTO key_history (era, at, old_fingerprint, new_fingerprint, "
                        "first_seq) VALUES (?, ?, ?, ?, ?)",
                        (era.era, era.at, era.old_fingerprint, era.new_fingerprint, era.first_seq),
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

    def append(self, records: Sequence[AuditRecord], blobs: Sequence[Blob] = ()) -> list[Appended]:
        """Store records and blobs; returns when they are committed to disk.

        Records whose decision_id is already stored are not written again: the stored record
        is returned instead (a retry). A stored record with the same decision_id but a
        different request input raises IdempotencyConflictError, and none of this call's
        records are stored.

        Raises:
            AuditUnavailableError: If the store cannot commit (nothing is stored then).
            IdempotencyConflictError: If a decision_id exists with a different input.
        """
        # Serialised here, in the caller's thread: the writer (whose time every caller waits
        # on) only appends each record's seq to its text and hashes it.
        pending = _Pending([encode_record(r) for r in records], blobs, Future())
        self._enqueue(pending)
        return pending.done.result()

    def _enqueue(self, item: _Item) -> None:
        """Hand an item to the writer thread (its ``done`` is settled after the commit)."""
        if self._writer is None:
            log.error("append refused: the decision log %s was opened read-only", self.path)
            raise AuditUnavailableError(WRITE_UNAVAILABLE)
        with self._closing:
            if self._closed:
                log.error(
                    "append refused: the decision log %s is closed (shutting down)", self.path
                )
                raise AuditUnavailableError(WRITE_UNAVAILABLE)
            self._queue.put(item)

    def append_events(self, events: Sequence[RulesetEvent]) -> list[RulesetEvent]:
        """Seal ruleset lifecycle events into the chain; returns when they are committed.

        They go through the same writer thread and transaction as decision records, so seq
        allocation and the chain head have one owner. An event whose event_id is stored
        already is not written again: the stored event is returned (a retry).

        Args:
            events: The events, in the order they happened (seq and hashes are ignored).

        Returns:
            The stored events, sealed, in the given order.

        Raises:
            ValueError: If an event is malformed (a caller bug: unknown action or role, a
                non-string field, an empty event_id); nothing is stored.
            AuditUnavailableError: If the store cannot commit (nothing is stored then).
        """
        for event in events:
            problem = event_problem(event)
            if problem is not None:
                raise ValueError(f"ruleset event {event.event_id!r}: {problem}")
        pending = _PendingEvents(events, Future())
        self._enqueue(pending)
        return pending.done.result()

    def append_shadow(
        self,
        results: Sequence[ShadowResult],
        dropped: int | Mapping[tuple[str, str], int] = 0,
    ) -> None:
        """Store shadow comparisons and dropped counts; returns when they are committed.

        Shadow results are review data stored beside the live decisions, NOT in the hash
        chain (they never changed what a caller got). A result already stored for the same
        decision_id, shadow version and shadow sha256 is kept, not duplicated. The summaries
        are checked before anything is queued, so a bad result fails this call, never the live
        decisions committed in the same transaction.

        Args:
            results: The comparisons.
            dropped: Live decisions never compared because the shadow queue was full: an int
                counts against the one (ruleset_name, shadow_version) of ``results``; a
                mapping gives counts per (ruleset_name, shadow_version).

        Raises:
            ValueError: If a result is malformed or holds a summary key other than outcome,
                agent_id, queue, priority, rule_id, escalation, error; or if an int
                ``dropped`` cannot be attributed to exactly one shadow version.
            AuditUnavailableError: If the store cannot commit (nothing is stored then).
        """
        rows: list[tuple[object, ...]] = []
        for result in results:
            problem = shadow_problem(result)
            if problem is not None:
                raise ValueError(f"shadow result for {result.decision_id!r}: {problem}")
            rows.append(_shadow_row(result))
        counts = _dropped_counts(results, dropped)
        if not rows and not counts:
            return
        pending = _PendingShadow(rows, counts, Future())
        self._enqueue(pending)
        pending.done.result()

    def has_blob(self, sha256: str) -> bool:
        """Whether this store wrote or saw the blob recently (an in-memory hint)."""
        with self._known_lock:
            if sha256 in self._known:
                self._known.move_to_end(sha256)
                return True
        return False

    def _remember(self, sha256: str) -> None:
        with self._known_lock:
            self._known[sha256] = None
            self._known.move_to_end(sha256)
            while len(self._known) > _KNOWN_BLOBS:
                self._known.popitem(last=False)

    def _write_loop(self) -> None:
        conn: sqlite3.Connection | None = None
        while True:
            first = self._queue.get()
            if first is None:
                break
            batch = [first]
            while len(batch) < self._max_batch:
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    self._queue.put(None)
                    break
                batch.append(more)
            self._batch_started = time.perf_counter()  # writer thread only
            try:
                conn = conn or self._connect()
                with self._process_lock():
                    self._commit(conn, batch)
            except Exception as exc:
                self.failures += 1
                self._observe(len(batch), None)
                # The cause and the path go to the log; callers get a fixed text (no paths,
                # no SQLite or Python error text). Anything else (a bug, a value SQLite cannot
                # encode) must not end this thread: every later append would wait forever.
                # Its text is withheld: an unexpected error may quote a record's values.
                if isinstance(exc, OSError | sqlite3.Error | KeyMismatchError):
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
                if conn is not None:
                    conn.close()
                conn = None
        if conn is not None:
            conn.close()

    def _observe(self, items: int, seconds: float | None) -> None:
        """Tell the observer, if any, of a commit (``seconds``) or a failure (``None``).

        Its own failure never reaches the writer thread.
        """
        if self.observer is None:
            return
        try:
            if seconds is None:
                self.observer.commit_failed(items)
            else:
                self.observer.committed(items, seconds)
        except Exception as exc:  # noqa: BLE001 - metrics never stop the decision log
            log.error("commit observer failed: %s", withheld_cause(exc))  # noqa: TRY400

    @contextmanager
    def _process_lock(self) -> Iterator[None]:
        """Serialise writers of all processes sharing the file with a blocking flock.

        SQLite's own busy handler polls with sleeps of up to 100 ms, so two worker processes
        contending for the write lock waited tens of milliseconds (p99 115 ms at 8 clients).
        A kernel file lock wakes the next writer as soon as the previous one commits.
        """
        # 0600 like the database: the file is empty, but nothing beside the log is loose.
        fd = os.open(self._lock_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        with os.fdopen(fd, "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _commit(self, conn: sqlite3.Connection, batch: list[_Item]) -> None:
        conn.execute("BEGIN IMMEDIATE")
        try:
            self._check_key(conn)
            head = conn.execute("SELECT seq, record_hash FROM chain_head WHERE id = 1").fetchone()
            seq, prev = (head[0], head[1]) if head else (0, GENESIS)
            results: list[tuple[_Item, Exception | None]] = []
            seen: dict[str, AuditRecord] = {}
            for item in batch:
                # Invariant: one call's records are stored all together or not at all.
                conn.execute("SAVEPOINT item")
                mark = (seq, prev, dict(seen))
                inserted: tuple[int, str] | Exception
                if isinstance(item, _PendingEvents):
                    inserted = self._insert_events(conn, item, seq, prev)
                elif isinstance(item, _PendingShadow):
                    inserted = self._insert_shadow(conn, item, seq, prev)
                else:
                    inserted = self._insert_item(conn, item, seq, prev, seen)
                if isinstance(inserted, Exception):
                    conn.execute("ROLLBACK TO item")
                    seq, prev, seen = mark
                    results.append((item, inserted))
                else:
                    seq, prev = inserted
                    results.append((item, None))
                conn.execute("RELEASE item")
            conn.execute(
                "INSERT INTO chain_head (id, seq, record_hash) VALUES (1, ?, ?) "
                "ON CONFLICT(id) DO UPDATE SET seq = excluded.seq, "
                "record_hash = excluded.record_hash",
                (seq, prev),
            )
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        self.commits += 1
        # Before the callers are released: a caller that got its decision sees it counted.
        self._observe(len(batch), time.perf_counter() - self._batch_started)
        for item, error in results:
            if error is not None:
                item.done.set_exception(error)
            elif isinstance(item, _PendingEvents):
                item.done.set_result(item.stored)
            elif isinstance(item, _PendingShadow):
                item.done.set_result(None)
            else:
                for blob in item.blobs:
                    self._remember(blob.sha256)
                item.done.set_result(item.stored)

    def _check_key(self, conn: sqlite3.Connection) -> None:
        """Invariant: a record is masked with the key of the era it falls in.

        After a rotation, a writer still holding the old key must stop (restart it).
        """
        if self._fingerprint is None:
            return
        current = _current_fingerprint(conn)
        if current != self._fingerprint:
            raise KeyMismatchError(current or "")

    def _insert_item(
        self,
        conn: sqlite3.Connection,
        item: _Pending,
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
            existing = seen.get(record.decision_id) or self._get(conn, record.decision_id)
            if existing is not None:
                if existing.request_sha256 != record.request_sha256:
                    return IdempotencyConflictError.for_request(record.request_id)
                stored.append(Appended(existing, existed=True))
                continue
            seq += 1
            text = hashed_text(encoded, seq)
            record_hash = text_hash(prev, text)
            sealed = with_hashed_text(
                replace(record, seq=seq, prev_hash=prev, record_hash=record_hash), text
            )
            conn.execute(_INSERT_RECORD, _row_values(sealed, encoded.input_text, text))
            prev = record_hash
            seen[sealed.decision_id] = sealed
            stored.append(Appended(sealed, existed=False))
        item.stored = stored
        return seq, prev

    def _insert_events(
        self, conn: sqlite3.Connection, item: _PendingEvents, seq: int, prev: str
    ) -> tuple[int, str]:
        stored: list[RulesetEvent] = []
        for event in item.events:
            # Earlier events of this transaction are visible here, so a repeated id is too.
            row = conn.execute(
                f"SELECT {', '.join(_EVENT_COLUMNS)} FROM ruleset_events WHERE event_id = ?",
                (event.event_id,),
            ).fetchone()
            if row is not None:
                stored.append(RulesetEvent(*row))
                continue
            seq += 1
            sealed = seal_event(event, seq, prev)
            prev = sealed.record_hash
            conn.execute(
                f"INSERT INTO ruleset_events ({', '.join(_EVENT_COLUMNS)}) VALUES "
                f"({', '.join('?' * len(_EVENT_COLUMNS))})",
                tuple(getattr(sealed, c) for c in _EVENT_COLUMNS),
            )
            stored.append(sealed)
        item.stored = stored
        return seq, prev

    def _insert_shadow(
        self, conn: sqlite3.Connection, item: _PendingShadow, seq: int, prev: str
    ) -> tuple[int, str]:
        conn.executemany(
            f"INSERT OR IGNORE INTO shadow_results ({', '.join(_SHADOW_COLUMNS)}, agreed) "
            f"VALUES ({', '.join('?' * (len(_SHADOW_COLUMNS) + 1))})",
            item.rows,
        )
        conn.executemany(
            "INSERT INTO shadow_dropped (ruleset_name, shadow_version, dropped) VALUES (?, ?, ?) "
            "ON CONFLICT (ruleset_name, shadow_version) DO UPDATE SET "
            "dropped = dropped + excluded.dropped",
            [(name, version, count) for (name, version), count in item.dropped.items()],
        )
        return seq, prev  # outside the chain: the head does not move

    def _get(self, conn: sqlite3.Connection, decision_id: str) -> AuditRecord | None:
        row = conn.execute(
            f"SELECT {self._select} FROM decisions WHERE decision_id = ?", (decision_id,)
        ).fetchone()
        return _row_to_record(row) if row else None

    def get(self, decision_id: str) -> AuditRecord | None:
        """One record by decision id."""
        rows = self._fetch(
            f"SELECT {self._select} FROM decisions WHERE decision_id = ?", (decision_id,)
        )
        return _row_to_record(rows[0]) if rows else None

    def by_request(self, request_id: str) -> list[AuditRecord]:
        """Records of one request, in chain order."""
        rows = self._fetch(
            f"SELECT {self._select} FROM decisions WHERE request_id = ? ORDER BY seq",
            (request_id,),
        )
        return [_row_to_record(r) for r in rows]

    def records(
        self,
        after_seq: int = 0,
        *,
        case_id: str = "",
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> Iterator[AuditRecord]:
        """Every matching record in chain order after ``after_seq``, read a page at a time."""
        while True:
            page = self.query(
                case_id=case_id, since=since, until=until, after_seq=after_seq, limit=_PAGE
            )
            yield from page
            if len(page) < _PAGE:
                return
            after_seq = page[-1].seq

    def query(
        self,
        *,
        case_id: str = "",
        since: datetime | None = None,
        until: datetime | None = None,
        after_seq: int = 0,
        limit: int = 100,
    ) -> list[AuditRecord]:
        """Records in chain order after ``after_seq`` for one case and/or a range of ``now``.

        Args:
            case_id: Only this case ("" = any).
            since: Only decisions with ``now >= since`` (None = unbounded).
            until: Only decisions with ``now < until`` (None = unbounded).
            after_seq: Resume after this chain position (pagination).
            limit: At most this many records.

        Returns:
            The records.
        """
        return [
            _row_to_record(r) for r in self._query_rows(case_id, since, until, after_seq, limit)
        ]

    def record_rows(
        self,
        *,
        case_id: str = "",
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> Iterator[RecordRow]:
        """``records`` undecoded, a page at a time, so JSON is decoded where it is used.

        Replay sends these to its worker processes: decoding a record with per-agent verdicts
        costs more than deciding it, and a decoded record costs more to send than its text.
        """
        after_seq = 0
        while True:
            page = self._query_rows(case_id, since, until, after_seq, _PAGE)
            yield from page
            if len(page) < _PAGE:
                return
            after_seq = page[-1][0]

    def _query_rows(
        self,
        case_id: str,
        since: datetime | None,
        until: datetime | None,
        after_seq: int,
        limit: int,
    ) -> list[RecordRow]:
        where: list[str] = ["seq > ?"]
        params: list[object] = [after_seq]
        for clause, value in (
            ("case_id = ?", case_id or None),
            ("now_us >= ?", _micros(since) if since else None),
            ("now_us < ?", _micros(until) if until else None),
        ):
            if value is not None:
                where.append(clause)
                params.append(value)
        sql = (
            f"SELECT {self._select} FROM decisions WHERE {' AND '.join(where)} ORDER BY seq LIMIT ?"
        )
        rows: list[RecordRow] = self._fetch(sql, (*params, limit))  # sqlite3 rows are tuples
        return rows

    def get_blob(self, sha256: str) -> Blob | None:
        """One blob by hash."""
        rows = self._fetch("SELECT sha256, kind, content FROM blobs WHERE sha256 = ?", (sha256,))
        return Blob(rows[0][0], BlobKind(rows[0][1]), rows[0][2]) if rows else None

    def head(self) -> tuple[int, str]:
        """(seq, record_hash) of the last record the writer committed."""
        rows = self._fetch("SELECT seq, record_hash FROM chain_head WHERE id = 1", ())
        return (rows[0][0], rows[0][1]) if rows else (0, GENESIS)

    def _has_table(self, name: str) -> bool:
        """Whether a table exists.

        A log written by an older caseroute and opened read-only lacks the newer tables (a
        writable open creates them).
        """
        return bool(
            self._fetch("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,))
        )

    def events(
        self, ruleset_name: str | None = None, after_seq: int = 0, limit: int = 1000
    ) -> list[RulesetEvent]:
        """Ruleset lifecycle events in chain order after ``after_seq``.

        Args:
            ruleset_name: Only this ruleset's events (None = every ruleset).
            after_seq: Resume after this chain position (pagination).
            limit: At most this many events.

        Returns:
            The events (empty for a log written before events existed).

        Raises:
            AuditUnavailableError: If the log cannot be read.
        """
        if not self._has_table("ruleset_events"):
            return []
        where = "seq > ?"
        params: list[object] = [after_seq]
        if ruleset_name is not None:
            where += " AND ruleset_name = ?"
            params.append(ruleset_name)
        rows = self._fetch(
            f"SELECT {', '.join(_EVENT_COLUMNS)} FROM ruleset_events WHERE {where} "
            "ORDER BY seq LIMIT ?",
            (*params, limit),
        )
        return [RulesetEvent(*row) for row in rows]

    def last_event(self, ruleset_name: str, role: str) -> RulesetEvent | None:
        """The most recent event of one role (active / shadow) of a ruleset, if any.

        Args:
            ruleset_name: The ruleset.
            role: ``active`` or ``shadow``.

        Returns:
            The event the chain last recorded for it (None: none yet).

        Raises:
            AuditUnavailableError: If the log cannot be read.
        """
        if not self._has_table("ruleset_events"):
            return None
        rows = self._fetch(
            f"SELECT {', '.join(_EVENT_COLUMNS)} FROM ruleset_events "
            "WHERE ruleset_name = ? AND role = ? ORDER BY seq DESC LIMIT 1",
            (ruleset_name, role),
        )
        return RulesetEvent(*rows[0]) if rows else None

    def iter_events(
        self, ruleset_name: str | None = None, after_seq: int = 0
    ) -> Iterator[RulesetEvent]:
        """Every ruleset event in chain order after ``after_seq``, read a page at a time.

        Args:
            ruleset_name: Only this ruleset's events (None = every ruleset).
            after_seq: Start after this chain position.

        Yields:
            The events (verify merges them with ``records()`` by seq).
        """
        while True:
            page = self.events(ruleset_name, after_seq, _PAGE)
            yield from page
            if len(page) < _PAGE:
                return
            after_seq = page[-1].seq

    def decided_sha256s(self, ruleset_name: str, ruleset_version: str) -> frozenset[str]:
        """The distinct ruleset_sha256 of decisions made by ``ruleset_name@ruleset_version``.

        Answers "has this version decided, and with which content?" (an index on
        (ruleset_name, ruleset_version) keeps it cheap on a large log).

        Args:
            ruleset_name: The ruleset.
            ruleset_version: Its version.

        Returns:
            The sha256s (empty when that version never decided).

        Raises:
            AuditUnavailableError: If the log cannot be read (READ_UNAVAILABLE).
        """
        rows = self._fetch(
            "SELECT DISTINCT ruleset_sha256 FROM decisions "
            "WHERE ruleset_name = ? AND ruleset_version = ?",
            (ruleset_name, ruleset_version),
        )
        return frozenset(str(row[0]) for row in rows)

    def shadow_results(
        self,
        ruleset_name: str,
        shadow_version: str | None = None,
        disagreements_only: bool = False,
        limit: int = 1000,
    ) -> list[ShadowResult]:
        """Shadow comparisons of a ruleset in the order stored (review data, not chained).

        Args:
            ruleset_name: The ruleset.
            shadow_version: Only this shadow version (None = every one).
            disagreements_only: Only comparisons with at least one difference.
            limit: At most this many.

        Returns:
            The results, oldest first.

        Raises:
            AuditUnavailableError: If the log cannot be read.
        """
        if not self._has_table("shadow_results"):
            return []
        where, params = ["ruleset_name = ?"], [ruleset_name]
        if shadow_version is not None:
            where.append("shadow_version = ?")
            params.append(shadow_version)
        if disagreements_only:
            where.append("agreed = 0")
        rows = self._fetch(
            f"SELECT {', '.join(_SHADOW_COLUMNS)} FROM shadow_results "
            f"WHERE {' AND '.join(where)} ORDER BY id LIMIT ?",
            (*params, limit),
        )
        return [_row_to_shadow(row) for row in rows]

    def shadow_summary(self, ruleset_name: str) -> list[ShadowSummary]:
        """Per shadow version of a ruleset: evaluated, agreed, counts per difference, dropped.

        Args:
            ruleset_name: The ruleset.

        Returns:
            One summary per shadow version with results or drops, sorted by version.

        Raises:
            AuditUnavailableError: If the log cannot be read.
        """
        if not self._has_table("shadow_results"):
            return []
        kinds = ", ".join(f"SUM(instr(differences, '\"{k}\"') > 0)" for k in SHADOW_DIFFERENCES)
        rows = self._fetch(
            "SELECT shadow_version, COUNT(*), SUM(agreed), MIN(recorded_at), MAX(recorded_at), "
            "group_concat(DISTINCT live_version), group_concat(DISTINCT shadow_sha256), "
            f"{kinds} FROM shadow_results WHERE ruleset_name = ? GROUP BY shadow_version",
            (ruleset_name,),
        )
        dropped = dict(
            self._fetch(
                "SELECT shadow_version, dropped FROM shadow_dropped WHERE ruleset_name = ?",
                (ruleset_name,),
            )
        )
        found: dict[str, ShadowSummary] = {}
        for version, evaluated, agreed, first, last, lives, shas, *counts in rows:
            found[version] = ShadowSummary(
                ruleset_name=ruleset_name,
                shadow_version=version,
                shadow_sha256s=_distinct(shas),
                live_versions=_distinct(lives),
                evaluated=evaluated,
                agreed=agreed,
                differences=tuple(
                    (k, n) for k, n in zip(SHADOW_DIFFERENCES, counts, strict=True) if n
                ),
                dropped=dropped.get(version, 0),
                first_recorded_at=first,
                last_recorded_at=last,
            )
        for version, count in dropped.items():
            if version not in found:
                found[version] = ShadowSummary(
                    ruleset_name, version, (), (), 0, 0, (), count, "", ""
                )
        return [found[v] for v in sorted(found)]

    def _fetch(self, sql: str, params: tuple[object, ...]) -> list[Any]:
        """Run a read on this thread's connection (opened once per thread, then reused)."""
        conn = getattr(self._local, "conn", None)
        try:
            if conn is None:
                conn = self._connect()
                self._local.conn = conn
                with self._readers_lock:
                    self._readers.append(conn)
            return conn.execute(sql, params).fetchall()
        except sqlite3.Error as exc:
            self._local.conn = None
            log.error(  # noqa: TRY400 - the cause is one SQLite message, no traceback needed
                "AUDIT READ FAILED on %s: %s: %s", self.path, type(exc).__name__, exc
            )
            raise AuditUnavailableError(READ_UNAVAILABLE) from exc

    def close(self) -> None:
        """Finish pending appends, stop the writer and close the readers."""
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


def _has_text_column(conn: sqlite3.Connection) -> bool:
    return any(row[1] == _TEXT_COLUMN for row in conn.execute("PRAGMA table_info(decisions)"))


def _add_text_column(conn: sqlite3.Connection) -> None:
    """Upgrade a log written before the hashed text was kept (its rows keep NULL there).

    Checked under the write lock, so two processes opening an old log at once add it once.
    """
    conn.execute("BEGIN IMMEDIATE")
    try:
        if not _has_text_column(conn):
            conn.execute(f"ALTER TABLE decisions ADD COLUMN {_TEXT_COLUMN} TEXT")
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


def _current_fingerprint(conn: sqlite3.Connection) -> str | None:
    row = conn.execute(
        "SELECT new_fingerprint FROM key_history ORDER BY era DESC LIMIT 1"
    ).fetchone()
    return None if row is None else str(row[0])


def _micros(instant: datetime) -> int:
    delta = instant - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def _shadow_row(result: ShadowResult) -> tuple[object, ...]:
    """A checked result as its ``shadow_results`` row (``_SHADOW_COLUMNS`` then ``agreed``)."""
    return (
        result.decision_id,
        result.recorded_at,
        result.ruleset_name,
        result.live_version,
        result.live_sha256,
        result.shadow_version,
        result.shadow_sha256,
        json.dumps(list(result.differences)),
        json.dumps(result.live, sort_keys=True),
        json.dumps(result.shadow, sort_keys=True),
        int(not result.differences),
    )


def _row_to_shadow(row: sqlite3.Row) -> ShadowResult:
    values = dict(zip(_SHADOW_COLUMNS, row, strict=True))
    values["differences"] = tuple(json.loads(values["differences"]))
    values["live"] = json.loads(values["live"])
    values["shadow"] = json.loads(values["shadow"])
    return ShadowResult(**values)


def _distinct(concatenated: str | None) -> tuple[str, ...]:
    """``group_concat(DISTINCT ...)`` as sorted values, without the empty one (no sha256)."""
    return tuple(sorted(v for v in (concatenated or "").split(",") if v))


def _dropped_counts(
    results: Sequence[ShadowResult], dropped: int | Mapping[tuple[str, str], int]
) -> dict[tuple[str, str], int]:
    """``append_shadow``'s dropped counts per (ruleset_name, shadow_version)."""
    if isinstance(dropped, int):
        if dropped <= 0:
            return {}
        keys = {(r.ruleset_name, r.shadow_version) for r in results}
        if len(keys) != 1:
            raise ValueError(
                f"dropped={dropped} cannot be attributed: the results name {len(keys)} shadow "
                "versions; pass a mapping {(ruleset_name, shadow_version): count}"
            )
        return {keys.pop(): dropped}
    counts: dict[tuple[str, str], int] = {}
    for key, count in dropped.items():
        if not isinstance(count, int) or count < 0:
            raise ValueError(f"dropped count for {key!r} must be a non-negative int")
        if count:
            counts[key] = count
    return counts


_INSERT_RECORD = (
    f"INSERT INTO decisions ({', '.join(_COLUMNS)}, now_us, {_TEXT_COLUMN}) "
    f"VALUES ({', '.join('?' * (len(_COLUMNS) + 2))})"
)


def _row_values(record: AuditRecord, input_text: str, text: str) -> tuple[object, ...]:
    """A sealed record's ``decisions`` row: the text once, ``input`` as its canonical copy."""
    return (
        record.seq,
        record.decision_id,
        record.request_id,
        record.request_sha256,
        record.case_id,
        record.recorded_at,
        record.now,
        record.ruleset_name,
        record.ruleset_version,
        record.ruleset_sha256,
        record.caseroute_version,
        record.caller,
        input_text,
        "",  # the decision is stored once, in the text
        record.prev_hash,
        record.record_hash,
        _micros(datetime.fromisoformat(record.now)),
        text,
    )
