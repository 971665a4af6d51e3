"""The appends of both SQL decision logs (SQLite, PostgreSQL): queued items and the writer's side.

Written once here: the items queued for a store's writer thread (``Pending*``), the appends that
queue them and wait for the commit (``QueuedAppends``), the writer's sealing of ruleset events
(``insert_events``, over the connection's ``execute`` and the placeholder) and what a commit
counts (``stored_appends``). Each store keeps its own writer transaction, where its dialect
differs.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar

from caseroute.audit.record import (
    Appended,
    AuditRecord,
    Blob,
    EncodedRecord,
    RulesetEvent,
    ShadowResult,
    encode_record,
    event_problem,
    seal_event,
    shadow_problem,
)
from caseroute.audit.sql_rows import (
    EVENT_COLUMNS,
    current_event,
    dropped_counts,
    is_key_fingerprint,
    last_event_sql,
    shadow_row,
)
from caseroute.domain.errors import AuditUnavailableError, withheld_cause

log = logging.getLogger("caseroute.audit")

WRITE_UNAVAILABLE = (
    "the decision log cannot be written; no decision was made; retry later or with another replica"
)
"""What a caller is told when records cannot be committed (the cause goes to the log only)."""
RECORD_REFUSED = (
    "the decision log refused this call's records for their values; nothing was decided or "
    "recorded; the server log has the details"
)
"""What a ``RecordRefusedError`` says (logged; callers get INTERNAL's generic text)."""
KNOWN_BLOBS = 16384
"""Most blob hashes a store remembers as written (``has_blob``): a roster snapshot is a
manifest and ~1 chunk per 19 agents, so this holds the chunks of ~300 snapshots of 1,000."""

T = TypeVar("T")


class Settled(Protocol[T]):
    """How a queued item's caller learns its outcome (``Outcome``; a ``Future`` also fits)."""

    def set_result(self, result: T, /) -> None:
        """Settle with a result (the writer thread, once)."""

    def set_exception(self, exception: BaseException, /) -> None:
        """Settle with an error (the writer thread, once)."""

    def done(self) -> bool:
        """Whether it is settled."""

    def result(self) -> T:
        """Wait until settled; the result, or the error raised."""


class Outcome(Generic[T]):
    """A one-shot outcome handed from the writer thread to the caller waiting on it.

    A ``concurrent.futures.Future`` without its condition variable and callbacks: a lock
    taken at creation and released when settled. With a ``SimpleQueue`` this halves the CPU
    of the hand-off (a caller-to-writer-and-back round trip: ~26 -> ~14 us in two threads).
    """

    __slots__ = ("_error", "_result", "_settled")

    def __init__(self) -> None:
        self._settled = threading.Lock()
        self._settled.acquire()  # Invariant: held until set_result or set_exception
        self._result: T | None = None
        self._error: BaseException | None = None

    def set_result(self, result: T, /) -> None:
        """Settle with ``result`` and wake the waiting caller."""
        self._result = result
        self._settled.release()

    def set_exception(self, exception: BaseException, /) -> None:
        """Settle with ``exception`` (raised by ``result``) and wake the waiting caller."""
        self._error = exception
        self._settled.release()

    def done(self) -> bool:
        """Whether it is settled."""
        return not self._settled.locked()

    def result(self) -> T:
        """Wait until settled; the result, or raise the error it was settled with.

        Raises:
            BaseException: The error it was settled with.
        """
        with self._settled:  # released at once: a second call returns too
            pass
        if self._error is not None:
            raise self._error
        return self._result  # type: ignore[return-value]  # set_result set it


@dataclass(slots=True)
class Pending:
    """Decision records (and their blobs) waiting for the writer."""

    records: Sequence[EncodedRecord]
    blobs: Sequence[Blob]
    done: Settled[list[Appended]]
    stored: list[Appended] = field(default_factory=list)


@dataclass(slots=True)
class PendingEvents:
    """Ruleset lifecycle events waiting for the writer (sealed into the same chain)."""

    events: Sequence[RulesetEvent]
    done: Settled[list[RulesetEvent]]
    stored: list[RulesetEvent] = field(default_factory=list)
    added: int = 0
    """How many of ``stored`` its transaction sealed (the others were stored before)."""
    unless_current: bool = False
    """Drop each event its role's last event already records (``current_event``), in the
    transaction that would seal it: the check and the append are one step."""


@dataclass(slots=True)
class PendingShadow:
    """Shadow results, already turned into rows (so nothing can fail the batch on encoding)."""

    rows: list[tuple[object, ...]]
    dropped: dict[tuple[str, str], int]
    done: Settled[None]
    added: int = 0
    """How many of ``rows`` its transaction inserted (the others were stored before)."""


PendingItem = Pending | PendingEvents | PendingShadow
"""What a store's writer thread takes from its queue."""


class FetchOne(Protocol):
    """What a connection's ``execute`` returns (a sqlite3 or psycopg cursor), as used here."""

    def fetchone(self) -> Any:
        """The next row, or None."""


class Execute(Protocol):
    """A connection's ``execute`` (sqlite3's or psycopg's): one statement, then its cursor."""

    def __call__(self, sql: str, params: tuple[object, ...], /) -> FetchOne:
        """Run ``sql`` with ``params`` bound to its placeholders."""


def insert_events(
    execute: Execute, placeholder: str, item: PendingEvents, seq: int, prev: str
) -> tuple[int, str]:
    """Seal an events append into the chain after ``(seq, prev)``: the one rule of both stores.

    An event whose event_id is stored already is not written again (a retry: the stored event
    goes back); with ``unless_current``, neither is one whose ruleset role's last event already
    records its state (``current_event``: that last event goes back). Every other event is
    sealed at the next seq and inserted. Sets ``item.stored`` (one event per event given, in
    order) and ``item.added`` (how many this call sealed).

    Invariant: run in the writer's transaction under the log's write lock (SQLite's ``BEGIN
    IMMEDIATE``; PostgreSQL's head row, locked first), so no other writer can seal an event
    between these reads and the insert; the reads see this transaction's earlier inserts, so
    an event_id repeated within one batch is stored once.

    Args:
        execute: The writer connection's ``execute``.
        placeholder: The dialect's placeholder (``?`` or ``%s``).
        item: The append.
        seq: The chain's last seq so far in this transaction.
        prev: The chain's last hash so far in this transaction.

    Returns:
        The chain's last (seq, hash) after this append.
    """
    columns = ", ".join(EVENT_COLUMNS)
    by_id = f"SELECT {columns} FROM ruleset_events WHERE event_id = {placeholder}"
    last_sql = last_event_sql(placeholder)
    insert = (
        f"INSERT INTO ruleset_events ({columns}) "
        f"VALUES ({', '.join([placeholder] * len(EVENT_COLUMNS))})"
    )
    stored: list[RulesetEvent] = []
    start = seq
    for event in item.events:
        row = execute(by_id, (event.event_id,)).fetchone()
        if row is not None:
            stored.append(RulesetEvent(*row))
            continue
        if item.unless_current:
            last = execute(last_sql, (event.ruleset_name, event.role)).fetchone()
            current = current_event(last, event)
            if current is not None:
                stored.append(current)
                continue
        seq += 1
        sealed = seal_event(event, seq, prev)
        prev = sealed.record_hash
        execute(insert, tuple(getattr(sealed, c) for c in EVENT_COLUMNS))
        stored.append(sealed)
    item.stored = stored
    item.added = seq - start
    return seq, prev


def stored_appends(results: Sequence[tuple[PendingItem, Exception | None]]) -> int:
    """How many appends of a committed transaction stored something: what a commit counts.

    The one rule of both stores. An append stored nothing when it was refused (its savepoint
    was rolled back); when it is a decision append none of whose records is new: a retry whose
    records were all stored before (the stored ones go back to its caller), or an empty one
    (the health probe's, ``RoutingCore.probe_audit``); when it is an events append none of
    whose events is new (every event_id stored before, or the state it records current: the
    stored events go back); or when it is a shadow append with rows none of which is new (each
    result stored before for its decision and shadow version: another worker's, or a retry)
    and no dropped comparison to count. Blobs travel with their records: a retry's were stored
    with them; blobs alone count. (A shadow append with neither rows nor dropped counts is
    never queued: ``append_shadow`` returns first.) A transaction of only appends that stored
    nothing is no commit: stores count ``commits`` and tell their ``CommitObserver`` only when
    this is above 0.
    """
    count = 0
    for item, error in results:
        if error is not None:
            continue
        if type(item) is Pending:
            # A loop, not ``any()`` over a generator: this runs once per committed call.
            for appended in item.stored:
                if not appended.existed:
                    break
            else:
                if item.records or not item.blobs:
                    continue
        elif type(item) is PendingEvents:
            if not item.added:
                continue
        elif isinstance(item, PendingShadow) and item.rows and not item.added and not item.dropped:
            continue
        count += 1
    return count


class AppendQueue(queue.SimpleQueue[PendingItem | None]):
    """A writer's queue: ``SimpleQueue`` (C; no condition variable), patchable in tests."""


class CommitObserver(Protocol):
    """Told about each transaction of the writer (metrics); must not block or raise."""

    def committed(self, items: int, seconds: float) -> None:
        """A transaction of ``items`` appends committed after ``seconds`` (lock wait included)."""

    def commit_failed(self, items: int) -> None:
        """A transaction failed: its ``items`` appends were refused."""


class QueuedAppends:
    """The appends of a store whose one writer thread commits queued items (group commit).

    A store sets the attributes below in its constructor and runs the writer loop itself (its
    transaction is its own): ``_next_batch`` gathers the items waiting, ``_settle`` releases
    their callers once committed.
    """

    _target: object
    """The log's location, as logged (a path; a URL without its password)."""
    _max_batch: int
    _queue: queue.Queue[PendingItem | None] | queue.SimpleQueue[PendingItem | None]
    _closing: threading.Lock
    _closed: bool
    _writer: threading.Thread | None
    _known: OrderedDict[str, None]
    _known_lock: threading.Lock
    _fingerprint: str | None
    """The key this writer masks with (``claim_key``; None until bound)."""
    observer: CommitObserver | None

    def claim_key(self, fingerprint: str, at: str) -> None:
        """Bind this writer to a masking key (each store's own transaction)."""
        raise NotImplementedError

    def _bind_key(self, records: Sequence[AuditRecord]) -> None:
        """Invariant: a record names the key of the era it is stored in (``audit verify``).

        Every record ``build_records`` makes names the fingerprint of the key that masked it
        (its input's ``masked_with``). A writer not yet bound to a key (``claim_key``) binds
        to the one the records name, recording the first record's ``recorded_at`` as the era's
        start (a log masked with another key then refuses it). Records that name no key (no
        ``masked_with``, as built by hand) are stored as they are. Every record is checked
        before anything is claimed or stored: a refused call stores nothing, era included.

        Raises:
            AuditUnavailableError: If a record's ``masked_with`` is no key fingerprint (16
                lower-case hex digits), or the records name a key other than this writer's
                (the masker and the writer were given different keys) or more than one key,
                or the log holds another key than the one named; the reason is logged.
        """
        named: dict[str, AuditRecord] = {}
        refused = None
        bound = self._fingerprint
        for record in records:
            stored_input = record.input
            if not isinstance(stored_input, dict) or "masked_with" not in stored_input:
                continue
            key = stored_input["masked_with"]
            if key == bound and bound is not None:
                continue  # the serving path: the writer's own key, checked when bound
            if not is_key_fingerprint(key):
                refused = record, "its masked_with is no key fingerprint (16 hex digits)"
                break
            named.setdefault(key, record)
        if refused is None and named:
            others = list(named) if bound is not None else []
            if others:
                refused = (
                    named[others[0]],
                    (
                        f"it was masked with key {others[0]}, but this writer is bound to key "
                        f"{bound}: give the recorder the masker of the key the log is bound to "
                        "(AuditConfig.open_recording builds both from one read of the key)"
                    ),
                )
            elif bound is None and len(named) > 1:
                first, second = list(named)[:2]
                refused = (
                    named[second],
                    (f"one call's records were masked with two keys ({first}, {second})"),
                )
            elif bound is None:
                ((key, record),) = named.items()
                try:
                    self.claim_key(key, record.recorded_at)
                except AuditUnavailableError:
                    raise
                except Exception as exc:  # noqa: BLE001 - KeyMismatchError (sink.py's)
                    refused = record, str(exc)
        if refused is not None:
            log.error(
                "AUDIT WRITE REFUSED on %s: record %s: %s",
                self._target,
                refused[0].decision_id,
                refused[1],
            )
            raise AuditUnavailableError(WRITE_UNAVAILABLE)

    def _enqueue(self, item: PendingItem) -> None:
        """Hand an item to the writer thread (its ``done`` is settled after the commit)."""
        with self._closing:
            self._refuse_unless_open()
            self._queue.put(item)

    def _refuse_unless_open(self) -> None:
        """Refuse an append to a read-only or closed log (``_closing`` held).

        Raises:
            AuditUnavailableError: The fixed refusal; which of the two is logged.
        """
        if self._writer is None:
            log.error("append refused: the decision log %s was opened read-only", self._target)
            raise AuditUnavailableError(WRITE_UNAVAILABLE)
        if self._closed:
            log.error("append refused: the decision log %s is closed (shutting down)", self._target)
            raise AuditUnavailableError(WRITE_UNAVAILABLE)

    def _next_batch(self) -> list[PendingItem] | None:
        """Wait for an item, then take every one waiting (up to ``_max_batch``); None: stop."""
        first = self._queue.get()
        if first is None:
            return None
        return self._gather([first])

    def _gather(self, batch: list[PendingItem]) -> list[PendingItem]:
        """``batch`` and every item waiting now (up to ``_max_batch``); the stop marker stays."""
        while len(batch) < self._max_batch:
            try:
                more = self._queue.get_nowait()
            except queue.Empty:
                break
            if more is None:
                self._queue.put(None)
                break
            batch.append(more)
        return batch

    def _settle(self, results: Sequence[tuple[PendingItem, Exception | None]]) -> None:
        """Release the callers of a committed batch: each its stored items or its own error."""
        for item, error in results:
            if error is not None:
                item.done.set_exception(error)
            elif isinstance(item, Pending):  # decisions first: nearly every item is one
                for blob in item.blobs:
                    self._remember(blob.sha256)
                item.done.set_result(item.stored)
            elif isinstance(item, PendingEvents):
                item.done.set_result(item.stored)
            else:
                item.done.set_result(None)

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

    def append(self, records: Sequence[AuditRecord], blobs: Sequence[Blob] = ()) -> list[Appended]:
        """Store records and blobs; returns when they are committed durably.

        Records whose decision_id is already stored are not written again: the stored record
        is returned instead (a retry). A stored record with the same decision_id but a
        different request input raises IdempotencyConflictError, and none of this call's
        records are stored.

        Raises:
            AuditUnavailableError: If the store cannot commit (nothing is stored then).
            IdempotencyConflictError: If a decision_id exists with a different input.
            AuditUnavailableError: Also if a record was masked with another key than the
                writer's or the log's (``_bind_key``).
        """
        self._bind_key(records)
        # Serialised here, in the caller's thread: the writer (whose time every caller waits
        # on) only appends each record's seq to its text and hashes it.
        pending = Pending([encode_record(r) for r in records], blobs, Outcome())
        self._enqueue(pending)
        return pending.done.result()

    def append_events(
        self, events: Sequence[RulesetEvent], *, unless_current: bool = False
    ) -> list[RulesetEvent]:
        """Seal ruleset lifecycle events into the chain; returns when they are committed.

        They go through the same writer thread and transaction as decision records, so seq
        allocation and the chain head have one owner. An event whose event_id is stored
        already is not written again: the stored event is returned (a retry).

        Args:
            events: The events, in the order they happened (seq and hashes are ignored).
            unless_current: Also leave out each event whose ruleset role's last event already
                ends in the same ``to_version`` and ``to_sha256`` (that last event is returned
                in its place). Checked under the write lock, in the transaction that would seal
                it: two workers swapping in one change record it once.

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
        pending = PendingEvents(events, Outcome(), unless_current=unless_current)
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
            ValueError: If a result is malformed (a text field a log cannot store: NUL, a lone
                surrogate) or holds a summary key other than outcome, agent_id, queue,
                priority, rule_id, escalation, error; or if ``dropped`` is not what
                ``dropped_counts`` accepts (a count over ``MAX_STORED_COUNT``, a negative or
                bool one, a bad key, an int that names no single shadow version). Checked
                before anything is queued: this call fails alone.
            AuditUnavailableError: If the store cannot commit (nothing is stored then).
        """
        rows: list[tuple[object, ...]] = []
        for result in results:
            problem = shadow_problem(result)
            if problem is not None:
                raise ValueError(f"shadow result for {result.decision_id!r}: {problem}")
            rows.append(shadow_row(result))
        counts = dropped_counts(results, dropped)
        if not rows and not counts:
            return
        pending = PendingShadow(rows, counts, Outcome())
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
            while len(self._known) > KNOWN_BLOBS:
                self._known.popitem(last=False)
