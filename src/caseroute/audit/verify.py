"""Walk the hash chain and name the first record that was edited, deleted or reordered.

The chain holds decision records and ruleset lifecycle events in one ``seq`` space; verify
walks both, merged by ``seq``, and names a bad event as ``event seq N``. A record read with its
stored text (``AuditRecord.hashed_text``) is checked by hashing exactly those bytes, and every
column it was read from must say what the text says; older records are re-encoded.
"""

from __future__ import annotations

import heapq
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass

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
    """

    ok: bool
    records: int
    problem: str | None = None
    seq: int = 0
    decision_id: str = ""
    events: int = 0
    event_id: str = ""


_Entry = AuditRecord | RulesetEvent


def _bad(count: int, problem: str, entry: _Entry | None = None, events: int = 0) -> ChainReport:
    return ChainReport(
        ok=False,
        records=count,
        problem=problem,
        seq=entry.seq if entry else 0,
        decision_id=entry.decision_id if isinstance(entry, AuditRecord) else "",
        events=events,
        event_id=entry.event_id if isinstance(entry, RulesetEvent) else "",
    )


def _name(entry: _Entry) -> str:
    """How a problem names an entry: ``record N`` or ``event seq N``."""
    return f"event seq {entry.seq}" if isinstance(entry, RulesetEvent) else f"record {entry.seq}"


def _blob_problem(
    record: AuditRecord,
    get_blob: Callable[[str], Blob | None],
    checked: set[str],
) -> str | None:
    refs = (
        (BlobKind.ROSTER, str(record.input.get("roster", {}).get("sha256", ""))),
        (BlobKind.RULESET, record.ruleset_sha256),
    )
    for kind, sha in refs:
        if sha in checked:
            continue
        blob = get_blob(sha)
        if blob is None:
            return f"record {record.seq} references a {kind.value} blob {sha} that is missing"
        try:
            actual = blob_sha256(kind, blob.content)
        except ValueError:
            actual = ""
        if blob.kind is not kind or actual != sha:
            return f"the {kind.value} blob {sha} (used by record {record.seq}) was edited"
        checked.add(sha)
    return None


def _hash_holds(entry: _Entry) -> bool:
    """Whether the entry's record_hash is the hash of its content after its prev_hash."""
    text = entry.hashed_text if isinstance(entry, AuditRecord) else None
    if text is None:  # an event, or a record stored before its text was kept: re-encode
        return chain_hash(entry.prev_hash, entry.content()) == entry.record_hash
    if text_hash(entry.prev_hash, text) != entry.record_hash:
        return False
    try:
        return bool(json.loads(text) == entry.content())  # the columns agree with the bytes
    except ValueError:  # pragma: no cover - a text that is not JSON cannot hash right
        return False


def _entry_problem(entry: _Entry, expected_seq: int, prev: str) -> str | None:
    """Why ``entry`` cannot stand at ``expected_seq`` after ``prev`` (None: it can)."""
    name = _name(entry)
    if expected_seq > 1 and entry.seq == expected_seq - 1:
        return f"{name} is stored twice (a decision and an event share the position?)"
    if entry.seq != expected_seq:
        kind = "event seq" if isinstance(entry, RulesetEvent) else "record"
        return f"record {expected_seq} is missing (deleted?): the next stored {kind} is {entry.seq}"
    if isinstance(entry, RulesetEvent):
        # The discriminator (``kind``) is part of the hashed content, so a decision row moved
        # into the events table (or back) fails the hash check below.
        invalid = event_problem(entry)
        if invalid is not None:
            return f"{name} is not a valid ruleset event: {invalid}"
    if not _hash_holds(entry):
        return f"{name} was edited or moved: its content no longer matches its hash"
    if entry.prev_hash != prev:
        return (
            f"{name} does not follow record {entry.seq - 1} "
            "(deleted, replaced or reordered records)"
        )
    return None


def verify_chain(
    records: Iterable[AuditRecord],
    head: tuple[int, str],
    get_blob: Callable[[str], Blob | None] | None = None,
    events: Iterable[RulesetEvent] = (),
) -> ChainReport:
    """Check every link of the chain, then that it ends where the store says it ends.

    Args:
        records: Decision records in ``seq`` order.
        head: The (seq, record_hash) the store committed last.
        get_blob: Looks up blobs; when given, every roster snapshot and ruleset source a
            record references must exist and hash to its key.
        events: Ruleset lifecycle events in ``seq`` order (``store.iter_events()``); they
            share the chain with the records, so a log holding events verifies only with
            them passed here.

    Returns:
        The report.
    """
    checked: set[str] = set()
    expected_seq, prev, count, event_count = 1, GENESIS, 0, 0
    entries: Iterable[_Entry] = heapq.merge(records, events, key=lambda entry: entry.seq)
    for entry in entries:
        count += 1
        event_count += isinstance(entry, RulesetEvent)
        problem = _entry_problem(entry, expected_seq, prev)
        if problem is None and get_blob is not None and isinstance(entry, AuditRecord):
            problem = _blob_problem(entry, get_blob, checked)
        if problem is not None:
            return _bad(count, problem, entry, event_count)
        prev, expected_seq = entry.record_hash, expected_seq + 1
    if (expected_seq - 1, prev) != head:
        return _bad(
            count,
            f"the chain ends at record {expected_seq - 1} but the store's head "
            f"is record {head[0]} (records truncated or the head edited)",
            events=event_count,
        )
    return ChainReport(ok=True, records=count, events=event_count)
