"""Walk the hash chain and name the first record that was edited, deleted or reordered.

The chain holds decision records and ruleset lifecycle events in one ``seq`` space; verify
walks both, merged by ``seq``, and names a bad event as ``event seq N``. A record read with its
stored text (``AuditRecord.hashed_text``) is checked by hashing exactly those bytes, and every
column it was read from must say what the text says; older records are re-encoded.
"""

from __future__ import annotations

import hashlib
import heapq
import json
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, fields
from datetime import datetime
from typing import TypeGuard

from caseroute.audit.record import (
    GENESIS,
    AuditRecord,
    Blob,
    BlobKind,
    RulesetEvent,
    blob_sha256,
    chain_hash,
    event_problem,
    text_hash,
)
from caseroute.audit.roster_blob import MAX_CHUNK, chunk_digests, chunk_key, too_often_listed
from caseroute.audit.sql_rows import KeyEra, column_off_text, era_of, is_key_fingerprint, micros
from caseroute.domain.fingerprint import canonical_json


@dataclass(frozen=True, slots=True)
class ChainReport:
    """Result of verifying a chain.

    Attributes:
        ok: Whether every record and the head check out.
        records: Chain entries examined (decision records and ruleset events).
        problem: The first problem, in words (``None`` when ok).
        seq: Chain position of the first bad entry (0 when ok or for the head).
        decision_id: Its decision id ("" when unknown or an event).
        events: Ruleset events among ``records``.
        event_id: The bad entry's event id ("" when unknown or a decision).
        keyed: Decision records that name their masking key (checked against the key eras
            when they were given).
        rotations: Sealed key rotations among ``records`` (when the eras were given).
        hash_at_kept: The record_hash of the entry at ``verify_chain``'s ``kept_seq`` (the
            genesis hash for 0; None when the chain holds no entry there).
    """

    ok: bool
    records: int
    problem: str | None = None
    seq: int = 0
    decision_id: str = ""
    events: int = 0
    event_id: str = ""
    keyed: int = 0
    rotations: int = 0
    hash_at_kept: str | None = None


_Entry = AuditRecord | RulesetEvent | KeyEra


def _bad(count: int, problem: str, entry: _Entry | None = None, events: int = 0) -> ChainReport:
    return ChainReport(
        ok=False,
        records=count,
        problem=problem,
        seq=(entry.seq or 0) if entry else 0,
        # An edited row may hold bytes: such an id is no id a caller was given.
        decision_id=(
            entry.decision_id
            if isinstance(entry, AuditRecord) and _is_text(entry.decision_id)
            else ""
        ),
        events=events,
        event_id=(
            entry.event_id if isinstance(entry, RulesetEvent) and _is_text(entry.event_id) else ""
        ),
    )


def _name(entry: _Entry) -> str:
    """How a problem names an entry: ``record N``, ``event seq N`` or ``key rotation seq N``."""
    if isinstance(entry, KeyEra):
        return f"key rotation seq {entry.seq} (era {entry.era})"
    return f"event seq {entry.seq}" if isinstance(entry, RulesetEvent) else f"record {entry.seq}"


_MISSING = "missing"
_EDITED = "edited"


def _is_text(value: object) -> TypeGuard[str]:
    """Whether a stored value is text caseroute wrote.

    Not bytes (a value edited into a BLOB or bytea) nor ``EditedText`` (a SQLite TEXT value
    edited into bytes that are not UTF-8, as an auditor's read returns it).
    """
    return type(value) is str


CHUNK_CACHE = 65_536
"""Roster chunks whose digests verify keeps (most recently used): consecutive snapshots share
most chunks, and a long log holds millions (~650 bytes each kept)."""


