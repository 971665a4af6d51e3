"""The PostgreSQL decision log: one hash chain shared by several caseroute replicas.

Implements ``AuditSink`` (``caseroute.audit.store``) with the same records, the same chain and
the same verification as the SQLite store: a record's canonical text is built by the same
functions (``caseroute.audit.record``) and stored byte for byte.

Writing: each replica has one writer thread that gathers every append waiting at that moment
into one transaction (group commit, as the SQLite writer does)::

    BEGIN;
    SELECT seq, record_hash FROM chain_head WHERE id = 1 FOR UPDATE;  -- orders the replicas
    -- per call: SAVEPOINT; look up its decision_ids (idempotency); insert blobs and records
    UPDATE chain_head SET seq = $n, record_hash = $h WHERE id = 1;
    COMMIT;  -- synchronous_commit = on: the callers are released only after this returns

Every decision insert of every replica happens under the head row's lock, so a request_id
sent to two replicas at once is stored once: the second transaction sees the first's records
and hands them back (``existed=True``), or refuses a different input (ALREADY_EXISTS).

Failures: any database error refuses the calls of that transaction with
``AuditUnavailableError`` (the servicer answers UNAVAILABLE and health goes NOT_SERVING until a
write succeeds); the connection pool reconnects with back-off. Messages never carry the URL's
password, nor (for unexpected errors) the text of an exception, which could quote a record.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

import psycopg
from psycopg.conninfo import conninfo_to_dict
from psycopg_pool import ConnectionPool

from caseroute.audit.pg_schema import LATEST, SchemaTooNewError, migrate, schema_version
from caseroute.audit.record import (
    GENESIS,
    SHADOW_DIFFERENCES,
    Appended,
    AuditRecord,
    Blob,
    BlobKind,
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
from caseroute.audit.store import (
    READ_UNAVAILABLE,
    RECORD_COLUMNS,
    WRITE_UNAVAILABLE,
    CommitObserver,
    KeyEra,
    KeyMismatchError,
    RecordRow,
    _distinct,
    _dropped_counts,
    _micros,
    _Pending,
    _PendingEvents,
    _PendingShadow,
    _row_values,
    _shadow_row,
    record_from_row,
)
from caseroute.domain.errors import (
    AuditUnavailableError,
    IdempotencyConflictError,
    withheld_cause,
)

if TYPE_CHECKING:
    from caseroute.audit.config import PostgresLocation

log = logging.getLogger("caseroute.audit")

_Item = _Pending | _PendingEvents | _PendingShadow
_COLUMNS = RECORD_COLUMNS[:-1]
_SELECT = ", ".join(RECORD_COLUMNS)
_EVENT_COLUMNS = RulesetEvent.__slots__
_EVENT_SELECT = ", ".join(_EVENT_COLUMNS)
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
_INSERT_RECORD = (
    f"INSERT INTO decisions ({', '.join(_COLUMNS)}, now_us, content) "
    f"VALUES ({', '.join(['%s'] * (len(_COLUMNS) + 2))})"
)
_INSERT_EVENT = (
    f"INSERT INTO ruleset_events ({_EVENT_SELECT}) "
    f"VALUES ({', '.join(['%s'] * len(_EVENT_COLUMNS))})"
)
_CURRENT_KEY = "SELECT new_fingerprint FROM key_history ORDER BY era DESC LIMIT 1"
_KNOWN_BLOBS = 4096
_PAGE = 1000
_DB_ERRORS = (psycopg.Error, OSError, KeyMismatchError, SchemaTooNewError)


class PostgresAuditSink:
    """The decision log in PostgreSQL: hash-chained records shared by replicas, group commit."""

    def __init__(
        self,
        location: PostgresLocation,
        *,
        max_batch: int = 512,
        pool_size: int = 8,
        timeout_s: float = 10.0,
        readonly: bool = False,
    ) -> None:
        """Connect, create or migrate the schema (unless ``readonly``), start the writer.

        Args:
            location: The database's URL.
            max_batch: Most appends committed in one transaction (1 turns group commit off).
            pool_size: Most connections this replica holds (readers and the writer).
            timeout_s: How long a call waits for a connection before it is refused.
            readonly: Read only (``caseroute audit``): no migration, no writer.

        Raises:
            AuditUnavailableError: If the database cannot be reached, or its schema is missing
                (``readonly``) or newer than this caseroute's.
        """
        self.location = location
        self._secret = location.password
        self._max_batch = max_batch
        self._readonly = readonly
        self.commits = 0
        self.failures = 0
        self.observer: CommitObserver | None = None
        """Set to be told of every commit and failed transaction (``caseroute.metrics``)."""
        self._fingerprint: str | None = None  # the key this writer masks with (claim_key)
        self._known: OrderedDict[str, None] = OrderedDict()
        self._known_lock = threading.Lock()
        self._queue: queue.Queue[_Item | None] = queue.Queue()
        # Invariant: nothing is queued after the writer's stop marker (it would wait forever).
        self._closed = False
        self._closing = threading.Lock()
        self._writer: threading.Thread | None = None
        params = conninfo_to_dict(location.url)
        kwargs: dict[str, Any] = {"autocommit": True, "application_name": "caseroute"}
        if "connect_timeout" not in params:
            kwargs["connect_timeout"] = max(1, int(timeout_s))
        try:
            with psycopg.connect(location.url, **kwargs) as conn:
                if readonly:
                    version = schema_version(conn)
                    if version == 0:
                        raise SchemaTooNewError(
                            "the database holds no caseroute decision log (no schema)"
                        )
                    if version > LATEST:
                        raise SchemaTooNewError(
                            f"the decision log's schema is version {version}, newer than this "
                            f"caseroute knows ({LATEST}); upgrade caseroute"
                        )
                else:
                    migrate(conn)
            self._pool: ConnectionPool[psycopg.Connection[Any]] = ConnectionPool(
                location.url,
                kwargs=kwargs,
                min_size=1,
                max_size=max(2, pool_size),
                configure=_configure,
                # A connection the server dropped (a restart, a failover) is found on checkout
                # and replaced, instead of failing the first call after the database is back.
                check=ConnectionPool.check_connection,
                timeout=timeout_s,
                name="caseroute-audit",
                open=True,
            )
        except _DB_ERRORS as exc:
            # Startup and the audit CLI only (never a caller's request): the operator needs
            # the database and the cause (the password never: it is scrubbed).
            raise AuditUnavailableError(
                f"cannot open the decision log {location}: {self._scrub(exc)}; check that "
                "--audit-db names a reachable PostgreSQL database this user can read (and, to "
                "serve, create tables in and write)"
            ) from None
        if not readonly:
            self._writer = threading.Thread(
                target=self._write_loop, name="audit-writer", daemon=True
            )
            self._writer.start()

    # -----------------------------------------------------------------------------------------
    # Key eras (the masking key's fingerprint, as the SQLite store keeps them).

    def key_history(self) -> list[KeyEra]:
        """Every masking key era, oldest first."""
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

        Raises:
            KeyMismatchError: If the log's current key is another one.
            AuditUnavailableError: If the log cannot be read or written.
        """
        try:
            with self._pool.connection() as conn, conn.transaction():
                conn.execute("SELECT seq FROM chain_head WHERE id = 1 FOR UPDATE")
                current = _current_fingerprint(conn)
                if current is None:
                    conn.execute(
                        "INSERT INTO key_history (era, at, old_fingerprint, new_fingerprint, "
                        "first_seq) VALUES (1, %s, '', %s, 1)",
                        (at, fingerprint),
                    )
        except _DB_ERRORS as exc:
            self._log_failure("AUDIT KEY CHECK FAILED", exc)
            raise AuditUnavailableError(WRITE_UNAVAILABLE) from None
        if current is not None and current != fingerprint:
            raise KeyMismatchError(current)
        self._fingerprint = fingerprint

    def rotate_key(self, fingerprint: str, at: str) -> KeyEra:
        """Start a new key era at the next record (``caseroute audit rotate-key``).

        Raises:
            AuditUnavailableError: If the log cannot be written.
        """
        try:
            with self._pool.connection() as conn, conn.transaction():
                head = conn.execute("SELECT seq FROM chain_head WHERE id = 1 FOR UPDATE").fetchone()
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
                    "first_seq) VALUES (%s, %s, %s, %s, %s)",
                    (era.era, era.at, era.old_fingerprint, era.new_fingerprint, era.first_seq),
                )
        except _DB_ERRORS as exc:
            self._log_failure("AUDIT KEY ROTATION FAILED", exc)
            raise AuditUnavailableError(WRITE_UNAVAILABLE) from None
        self._fingerprint = fingerprint
        return era

    # -----------------------------------------------------------------------------------------
    # Appends: queued for the writer thread, returned once committed.

    def append(self, records: Sequence[AuditRecord], blobs: Sequence[Blob] = ()) -> list[Appended]:
        """Store records and blobs; returns once PostgreSQL acknowledged the commit.

        Records whose decision_id is already stored (by any replica) are not written again:
        the stored record is returned instead. A stored record with the same decision_id but
        a different request input raises IdempotencyConflictError, and none of this call's
        records are stored.

        Raises:
            AuditUnavailableError: If the log cannot commit (nothing is stored then).
            IdempotencyConflictError: If a decision_id exists with a different input.
        """
        pending = _Pending([encode_record(r) for r in records], blobs, Future())
        self._enqueue(pending)
        return pending.done.result()

    def append_events(self, events: Sequence[RulesetEvent]) -> list[RulesetEvent]:
        """Seal ruleset lifecycle events into the chain; returns when they are committed.

        Raises:
            ValueError: If an event is malformed (nothing is stored).
            AuditUnavailableError: If the log cannot commit (nothing is stored then).
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
        """Store shadow comparisons (outside the chain) and dropped counts, once committed.

        Raises:
            ValueError: If a result is malformed or ``dropped`` cannot be attributed.
            AuditUnavailableError: If the log cannot commit (nothing is stored then).
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

    def _enqueue(self, item: _Item) -> None:
        if self._writer is None:
            log.error("append refused: the decision log %s was opened read-only", self.location)
            raise AuditUnavailableError(WRITE_UNAVAILABLE)
        with self._closing:
            if self._closed:
                log.error(
                    "append refused: the decision log %s is closed (shutting down)", self.location
                )
                raise AuditUnavailableError(WRITE_UNAVAILABLE)
            self._queue.put(item)

    def has_blob(self, sha256: str) -> bool:
        """Whether this replica wrote or saw the blob recently (an in-memory hint)."""
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
            started = time.perf_counter()
            try:
                results = self._commit(batch)
            except Exception as exc:  # noqa: BLE001 - every cause refuses the batch (logged)
                self._refuse(batch, exc)
                continue
            self.commits += 1
            self._observe(len(batch), time.perf_counter() - started)
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

    def _refuse(self, batch: Sequence[_Item], exc: Exception) -> None:
        """Fail every caller of a batch that could not be committed."""
        self.failures += 1
        self._observe(len(batch), None)
        self._log_failure(f"AUDIT WRITE FAILED ({len(batch)} calls refused)", exc)
        error = AuditUnavailableError(WRITE_UNAVAILABLE)
        for item in batch:
            if not item.done.done():
                item.done.set_exception(error)

    def _log_failure(self, what: str, exc: BaseException) -> None:
        """Log a database failure: its kind and message (password scrubbed), else withheld.

        An unexpected exception's text is withheld: it may quote a record's values.
        """
        if isinstance(exc, _DB_ERRORS):
            log.error("%s on %s: %s: %s", what, self.location, type(exc).__name__, self._scrub(exc))
        else:
            log.error("%s on %s: %s", what, self.location, withheld_cause(exc, "record values"))

    def _scrub(self, exc: BaseException) -> str:
        """A driver error's message without the password (and without PostgreSQL's DETAIL).

        DETAIL lines can quote a row's values (a key that already exists), so only the
        primary message is kept for PostgreSQL errors.
        """
        diag = getattr(exc, "diag", None)
        primary = getattr(diag, "message_primary", None) if diag is not None else None
        lines = str(exc).strip().splitlines()
        text = primary or (lines[0] if lines else "")
        if self._secret:
            text = text.replace(self._secret, "***")
        return text

    def _observe(self, items: int, seconds: float | None) -> None:
        if self.observer is None:
            return
        try:
            if seconds is None:
                self.observer.commit_failed(items)
            else:
                self.observer.committed(items, seconds)
        except Exception as exc:  # noqa: BLE001 - metrics never stop the decision log
            log.error("commit observer failed: %s", withheld_cause(exc))  # noqa: TRY400

    def _commit(self, batch: list[_Item]) -> list[tuple[_Item, Exception | None]]:
        """One transaction under the head row's lock: every item of the batch, then the head.

        Pipelined: the lock, the key check and the idempotency lookup go in one round trip,
        each call's savepoint and inserts in one more, the head update and COMMIT in the last
        (a call's own errors surface inside its savepoint, so they refuse that call alone).
        """
        results: list[tuple[_Item, Exception | None]] = []
        with self._pool.connection() as conn, conn.pipeline() as pipe, conn.transaction():
            head_cursor = conn.execute(
                "SELECT seq, record_hash FROM chain_head WHERE id = 1 FOR UPDATE"
            )
            key_cursor = conn.execute(_CURRENT_KEY) if self._fingerprint is not None else None
            ids = [
                e.record.decision_id for i in batch if isinstance(i, _Pending) for e in i.records
            ]
            found_cursor = (
                conn.execute(f"SELECT {_SELECT} FROM decisions WHERE decision_id = ANY(%s)", (ids,))
                if ids
                else None
            )
            head = head_cursor.fetchone()  # one sync for the three
            seq, prev = (int(head[0]), str(head[1])) if head else (0, GENESIS)
            if key_cursor is not None:
                row = key_cursor.fetchone()
                current = None if row is None else str(row[0])
                if current != self._fingerprint:
                    # Invariant: a record is masked with the key of the era it falls in.
                    raise KeyMismatchError(current or "")
            existing = (
                {str(r[1]): record_from_row(r) for r in found_cursor.fetchall()}
                if found_cursor is not None
                else {}
            )
            start = seq
            for item in batch:
                # Invariant: one call's records are stored all together or not at all.
                mark = seq, prev
                try:
                    with conn.transaction():  # a savepoint
                        if isinstance(item, _PendingEvents):
                            seq, prev = self._insert_events(conn, item, seq, prev)
                        elif isinstance(item, _PendingShadow):
                            self._insert_shadow(conn, item)
                        else:
                            outcome = self._insert_item(conn, item, seq, prev, existing)
                            if isinstance(outcome, Exception):
                                results.append((item, outcome))
                                continue
                            seq, prev = outcome
                        pipe.sync()  # this call's errors raise here, inside its savepoint
                        if isinstance(item, _Pending):
                            # Later calls of this batch see these as stored (a repeated id).
                            existing.update(
                                (a.record.decision_id, a.record)
                                for a in item.stored
                                if not a.existed
                            )
                except psycopg.DataError as exc:  # this call's values only: refuse it alone
                    seq, prev = mark
                    self._log_failure("AUDIT WRITE FAILED (1 call refused)", exc)
                    results.append((item, AuditUnavailableError(WRITE_UNAVAILABLE)))
                    continue
                results.append((item, None))
            if seq != start:
                conn.execute(
                    "UPDATE chain_head SET seq = %s, record_hash = %s WHERE id = 1", (seq, prev)
                )
        return results

    @staticmethod
    def _insert_item(
        conn: psycopg.Connection[Any],
        item: _Pending,
        seq: int,
        prev: str,
        existing: dict[str, AuditRecord],
    ) -> tuple[int, str] | Exception:
        stored: list[Appended] = []
        rows: list[tuple[object, ...]] = []
        added: dict[str, AuditRecord] = {}
        for encoded in item.records:
            record = encoded.record
            found = added.get(record.decision_id) or existing.get(record.decision_id)
            if found is not None:
                if found.request_sha256 != record.request_sha256:
                    return IdempotencyConflictError.for_request(record.request_id)
                stored.append(Appended(found, existed=True))
                continue
            seq += 1
            text = hashed_text(encoded, seq)
            record_hash = text_hash(prev, text)
            sealed = with_hashed_text(
                replace(record, seq=seq, prev_hash=prev, record_hash=record_hash), text
            )
            rows.append(_row_values(sealed, encoded.input_text, text))
            prev = record_hash
            added[sealed.decision_id] = sealed
            stored.append(Appended(sealed, existed=False))
        if item.blobs:
            with conn.cursor() as cur:
                cur.executemany(
                    "INSERT INTO blobs (sha256, kind, content) VALUES (%s, %s, %s) "
                    "ON CONFLICT (sha256) DO NOTHING",
                    [(b.sha256, b.kind.value, b.content) for b in item.blobs],
                )
        if rows:
            with conn.cursor() as cur:
                cur.executemany(_INSERT_RECORD, rows)
        item.stored = stored
        return seq, prev

    @staticmethod
    def _insert_events(
        conn: psycopg.Connection[Any], item: _PendingEvents, seq: int, prev: str
    ) -> tuple[int, str]:
        stored: list[RulesetEvent] = []
        for event in item.events:
            row = conn.execute(
                f"SELECT {_EVENT_SELECT} FROM ruleset_events WHERE event_id = %s",
                (event.event_id,),
            ).fetchone()
            if row is not None:
                stored.append(RulesetEvent(*row))
                continue
            seq += 1
            sealed = seal_event(event, seq, prev)
            prev = sealed.record_hash
            conn.execute(_INSERT_EVENT, tuple(getattr(sealed, c) for c in _EVENT_COLUMNS))
            stored.append(sealed)
        item.stored = stored
        return seq, prev

    @staticmethod
    def _insert_shadow(conn: psycopg.Connection[Any], item: _PendingShadow) -> None:
        with conn.cursor() as cur:
            if item.rows:
                cur.executemany(
                    f"INSERT INTO shadow_results ({', '.join(_SHADOW_COLUMNS)}, agreed) "
                    f"VALUES ({', '.join(['%s'] * (len(_SHADOW_COLUMNS) + 1))}) "
                    "ON CONFLICT (decision_id, shadow_version, shadow_sha256) DO NOTHING",
                    item.rows,
                )
            if item.dropped:
                cur.executemany(
                    "INSERT INTO shadow_dropped (ruleset_name, shadow_version, dropped) "
                    "VALUES (%s, %s, %s) ON CONFLICT (ruleset_name, shadow_version) DO UPDATE "
                    "SET dropped = shadow_dropped.dropped + excluded.dropped",
                    [(n, v, c) for (n, v), c in item.dropped.items()],
                )

    # -----------------------------------------------------------------------------------------
    # Reads.

    def get(self, decision_id: str) -> AuditRecord | None:
        """One record by decision id."""
        rows = self._fetch(
            f"SELECT {_SELECT} FROM decisions WHERE decision_id = %s", (decision_id,)
        )
        return record_from_row(rows[0]) if rows else None

    def by_request(self, request_id: str) -> list[AuditRecord]:
        """Records of one request, in chain order."""
        rows = self._fetch(
            f"SELECT {_SELECT} FROM decisions WHERE request_id = %s ORDER BY seq", (request_id,)
        )
        return [record_from_row(r) for r in rows]

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
        """Records in chain order after ``after_seq`` for one case and/or a range of ``now``."""
        return [
            record_from_row(r) for r in self._query_rows(case_id, since, until, after_seq, limit)
        ]

    def record_rows(
        self,
        *,
        case_id: str = "",
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> Iterator[RecordRow]:
        """``records`` undecoded, a page at a time (replay, reports)."""
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
        where: list[str] = ["seq > %s"]
        params: list[object] = [after_seq]
        for clause, value in (
            ("case_id = %s", case_id or None),
            ("now_us >= %s", _micros(since) if since else None),
            ("now_us < %s", _micros(until) if until else None),
        ):
            if value is not None:
                where.append(clause)
                params.append(value)
        sql = f"SELECT {_SELECT} FROM decisions WHERE {' AND '.join(where)} ORDER BY seq LIMIT %s"
        rows: list[RecordRow] = self._fetch(sql, (*params, limit))
        return rows

    def get_blob(self, sha256: str) -> Blob | None:
        """One blob by hash."""
        rows = self._fetch("SELECT sha256, kind, content FROM blobs WHERE sha256 = %s", (sha256,))
        return Blob(rows[0][0], BlobKind(rows[0][1]), rows[0][2]) if rows else None

    def head(self) -> tuple[int, str]:
        """(seq, record_hash) of the last record committed (by any replica)."""
        rows = self._fetch("SELECT seq, record_hash FROM chain_head WHERE id = 1", ())
        return (int(rows[0][0]), str(rows[0][1])) if rows else (0, GENESIS)

    def events(
        self, ruleset_name: str | None = None, after_seq: int = 0, limit: int = 1000
    ) -> list[RulesetEvent]:
        """Ruleset lifecycle events in chain order after ``after_seq``."""
        where = "seq > %s"
        params: list[object] = [after_seq]
        if ruleset_name is not None:
            where += " AND ruleset_name = %s"
            params.append(ruleset_name)
        rows = self._fetch(
            f"SELECT {_EVENT_SELECT} FROM ruleset_events WHERE {where} ORDER BY seq LIMIT %s",
            (*params, limit),
        )
        return [RulesetEvent(*row) for row in rows]

    def last_event(self, ruleset_name: str, role: str) -> RulesetEvent | None:
        """The most recent event of one role (active / shadow) of a ruleset, if any."""
        rows = self._fetch(
            f"SELECT {_EVENT_SELECT} FROM ruleset_events WHERE ruleset_name = %s AND role = %s "
            "ORDER BY seq DESC LIMIT 1",
            (ruleset_name, role),
        )
        return RulesetEvent(*rows[0]) if rows else None

    def iter_events(
        self, ruleset_name: str | None = None, after_seq: int = 0
    ) -> Iterator[RulesetEvent]:
        """Every ruleset event in chain order after ``after_seq``, read a page at a time."""
        while True:
            page = self.events(ruleset_name, after_seq, _PAGE)
            yield from page
            if len(page) < _PAGE:
                return
            after_seq = page[-1].seq

    def decided_sha256s(self, ruleset_name: str, ruleset_version: str) -> frozenset[str]:
        """The distinct ruleset_sha256 of decisions made by ``ruleset_name@ruleset_version``."""
        rows = self._fetch(
            "SELECT DISTINCT ruleset_sha256 FROM decisions "
            "WHERE ruleset_name = %s AND ruleset_version = %s",
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
        """Shadow comparisons of a ruleset in the order stored (review data, not chained)."""
        where, params = ["ruleset_name = %s"], [ruleset_name]
        if shadow_version is not None:
            where.append("shadow_version = %s")
            params.append(shadow_version)
        if disagreements_only:
            where.append("agreed = 0")
        rows = self._fetch(
            f"SELECT {', '.join(_SHADOW_COLUMNS)} FROM shadow_results "
            f"WHERE {' AND '.join(where)} ORDER BY id LIMIT %s",
            (*params, limit),
        )
        return [_row_to_shadow(row) for row in rows]

    def shadow_summary(self, ruleset_name: str) -> list[ShadowSummary]:
        """Per shadow version of a ruleset: evaluated, agreed, counts per difference, dropped."""
        kinds = ", ".join(
            f"SUM(CASE WHEN strpos(differences, '\"{k}\"') > 0 THEN 1 ELSE 0 END)"
            for k in SHADOW_DIFFERENCES
        )
        rows = self._fetch(
            "SELECT shadow_version, COUNT(*), SUM(agreed), MIN(recorded_at), MAX(recorded_at), "
            "string_agg(DISTINCT live_version, ','), string_agg(DISTINCT shadow_sha256, ','), "
            f"{kinds} FROM shadow_results WHERE ruleset_name = %s GROUP BY shadow_version",
            (ruleset_name,),
        )
        dropped = {
            str(v): int(n)
            for v, n in self._fetch(
                "SELECT shadow_version, dropped FROM shadow_dropped WHERE ruleset_name = %s",
                (ruleset_name,),
            )
        }
        found: dict[str, ShadowSummary] = {}
        for version, evaluated, agreed, first, last, lives, shas, *counts in rows:
            found[version] = ShadowSummary(
                ruleset_name=ruleset_name,
                shadow_version=version,
                shadow_sha256s=_distinct(shas),
                live_versions=_distinct(lives),
                evaluated=int(evaluated),
                agreed=int(agreed),
                differences=tuple(
                    (k, int(n)) for k, n in zip(SHADOW_DIFFERENCES, counts, strict=True) if n
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
        """Run one read on a pooled connection (autocommit: one statement, one snapshot)."""
        try:
            with self._pool.connection() as conn:
                return conn.execute(sql, params).fetchall()
        except _DB_ERRORS as exc:
            self._log_failure("AUDIT READ FAILED", exc)
            raise AuditUnavailableError(READ_UNAVAILABLE) from None

    def close(self) -> None:
        """Finish pending appends, stop the writer and close the pool."""
        if self._writer is not None:
            with self._closing:
                already, self._closed = self._closed, True
                if not already:
                    self._queue.put(None)
            self._writer.join(timeout=30)
        self._pool.close()


def _configure(conn: psycopg.Connection[Any]) -> None:
    """Every pooled connection: a commit returns only once durable (whatever the server says)."""
    conn.execute("SET synchronous_commit = on")


def _current_fingerprint(conn: psycopg.Connection[Any]) -> str | None:
    row = conn.execute(_CURRENT_KEY).fetchone()
    return None if row is None else str(row[0])


def _row_to_shadow(row: Sequence[Any]) -> ShadowResult:
    values = dict(zip(_SHADOW_COLUMNS, row, strict=True))
    values["differences"] = tuple(json.loads(values["differences"]))
    values["live"] = json.loads(values["live"])
    values["shadow"] = json.loads(values["shadow"])
    return ShadowResult(**values)
