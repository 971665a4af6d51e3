"""The rows of both SQL decision logs (SQLite, PostgreSQL): columns, SQL, conversions, key eras.

The two stores keep the same tables column for column, so a record reads back identically from
either. Written once here: the column lists, SQL snippets both dialects share (given the
placeholder, ``?`` or ``%s``), the row <-> record and row <-> shadow result conversions, the
dropped counts a shadow append may store, and the masking key eras sealed into the chain
(``KeyEra``, ``insert_rotation``). ``sql_appends`` queues and writes these rows; ``sql_reads``
reads them.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, TypeGuard

from caseroute.audit.record import (
    AuditRecord,
    EditedText,
    RulesetEvent,
    ShadowResult,
    text_hash,
    text_problem,
    with_hashed_text,
    with_stored_row,
)
from caseroute.domain.errors import RecordDamagedError
from caseroute.domain.fingerprint import canonical_json, string_json

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
    return with_stored_row(with_hashed_text(AuditRecord(**values), text), row)


def _loads(text: str) -> dict[str, Any]:
    """The JSON object of a stored column; a damaged one (not JSON, or no object) decodes as {}.

    verify then names the record (its columns no longer encode to its hashed text).
    """
    try:
        value = json.loads(text) if text else {}
    except (TypeError, ValueError, RecursionError):
        return {}
    return value if isinstance(value, dict) else {}


_COLUMN = {name: index for index, name in enumerate(RECORD_COLUMNS)}
_BEFORE_DECISION = ("caller", "case_id", "caseroute_version")
_AFTER_DECISION = (
    "decision_id",
    "input",
    "now",
    "recorded_at",
    "request_id",
    "request_sha256",
    "ruleset_name",
    "ruleset_sha256",
    "ruleset_version",
    "seq",
)
# Invariant: the hashed text is canonical_json(content()): its keys sorted, so these before
# "decision" and these after it, "seq" last (encode_record writes it so; tests pin both).
_LAYOUT = tuple(
    (name, _COLUMN[name], f'{"{" if name == "caller" else ","}"{name}":')
    for name in (*_BEFORE_DECISION, *_AFTER_DECISION)
)
_DECISION_KEY = ',"decision":'


def _copies(row: RecordRow) -> list[tuple[str, str | None]]:
    """Each column but ``decision`` as the writer's copy appears in the hashed text, in order.

    A piece is None for a value no writer stores: bytes, text that is not UTF-8 in a text
    column (``EditedText``), no int in ``seq``. ``input`` is the text's characters themselves,
    so its bytes unchanged as a BLOB (``EditedText``) still read as they were.
    """
    pieces: list[tuple[str, str | None]] = []
    for name, index, key in _LAYOUT:
        value = row[index]
        if name == "input":
            piece = key + value if isinstance(value, str) else None
        elif name == "seq":
            piece = f"{key}{value}}}" if type(value) is int else None
        else:
            piece = key + string_json(value) if type(value) is str else None
        pieces.append((name, piece))
    return pieces


def column_off_text(row: RecordRow) -> str | None:
    """The first column of a row that is not exactly the writer's copy of its hashed text.

    The writer (``record_values``) stores the text once and beside it each scalar as the text
    holds it, ``input`` as the very characters of the text's input, and ``decision`` empty.
    Compared byte for byte, so a column that means what the text says in other bytes (a
    repeated key, a space, ``0.79`` written ``0.790``) is named: an auditor's SQL reads the
    column, and ``json_extract`` takes the first of two equal keys where ``json.loads`` took
    the last (review R34c F4). A ``decision`` column holding exactly the text's decision
    passes too. Meant for a row whose text is its own (hashes to its ``record_hash``).

    Args:
        row: The row as read (``RECORD_COLUMNS`` order), its hashed text last.

    Returns:
        The column's name (``content`` when the text itself is not laid out as the writer
        lays it out), or None when every column is the writer's copy.
    """
    text = row[-1]
    if not isinstance(text, str):
        return TEXT_COLUMN
    pieces = _copies(row)
    cut = len(_BEFORE_DECISION)
    decision = row[_COLUMN["decision"]]
    copied = [piece for _, piece in pieces if piece is not None]
    if len(copied) == len(pieces):
        head = "".join(copied[:cut]) + _DECISION_KEY
        tail = "".join(copied[cut:])
        if (
            len(text) >= len(head) + len(tail)
            and text.startswith(head)
            and text.endswith(tail)
            and (decision == "" or decision == text[len(head) : len(text) - len(tail)])
        ):
            return None
    # Something is off: walk the layout piece by piece to name the column.
    start, end = 0, len(text)
    for name, piece in pieces[:cut]:
        if piece is None or not text.startswith(piece, start):
            return name
        start += len(piece)
    if not text.startswith(_DECISION_KEY, start):
        return TEXT_COLUMN
    start += len(_DECISION_KEY)
    for name, piece in reversed(pieces[cut:]):
        if piece is None or not text.endswith(piece, start, end):
            return name
        end -= len(piece)
    if end < start:  # the pieces overlap: no text the writer lays out
        return TEXT_COLUMN
    return "decision"


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