class _RosterParts:
    """Checks rosters stored as a manifest and chunks, each chunk once while it stays cached.

    Assembling every snapshot and hashing its text re-encodes every agent of every snapshot
    (~26 ms per 1,000-agent snapshot): a log where each decision saw a new snapshot verified
    in time proportional to snapshots x agents. Here a chunk is read once and each of its lines
    hashed once; its key must be the hash of those digests (``chunk_key``), so a chunk
    relabelled, re-cut or edited shows. A manifest then costs one sha256 over its header and
    its chunks' digests: ``roster_sha256`` over the stored bytes themselves, so any byte of a
    header or a chunk edited (a line break included) shows, without re-encoding anything.
    """

    def __init__(self, get_blob: Callable[[str], Blob | None]) -> None:
        self._get_blob = get_blob
        self._chunks: OrderedDict[str, bytes | str] = OrderedDict()

    def problem(self, sha: str, manifest: object) -> str | None:
        """None when the manifest's roster hashes to ``sha``, else _MISSING or _EDITED."""
        if not _is_text(manifest):
            return _EDITED  # bytes or EditedText: no caseroute writes one
        header, *keys = manifest.split("\n")
        if too_often_listed(keys):
            return _EDITED  # as get_blob's assembly finds (no caseroute writes such a manifest)
        found: dict[str, bytes] = {}
        edited = False
        for key in dict.fromkeys(keys):
            digests = self._digests(key)
            if digests == _MISSING:  # the assembled text's verdict too, whatever else is wrong
                return _MISSING
            if isinstance(digests, bytes):
                found[key] = digests
            else:
                edited = True
        if edited:
            return _EDITED
        actual = hashlib.sha256(header.encode() + b"\n")
        for key in keys:  # streamed: a key listed many times costs no memory
            actual.update(found[key])
        return None if actual.hexdigest() == sha else _EDITED

    def _digests(self, key: str) -> bytes | str:
        known = self._chunks.get(key)
        if known is None:
            known = self._chunks[key] = self._chunk_digests(key)
            if len(self._chunks) > CHUNK_CACHE:
                self._chunks.popitem(last=False)
        else:
            self._chunks.move_to_end(key)
        return known

    def _chunk_digests(self, key: str) -> bytes | str:
        """A chunk's agents' digests joined, or _MISSING or _EDITED."""
        try:
            blob = self._get_blob(key)
        except ValueError:  # an unknown kind, or two rows: not a chunk (as get_blob finds it)
            return _MISSING
        if blob is None or blob.kind is not BlobKind.ROSTER_CHUNK:
            return _MISSING  # as get_blob's assembly finds it: only roster_chunk rows count
        if not _is_text(blob.content):
            return _MISSING  # a BLOB or bytea value: no chunk (as get_blob finds it)
        lines = blob.content.split("\n")
        if len(lines) > MAX_CHUNK:
            return _EDITED  # no chunk holds more (and a huge one would be hashed per listing)
        try:
            joined = chunk_digests(lines)
        except UnicodeEncodeError:  # a lone surrogate: no agent's text holds one
            return _EDITED
        return joined if chunk_key(joined) == key else _EDITED


def _blob_problem(
    record: AuditRecord,
    get_blob: Callable[[str], Blob | None],
    checked: set[str],
    parts: _RosterParts,
) -> str | None:
    refs = (
        (BlobKind.ROSTER, str(record.input.get("roster", {}).get("sha256", ""))),
        (BlobKind.RULESET, record.ruleset_sha256),
    )
    for kind, sha in refs:
        if sha in checked:
            continue
        try:
            blob = get_blob(sha)
        except ValueError:  # a kind no caseroute writes, or two rows under the key: edited
            return f"the {kind.value} blob {sha} (used by record {record.seq}) was edited"
        problem: str | None = _MISSING if blob is None else None
        if blob is not None and blob.kind is BlobKind.ROSTER_PARTS and kind is BlobKind.ROSTER:
            problem = parts.problem(sha, blob.content)
        elif blob is not None and not _is_text(blob.content):
            problem = _EDITED  # a BLOB or bytea value: no caseroute writes one
        elif blob is not None:
            try:
                actual = blob_sha256(kind, blob.content)
            except ValueError:
                actual = ""
            problem = _EDITED if blob.kind is not kind or actual != sha else None
        if problem == _MISSING:
            return f"record {record.seq} references a {kind.value} blob {sha} that is missing"
        if problem == _EDITED:
            return f"the {kind.value} blob {sha} (used by record {record.seq}) was edited"
        checked.add(sha)
    return None


_TEXT_FIELDS = {
    kind: tuple(f.name for f in fields(kind) if f.type in ("str", str))
    for kind in (AuditRecord, RulesetEvent, KeyEra)
}
"""Each entry type's text columns: read back as anything but ``str`` (bytes, ``EditedText``),
a column was edited even where its characters still read the same."""


