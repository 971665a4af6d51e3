"""Turns a decided request into audit records and the blobs they reference.

A record keeps the masked case and a reference to the roster snapshot (stored once as a blob,
with the agents given a case earlier in the same batch), the ruleset by name, version and
sha256 (its source stored once as a blob), ``now`` and the decision with its explanation:
everything replay needs, from the store alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from caseroute.audit.masking import Masker
from caseroute.audit.record import AuditRecord, Blob, BlobKind
from caseroute.audit.store import AuditSink
from caseroute.domain.case import Case
from caseroute.domain.decision import Decision
from caseroute.domain.decision_codec import decision_to_dict
from caseroute.domain.fingerprint import (
    case_to_dict,
    format_timestamp,
    roster_json,
    roster_sha256,
)
from caseroute.domain.roster import Roster
from caseroute.rules.model import CompiledRuleset


@dataclass(frozen=True, slots=True)
class RequestFacts:
    """What the records of one request share.

    Attributes:
        request_id: The caller's idempotency key.
        request_sha256: Hash of the request's input (idempotency check).
        caller: Authenticated caller identity ("" when none).
        recorded_at: Wall-clock time of recording (ISO-8601 UTC).
    """

    request_id: str
    request_sha256: str
    caller: str
    recorded_at: str


def build_records(
    facts: RequestFacts,
    ruleset: CompiledRuleset,
    cases: Sequence[Case],
    roster: Roster,
    decisions: Sequence[Decision],
    masker: Masker,
    *,
    snapshot_sha256: str | None = None,
    case_dicts: Sequence[dict[str, Any]] | None = None,
) -> list[AuditRecord]:
    """One unsealed record per decision (the store assigns seq and hashes).

    Args:
        facts: Request-level facts.
        ruleset: The ruleset that decided.
        cases: The cases, in request order.
        roster: The roster snapshot as received (before the batch consumed capacity).
        decisions: The decisions, in request order.
        masker: Masks PHI in the case before it is stored.
        snapshot_sha256: ``roster_sha256(roster)`` when the caller has it (computed if not).
        case_dicts: Each case's ``case_to_dict`` when the caller has them (its canonical
            form, built once per request); built here if not. Only read: ``mask`` copies.

    Returns:
        The records, in request order.
    """
    snapshot = snapshot_sha256 or roster_sha256(roster)
    dicts = case_dicts if case_dicts is not None else [case_to_dict(case) for case in cases]
    records = []
    assigned: list[str] = []
    for case, case_dict, decision in zip(cases, dicts, decisions, strict=True):
        masked: dict[str, Any] = masker.mask({"case": case_dict})
        records.append(
            AuditRecord(
                seq=0,
                decision_id=decision.decision_id,
                request_id=facts.request_id,
                request_sha256=facts.request_sha256,
                case_id=case.case_id,
                recorded_at=facts.recorded_at,
                now=format_timestamp(decision.explanation.now),
                ruleset_name=ruleset.name,
                ruleset_version=ruleset.version,
                ruleset_sha256=ruleset.sha256,
                caseroute_version=decision.explanation.caseroute_version,
                caller=facts.caller,
                input={
                    "case": masked["case"],
                    "roster": {"sha256": snapshot, "assigned_before": list(assigned)},
                },
                decision=decision_to_dict(decision),
                prev_hash="",
                record_hash="",
            )
        )
        if decision.agent_id is not None:
            assigned.append(decision.agent_id)
    return records


def blobs_to_store(
    sink: AuditSink,
    ruleset: CompiledRuleset,
    roster: Roster,
    *,
    snapshot_sha256: str | None = None,
    roster_text: str | None = None,
) -> list[Blob]:
    """The roster snapshot and ruleset source, unless the sink already has them.

    Building a roster blob serialises every agent, so it is skipped when the sink says it
    holds that snapshot (the common case: a warm roster, or the same roster again).
    ``snapshot_sha256`` is ``roster_sha256(roster)`` when the caller has it (computed if not);
    ``roster_text`` is ``roster_json(roster)`` when the caller has it (a roster seen for the
    first time: ``RosterFingerprint.take_json``).
    """
    blobs = []
    snapshot = snapshot_sha256 or roster_sha256(roster)
    if not sink.has_blob(snapshot):
        blobs.append(Blob(snapshot, BlobKind.ROSTER, roster_text or roster_json(roster)))
    if not sink.has_blob(ruleset.sha256):
        blobs.append(Blob(ruleset.sha256, BlobKind.RULESET, ruleset.source_text))
    return blobs
