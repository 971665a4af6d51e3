"""The audit record and its hash chain: each record commits to the one before it.

``record_hash = sha256(prev_hash || canonical JSON of the record's content)``. Editing a record
changes its hash; deleting or reordering records breaks the next record's ``prev_hash``.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any

from caseroute.domain.codec import canonical_json, roster_dict_sha256

GENESIS = "0" * 64
"""prev_hash of the first record."""


@dataclass(frozen=True, slots=True)
class AuditRecord:
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
        input: ``{"case": <case after masking>, "roster": {"sha256": <snapshot blob>,
            "assigned_before": [<agent ids given a case earlier in the same batch>]}}``: the
            roster the decision saw is the snapshot with those assignments applied in order.
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
    return hashlib.sha256((prev_hash + canonical_json(content)).encode()).hexdigest()


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


@dataclass(frozen=True, slots=True)
class Blob:
    """Content stored once and referenced by hash from many records.

    A batch of 100 cases, or a day of calls against one roster snapshot, stores the roster once;
    the ruleset source is stored once per version. Records commit to a blob through its hash,
    and ``blob_sha256`` re-derives that hash from the content, so an edited blob is detected.

    Attributes:
        sha256: The content hash (``roster_sha256`` for rosters, sha256 of the text for rulesets).
        kind: What it holds.
        content: JSON text of the roster (``roster_to_dict``) or the ruleset's YAML source.
    """

    sha256: str
    kind: BlobKind
    content: str


def blob_sha256(kind: BlobKind, content: str) -> str:
    """The hash a blob's content must have.

    Raises:
        ValueError: If a roster blob is not a roster's JSON.
    """
    if kind is BlobKind.ROSTER:
        try:
            return roster_dict_sha256(json.loads(content))
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise ValueError(f"not a roster snapshot: {exc}") from exc
    return hashlib.sha256(content.encode()).hexdigest()