def _hash_holds(entry: _Entry) -> bool:
    """Whether the entry's record_hash is the hash of its content after its prev_hash."""
    if not all(type(getattr(entry, name)) is str for name in _TEXT_FIELDS[type(entry)]):
        return False
    text = entry.hashed_text if isinstance(entry, AuditRecord) else None
    if text is None:  # an event, or a record stored before its text was kept: re-encode
        try:
            return chain_hash(entry.prev_hash, entry.content()) == entry.record_hash
        except (TypeError, ValueError):  # bytes, or a value no JSON holds (nan): edited
            return False
    if not _is_text(text):  # bytes or EditedText: no caseroute writes them
        return False
    if text_hash(entry.prev_hash, text) != entry.record_hash:
        return False
    # The columns agree with the bytes, by type as well as value: compared as parsed values,
    # 1.0 == 1 == True (an input column's 1.0 rewritten as true passed, and readers then
    # showed and replayed true). The text is canonical JSON of the content, so the columns as
    # read nearly always encode to it exactly; when not, both are compared as the canonical
    # text of their parsed JSON (a Roster or Case built in code may hold what JSON does not
    # keep, such as attribute keys that are ints: written as sorted ints, read back as str).
    # A row read from a log must also hold each column byte for byte as the writer copied it
    # from the text (``_column_problem``, checked after this: a column that says something
    # else is an edit of the content; one that says it in other bytes is named).
    try:
        content = canonical_json(entry.content())
        return content == text or content == canonical_json(json.loads(text))
    except (TypeError, ValueError, RecursionError):  # bytes, or a value no JSON holds
        return False


def _column_problem(record: AuditRecord) -> str | None:
    """Why a record read from a log with its hashed text has a column that is no exact copy.

    Its columns mean what the text says (``_hash_holds``), but one holds it in other bytes:
    a repeated key, a space, ``0.79`` written ``0.790`` (review R34c F4: verified, while an
    auditor's SQL read the column). Rows stored before the text was kept, and records built
    in memory, have no text or no row: their columns are compared by value only.
    """
    row = record.stored_row
    if row is None or record.hashed_text is None:
        return None
    column = column_off_text(row)
    if column is None:
        return None
    return (
        f"{_name(record)} was edited: its {column} column is not byte for byte what its "
        "hashed text holds"
    )


def record_problem(record: AuditRecord) -> str | None:
    """Why a record's own stored content cannot be trusted, in verify's words (None: it can).

    Its hash, then its columns against its hashed text (``column_off_text``); the streamed
    checks of replay and the report use it so they say what verify says.
    """
    if not _hash_holds(record):
        return f"{_name(record)} was edited or moved: its content no longer matches its hash"
    return _column_problem(record)


def _entry_problem(entry: _Entry, expected_seq: int, prev: str) -> str | None:
    """Why ``entry`` cannot stand at ``expected_seq`` after ``prev`` (None: it can)."""
    name = _name(entry)
    if expected_seq > 1 and entry.seq == expected_seq - 1:
        return f"{name} is stored twice (a decision and an event share the position?)"
    if entry.seq != expected_seq:
        kind = (
            "key rotation seq"
            if isinstance(entry, KeyEra)
            else "event seq"
            if isinstance(entry, RulesetEvent)
            else "record"
        )
        return f"record {expected_seq} is missing (deleted?): the next stored {kind} is {entry.seq}"
    if isinstance(entry, KeyEra) and entry.first_seq != entry.seq + 1:
        return f"{name} starts its era at record {entry.first_seq}, not the next one"
    if isinstance(entry, RulesetEvent):
        # The discriminator (``kind``) is part of the hashed content, so a decision row moved
        # into the events table (or back) fails the hash check below.
        invalid = event_problem(entry)
        if invalid is not None:
            return f"{name} is not a valid ruleset event: {invalid}"
    if not _hash_holds(entry):
        return f"{name} was edited or moved: its content no longer matches its hash"
    column = _column_problem(entry) if isinstance(entry, AuditRecord) else None
    if column is not None:
        return column
    if entry.prev_hash != prev:
        return (
            f"{name} does not follow record {entry.seq - 1} "
            "(deleted, replaced or reordered records)"
        )
    return None


