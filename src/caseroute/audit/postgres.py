"""The PostgreSQL decision log: one hash chain shared by several caseroute replicas.

Implements ``AuditSink`` (``caseroute.audit.sink``) with the same records, the same chain and
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
write succeeds); the connection pool reconnects with back-off. A server that does not answer at
all (frozen, or a network dropping packets) cannot fire its own timeouts: a writer's sink cuts
each use of a connection that outlives its bound (``pg_watchdog``). An auditor's reads and every
startup are bounded by liveness instead (``liveness_s``): a statement with no reply that long is
cut only when the server answers no check on a new connection, so a long read or migration on a
live server runs on, and a frozen server fails naming its host:port. Messages never carry the
URL's password, nor (for unexpected errors) the text of an exception, which could quote a record.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, ExitStack, contextmanager, nullcontext, suppress
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import psycopg
from psycopg.conninfo import conninfo_to_dict
from psycopg_pool import ConnectionPool, PoolTimeout

from caseroute.audit.location import KEYWORDS_HINT, URL_HINT
from caseroute.audit.pg_schema import (
    LATEST,
    SchemaTableAlteredError,
    SchemaTooNewError,
    UnusableDatabaseError,
    altered_columns,
    migrate,
    require_utf8,
    schema_version,
)
from caseroute.audit.pg_watchdog import ConnectionWatchdog, Use
from caseroute.audit.record import (
    GENESIS,
    Appended,
    AuditRecord,
    BlobKind,
    hashed_text,
    text_hash,
    with_hashed_text,
)
from caseroute.audit.roster_blob import RosterTooLargeError, assemble_roster, bounded_roster
from caseroute.audit.sink import KeyMismatchError
from caseroute.audit.sql_appends import (
    RECORD_REFUSED,
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
from caseroute.audit.sql_reads import READ_UNAVAILABLE, SqlLogReads, shadow_summary_sql
from caseroute.audit.sql_rows import (
    SHADOW_COLUMNS,
    KeyEra,
    add_dropped_sql,
    blobs_as_text,
    insert_record_sql,
    insert_rotation,
    record_from_row,
    record_values,
    require_key_fingerprint,
)
from caseroute.domain.errors import (
    AuditUnavailableError,
    IdempotencyConflictError,
    RecordDamagedError,
    RecordRefusedError,
    withheld_cause,
)

if TYPE_CHECKING:
    from caseroute.audit.location import PostgresLocation

log = logging.getLogger("caseroute.audit")

_INSERT_RECORD = insert_record_sql("%s")
_ADD_DROPPED = add_dropped_sql("%s")
_CURRENT_KEY = "SELECT new_fingerprint FROM key_history ORDER BY era DESC LIMIT 1"
_DB_ERRORS = (psycopg.Error, OSError, KeyMismatchError, UnusableDatabaseError)
DOWN_WAIT_S = 1.0
"""How long a call waits for a connection before it asks whether the database is down (then it
is refused; only a busy pool waits the rest of ``timeout_s``), and how long a pooled
connection's check on checkout may take. A Decide waits twice (its append, then the read that
answers a stored retry), and at 2 x 10 s the published client's 30 s deadline ran out on its
retry (DEADLINE_EXCEEDED, not retried) before any UNAVAILABLE reached the caller. The pool
keeps reconnecting meanwhile; the first connection had ends the short waits."""
LIVENESS_S = 10.0
"""How long a statement of a startup or of an auditor may go without a reply before the server
is checked on a new connection (``[audit] pg_liveness``; ``liveness_s``)."""
LIVENESS_HINT = (
    "--audit-pg-liveness, [audit] pg_liveness or $CASEROUTE_AUDIT_PG_LIVENESS sets how long a "
    "statement may go without a reply before the server is checked"
)
"""Where an operator changes ``liveness_s`` (the last words of a not-answering message)."""


def _altered_error(changes: list[str]) -> RecordDamagedError:
    """The error naming each of ``changes`` (columns altered since caseroute created them)."""
    return RecordDamagedError(
        "the decision log's tables were altered after caseroute created them "
        f"({'; '.join(changes)}): the log was edited; restore it from a copy you trust"
    )


class PostgresAuditSink(SqlLogReads, QueuedAppends):
    """The decision log in PostgreSQL: hash-chained records shared by replicas, group commit."""

    _P = "%s"
    _SHADOW_SUMMARY = shadow_summary_sql(
        "%s",
        "SUM(CASE WHEN strpos(differences, {kind}) > 0 THEN 1 ELSE 0 END)",
        "string_agg(DISTINCT {column}, ',')",
    )

    def __init__(
        self,
        location: PostgresLocation,
        *,
        max_batch: int = 512,
        pool_size: int = 8,
        timeout_s: float = 10.0,
        readonly: bool = False,
        liveness_s: float = LIVENESS_S,
    ) -> None:
        """Connect, create or migrate the schema (unless ``readonly``), start the writer.

        Args:
            location: The database's URL.
            max_batch: Most appends committed in one transaction (1 turns group commit off).
            pool_size: Most connections this replica holds (readers and the writer).
            timeout_s: How long a call waits for a connection before it is refused (while
                the database answers: ``_connection``); also how long a writer waits for the
                chain head's lock, how long one of its statements may run, how long
                PostgreSQL lets one of its sessions idle inside a transaction
                (``_configure_session``), and how long a writer's use of a connection may last
                before it is cut client-side (``pg_watchdog``: a frozen server answers
                nothing).
            readonly: Read only (``caseroute audit``): no migration, no writer.
            liveness_s: How long a statement of the startup (schema check and migration) or
                of a read-only sink's reads may go without a reply before the server is
                checked on a new connection (``_answers``): a server that answers lets it run
                on (a long migration, another replica's migration waited for, a long read), one
                that does not has it cut (``pg_watchdog``). 0: never cut (PostgreSQL's own
                bounds only).

        Raises:
            AuditUnavailableError: If the database cannot be reached, or its schema is missing
                (``readonly``) or newer than this caseroute's.
        """
        self.location = location
        self._target = location
        self._secrets = location.passwords
        self._max_batch = max_batch
        self._readonly = readonly
        self._wait_ms = max(1, round(timeout_s * 1000))
        self._timeout_s = timeout_s
        self._liveness_s = liveness_s
        self._where = str(location)  # host:port once connected
        self._cut = threading.local()  # .fired: a read-only use of this thread was cut
        # The database failed to answer: the last wait for a connection failed, a pooled
        # connection failed its check, or a use ran past its bound (DOWN_WAIT_S).
        self._unreachable = False
        # A writer's connections are watched client-side (pg_watchdog, started once open): a
        # frozen server or a network dropping packets never lets statement_timeout fire. An
        # auditor's are watched by liveness (its reads may run long on a live server).
        self._watchdog: ConnectionWatchdog | None = None
        self.commits = 0
        self.failures = 0
        self.observer: CommitObserver | None = None
        """Set to be told of every commit and failed transaction (``caseroute.metrics``)."""
        self._fingerprint: str | None = None  # the key this writer masks with (claim_key)
        self._opened_version = 0  # the schema version found (or migrated to) at open
        self._known: OrderedDict[str, None] = OrderedDict()
        self._known_lock = threading.Lock()
        self._pinned = threading.local()  # .conn: this thread's ``snapshot`` connection
        # .at: when this thread's roster lookup must end (``roster_text``), which bounds the
        # pool's check of the connection it checks out as well as its reads.
        self._lookup = threading.local()
        self._queue = AppendQueue()  # SimpleQueue: no condition variable (sql_appends.Outcome)
        # Invariant: nothing is queued after the writer's stop marker (it would wait forever).
        self._closed = False
        self._closing = threading.Lock()
        self._writer: threading.Thread | None = None
        try:
            params = conninfo_to_dict(location.conninfo)
        except psycopg.ProgrammingError:
            # libpq's words quote the part it could not read, which may be the password's
            # tail (``u:p?w34/x@db``: "w34/x@db"; ``password=a b``: "b"), and no scrub knows
            # that part: not quoted.
            what, hint = (
                ("URL", URL_HINT) if location.is_url else ("connection string", KEYWORDS_HINT)
            )
            raise AuditUnavailableError(
                f"cannot open the decision log {location}: libpq cannot parse the {what} (its "
                f"message is not shown: it may quote the password); {hint}"
            ) from None
        # UTF8 whatever the URL or $PGCLIENTENCODING say: with another client encoding psycopg
        # reads text as bytes or transcodes it, and an intact log verified TAMPERED (R29 F4).
        kwargs: dict[str, Any] = {
            "autocommit": True,
            "application_name": "caseroute",
            "client_encoding": "UTF8",
        }
        if "connect_timeout" not in params:
            kwargs["connect_timeout"] = max(1, int(timeout_s))
        # Started first: the startup's statements, and a writer's pooled connections from the
        # first (the pool configures them on its own threads), are cut if the server stops
        # answering after the connect (connect_timeout covers the connect alone): a frozen
        # server held `serve`, `audit verify` and `replay --server` at startup for good.
        watchdog = ConnectionWatchdog(self._not_answering)
        self._watchdog = watchdog
        self._kwargs = kwargs
        startup: Use | None = None
        opened = False
        try:
            with psycopg.connect(location.conninfo, **kwargs) as conn:
                self._where = f"{conn.info.host}:{conn.info.port}"
                # Not reported as a use cut: the error below says what happened. Bounded by
                # liveness, not timeout_s: a migration (or another replica's, waited for under
                # the advisory lock) may legitimately take minutes on a live server.
                with self._live(conn, watchdog) as startup:
                    self._open_schema(conn)
            self._pool: ConnectionPool[psycopg.Connection[Any]] = ConnectionPool(
                location.conninfo,
                kwargs=kwargs,
                min_size=1,
                max_size=max(2, pool_size),
                configure=self._configure_session,
                # A connection the server dropped (a restart, a failover) is found on checkout
                # and replaced, instead of failing the first call after the database is back.
                check=self._check_connection,
                timeout=timeout_s,
                name="caseroute-audit",
                open=True,
            )
            opened = True
        except SchemaTableAlteredError as exc:
            edited = _altered_error([str(exc)])
            if readonly:  # an auditor: an edited log (`audit verify` says TAMPERED)
                raise edited from None
            raise AuditUnavailableError(
                f"cannot open the decision log {location}: {edited}"
            ) from None
        except _DB_ERRORS as exc:
            # Startup and the audit CLI only (never a caller's request): the operator needs
            # the database and the cause (the password never: it is scrubbed).
            if startup is not None and startup.fired:
                log.error(  # noqa: TRY400 - the cause is one driver message, no traceback needed
                    "AUDIT DATABASE NOT ANSWERING on %s at startup: %s: %s",
                    location,
                    type(exc).__name__,
                    self._scrub(exc),
                )
                raise AuditUnavailableError(
                    f"cannot open the decision log {location}: PostgreSQL at {self._where} "
                    f"did not answer during startup (reading or creating the decision log's "
                    f"schema), after accepting the connection: no reply for {liveness_s:g} s, "
                    "and no answer to a check on a new connection: it may be frozen, "
                    "overloaded or cut off by the network; check the server, then start again "
                    f"(a migration that is slow on a live server is waited for; {LIVENESS_HINT})"
                ) from None
            raise AuditUnavailableError(
                f"cannot open the decision log {location}: {self._scrub(exc)}; check that "
                "--audit-db names a reachable PostgreSQL database this user can read (and, to "
                "serve, create tables in and write)"
            ) from None
        finally:
            if not opened:
                watchdog.close()
        if not readonly:
            self._writer = threading.Thread(
                target=self._write_loop, name="audit-writer", daemon=True
            )
            self._writer.start()

    def _open_schema(self, conn: psycopg.Connection[Any]) -> None:
        """Check the database at startup: UTF8; the schema migrated (or, read only, present).

        Raises:
            SchemaTooNewError: If the schema is missing (read only) or newer than caseroute's.
        """
        require_utf8(conn)
        if not self._readonly:
            self._opened_version = migrate(conn)
            return
        version = self._opened_version = schema_version(conn)
        if version == 0:
            raise SchemaTooNewError("the database holds no caseroute decision log (no schema)")
        if version > LATEST:
            raise SchemaTooNewError(
                f"the decision log's schema is version {version}, newer than this "
                f"caseroute knows ({LATEST}); upgrade caseroute"
            )

    def _configure_session(self, conn: psycopg.Connection[Any]) -> None:
        """Every pooled connection: durable commits; a writer's waits bounded by ``timeout_s``.

        Without bounds, one session stuck inside its transaction (a replica frozen, paused or
        cut off with the head row locked) held every replica's writer on ``FOR UPDATE`` for
        good: their callers hung past any deadline, never UNAVAILABLE, and health stayed
        SERVING. Now a writer waits for the head row at most ``timeout_s`` (``lock_timeout``:
        its calls are refused UNAVAILABLE), a statement runs at most that long
        (``statement_timeout``), and PostgreSQL ends a caseroute session left idle inside a
        transaction that long (``idle_in_transaction_session_timeout``), releasing its locks;
        its transaction rolls back, so nothing it had not committed was answered. An
        auditor's read-only session keeps PostgreSQL's defaults: its reads take no locks,
        and ``audit verify`` holds its snapshot while it checks each page.
        """
        with self._bounded(conn, self._timeout_s):
            _configure(conn)
            if self._readonly:
                return
            wait = f"{self._wait_ms}ms"
            conn.execute(
                "SELECT set_config('lock_timeout', %s, false), "
                "set_config('statement_timeout', %s, false), "
                "set_config('idle_in_transaction_session_timeout', %s, false)",
                (wait, wait, wait),
            )

    def _check_connection(self, conn: psycopg.Connection[Any]) -> None:
        """The pool's check of a connection on checkout: one empty round trip, bounded.

        A writer's check is cut after ``DOWN_WAIT_S`` (or ``timeout_s`` if shorter): an idle
        session of a live server answers an empty query in a round trip, and a frozen one
        never does. A failed check means the server dropped the session or does not answer:
        the database counts as unreachable (``_connection`` then waits ``DOWN_WAIT_S``). A
        roster lookup's check is cut by the lookup's deadline if that comes first
        (``roster_text``: a caller is waiting, with less time than a writer has).

        Raises:
            psycopg.Error: If the connection does not work (the pool discards it).
        """
        seconds = min(self._timeout_s, DOWN_WAIT_S)
        until: float | None = getattr(self._lookup, "at", None)
        lookup = until is not None
        if until is not None:  # a caller waiting on a roster lookup: no longer than it may take
            seconds = min(seconds, max(0.0, until - time.monotonic()))
        try:
            # A lookup's check cut by the lookup's own (shorter) deadline says nothing of
            # whether the database answers: neither reported nor counted as unreachable.
            with self._bounded(conn, seconds, report=not lookup):
                ConnectionPool.check_connection(conn)
        except Exception:
            if not lookup:
                self._unreachable = True
            raise
        if conn.closed:
            # It answered, but its bound ran out just as it did and the watchdog cut it
            # (``pg_watchdog`` closed it): the pool discards it and checks out another.
            raise psycopg.OperationalError("the connection was cut as its check ended")

    def _bounded(
        self, conn: psycopg.Connection[Any], seconds: float, *, report: bool = True
    ) -> AbstractContextManager[object]:
        """The block's use of ``conn`` cut after ``seconds`` (a writer's; an auditor's: ``_live``).

        ``report``: whether a cut marks the database as not answering (``_not_answering``);
        not for a roster lookup, whose bound is its share of a caller's deadline.
        """
        if self._watchdog is None:
            return nullcontext()
        if self._readonly:
            return self._live(conn, self._watchdog)
        return self._watchdog.bound(conn, seconds, report=report)

    @contextmanager
    def _live(
        self, conn: psycopg.Connection[Any], watchdog: ConnectionWatchdog
    ) -> Iterator[Use | None]:
        """The block's use of ``conn`` cut only once the server stops answering (``liveness_s``).

        Past each ``liveness_s`` without the block ending, ``_answers`` checks the server on a
        new connection; the block is cut when it does not answer. A cut is noted on this
        thread (``_cut.fired``), for ``_fetch`` to name the server; it is not reported as a
        writer's (``_not_answering``): the caller says what happened.
        """
        if self._liveness_s <= 0:  # never cut, but watched: a Ctrl-C cuts it (interrupt_uses)
            with watchdog.bound(conn, math.inf, report=False) as use:
                yield use
            return
        pid = conn.info.backend_pid
        with watchdog.bound(
            conn, self._liveness_s, report=False, probe=lambda: self._answers(pid, watchdog)
        ) as use:
            try:
                yield use
            finally:
                if use.fired:
                    self._cut.fired = True

    def _answers(self, pid: int, watchdog: ConnectionWatchdog) -> bool:
        """Whether the server answers a new connection and still holds backend ``pid``.

        Bounded: the connect by ``connect_timeout`` (at least ``liveness_s``, libpq's least 2
        s), the query by ``liveness_s`` (``pg_watchdog``). A server that answers with an error
        (too many connections) answers. Behind a pooler that does not show PostgreSQL's own
        backend pids (the probe's pid in SQL is not the one its connection reports), an
        answer alone counts: the session cannot be looked up.
        """
        kwargs = {**self._kwargs, "application_name": "caseroute-liveness"}
        kwargs["connect_timeout"] = max(2, math.ceil(self._liveness_s))
        try:
            with psycopg.connect(self.location.conninfo, **kwargs) as probe:
                with watchdog.bound(probe, self._liveness_s, report=False):
                    row = probe.execute(
                        "SELECT pg_backend_pid(), EXISTS (SELECT 1 FROM pg_stat_activity "
                        "WHERE pid = %s)",
                        (pid,),
                    ).fetchone()
                seen = probe.info.backend_pid
        except psycopg.Error as exc:
            answered = getattr(exc, "sqlstate", None) is not None
            log.warning(
                "PostgreSQL at %s checked for liveness: %s: %s",
                self._where,
                type(exc).__name__,
                self._scrub(exc),
            )
            return answered
        if row is None:
            return False
        if int(row[0]) != seen:
            return True  # a pooler's pids: the answer is all there is to go on
        return bool(row[1])

    def _not_answering(self, seconds: float) -> None:
        """The watchdog cut a connection that had no answer in ``seconds``: the database is down."""
        self._unreachable = True
        log.error(
            "AUDIT DATABASE NOT ANSWERING on %s: no reply within %.1f s, its connection was "
            "closed (the server frozen or overloaded, or the network dropping packets); calls "
            "are refused UNAVAILABLE until it answers again",
            self.location,
            seconds,
        )

    # -----------------------------------------------------------------------------------------
    # Key eras (the masking key's fingerprint, as the SQLite store keeps them).

    def claim_key(self, fingerprint: str, at: str) -> None:
        """Bind this writer to a masking key: recorded on first use, else it must match.

        Raises:
            ValueError: If ``fingerprint`` is no key fingerprint (a caller's mistake).
            KeyMismatchError: If the log's current key is another one.
            AuditUnavailableError: If the log cannot be read or written.
        """
        require_key_fingerprint(fingerprint)
        try:
            with self._connection() as conn, conn.transaction():
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
        """Start a new key era, sealed into the chain (``caseroute audit rotate-key``).

        Raises:
            ValueError: If ``fingerprint`` is no key fingerprint (a caller's mistake).
            AuditUnavailableError: If the log cannot be written.
        """
        require_key_fingerprint(fingerprint)
        try:
            with self._connection() as conn, conn.transaction():
                head = conn.execute(
                    "SELECT seq, record_hash FROM chain_head WHERE id = 1 FOR UPDATE"
                ).fetchone()
                last = conn.execute(
                    "SELECT era, new_fingerprint FROM key_history ORDER BY era DESC LIMIT 1"
                ).fetchone()
                era = insert_rotation(
                    conn.execute,
                    "%s",
                    (int(head[0]), str(head[1])) if head else (0, GENESIS),
                    (int(last[0]), str(last[1])) if last else None,
                    fingerprint,
                    at,
                )
        except _DB_ERRORS as exc:
            self._log_failure("AUDIT KEY ROTATION FAILED", exc)
            raise AuditUnavailableError(WRITE_UNAVAILABLE) from None
        self._fingerprint = fingerprint
        return era

    # -----------------------------------------------------------------------------------------
    # Appends: queued for the writer thread, returned once committed.

    def _write_loop(self) -> None:
        while True:
            batch = self._next_batch()
            if batch is None:
                break
            started = time.perf_counter()
            try:
                results = self._commit(batch)
            except Exception as exc:  # noqa: BLE001 - every cause refuses the batch (logged)
                self._refuse(batch, exc)
                continue
            self._note_reach(None)
            stored = stored_appends(results)
            if stored:  # a transaction of retries (or refusals) only stored nothing: no commit
                self.commits += 1
                self._observe(stored, time.perf_counter() - started)
            self._settle(results)

    def _refuse(self, batch: Sequence[PendingItem], exc: Exception) -> None:
        """Fail every caller of a batch that could not be committed."""
        self._note_reach(exc)
        self.failures += 1
        self._observe(len(batch), None)
        self._log_failure(f"AUDIT WRITE FAILED ({len(batch)} calls refused)", exc)
        error = AuditUnavailableError(WRITE_UNAVAILABLE)
        for item in batch:
            if not item.done.done():
                item.done.set_exception(error)

    @contextmanager
    def _connection(self) -> Iterator[psycopg.Connection[Any]]:
        """A pooled connection for a call: waited for at most ``timeout_s``, used as long.

        The wait: first ``DOWN_WAIT_S``; then, unless the database showed it is down meanwhile
        or before (``_unreachable``: a wait that failed, a pooled connection that failed its
        check, a use the watchdog cut), the rest of ``timeout_s``, which only a busy pool needs.
        A database that refuses connections, or is frozen, so refuses a call in about
        ``DOWN_WAIT_S``, the first call after it went away included (it waited ``timeout_s``,
        and each worker and replica had its own first call: 27.7 s of the published client's
        30 s deadline went on finding out). A use of the connection (a writer's) is cut after
        ``timeout_s`` (``pg_watchdog``), so a frozen server cannot hold a caller past it.

        Raises:
            PoolTimeout: If none could be had in that time.
        """
        started = time.monotonic()
        first = min(self._timeout_s, DOWN_WAIT_S)
        try:
            conn = self._pool.getconn(timeout=first)
        except PoolTimeout:
            if self._unreachable or first >= self._timeout_s:
                raise
            # Nothing says the database is down: every connection is busy. Wait the rest.
            conn = self._pool.getconn(timeout=self._timeout_s - (time.monotonic() - started))
        try:
            with self._bounded(conn, self._timeout_s), conn:
                yield conn
        finally:
            self._pool.putconn(conn)

    def _note_reach(self, failure: BaseException | None) -> None:
        """Follow whether a connection can be had: a wait that failed, or a call that worked."""
        if failure is None:
            self._unreachable = False
        elif isinstance(failure, PoolTimeout):
            self._unreachable = True

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
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text

    def _commit(self, batch: list[PendingItem]) -> list[tuple[PendingItem, Exception | None]]:
        """One transaction under the head row's lock: every item of the batch, then the head.

        Pipelined: the lock, the key check and the idempotency lookup go in one round trip,
        each call's savepoint and inserts in one more, the head update and COMMIT in the last
        (a call's own errors surface inside its savepoint, so they refuse that call alone).
        A cursor that outlives its call's statements (the shadow insert's ``RETURNING``) is
        entered in ``cursors``, so it is closed on every path: a refused call's, a failed
        transaction's.
        """
        results: list[tuple[PendingItem, Exception | None]] = []
        with (
            self._connection() as conn,
            conn.pipeline() as pipe,
            conn.transaction(),
            ExitStack() as cursors,
        ):
            head_cursor = conn.execute(
                "SELECT seq, record_hash FROM chain_head WHERE id = 1 FOR UPDATE"
            )
            key_cursor = conn.execute(_CURRENT_KEY) if self._fingerprint is not None else None
            ids = [e.record.decision_id for i in batch if isinstance(i, Pending) for e in i.records]
            found_cursor = (
                conn.execute(
                    f"SELECT {self._select} FROM decisions WHERE decision_id = ANY(%s)", (ids,)
                )
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
                shadow = None
                try:
                    with conn.transaction():  # a savepoint
                        if isinstance(item, PendingEvents):
                            seq, prev = insert_events(conn.execute, self._P, item, seq, prev)
                        elif isinstance(item, PendingShadow):
                            shadow = self._insert_shadow(conn, item, cursors)
                        else:
                            outcome = self._insert_item(conn, item, seq, prev, existing)
                            if isinstance(outcome, Exception):
                                results.append((item, outcome))
                                continue
                            seq, prev = outcome
                        pipe.sync()  # this call's errors raise here, inside its savepoint
                        if shadow is not None and isinstance(item, PendingShadow):
                            # One row back per row inserted (RETURNING); a conflict returns none.
                            item.added = sum(len(r.fetchall()) for r in shadow.results())
                        if isinstance(item, Pending):
                            # Later calls of this batch see these as stored (a repeated id).
                            existing.update(
                                (a.record.decision_id, a.record)
                                for a in item.stored
                                if not a.existed
                            )
                except psycopg.DataError as exc:  # this call's values only: refuse it alone
                    seq, prev = mark
                    self._log_failure("AUDIT RECORD REFUSED (1 call refused, its values)", exc)
                    results.append((item, RecordRefusedError(RECORD_REFUSED)))
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
        item: Pending,
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
            rows.append(record_values(sealed, encoded.input_text, text))
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
    def _insert_shadow(
        conn: psycopg.Connection[Any], item: PendingShadow, cursors: ExitStack
    ) -> psycopg.Cursor[Any] | None:
        """Queue the shadow rows' and dropped counts' statements in the pipeline.

        Args:
            conn: The writer's connection, in its transaction and pipeline.
            item: The shadow append.
            cursors: Closes the rows' cursor when the transaction ends, whatever the path
                (entered as soon as it is made: a value the driver refuses raises here).

        Returns:
            The cursor of the rows' insert, whose results (once synced) return one row per row
            inserted, or None when there are no rows. In pipeline mode ``rowcount`` after
            ``executemany`` is the last row's alone, so it cannot tell how many were new.
        """
        inserted = None
        if item.rows:
            inserted = cursors.enter_context(conn.cursor())
            inserted.executemany(
                f"INSERT INTO shadow_results ({', '.join(SHADOW_COLUMNS)}, agreed) "
                f"VALUES ({', '.join(['%s'] * (len(SHADOW_COLUMNS) + 1))}) "
                "ON CONFLICT (decision_id, shadow_version, shadow_sha256) DO NOTHING RETURNING 1",
                item.rows,
                returning=True,
            )
        with conn.cursor() as cur:
            if item.dropped:
                cur.executemany(_ADD_DROPPED, [(n, v, c) for (n, v), c in item.dropped.items()])
        return inserted

    # -----------------------------------------------------------------------------------------
    # Reads.

    def roster_text(
        self, sha256: str, *, timeout_s: float, max_agents: int, max_bytes: int
    ) -> str | None:
        """A roster snapshot's canonical JSON as ``get_blob`` gives it, read within bounds.

        For a replica asked for a roster by its ``roster_sha256`` alone that another replica
        stored (``grpc_api.roster_log``): a caller is waiting, so the read is bounded in time
        and size, unlike an auditor's ``get_blob``. At most ``timeout_s`` to get a connection
        (the pool's check of it included), and each statement (``SET LOCAL
        statement_timeout``, and the watchdog for a server that answers nothing) at most what
        is left of it; the
        content is not sent when it is larger than ``max_bytes`` (the chunks summed), nor
        chunks read when the manifest lists more than ``max_agents`` (a chunk holds at least
        one agent). A database error is logged here (its password scrubbed); the caller logs
        what it does with every outcome.

        Args:
            sha256: The snapshot's ``roster_sha256``.
            timeout_s: Longest the read may take.
            max_agents: Most agents the caller would accept.
            max_bytes: Most bytes of JSON the caller would read.

        Returns:
            The text (unverified: the caller checks its hash), or None when the log holds no
            such snapshot, or not all of it.

        Raises:
            RosterTooLargeError: If it is larger than ``max_agents`` or ``max_bytes`` allow (or
                its manifest is no manifest caseroute writes).
            AuditUnavailableError: If the log cannot be read within ``timeout_s``.
        """
        deadline = time.monotonic() + timeout_s

        def bounded(conn: psycopg.Connection[Any]) -> None:
            left_ms = round((deadline - time.monotonic()) * 1000)
            if left_ms < 1:
                raise AuditUnavailableError(READ_UNAVAILABLE)
            conn.execute("SELECT set_config('statement_timeout', %s, true)", (f"{left_ms}ms",))

        self._lookup.at = deadline  # the pool's check on checkout too (_check_connection)
        try:
            with (
                self._pool.connection(timeout=timeout_s) as conn,
                # A server that answers nothing cannot fire statement_timeout: cut client-side,
                # by the lookup's deadline (the checkout may have spent some of it).
                # Not reported: a lookup cut by its own deadline says nothing of the database.
                self._bounded(conn, max(0.0, deadline - time.monotonic()), report=False),
                conn.transaction(),
            ):
                bounded(conn)
                row = conn.execute(
                    "SELECT kind, octet_length(content), "
                    "CASE WHEN octet_length(content) <= %s THEN content END "
                    "FROM blobs WHERE sha256 = %s",
                    (max_bytes, sha256),
                ).fetchone()
                stored = bounded_roster(row, max_agents=max_agents, max_bytes=max_bytes)
                if stored is None:
                    return None
                if stored.manifest is None:
                    return stored.whole
                content, wanted = stored.manifest, list(stored.chunks)
                bounded(conn)
                rows = conn.execute(
                    "SELECT sha256, CASE WHEN total <= %s THEN content END, total FROM "
                    "(SELECT sha256, content, SUM(octet_length(content)) OVER () AS total "
                    "FROM blobs WHERE kind = %s AND sha256 = ANY(%s)) AS chunks",
                    (max_bytes - len(content), BlobKind.ROSTER_CHUNK.value, wanted),
                ).fetchall()
        except _DB_ERRORS as exc:
            # Not ``_note_reach``: a pool too busy for this short wait says nothing of whether
            # the database can be reached, and must not shorten the writer's waits.
            log.warning(
                "roster %s not read from the decision log on %s: %s: %s",
                sha256[:12],
                self.location,
                type(exc).__name__,
                self._scrub(exc),
            )
            raise AuditUnavailableError(READ_UNAVAILABLE) from None
        finally:
            self._lookup.at = None
        chunks: dict[str, str] = {}
        for key, chunk, total in rows:
            if chunk is None:
                raise RosterTooLargeError(f"{int(total) + len(content)} bytes, over {max_bytes}")
            if key in chunks or type(chunk) is not str:
                return None  # two rows under one key, or an edited value: no chunk (verify)
            chunks[key] = chunk
        return assemble_roster(content, chunks)

    @contextmanager
    def auditor_reads(self) -> Iterator[PostgresAuditSink]:
        """This log read as an auditor reads it (``caseroute audit``), for the block.

        A writer's statements are cut after ``timeout_s`` (its session's ``statement_timeout``
        and ``lock_timeout``, and ``pg_watchdog``): right for a caller waiting on a decision,
        wrong for a replay on the server, whose scan of a large log may run for minutes on a
        live server (it was cut at ``timeout_s`` and the replay refused UNAVAILABLE). The
        block gets a read-only sink of its own on the same database: PostgreSQL's defaults
        for its sessions, each statement bounded by liveness (``liveness_s``) as ``audit
        verify`` is, and its own connections, so a long scan never holds one of the writer's.
        A read-only sink is its own reader.

        Yields:
            The read-only sink (closed after the block).

        Raises:
            AuditUnavailableError: If it cannot be opened (its message names the server, for
                the log: a caller on the server must be told less).
        """
        if self._readonly:
            yield self
            return
        reader = PostgresAuditSink(
            self.location,
            pool_size=2,
            timeout_s=self._timeout_s,
            readonly=True,
            liveness_s=self._liveness_s,
        )
        try:
            yield reader
        finally:
            reader.close()

    def _has_table(self, name: str) -> bool:  # noqa: ARG002 - every table is in migration 1
        """Every table exists: a database is refused unless migrated (``schema_version`` >= 1)."""
        return True

    def _has_column(self, table: str, column: str) -> bool:
        """Whether a table has a column: a read-only open does not migrate an older schema."""
        return bool(
            self._fetch(
                "SELECT 1 FROM information_schema.columns WHERE table_schema = current_schema() "
                "AND table_name = %s AND column_name = %s",
                (table, column),
            )
        )

    @contextmanager
    def snapshot(self) -> Iterator[None]:
        """Every read of this thread in the block sees the log as one instant (one snapshot).

        One pooled connection is held for the block, in a ``REPEATABLE READ READ ONLY``
        transaction: commits of other replicas meanwhile are not seen. ``audit verify`` reads
        the head, the key eras, then the chain a page at a time; read one statement apiece
        (each its own snapshot), a record committed in between made an intact shared log
        verify TAMPERED while replicas wrote to it.

        Raises:
            AuditUnavailableError: If no connection or transaction can be had (logged).
        """
        with ExitStack() as held:
            self._cut.fired = False
            try:
                conn = held.enter_context(self._pool.connection())
                with self._bounded(conn, self._timeout_s):
                    conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            except _DB_ERRORS as exc:
                self._log_failure("AUDIT READ FAILED", exc)
                raise self._read_error(exc) from None
            self._pinned.conn = conn
            try:
                yield
            finally:
                self._pinned.conn = None
                # Read only: nothing to keep. A connection that cannot roll back is broken,
                # and the pool discards it on its return.
                with suppress(*_DB_ERRORS):
                    conn.execute("ROLLBACK")

    def _fetch(self, sql: str, params: tuple[object, ...]) -> list[Any]:
        """Run one read on a pooled connection (autocommit: one statement, one snapshot).

        Inside ``snapshot`` the read runs on that block's connection and snapshot instead.
        An auditor's (read-only) read returns a column altered to bytea as ``EditedText``, as
        the SQLite store does for a BLOB: every reader shows it, ``audit verify`` names it.
        """
        self._cut.fired = False
        try:
            with ExitStack() as held:
                conn = getattr(self._pinned, "conn", None)
                if conn is None:
                    conn = held.enter_context(self._connection())  # bounded there
                else:  # the snapshot's connection: each of its reads bounded as one use
                    held.enter_context(self._bounded(conn, self._timeout_s))
                rows = conn.execute(sql, params).fetchall()
            self._note_reach(None)
            return [blobs_as_text(row) for row in rows] if self._readonly else rows
        except _DB_ERRORS as exc:
            self._note_reach(exc)
            self._log_failure("AUDIT READ FAILED", exc)
            altered = self._altered() if self._readonly and _schema_refused(exc) else None
            if altered is not None:
                raise altered from None
            raise self._read_error(exc) from None

    def _read_error(self, exc: BaseException) -> AuditUnavailableError:
        """Why a read failed, for its caller: for an auditor, the server named when it is down.

        An auditor's read (``caseroute audit``: the operator at a terminal) names the server,
        what was being done, the cause (the driver's message, password scrubbed) and what to
        do: cut because the server answered no check (``_live``), no connection in
        ``timeout_s``, refused by the server, or dropped. Every failure of a server's read (its
        caller is a client, not the operator) is the generic ``READ_UNAVAILABLE`` (the cause is
        in the log).
        """
        if getattr(self._cut, "fired", False):
            return AuditUnavailableError(
                f"PostgreSQL at {self._where} stopped answering while caseroute read the "
                f"decision log {self.location}: a statement had no reply for "
                f"{self._liveness_s:g} s and the server answered no check on a new connection "
                "(it may be frozen, overloaded or cut off by the network); nothing was changed; "
                "check the server, then run the command again (a read that is slow on a live "
                f"server is waited for; {LIVENESS_HINT})"
            )
        if not self._readonly:
            return AuditUnavailableError(READ_UNAVAILABLE)
        if isinstance(exc, PoolTimeout):
            return AuditUnavailableError(
                f"PostgreSQL at {self._where} gave caseroute no working connection within "
                f"{self._timeout_s:g} s while it read the decision log {self.location} (it "
                "may be down, frozen, overloaded or cut off by the network); nothing was "
                "changed; check the server, then run the command again"
            )
        cause = f"{type(exc).__name__}: {self._scrub(exc)}"
        if getattr(exc, "sqlstate", None) is not None:  # the server answered: it refused
            check = (
                "that this role may read the log's tables"
                if isinstance(exc, psycopg.errors.InsufficientPrivilege)
                else "the server (and any connection pooler in front of it)"
            )
            return AuditUnavailableError(
                f"the decision log {self.location} cannot be read: PostgreSQL at {self._where} "
                f"refused the read: {cause}; nothing was changed; check {check}, then run the "
                "command again"
            )
        return AuditUnavailableError(
            f"the decision log {self.location} cannot be read from PostgreSQL at "
            f"{self._where}: {cause}; nothing was changed; check the server, then run the "
            "command again"
        )

    def _altered(self) -> RecordDamagedError | None:
        """Why an auditor's query failed to type-check, if the log's tables were altered.

        A column altered to another type (``decisions.seq`` to text) made every read say "the
        decision log cannot be read; retry later", as an outage would. Only a difference from
        the migrations' columns is called an edit: the same class of errors also comes from a
        connection pooler (a prepared statement lost or taken, PgBouncer in transaction mode),
        which is an outage (review R30b).

        Returns:
            The error naming each altered column, or None when every column is as created (or
            the columns cannot be read).
        """
        try:
            with self._pool.connection() as conn, self._bounded(conn, self._timeout_s):
                changes = altered_columns(conn, self._opened_version)
        except _DB_ERRORS as exc:
            self._log_failure("AUDIT READ FAILED", exc)
            return None
        if not changes:
            return None
        return _altered_error(changes)

    def close(self) -> None:
        """Finish pending appends, stop the writer and close the pool."""
        if self._writer is not None:
            with self._closing:
                already, self._closed = self._closed, True
                if not already:
                    self._queue.put(None)
            self._writer.join(timeout=30)
        self._pool.close()
        if self._watchdog is not None:
            self._watchdog.close()


def _schema_refused(exc: BaseException) -> bool:
    """Whether a read failed because a table or column is not as created (SQLSTATE class 42).

    Permissions (``insufficient_privilege``, also class 42) are an operator's matter, not an
    edit.
    """
    return isinstance(exc, psycopg.errors.ProgrammingError) and not isinstance(
        exc, psycopg.errors.InsufficientPrivilege
    )


def _configure(conn: psycopg.Connection[Any]) -> None:
    """Every pooled connection: a commit returns only once durable (whatever the server says)."""
    conn.execute("SET synchronous_commit = on")


def _current_fingerprint(conn: psycopg.Connection[Any]) -> str | None:
    row = conn.execute(_CURRENT_KEY).fetchone()
    return None if row is None else str(row[0])
