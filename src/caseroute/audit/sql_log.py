"""What both SQL decision logs (SQLite, PostgreSQL) share: rows, queued appends, the read side.

The two stores keep the same tables column for column, so a record reads back identically from
either. Written once here: the column lists, the row <-> record and row <-> shadow result
conversions, the items queued for a store's writer thread, the appends that queue them, the
writer's sealing of ruleset events (``insert_events``, over the connection's ``execute`` and
the placeholder), and every read (``SqlLogReads``) over a small per-dialect hook: ``_fetch``
(one read), ``_P`` (the placeholder, ``?`` or ``%s``), ``_has_table`` and the shadow summary's
SQL. Each store keeps its own SQL where its dialect differs (the writer's transaction, the
summary's aggregates).
"""

from __future__ import annotations

import json
import logging
import queue
import re
import threading
from abc import ABC, abstractmethod
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from functools import cached_property
from typing import Any, ClassVar, Generic, Protocol, TypeGuard, TypeVar

from caseroute.audit.record import (
    GENESIS,
    SHADOW_DIFFERENCES,
    Appended,
    AuditRecord,
    Blob,
    BlobKind,
    EditedText,
    EncodedRecord,
    RulesetEvent,
    ShadowResult,
    ShadowSummary,
    encode_record,
    event_problem,
    seal_event,
    shadow_problem,
    text_hash,
    text_problem,
    with_hashed_text,
)
from caseroute.audit.roster_blob import assemble_roster, manifest_keys
from caseroute.domain.errors import AuditUnavailableError, RecordDamagedError, withheld_cause
from caseroute.domain.fingerprint import canonical_json

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
READ_UNAVAILABLE = (
    "the decision log cannot be read; nothing was decided or changed; retry later or with "
    "another replica"
)
"""What a caller is told when the log cannot be read (the cause goes to the log only)."""