def key_history_problem(eras: Sequence[KeyEra], head_seq: int) -> str | None:
    """Why the key eras cannot be the ones ``claim_key`` and ``rotate-key`` wrote (None: can).

    Each era follows the one before it: numbered one more, rotated from its key, starting at
    or after its first record, and no later than the record after the head (a rotation starts
    at the next record). A rotation that is no chain entry (``seq`` None) was made before
    rotations were sealed, so it comes before every sealed one. A sealed rotation's own
    content is checked in the chain walk; an unsealed era is proven by the records naming its
    key (``_key_problem``) and, when one follows, by the sealed rotation whose hashed
    ``old_fingerprint`` names its key. Its ``at`` is not checked, nor an unsealed newest era
    no record names the key of (review R30c: builds 6c11fa9-3aa6ada named keys in records but
    did not seal rotations, so an unsealed era may follow records that name their key).

    Args:
        eras: ``store.key_history()``, oldest first.
        head_seq: The chain head's seq.
    """
    previous: KeyEra | None = None
    sealed_seen = False
    for era in eras:
        if era.era > 1 and era.old_fingerprint == era.new_fingerprint:
            # ``rotate-key`` refuses the key in use, in every build: a rotation to the same key
            # is made up (R30d), and among records of that key nothing else would show it.
            return f"key era {era.era} rotates to the key it rotates from: key eras were added"
        if era.era > 1 and era.seq is None and sealed_seen:
            return (
                f"key era {era.era} is no chain entry, but comes after a sealed rotation, which "
                "a build that seals rotations wrote: key eras were added or edited"
            )
        sealed_seen = sealed_seen or era.seq is not None
        if previous is None:
            number, key, first = 1, "", 1
        else:
            number, key, first = previous.era + 1, previous.new_fingerprint, previous.first_seq
        where = f"key era {era.era}"
        if era.era != number:
            return (
                f"{where} is not the one after {_era_name(previous)}: key eras were "
                "deleted, added or renumbered"
            )
        if era.old_fingerprint != key:
            return (
                f"{where} says it rotated from key {era.old_fingerprint or '(none)'}, but "
                f"{_era_name(previous)} holds {key or 'no key'}: key eras were edited"
            )
        if not _is_text(era.new_fingerprint) or not era.new_fingerprint:
            return f"{where} holds no key fingerprint: key eras were edited"
        if era.first_seq < first:
            return (
                f"{where} starts at record {era.first_seq}, before the first record of "
                f"{_era_name(previous) if previous else 'the log'} ({first}): key eras were edited"
            )
        if era.first_seq > head_seq + 1:
            return (
                f"{where} starts at record {era.first_seq}, after record {head_seq + 1} (the "
                "one after the head, where a rotation starts): key eras were edited, or the "
                "newest records were deleted and the head rewritten"
            )
        previous = era
    return None


def _era_name(era: KeyEra | None) -> str:
    return "the start of the log" if era is None else f"era {era.era}"


def _key_problem(record: AuditRecord, eras: Sequence[KeyEra]) -> tuple[bool, str | None]:
    """Whether ``record`` names its masking key, and why that key is not its era's (None: is).

    The key a record was masked with is in its hashed input (``masked_with``), so the era the
    key history places it in must hold that key: an era edited, added or deleted in the key
    history moves some record into an era of another key. Records from builds that did not
    name the key (no ``masked_with``) are not checked.
    """
    stored_input = record.input
    if not isinstance(stored_input, dict) or "masked_with" not in stored_input:
        return False, None
    key = stored_input["masked_with"]
    name = f"record {record.seq}"
    if not is_key_fingerprint(key):  # what no writer stores (``_bind_key``)
        return True, f"{name} names no masking key fingerprint (masked_with was edited)"
    era = era_of(record.seq, eras)
    if era is None:
        return True, (
            f"{name} was masked with key {key}, but no key era covers it: key eras "
            "(key_history) were deleted or edited"
        )
    if era.new_fingerprint != key:
        return True, (
            f"{name} was masked with key {key}, but the key history places it in era "
            f"{era.era} (key {era.new_fingerprint}, from record {era.first_seq}): key eras "
            "(key_history) were edited"
        )
    return True, None


