"""The audit record and its hash chain: each record commits to the one before it.

``record_hash = sha256(prev_hash || canonical JSON of the record's content)``. Editing a record
changes its hash; deleting or reordering records breaks the next record's ``prev_hash``. The
store keeps that canonical text itself (``hashed_text``), so verify hashes the bytes it reads.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any

from caseroute.domain.fingerprint import canonical_json, roster_dict_sha256
from caseroute.domain.fingerprint import string_json as _str
from caseroute.rules.model import SOFT_REQUIREMENTS

GENESIS = "0" * 64
"""prev_hash of the first record."""


class EditedText(str):
    """A stored text value no caseroute writes, as an auditor's read of a SQLite log returns it.

    Bytes that are not UTF-8 in a TEXT column (decoded with U+FFFD where they fail), or a value
    stored as a BLOB: SQLite keeps whatever a writer hands it, and caseroute writes UTF-8 text
    only, so the row was edited after the fact. Every reader shows and parses it like any text;
    ``audit verify`` reports a record, event or blob holding one in a text field as edited. In
    a JSON column (``input``, ``decision``) the mark is gone once parsed: there verify compares
    what the column means, so a BLOB of the same bytes reads, and verifies, as it was.
    """

    __slots__ = ()


class _HashedText:
    """Slots for texts of a record, beside (not among) its fields.

    The exact text a stored record was hashed over (``hashed_text``), the canonical text of
    its input when the recorder built it (``with_input_text``), and the row a log's read
    decoded it from (``stored_row``). Not dataclass fields on purpose: ``dataclasses.replace``
    (a record with other content) drops them, and equality, ``fields()``, pickling and the
    exported form ignore them.
    """

    __slots__ = ("_hashed_text", "_input_text", "_stored_row")

    @property
    def hashed_text(self) -> str | None:
        """The canonical JSON of ``content()`` exactly as stored and hashed.

        None for a record built in memory, or stored before the log kept the text.
        """
        return getattr(self, "_hashed_text", None)

    @property
    def stored_row(self) -> tuple[object, ...] | None:
        """The row the record was decoded from, every column as read (``sql_rows.RecordRow``).

        Verify checks its columns byte for byte against the hashed text
        (``sql_rows.column_off_text``): decoding a JSON column loses what a reader of the
        column itself sees (of two equal keys, ``json.loads`` keeps the last). None for a
        record built in memory.
        """
        return getattr(self, "_stored_row", None)


@dataclass(frozen=True, slots=True)
class AuditRecord(_HashedText):
    """Everything an auditor (and replay) needs about one decision.

    Attributes:
        seq: Position in the chain, from 1.
        decision_id: The decision.
        request_id: The caller's idempotency key.
        request_sha256: sha256 of the request's canonical input (idempotency check).
        case_id: The case.
        recorded_at: When the record was written (ISO-8601, UTC; the only wall-clock field).
        now: The decision instant used.
        ruleset_name: Ruleset that decided.
        ruleset_version: Its version.
        ruleset_sha256: Its content hash.
        caseroute_version: caseroute's version.
        caller: Authenticated caller identity, or "" when none.
        input: ``{"case": <case after masking>, "masked_with": <the masking key's
            fingerprint>, "roster": {"sha256": <snapshot blob>, "assigned_before": [<agent ids
            given a case earlier in the same batch>]}}``: the roster the decision saw is the
            snapshot with those assignments applied in order. ``masked_with`` anchors the log's
            key eras in the chain (``audit verify`` checks each record's era); records from
            builds before it lack it.
        decision: The decision with its explanation, as JSON data.
        prev_hash: The previous record's ``record_hash`` (GENESIS for the first).
        record_hash: This record's hash.
    """

    seq: int
    decision_id: str
    request_id: str
    request_sha256: str
    case_id: str
    recorded_at: str
    now: str
    ruleset_name: str
    ruleset_version: str
    ruleset_sha256: str
    caseroute_version: str
    caller: str
    input: dict[str, Any]
    decision: dict[str, Any]
    prev_hash: str
    record_hash: str

    def content(self) -> dict[str, Any]:
        """The hashed content: every field except the hashes."""
        return {
            "seq": self.seq,
            "decision_id": self.decision_id,
            "request_id": self.request_id,
            "request_sha256": self.request_sha256,
            "case_id": self.case_id,
            "recorded_at": self.recorded_at,
            "now": self.now,
            "ruleset_name": self.ruleset_name,
            "ruleset_version": self.ruleset_version,
            "ruleset_sha256": self.ruleset_sha256,
            "caseroute_version": self.caseroute_version,
            "caller": self.caller,
            "input": self.input,
            "decision": self.decision,
        }

    def as_dict(self) -> dict[str, Any]:
        """The whole record as JSON data (content plus hashes), as export and show print it."""
        return {**self.content(), "prev_hash": self.prev_hash, "record_hash": self.record_hash}


def chain_hash(prev_hash: str, content: dict[str, Any]) -> str:
    """The hash linking a record's content to its predecessor."""
    return text_hash(prev_hash, canonical_json(content))


def text_hash(prev_hash: str, text: str) -> str:
    """The hash linking a record's canonical text to its predecessor (``chain_hash``'s core)."""
    return hashlib.sha256((prev_hash + text).encode()).hexdigest()


def with_hashed_text(record: AuditRecord, text: str | None) -> AuditRecord:
    """``record``, carrying the text it was stored and hashed as (the store's reads and writes).

    Args:
        record: A record just built by the store (nobody else holds it yet).
        text: Its stored text (None: stored before the log kept it).

    Returns:
        The same object.
    """
    if text is not None:
        object.__setattr__(record, "_hashed_text", text)
    return record


def with_stored_row(record: AuditRecord, row: tuple[object, ...]) -> AuditRecord:
    """``record``, carrying the row it was decoded from (``stored_row``).

    Args:
        record: A record just decoded from ``row`` (nobody else holds it yet).
        row: The row as read.

    Returns:
        The same object.
    """
    object.__setattr__(record, "_stored_row", row)
    return record


def with_input_text(record: AuditRecord, text: str) -> AuditRecord:
    """``record``, carrying ``canonical_json(record.input)`` already built by its maker.

    The recorder builds the input's text from the case's canonical text, which the request
    already encoded for its hashes, so ``encode_record`` need not encode the case again. Like
    the hashed text it is no field: ``dataclasses.replace`` (other content) drops it.

    Args:
        record: A record just built (nobody else holds it yet).
        text: Exactly ``canonical_json(record.input)``.

    Returns:
        The same object.
    """
    object.__setattr__(record, "_input_text", text)
    return record


@dataclass(frozen=True, slots=True)
class EncodedRecord:
    """A record serialised once, before the writer places it in the chain.

    In canonical JSON (sorted keys) ``seq`` is the content's last key, so everything but
    ``<seq>}`` is known before the writer assigns the position: the caller's thread encodes,
    and the writer only appends the seq and hashes (``hashed_text``). The text is exactly
    ``canonical_json(content())``, so the hash definition is the one every record always had.

    Attributes:
        record: The record as the caller built it.
        input_text: ``canonical_json(record.input)`` (the store's ``input`` column; the same
            characters are inside the text).
        head: The text up to and including ``"seq":``.
    """

    record: AuditRecord
    input_text: str
    head: str


def encode_record(record: AuditRecord) -> EncodedRecord:
    """Serialise a record once, all but its position (see ``EncodedRecord``).

    Args:
        record: The record (its seq and hashes are ignored).

    Returns:
        The encoded record.
    """
    input_text = getattr(record, "_input_text", None) or canonical_json(record.input)
    # Invariant: these are ``content()``'s keys in sorted order, ``seq`` (the last) left for
    # the writer; only the decision goes through the encoder, each string field is written
    # as it would write it. Tests pin the text equal to canonical_json(content()).
    r = record
    head = (
        f'{{"caller":{_str(r.caller)},"case_id":{_str(r.case_id)},'
        f'"caseroute_version":{_str(r.caseroute_version)},'
        f'"decision":{canonical_json(r.decision)},"decision_id":{_str(r.decision_id)},'
        f'"input":{input_text},"now":{_str(r.now)},"recorded_at":{_str(r.recorded_at)},'
        f'"request_id":{_str(r.request_id)},"request_sha256":{_str(r.request_sha256)},'
        f'"ruleset_name":{_str(r.ruleset_name)},"ruleset_sha256":{_str(r.ruleset_sha256)},'
        f'"ruleset_version":{_str(r.ruleset_version)},"seq":'
    )
    return EncodedRecord(record, input_text, head)


def hashed_text(encoded: EncodedRecord, seq: int) -> str:
    """The canonical text of ``encoded``'s content placed at ``seq`` (what is hashed and stored).

    Args:
        encoded: The encoded record.
        seq: Its chain position.

    Returns:
        ``canonical_json(content())`` of the record at ``seq``.
    """
    return f"{encoded.head}{seq}}}"


def placed(record: AuditRecord, seq: int, prev_hash: str, record_hash: str) -> AuditRecord:
    """``replace(record, seq=..., prev_hash=..., record_hash=...)``, built field by field.

    The store's writer places every record with it: ``dataclasses.replace`` walks the fields
    and passes them by keyword (~5 us a record, inside the serialised section).

    Args:
        record: The record as built (its seq and hashes are replaced).
        seq: Its chain position.
        prev_hash: The previous record's hash.
        record_hash: Its own hash.

    Returns:
        A new record (without the hashed text: the caller attaches it).
    """
    return AuditRecord(
        seq,
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
        record.input,
        record.decision,
        prev_hash,
        record_hash,
    )


def seal(record: AuditRecord, seq: int, prev_hash: str) -> AuditRecord:
    """The record placed at ``seq`` after ``prev_hash``, with its hash computed."""
    placed = replace(record, seq=seq, prev_hash=prev_hash, record_hash="")
    return replace(placed, record_hash=chain_hash(prev_hash, placed.content()))


@dataclass(frozen=True, slots=True)
class Appended:
    """One record as the store holds it after an append.

    Attributes:
        record: The stored record.
        existed: True when it was already stored (a retry): ``record`` is the earlier one.
    """

    record: AuditRecord
    existed: bool


class BlobKind(StrEnum):
    """What a blob holds."""

    ROSTER = "roster"
    RULESET = "ruleset"
    ROSTER_PARTS = "roster_parts"
    """A roster snapshot stored as a manifest of chunks (``audit.roster_blob``); read back as
    ``ROSTER`` (``get_blob`` assembles it)."""
    ROSTER_CHUNK = "roster_chunk"
    """A run of a roster's agents, shared by every snapshot holding the same run."""


@dataclass(frozen=True, slots=True)
class Blob:
    """Content stored once and referenced by hash from many records.

    A batch of 100 cases, or a day of calls against one roster snapshot, stores the roster once;
    the ruleset source is stored once per version. Records commit to a blob through its hash,
    and ``blob_sha256`` re-derives that hash from the content, so an edited blob is detected.

    Attributes:
        sha256: The content hash (``roster_sha256`` for rosters and their manifests, sha256 of
            the text for rulesets, ``roster_blob.chunk_key`` for chunks).
        kind: What it holds.
        content: JSON text of the roster (``roster_to_dict``), the ruleset's YAML source, or a
            roster's manifest or chunk as ``audit.roster_blob`` lays them out.
    """

    sha256: str
    kind: BlobKind
    content: str


_ROSTER_KEYS = frozenset({"agents", "snapshot_id", "taken_at"})
"""The keys of a roster's canonical JSON (``roster_to_dict``)."""


def blob_sha256(kind: BlobKind, content: str) -> str:
    """The hash a roster's or ruleset's content must have (a chunk's: ``chunk_text_key``).

    A roster's hash is defined over what it holds (``roster_dict_sha256``), so its text must
    also be exactly the canonical JSON of a roster: a text that means the same roster but is
    not those bytes (spaces added, a key repeated, a key no roster has) was edited.

    Raises:
        ValueError: If a roster blob is not a roster's canonical JSON.
    """
    if kind is BlobKind.ROSTER:
        try:
            data = json.loads(content)
            if not isinstance(data, dict) or data.keys() != _ROSTER_KEYS:
                raise ValueError("not a roster: its keys are not agents, snapshot_id, taken_at")
            if canonical_json(data) != content:
                raise ValueError("not canonical JSON (the bytes differ from the roster's form)")
            return roster_dict_sha256(data)
        except (json.JSONDecodeError, KeyError, TypeError, RecursionError) as exc:
            raise ValueError(f"not a roster snapshot: {exc}") from exc
    return hashlib.sha256(content.encode()).hexdigest()


EVENT_KIND = "ruleset_event"
"""The content discriminator of a ruleset event: no decision record's content carries ``kind``,
so an event and a decision can never hash the same."""
EVENT_ACTIONS = frozenset({"load", "reload", "activate", "rollback"})
"""What can change which version serves a ruleset."""
EVENT_ROLES = frozenset({"active", "shadow"})
"""Which serving slot of a ruleset an event changed."""


@dataclass(frozen=True, slots=True)
class RulesetEvent:
    """One change of the version serving a ruleset role, sealed into the decisions' hash chain.

    Events and decision records share one ``seq`` space and one chain head, so deleting,
    editing or reordering an event breaks the chain exactly as it would for a decision, and an
    auditor can tell which version was active (or shadowing) at any position of the log.

    Attributes:
        seq: Position in the chain (shared with decision records), from 1.
        event_id: Unique id of the event (a retry with the same id is not stored twice).
        recorded_at: When the change was made (ISO-8601, UTC).
        action: ``load``, ``reload``, ``activate`` or ``rollback``.
        actor: Who asked (``admin:<identity>``, ``signal:SIGHUP``, ``poll``, ``startup``).
        ruleset_name: The ruleset.
        role: ``active`` or ``shadow``.
        from_version: The version serving the role before ("" if none).
        from_sha256: Its sha256 ("" if none).
        to_version: The version serving the role after ("" if none).
        to_sha256: Its sha256 ("" if none).
        caseroute_version: caseroute's version.
        prev_hash: The previous chain entry's hash (GENESIS for the first).
        record_hash: This event's hash.
    """

    seq: int
    event_id: str
    recorded_at: str
    action: str
    actor: str
    ruleset_name: str
    role: str
    from_version: str
    from_sha256: str
    to_version: str
    to_sha256: str
    caseroute_version: str
    prev_hash: str
    record_hash: str

    def content(self) -> dict[str, Any]:
        """The hashed content: every field except the hashes, plus the ``kind`` discriminator."""
        return {
            "kind": EVENT_KIND,
            "seq": self.seq,
            "event_id": self.event_id,
            "recorded_at": self.recorded_at,
            "action": self.action,
            "actor": self.actor,
            "ruleset_name": self.ruleset_name,
            "role": self.role,
            "from_version": self.from_version,
            "from_sha256": self.from_sha256,
            "to_version": self.to_version,
            "to_sha256": self.to_sha256,
            "caseroute_version": self.caseroute_version,
        }

    def as_dict(self) -> dict[str, Any]:
        """The whole event as JSON data (content plus hashes), as ``audit events`` prints it."""
        return {**self.content(), "prev_hash": self.prev_hash, "record_hash": self.record_hash}


def event_problem(event: RulesetEvent) -> str | None:
    """What makes an event unfit for the chain (None when it is fit).

    Args:
        event: The event (sealed or not).

    Returns:
        The problem in words, or None.
    """
    for name in RulesetEvent.__slots__:
        value = getattr(event, name)
        if not isinstance(value, int if name == "seq" else str) or isinstance(value, bool):
            return f"{name} must be {'an int' if name == 'seq' else 'a string'}"
    if not event.event_id:
        return "event_id must not be empty"
    if event.action not in EVENT_ACTIONS:
        return f"action {event.action!r} is not one of {', '.join(sorted(EVENT_ACTIONS))}"
    if event.role not in EVENT_ROLES:
        return f"role {event.role!r} is not one of {', '.join(sorted(EVENT_ROLES))}"
    return None


def seal_event(event: RulesetEvent, seq: int, prev_hash: str) -> RulesetEvent:
    """The event placed at ``seq`` after ``prev_hash``, with its hash computed.

    Args:
        event: The event as the caller built it (seq and hashes ignored).
        seq: Its chain position.
        prev_hash: The hash of the chain entry before it.

    Returns:
        The sealed event.
    """
    placed = replace(event, seq=seq, prev_hash=prev_hash, record_hash="")
    return replace(placed, record_hash=chain_hash(prev_hash, placed.content()))


SHADOW_DIFFERENCES = (
    "outcome",
    "agent",
    "queue",
    "priority",
    "deciding_rule",
    "escalation",
    "relaxation",
    "continuity",
    "error",
)
"""The ways a shadow decision can differ from the live one, in report order.

``relaxation`` and ``continuity`` are replay's ``relaxation_changed`` and ``continuity_changed``
(the same comparisons, ``domain.decision_side``); results stored before they existed never
carry them, and read as before.
"""
SHADOW_SUMMARY_KEYS = frozenset(
    {
        "outcome",
        "agent_id",
        "queue",
        "priority",
        "rule_id",
        "escalation",
        "ladder_step",
        "relaxed",
        "continuity",
        "hold_minutes",
        "error",
    }
)
"""The only keys a shadow result's ``live``/``shadow`` summary may hold (never case data).

The adaptive ones are present only where they apply (and absent from results stored before
them): ``ladder_step`` (the deciding rule's latest step in force, ``""`` for none yet),
``relaxed`` (a list of requirement names), ``continuity`` (the outcome) and ``hold_minutes``
(the hold of a case held for a preferred agent, as the ruleset sets it: never the instant it
ends, which is the case's own wait anchor plus the hold).
"""
SHADOW_VALUE_MAX = 200
"""Longest string a summary value may be (ids, enum names and error codes are short)."""


@dataclass(frozen=True, slots=True)
class ShadowResult:
    """A live decision compared with the shadow version's decision of the same input.

    Review data stored beside the live decision, NOT in the hash chain: it never changed
    what the caller got, and losing or editing it cannot alter a recorded decision.

    Attributes:
        decision_id: The live decision (its record is in the chain).
        recorded_at: When the comparison was made (ISO-8601, UTC).
        ruleset_name: The ruleset.
        live_version: The version that decided.
        live_sha256: Its sha256.
        shadow_version: The version evaluated in shadow.
        shadow_sha256: Its sha256.
        differences: How they differ (kinds from ``SHADOW_DIFFERENCES``); empty = agreed.
        live: Summary of the live decision (keys from ``SHADOW_SUMMARY_KEYS``).
        shadow: Summary of the shadow decision (same keys).
    """

    decision_id: str
    recorded_at: str
    ruleset_name: str
    live_version: str
    live_sha256: str
    shadow_version: str
    shadow_sha256: str
    differences: tuple[str, ...]
    live: dict[str, Any]
    shadow: dict[str, Any]


def text_problem(value: str) -> str | None:
    """Why a text field cannot be stored by every log (None: it can).

    PostgreSQL refuses NUL in text, and neither driver can encode a lone surrogate: either
    would fail the writer's transaction, which live decisions share.
    """
    if "\x00" in value:
        return "must not contain NUL"
    try:
        value.encode()
    except UnicodeEncodeError:
        return "must be valid Unicode (no lone surrogates)"
    return None


def shadow_problem(result: ShadowResult) -> str | None:
    """What makes a shadow result unfit to store (None when it is fit).

    The summaries are checked key by key and value by value, so no case data (PHI) can ride
    in them: only the listed keys, each a short scalar.

    Args:
        result: The result.

    Returns:
        The problem in words, or None.
    """
    for name in ShadowResult.__slots__[:7]:
        value = getattr(result, name)
        if not isinstance(value, str):
            return f"{name} must be a string"
        problem = text_problem(value)
        if problem is not None:
            return f"{name} {problem}"
    if not result.decision_id or not result.ruleset_name or not result.shadow_version:
        return "decision_id, ruleset_name and shadow_version must not be empty"
    for kind in result.differences:
        if kind not in SHADOW_DIFFERENCES:
            return f"difference {kind!r} is not one of {', '.join(SHADOW_DIFFERENCES)}"
    for side in ("live", "shadow"):
        summary = getattr(result, side)
        if not isinstance(summary, dict):
            return f"{side} must be a dict"
        for key, value in summary.items():
            if key not in SHADOW_SUMMARY_KEYS:
                return (
                    f"{side} key {key!r} is not one of {', '.join(sorted(SHADOW_SUMMARY_KEYS))} "
                    "(a summary never holds case data)"
                )
            problem = _summary_value_problem(key, value)
            if problem is not None:
                return f"{side}[{key!r}] {problem}"
    return None


def _summary_value_problem(key: str, value: object) -> str | None:
    """Why ``value`` cannot be a summary's ``key`` (None: it can): short scalars only.

    The one list, ``relaxed``, may hold only requirement names a ladder can relax: a fixed
    vocabulary, so no case value can ride in it either.
    """
    if key == "relaxed":
        if not isinstance(value, list) or any(n not in SOFT_REQUIREMENTS for n in value):
            return f"must be a list of requirement names ({', '.join(SOFT_REQUIREMENTS)})"
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return "must be a finite number"
    if value is not None and not isinstance(value, str | int | float | bool):
        return "must be a string, number, boolean or None"
    if isinstance(value, str) and len(value) > SHADOW_VALUE_MAX:
        return f"is longer than {SHADOW_VALUE_MAX} characters"
    return None


@dataclass(frozen=True, slots=True)
class ShadowSummary:
    """How one shadow version compared with the live decisions (``rules shadow-report``).

    Attributes:
        ruleset_name: The ruleset.
        shadow_version: The shadow version.
        shadow_sha256s: The sha256s recorded for it (one, unless its content changed).
        live_versions: The live versions it was compared with, sorted.
        evaluated: Comparisons stored.
        agreed: Comparisons with no difference.
        differences: Comparisons per difference kind (kinds with none are omitted), in
            ``SHADOW_DIFFERENCES`` order.
        dropped: Live decisions never compared (the shadow queue was full).
        first_recorded_at: The first comparison's time ("" when none).
        last_recorded_at: The last comparison's time ("" when none).
    """

    ruleset_name: str
    shadow_version: str
    shadow_sha256s: tuple[str, ...]
    live_versions: tuple[str, ...]
    evaluated: int
    agreed: int
    differences: tuple[tuple[str, int], ...]
    dropped: int
    first_recorded_at: str
    last_recorded_at: str

    @property
    def disagreed(self) -> int:
        """Comparisons with at least one difference."""
        return self.evaluated - self.agreed

    @property
    def disagreement_rate(self) -> float | None:
        """The share of comparisons that disagreed (None when nothing was evaluated)."""
        return self.disagreed / self.evaluated if self.evaluated else None