RECORD_FIELDS = (
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
"""The ``decisions`` columns that are ``AuditRecord``'s fields, in order."""
TEXT_COLUMN = "content"
"""The column holding a record's hashed text (added to logs written before it was kept).

New rows store the text once: ``decision`` (the bulk of a record) is '' in them, and ``input``
keeps the canonical text of the input (a tenth of a record) so replay can find a record's
roster snapshot without decoding its decision. The other columns are copies of the text's
scalars for indexes and filters; verify checks each against the text."""
RECORD_COLUMNS = (*RECORD_FIELDS, TEXT_COLUMN)
"""The fields of a ``RecordRow``, in order (``AuditRecord``'s fields, then the hashed text)."""
RecordRow = tuple[Any, ...]
"""A stored record as read, undecoded: ``RECORD_COLUMNS`` order, ``input`` and ``decision`` as
the JSON text stored, then the hashed text or None (``SqlLogReads.record_rows``)."""
EVENT_COLUMNS = RulesetEvent.__slots__
"""The ``ruleset_events`` columns, in ``RulesetEvent``'s field order."""


def last_event_sql(placeholder: str) -> str:
    """The most recent event of one role of a ruleset (parameters: ruleset_name, role)."""
    return (
        f"SELECT {', '.join(EVENT_COLUMNS)} FROM ruleset_events WHERE ruleset_name = "
        f"{placeholder} AND role = {placeholder} ORDER BY seq DESC LIMIT 1"
    )


def current_event(last: Sequence[Any] | None, event: RulesetEvent) -> RulesetEvent | None:
    """``last`` (a ``last_event_sql`` row) when it already records the state ``event`` records.

    The chain records what serves, once: an event whose ruleset role's last event already
    ends in the same version and content (``to_version``, ``to_sha256``) adds nothing.
    """
    if last is None:
        return None
    found = RulesetEvent(*last)
    same = (found.to_version, found.to_sha256) == (event.to_version, event.to_sha256)
    return found if same else None


SHADOW_COLUMNS = (
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
"""The ``shadow_results`` columns read back (``ShadowResult``'s fields); rows add ``agreed``."""
PAGE = 1000
"""Rows read per page by the iterating reads (``records``, ``record_rows``, ``iter_events``)."""
KNOWN_BLOBS = 16384
"""Most blob hashes a store remembers as written (``has_blob``): a roster snapshot is a
manifest and ~1 chunk per 19 agents, so this holds the chunks of ~300 snapshots of 1,000."""
CHUNKS_PER_READ = 500
"""Most roster chunks one read asks for (a statement's placeholders stay well under SQLite's
limit whatever the roster's size)."""

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def record_from_row(row: RecordRow) -> AuditRecord:
    """The record of a row: its columns, with ``decision`` from the hashed text when kept.

    Every column is taken as stored (a decision column is decoded when it holds one), so a
    column edited after the fact shows in the record and verify sees it disagree with the text.

    Raises:
        RecordDamagedError: If ``seq`` is no integer (review R29 F5: ``audit show`` ended in a
            traceback on a PostgreSQL log whose ``seq`` column was altered to text).
    """
    *columns, text = row
    values = dict(zip(RECORD_FIELDS, columns, strict=True))
    if type(values["seq"]) is not int:  # a PostgreSQL column altered to text holds it
        stored_int(values["seq"], f"the seq of decision {values['decision_id']!r}")
    values["input"] = _loads(values["input"])
    if text is None or values["decision"]:
        values["decision"] = _loads(values["decision"])
    else:
        decision = _loads(text).get("decision")
        values["decision"] = decision if isinstance(decision, dict) else {}
    return with_hashed_text(AuditRecord(**values), text)


def _loads(text: str) -> dict[str, Any]:
    """The JSON object of a stored column; a damaged one (not JSON, or no object) decodes as {}.

    verify then names the record (its columns no longer encode to its hashed text).
    """
    try:
        value = json.loads(text) if text else {}
    except (TypeError, ValueError, RecursionError):
        return {}
    return value if isinstance(value, dict) else {}


def micros(instant: datetime) -> int:
    """An aware instant as epoch microseconds (the ``now_us`` column)."""
    delta = instant - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def insert_record_sql(placeholder: str) -> str:
    """The ``INSERT`` of one ``record_values`` row, with the dialect's placeholder."""
    return (
        f"INSERT INTO decisions ({', '.join(RECORD_FIELDS)}, now_us, {TEXT_COLUMN}) "
        f"VALUES ({', '.join([placeholder] * (len(RECORD_FIELDS) + 2))})"
    )


def record_values(record: AuditRecord, input_text: str, text: str) -> tuple[object, ...]:
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
        micros(datetime.fromisoformat(record.now)),
        text,
    )


def shadow_row(result: ShadowResult) -> tuple[object, ...]:
    """A checked result as its ``shadow_results`` row (``SHADOW_COLUMNS`` then ``agreed``)."""
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


def shadow_from_row(row: Sequence[Any]) -> ShadowResult:
    """The ``ShadowResult`` of a ``shadow_results`` row read in ``SHADOW_COLUMNS`` order.

    Raises:
        RecordDamagedError: If a JSON column does not parse (the row was edited: shadow results
            are review data, outside the hash chain).
    """
    values = dict(zip(SHADOW_COLUMNS, row, strict=True))
    try:
        differences = json.loads(values["differences"])
        values["live"] = json.loads(values["live"])
        values["shadow"] = json.loads(values["shadow"])
        if not (
            isinstance(differences, list)
            and all(isinstance(d, str) for d in differences)
            and isinstance(values["live"], dict)
            and isinstance(values["shadow"], dict)
        ):
            raise TypeError("not the shapes caseroute writes")  # noqa: TRY301 - one report
        values["differences"] = tuple(differences)
    except (TypeError, ValueError, RecursionError) as exc:
        raise RecordDamagedError(
            f"the shadow result of decision {str(values['decision_id'])[:80]!r} under version "
            f"{str(values['shadow_version'])[:40]!r} does not parse: the log was edited "
            "(shadow results are review data outside the hash chain; the decisions are not "
            "affected, `caseroute audit verify` checks those)"
        ) from exc
    return ShadowResult(**values)


def stored_int(value: object, what: str) -> int:
    """An INTEGER column's value as read; text there (SQLite keeps it) was put by an edit.

    Raises:
        RecordDamagedError: If it is no integer, naming ``what``.
    """
    if type(value) is int:
        return value
    raise RecordDamagedError(
        f"{what} is not a number in the decision log: the log was edited; run `caseroute "
        "audit verify` and restore the log from a copy you trust"
    )


def distinct_values(concatenated: str | None) -> tuple[str, ...]:
    """A comma-joined ``DISTINCT`` aggregate as sorted values, without the empty one."""
    return tuple(sorted(v for v in (concatenated or "").split(",") if v))


MAX_STORED_COUNT = 2**63 - 1
"""The largest count a log keeps: SQLite's INTEGER and PostgreSQL's BIGINT are 64-bit."""


def add_dropped_sql(placeholder: str) -> str:
    """Add to a (ruleset_name, shadow_version)'s dropped count; parameters: name, version, count.

    The sum stops at ``MAX_STORED_COUNT``: a count past it is not an error worth refusing a
    transaction for, and the two stores would disagree (PostgreSQL refuses a BIGINT overflow,
    SQLite turns the column into a float).
    """
    kept = "shadow_dropped.dropped"
    return (
        "INSERT INTO shadow_dropped (ruleset_name, shadow_version, dropped) VALUES "
        f"({placeholder}, {placeholder}, {placeholder}) "
        "ON CONFLICT (ruleset_name, shadow_version) DO UPDATE SET dropped = CASE "
        f"WHEN {kept} > {MAX_STORED_COUNT} - excluded.dropped THEN {MAX_STORED_COUNT} "
        f"ELSE {kept} + excluded.dropped END"
    )


def _count_problem(count: object) -> str | None:
    """Why ``count`` cannot be stored as a dropped count (None: it can)."""
    if isinstance(count, bool) or not isinstance(count, int) or count < 0:
        return "must be a non-negative int"
    if count > MAX_STORED_COUNT:
        return f"is over {MAX_STORED_COUNT}, the largest count the decision log keeps"
    return None


def _key_problem(key: object) -> str | None:
    """Why ``key`` cannot name a dropped count (None: it can): (ruleset_name, shadow_version)."""
    if not (isinstance(key, tuple) and len(key) == 2):
        return "must be keyed by (ruleset_name, shadow_version)"
    for part in key:
        if not isinstance(part, str) or not part:
            return "key must be two non-empty texts"
        problem = text_problem(part)
        if problem is not None:
            return f"key {problem}"
    return None


def dropped_counts(
    results: Sequence[ShadowResult], dropped: int | Mapping[tuple[str, str], int]
) -> dict[tuple[str, str], int]:
    """``append_shadow``'s dropped counts per (ruleset_name, shadow_version).

    Checked here, before anything is queued: a count the log cannot hold fails this call
    alone, never the writer's transaction it would share with live decisions.

    Raises:
        ValueError: If an int ``dropped`` cannot be attributed to exactly one shadow version,
            a count is not a non-negative int of at most ``MAX_STORED_COUNT``, or a key is
            not a pair of non-empty texts a log can store (``record.text_problem``).
    """
    if isinstance(dropped, int):
        problem = _count_problem(dropped)
        if problem is not None:
            raise ValueError(f"dropped={dropped!r} {problem}")
        if not dropped:
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
        problem = _key_problem(key) or _count_problem(count)
        if problem is not None:
            raise ValueError(f"dropped count for {key!r} {problem}")
        if count:
            counts[key] = count
    return counts


KEY_ROTATION_KIND = "key_rotation"
"""The content discriminator of a sealed key rotation (no record or ruleset event has it)."""


@dataclass(frozen=True, slots=True)
class KeyEra:
    """One masking key's time in the log.

    A rotation is sealed into the chain (``caseroute audit rotate-key``): it takes the next
    position, and its era starts at the record after it, so deleting or editing it breaks the
    chain as deleting a record would. The first era (bound on first use, before any record)
    and rotations made before rotations were sealed are not chain entries (``seq`` None): the
    records naming their key prove them (``verify.key_history_problem``).

    Attributes:
        era: 1 for the first key, then one more per rotation.
        at: When it was first used (era 1) or rotated in (ISO-8601 UTC).
        old_fingerprint: The previous key's fingerprint ("" for era 1).
        new_fingerprint: This key's fingerprint.
        first_seq: The first record masked with this key.
        seq: The rotation's chain position (``first_seq - 1``); None when not sealed.
        prev_hash: The previous chain entry's hash ("" when not sealed).
        record_hash: This rotation's hash ("" when not sealed).
    """

    era: int
    at: str
    old_fingerprint: str
    new_fingerprint: str
    first_seq: int
    seq: int | None = None
    prev_hash: str = ""
    record_hash: str = ""

    def content(self) -> dict[str, Any]:
        """The hashed content of a sealed rotation: every field but the hashes, and ``kind``."""
        return {
            "kind": KEY_ROTATION_KIND,
            "seq": self.seq,
            "era": self.era,
            "at": self.at,
            "old_fingerprint": self.old_fingerprint,
            "new_fingerprint": self.new_fingerprint,
            "first_seq": self.first_seq,
        }


def sealed_rotation(era: KeyEra, head: tuple[int, str]) -> KeyEra:
    """``era`` (a rotation) placed after the chain's ``head``: its era starts the record after.

    Args:
        era: The rotation (its ``first_seq`` and chain fields are replaced).
        head: The chain head (seq, record_hash) in the rotation's transaction.

    Returns:
        The sealed rotation.
    """
    placed = KeyEra(
        era.era, era.at, era.old_fingerprint, era.new_fingerprint, head[0] + 2, head[0] + 1, head[1]
    )
    return replace(placed, record_hash=text_hash(head[1], canonical_json(placed.content())))


_FINGERPRINT = re.compile(r"[0-9a-f]{16}")


def is_key_fingerprint(value: object) -> TypeGuard[str]:
    """Whether ``value`` is a key fingerprint as ``masking.key_fingerprint`` writes it."""
    return type(value) is str and _FINGERPRINT.fullmatch(value) is not None


def require_key_fingerprint(value: str) -> None:
    """Refuse ``value`` as a key to bind or rotate to unless it is a key fingerprint.

    A writer bound to other text would store every record under it unchecked (its own key
    skips ``_bind_key``'s checks), and ``audit verify`` would then report the whole era.

    Raises:
        ValueError: If ``value`` is not 16 lower-case hex digits.
    """
    if not is_key_fingerprint(value):
        raise ValueError(
            f"{value!r} is no masking-key fingerprint (16 lower-case hex digits): pass "
            "Masker.fingerprint or masking.key_fingerprint(key)"
        )


def insert_rotation(
    execute: Callable[..., Any],
    placeholder: str,
    head: tuple[int, str],
    last: tuple[int, str] | None,
    fingerprint: str,
    at: str,
) -> KeyEra:
    """Seal a key rotation after the chain's ``head`` (inside the caller's transaction).

    Args:
        execute: The transaction's ``execute``.
        placeholder: The driver's parameter placeholder (``?`` or ``%s``).
        head: The chain head, read under the write lock.
        last: The current era's (number, fingerprint); None when no key is recorded.
        fingerprint: The new key's fingerprint.
        at: Now, ISO-8601 UTC.

    Returns:
        The new era, sealed: at ``head + 1``, masking records from ``head + 2``.
    """
    era = sealed_rotation(
        KeyEra((last[0] if last else 0) + 1, at, last[1] if last else "", fingerprint, 0), head
    )
    p = placeholder
    execute(
        "INSERT INTO key_history (era, at, old_fingerprint, new_fingerprint, first_seq, seq, "
        f"prev_hash, record_hash) VALUES ({', '.join([p] * 8)})",
        (
            era.era,
            era.at,
            era.old_fingerprint,
            era.new_fingerprint,
            era.first_seq,
            era.seq,
            era.prev_hash,
            era.record_hash,
        ),
    )
    execute(
        f"INSERT INTO chain_head (id, seq, record_hash) VALUES (1, {p}, {p}) ON CONFLICT (id) "
        "DO UPDATE SET seq = excluded.seq, record_hash = excluded.record_hash",
        (era.seq, era.record_hash),
    )
    return era


def era_of(seq: int, history: Sequence[KeyEra]) -> KeyEra | None:
    """The key era a record belongs to (None before any key was recorded)."""
    return next((e for e in reversed(history) if e.first_seq <= seq), None)


T = TypeVar("T")


def blobs_as_text(row: Sequence[Any]) -> tuple[Any, ...]:
    """``row`` with each bytes value as ``EditedText`` (an auditor's read, either store).

    Every column caseroute writes is TEXT or INTEGER, so bytes were put there by an edit (a
    SQLite BLOB, a PostgreSQL column altered to bytea): readers show them like text, and
    ``audit verify`` reports the row edited, except where the same bytes mean the same to every
    reader: a JSON column (``input``, ``decision``: parsed first), the head's hash, a blob's key
    (docs/audit.md, "tampering").
    """
    kinds = set(map(type, row))
    if bytes not in kinds and memoryview not in kinds:
        return tuple(row)
    return tuple(
        EditedText(bytes(v).decode(errors="replace")) if isinstance(v, bytes | memoryview) else v
        for v in row
    )


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
            if not any(not a.existed for a in item.stored) and (item.records or not item.blobs):
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
                except Exception as exc:  # noqa: BLE001 - KeyMismatchError (store.py's)
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
        if self._writer is None:
            log.error("append refused: the decision log %s was opened read-only", self._target)
            raise AuditUnavailableError(WRITE_UNAVAILABLE)
        with self._closing:
            if self._closed:
                log.error(
                    "append refused: the decision log %s is closed (shutting down)", self._target
                )
                raise AuditUnavailableError(WRITE_UNAVAILABLE)
            self._queue.put(item)

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
            elif isinstance(item, PendingEvents):
                item.done.set_result(item.stored)
            elif isinstance(item, PendingShadow):
                item.done.set_result(None)
            else:
                for blob in item.blobs:
                    self._remember(blob.sha256)
                item.done.set_result(item.stored)

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


class SqlLogReads(ABC):
    """Every read of a decision log, written once over a per-dialect hook.

    A store provides ``_fetch`` (one read; a failure raises AuditUnavailableError with
    READ_UNAVAILABLE), ``_has_table``, and the class attributes ``_P`` (the placeholder) and
    ``_SHADOW_SUMMARY`` (the summary's SQL: its aggregates differ per dialect).
    """

    _P: ClassVar[str]
    _SHADOW_SUMMARY: ClassVar[str]
    _select = ", ".join(RECORD_COLUMNS)
    """The record columns a read selects (a store of an older layout may override it)."""

    @abstractmethod
    def _fetch(self, sql: str, params: tuple[object, ...]) -> list[Any]:
        """Run one read and return its rows."""

    @abstractmethod
    def _has_table(self, name: str) -> bool:
        """Whether a table exists (a log written by an older caseroute may lack newer ones)."""

    @abstractmethod
    def _has_column(self, table: str, column: str) -> bool:
        """Whether a table has a column (a log written by an older caseroute may lack it)."""

    def key_history(self) -> list[KeyEra]:
        """Every masking key era, oldest first (empty for a log written before fingerprints)."""
        if not self._has_table("key_history"):
            return []  # a log written before key history (opened read-only)
        sealed = self._has_column("key_history", "record_hash")
        rows = self._fetch(
            "SELECT era, at, old_fingerprint, new_fingerprint, first_seq"
            + (", seq, prev_hash, record_hash" if sealed else ", NULL, NULL, NULL")
            + " FROM key_history ORDER BY era",
            (),
        )
        return [
            KeyEra(
                stored_int(era, "a masking key era's number"),
                at,
                old,
                new,
                stored_int(first, f"the first record of masking key era {era!r}"),
                None if seq is None else stored_int(seq, f"the position of key rotation {era!r}"),
                "" if prev is None else prev,
                "" if record_hash is None else record_hash,
            )
            for era, at, old, new, first, seq, prev, record_hash in rows
        ]

    def has_records(self) -> bool:
        """Whether any record or key fingerprint is stored (a key is then already bound)."""
        return self.head()[0] > 0 or bool(self.key_history())

    @cached_property
    def _by_id_sql(self) -> str:
        """``get``'s statement, built once (a store sets ``_select`` before its first read)."""
        return f"SELECT {self._select} FROM decisions WHERE decision_id = {self._P}"

    @cached_property
    def _by_request_sql(self) -> str:
        """``by_request``'s statement, built once: the idempotency read runs per Decide."""
        return f"SELECT {self._select} FROM decisions WHERE request_id = {self._P} ORDER BY seq"

    def get(self, decision_id: str) -> AuditRecord | None:
        """One record by decision id."""
        rows = self._fetch(self._by_id_sql, (decision_id,))
        return record_from_row(rows[0]) if rows else None

    def by_request(self, request_id: str) -> list[AuditRecord]:
        """Records of one request, in chain order (most requests have none: a list only then)."""
        rows = self._fetch(self._by_request_sql, (request_id,))
        return [record_from_row(r) for r in rows] if rows else []

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
                case_id=case_id, since=since, until=until, after_seq=after_seq, limit=PAGE
            )
            yield from page
            if len(page) < PAGE:
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
            record_from_row(r) for r in self._query_rows(case_id, since, until, after_seq, limit)
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
            page = self._query_rows(case_id, since, until, after_seq, PAGE)
            yield from page
            if len(page) < PAGE:
                return
            after_seq = page[-1][0]

    def last_record_seq(self) -> int:
        """The chain position of the last decision stored (0: none), read from the rows.

        Not ``head``: an edited head must not hide records from a reader bounded by it.
        """
        rows = self._fetch("SELECT MAX(seq) FROM decisions", ())
        last = rows[0][0] if rows else None
        return 0 if last is None else stored_int(last, "the last decision's seq")

    def count_record_rows(
        self,
        ruleset_name: str,
        *,
        case_id: str = "",
        since: datetime | None = None,
        until: datetime | None = None,
        through_seq: int,
        limit: int | None = None,
    ) -> int:
        """How many of the first ``limit`` matching rows up to ``through_seq`` are of a ruleset.

        Replay's progress total, counted in the log without reading any row's text.

        Args:
            ruleset_name: The ruleset name counted (its column, as replay selects by).
            case_id: Only this case ("" = any).
            since: Only decisions with ``now >= since`` (None = unbounded).
            until: Only decisions with ``now < until`` (None = unbounded).
            through_seq: Only rows at or before this chain position.
            limit: Only the first this many matching rows, of any ruleset (None: all).

        Returns:
            The count.
        """
        p = self._P
        where, params = self._row_filter(case_id, since, until, 0)
        where.append(f"seq <= {p}")
        params.append(through_seq)
        chosen = f"SELECT ruleset_name FROM decisions WHERE {' AND '.join(where)} ORDER BY seq"
        if limit is not None:
            chosen += f" LIMIT {p}"
            params.append(limit)
        sql = f"SELECT COUNT(*) FROM ({chosen}) AS chosen WHERE ruleset_name = {p}"
        rows = self._fetch(sql, (*params, ruleset_name))
        return int(rows[0][0])

    def _row_filter(
        self, case_id: str, since: datetime | None, until: datetime | None, after_seq: int
    ) -> tuple[list[str], list[object]]:
        """The WHERE clauses and parameters of the record reads' filters."""
        p = self._P
        where: list[str] = [f"seq > {p}"]
        params: list[object] = [after_seq]
        for clause, value in (
            (f"case_id = {p}", case_id or None),
            (f"now_us >= {p}", micros(since) if since else None),
            (f"now_us < {p}", micros(until) if until else None),
        ):
            if value is not None:
                where.append(clause)
                params.append(value)
        return where, params

    def _query_rows(
        self,
        case_id: str,
        since: datetime | None,
        until: datetime | None,
        after_seq: int,
        limit: int,
    ) -> list[RecordRow]:
        p = self._P
        where, params = self._row_filter(case_id, since, until, after_seq)
        sql = (
            f"SELECT {self._select} FROM decisions WHERE {' AND '.join(where)} "
            f"ORDER BY seq LIMIT {p}"
        )
        rows: list[RecordRow] = self._fetch(sql, (*params, limit))
        return rows

    def get_blob(self, sha256: str) -> Blob | None:
        """One blob by hash; a roster stored as a manifest comes back whole, as ``ROSTER``.

        Returns:
            The blob, or None when it is not stored (or a chunk its manifest lists is not).
        """
        blob = self.stored_blob(sha256)
        if blob is None or blob.kind is not BlobKind.ROSTER_PARTS:
            return blob
        content: object = blob.content  # as read: an edited row may hold bytes
        if type(content) is not str:  # bytes or EditedText: an edited manifest, no roster
            return Blob(blob.sha256, BlobKind.ROSTER, "")  # (verify: edited, as by parts)
        text = assemble_roster(blob.content, self._chunks(manifest_keys(blob.content)))
        return None if text is None else Blob(blob.sha256, BlobKind.ROSTER, text)

    def stored_blob(self, sha256: str) -> Blob | None:
        """One blob by hash, as stored: a roster stored in parts is its manifest (for verify).

        Raises:
            ValueError: If the row's kind is none this caseroute knows (an edited row, or a
                log written by a newer caseroute), or two rows hold the key (the table's
                uniqueness removed: which one is the blob?).
        """
        rows = self._fetch(
            f"SELECT sha256, kind, content FROM blobs WHERE sha256 = {self._P} LIMIT 2", (sha256,)
        )
        if len(rows) > 1:
            raise ValueError(f"two blob rows hold {sha256}")
        if rows and type(rows[0][1]) is not str:  # bytes or EditedText: an edited kind
            raise ValueError(f"the blob row {sha256} holds a kind no caseroute writes")
        return Blob(rows[0][0], BlobKind(rows[0][1]), rows[0][2]) if rows else None

    def _chunks(self, keys: Sequence[str]) -> dict[str, str]:
        """The stored roster chunks among ``keys``, by key (read CHUNKS_PER_READ at a time)."""
        wanted = list(dict.fromkeys(keys))
        found: dict[str, str] = {}
        refused: set[str] = set()
        for start in range(0, len(wanted), CHUNKS_PER_READ):
            part = wanted[start : start + CHUNKS_PER_READ]
            marks = ", ".join([self._P] * len(part))
            rows = self._fetch(
                f"SELECT sha256, content FROM blobs WHERE kind = {self._P} AND sha256 IN ({marks})",
                (BlobKind.ROSTER_CHUNK.value, *part),
            )
            for key, content in rows:
                # Two rows under one key, or a value no caseroute writes (bytes, EditedText): no
                # chunk (verify, which reads chunks one by one, finds the same).
                if key in found or key in refused or type(content) is not str:
                    refused.add(key)
                    found.pop(key, None)
                else:
                    found[key] = content
        return found

    def head(self) -> tuple[int, str]:
        """(seq, record_hash) of the last record committed (by any writer)."""
        rows = self._fetch("SELECT seq, record_hash FROM chain_head WHERE id = 1", ())
        if not rows:
            return 0, GENESIS
        return stored_int(rows[0][0], "the chain head's seq"), str(rows[0][1])

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
        p = self._P
        where = f"seq > {p}"
        params: list[object] = [after_seq]
        if ruleset_name is not None:
            where += f" AND ruleset_name = {p}"
            params.append(ruleset_name)
        rows = self._fetch(
            f"SELECT {', '.join(EVENT_COLUMNS)} FROM ruleset_events WHERE {where} "
            f"ORDER BY seq LIMIT {p}",
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
        rows = self._fetch(last_event_sql(self._P), (ruleset_name, role))
        return RulesetEvent(*rows[0]) if rows else None

    def time_index(self) -> Iterator[tuple[int, str, int]]:
        """``(seq, now, now_us)`` of every decision in chain order, a page at a time.

        ``now_us`` is what ``--since`` / ``--until`` reads select on and is not in the hashed
        text: ``audit verify`` checks it against ``now`` (``verify.time_index_problem``).
        """
        after_seq = 0
        while True:
            page = self._fetch(
                f"SELECT seq, now, now_us FROM decisions WHERE seq > {self._P} "
                f"ORDER BY seq LIMIT {self._P}",
                (after_seq, PAGE),
            )
            yield from page
            if len(page) < PAGE:
                return
            after_seq = page[-1][0]

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
            page = self.events(ruleset_name, after_seq, PAGE)
            yield from page
            if len(page) < PAGE:
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
        p = self._P
        rows = self._fetch(
            "SELECT DISTINCT ruleset_sha256 FROM decisions "
            f"WHERE ruleset_name = {p} AND ruleset_version = {p}",
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
        p = self._P
        where, params = [f"ruleset_name = {p}"], [ruleset_name]
        if shadow_version is not None:
            where.append(f"shadow_version = {p}")
            params.append(shadow_version)
        if disagreements_only:
            where.append("agreed = 0")
        rows = self._fetch(
            f"SELECT {', '.join(SHADOW_COLUMNS)} FROM shadow_results "
            f"WHERE {' AND '.join(where)} ORDER BY id LIMIT {p}",
            (*params, limit),
        )
        return [shadow_from_row(row) for row in rows]

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
        rows = self._fetch(self._SHADOW_SUMMARY, (ruleset_name,))
        dropped = {
            str(v): stored_int(n, f"the dropped count of shadow version {str(v)[:40]!r}")
            for v, n in self._fetch(
                "SELECT shadow_version, dropped FROM shadow_dropped "
                f"WHERE ruleset_name = {self._P}",
                (ruleset_name,),
            )
        }
        found: dict[str, ShadowSummary] = {}
        for version, evaluated, agreed, first, last, lives, shas, *counts in rows:
            found[version] = ShadowSummary(
                ruleset_name=ruleset_name,
                shadow_version=version,
                shadow_sha256s=distinct_values(shas),
                live_versions=distinct_values(lives),
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


def shadow_summary_sql(placeholder: str, contains: str, concat_distinct: str) -> str:
    """The shadow summary's SQL of one dialect.

    Args:
        placeholder: ``?`` or ``%s``.
        contains: How the dialect counts a difference kind: a format with ``{kind}``.
        concat_distinct: How it joins distinct values with commas: a format with ``{column}``.

    Returns:
        One row per shadow version: version, evaluated, agreed, first and last recorded_at,
        live versions, shadow sha256s, then one count per ``SHADOW_DIFFERENCES`` kind.
    """
    kinds = ", ".join(contains.format(kind=f"'\"{k}\"'") for k in SHADOW_DIFFERENCES)
    lives = concat_distinct.format(column="live_version")
    shas = concat_distinct.format(column="shadow_sha256")
    return (
        "SELECT shadow_version, COUNT(*), SUM(agreed), MIN(recorded_at), MAX(recorded_at), "
        f"{lives}, {shas}, "
        f"{kinds} FROM shadow_results WHERE ruleset_name = {placeholder} GROUP BY shadow_version"
    )