def verify_chain(
    records: Iterable[AuditRecord],
    head: tuple[int, str],
    get_blob: Callable[[str], Blob | None] | None = None,
    events: Iterable[RulesetEvent] = (),
    eras: Sequence[KeyEra] | None = None,
    kept_seq: int | None = None,
) -> ChainReport:
    """Check every link of the chain, then that it ends where the store says it ends.

    Not checked here: the time index (``now_us``, not hashed: ``time_index_problem`` over
    ``store.time_index()``, which ``caseroute audit verify`` runs after this).

    Args:
        records: Decision records in ``seq`` order.
        head: The (seq, record_hash) the store committed last.
        get_blob: Looks up blobs; when given, every roster snapshot and ruleset source a
            record references must exist and hash to its key. It may give a roster stored in
            parts as stored (``stored_blob``: each chunk is then read and checked once per
            run, and every byte of it, line breaks included) or assembled (``get_blob``: the
            roster's text, in which a chunk's line break and a comma read the same).
        events: Ruleset lifecycle events in ``seq`` order (``store.iter_events()``); they
            share the chain with the records, so a log holding events verifies only with
            them passed here.
        eras: The masking key eras (``store.key_history()``); when given, sealed rotations
            are walked as chain entries (a log holding one verifies only with them), the eras
            must follow one another (``key_history_problem``) and every record that names its
            masking key must lie in an era of that key. Unsealed eras (the first one, and
            rotations made before rotations were sealed) are proven only by such records.
        kept_seq: A head kept earlier (``--expect-head``): the hash of the entry at this seq,
            whatever its kind (decision, event, sealed rotation), is reported as
            ``hash_at_kept`` (0: the start of the chain; None, the default: nothing kept,
            and ``hash_at_kept`` stays None).

    Returns:
        The report.
    """
    checked: set[str] = set()
    parts = _RosterParts(get_blob) if get_blob is not None else None
    expected_seq, prev, count, event_count, keyed = 1, GENESIS, 0, 0, 0
    hash_at_kept: str | None = GENESIS if kept_seq == 0 else None  # None: nothing kept
    # Sealed rotations are chain entries: deleting one leaves a gap, editing one breaks it.
    rotations = sorted(
        (era for era in eras or () if era.seq is not None), key=lambda era: era.seq or 0
    )
    entries: Iterable[_Entry] = heapq.merge(
        records, events, rotations, key=lambda entry: entry.seq or 0
    )
    for entry in entries:
        count += 1
        event_count += isinstance(entry, RulesetEvent)
        problem = _entry_problem(entry, expected_seq, prev)
        if problem is None and isinstance(entry, AuditRecord):
            if get_blob is not None and parts:
                problem = _blob_problem(entry, get_blob, checked, parts)
            if problem is None and eras is not None:
                names_key, problem = _key_problem(entry, eras)
                keyed += names_key
        if problem is not None:
            return _bad(count, problem, entry, event_count)
        if entry.seq == kept_seq:
            hash_at_kept = entry.record_hash
        prev, expected_seq = entry.record_hash, expected_seq + 1
    if (expected_seq - 1, prev) != head:
        return _bad(
            count,
            f"the chain ends at record {expected_seq - 1} but the store's head "
            f"is record {head[0]} (records truncated or the head edited)",
            events=event_count,
        )
    # After the walk: a chain cut short (or a head rewritten) is named as such first.
    problem = None if eras is None else key_history_problem(eras, head[0])
    if problem is not None:
        return _bad(count, problem, events=event_count)
    return ChainReport(
        ok=True,
        records=count,
        events=event_count,
        keyed=keyed,
        rotations=len(rotations),
        hash_at_kept=hash_at_kept,
    )


def time_index_problem(rows: Iterable[tuple[int, object, object]]) -> tuple[int, str] | None:
    """The first decision whose time index (``now_us``) is not its ``now``, and why.

    ``now_us`` is not hashed (an index for range reads), so an edit of it alone leaves the
    chain whole while ``--since`` / ``--until`` reads (export, report, replay) miss or misplace
    the record.

    Args:
        rows: ``(seq, now, now_us)`` per decision (``SqlLogReads.time_index``).

    Returns:
        ``(seq, problem)``, or None when every index matches.
    """
    for seq, now, now_us in rows:
        try:
            expected = micros(datetime.fromisoformat(now)) if type(now) is str else None
        except (TypeError, ValueError, OverflowError):
            expected = None  # a now that is no instant (the chain check names it first)
        if expected is None or type(now_us) is not int or now_us != expected:
            return seq, (
                f"record {seq}'s time index (now_us) does not match its now: it was edited, "
                "which hides or moves the record in --since/--until reads"
            )
    return None
