"""Turns a decided request into audit records and the blobs they reference.

A record keeps the masked case and a reference to the roster snapshot (stored once as a blob,
with the agents given a case earlier in the same batch), the ruleset by name, version and
sha256 (its source stored once as a blob), ``now`` and the decision with its explanation:
everything replay needs, from the store alone.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from caseroute.audit.masking import Masker, mask_case
from caseroute.audit.record import AuditRecord, Blob, BlobKind, with_input_text
from caseroute.audit.roster_blob import roster_blobs
from caseroute.audit.store import AuditSink
from caseroute.domain.case import Case
from caseroute.domain.decision import Decision
from caseroute.domain.decision_codec import decision_to_dict
from caseroute.domain.fingerprint import (
    RosterFingerprint,
    agent_json,
    canonical_json,
    case_to_dict,
    fingerprint_roster,
    record_input_json,
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
    case_texts: Sequence[str] | None = None,
    attribute_texts: Sequence[str] | None = None,
    stamps: Mapping[datetime, str] | None = None,
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
        case_texts: ``canonical_json`` of each of ``case_dicts`` (given only with them): the
            records' input texts are built from them instead of encoding each case again.
        attribute_texts: ``canonical_json`` of each of ``case_dicts``' attributes (given only
            with ``case_texts``; ``fingerprint.CaseForms.attributes_text``): not encoded again.
        stamps: Instants the request already formatted (``format_timestamp``): the
            decisions' texts of them are not formatted again.

    Returns:
        The records, in request order.
    """
    snapshot = snapshot_sha256 or roster_sha256(roster)
    dicts = case_dicts if case_dicts is not None else [case_to_dict(case) for case in cases]
    records = []
    assigned: list[str] = []
    for index, (case, case_dict, decision) in enumerate(zip(cases, dicts, decisions, strict=True)):
        # A dict, or the case's digest (text) when a Masker's paths mask ``case`` whole: a
        # library Masker may (``AuditConfig`` accepts only paths below ``case.``).
        masked_case = mask_case(case_dict, masker)
        roster_ref = {"sha256": snapshot, "assigned_before": list(assigned)}
        stored = decision_to_dict(decision, stamps)
        record = AuditRecord(
            seq=0,
            decision_id=decision.decision_id,
            request_id=facts.request_id,
            request_sha256=facts.request_sha256,
            case_id=case.case_id,
            recorded_at=facts.recorded_at,
            now=stored["explanation"]["now"],  # format_timestamp(explanation.now), made once
            ruleset_name=ruleset.name,
            ruleset_version=ruleset.version,
            ruleset_sha256=ruleset.sha256,
            caseroute_version=decision.explanation.caseroute_version,
            caller=facts.caller,
            input={"case": masked_case, "masked_with": masker.fingerprint, "roster": roster_ref},
            decision=stored,
            prev_hash="",
            record_hash="",
        )
        case_text = None
        if case_texts is not None and case_dicts is not None:
            case_text = masked_case_text(
                case_texts[index],
                case_dict,
                masked_case,
                None if attribute_texts is None else attribute_texts[index],
            )
        if case_text is not None:
            with_input_text(
                record, record_input_json(case_text, masker.fingerprint, snapshot, assigned)
            )
        records.append(record)
        if decision.agent_id is not None:
            assigned.append(decision.agent_id)
    return records


_ATTRIBUTES = '{"attributes":'
"""How a case's canonical text starts: ``attributes`` sorts before every other case key."""


def masked_case_text(
    text: str,
    clear: dict[str, Any],
    masked: dict[str, Any] | str,
    attributes_text: str | None = None,
) -> str | None:
    """``canonical_json(masked)`` from ``text``, the canonical JSON of ``clear``, when cheap.

    The default masked paths all lie under ``case.attributes``, and ``Masker.mask`` shares
    every value it does not copy: when each key but ``attributes`` holds the very same value
    in both, the masked text is the clear one with the attributes' text replaced (only the
    attributes are encoded, twice, instead of the whole case again).

    Args:
        text: ``canonical_json(clear)``.
        clear: A case as JSON data (``case_to_dict``).
        masked: ``clear`` after masking: a dict, or one digest when the case is masked whole.
        attributes_text: ``canonical_json(clear["attributes"])`` when the caller has it
            (encoded here if not).

    Returns:
        The masked case's canonical text, or None when masking touched more than the
        attributes or replaced the case whole (the caller encodes the masked case itself).
    """
    if not isinstance(masked, dict) or len(masked) != len(clear):
        return None
    for key, value in clear.items():
        if key != "attributes" and masked.get(key, masked) is not value:
            return None
    if attributes_text is None:
        attributes_text = canonical_json(clear.get("attributes"))
    prefix = _ATTRIBUTES + attributes_text
    if "attributes" not in masked or not text.startswith(prefix):
        return None
    attributes = masked["attributes"]
    # Masking copies the dicts on its paths: empty attributes stay an empty dict ("{}").
    if type(attributes) is dict and not attributes:
        attributes_text = "{}"
    else:
        attributes_text = canonical_json(attributes)
    # Invariant: a JSON value ends where it ends, so text[len(prefix):] is the rest of the case.
    return _ATTRIBUTES + attributes_text + text[len(prefix) :]


def blobs_to_store(
    sink: AuditSink,
    ruleset: CompiledRuleset,
    roster: Roster,
    fingerprint: RosterFingerprint | None = None,
) -> list[Blob]:
    """The roster snapshot's and ruleset source's blobs the sink does not already have.

    A snapshot the sink says it holds costs nothing (the common case: a warm roster, or the
    same roster again). A new one is its manifest and the chunks of agents the sink does not
    hold (``audit.roster_blob``): only those agents' texts are read, from ``fingerprint``'s
    kept texts (a roster the server has just read: ``RosterFingerprint.take_texts``) or
    encoded here.

    Args:
        sink: The decision log (its ``has_blob`` hints).
        ruleset: The ruleset that decided.
        roster: The roster snapshot.
        fingerprint: ``fingerprint_roster(roster)`` when the caller has it (computed if not).
    """
    blobs = []
    if fingerprint is None:
        fingerprint = fingerprint_roster(roster, keep_texts=True)
    if not sink.has_blob(fingerprint.sha256):
        texts = fingerprint.take_texts()
        agents = roster.agents

        def texts_of(start: int, end: int) -> Sequence[str]:
            if texts is not None:
                return texts[start:end]
            return [agent_json(agent) for agent in agents[start:end]]

        blobs.extend(
            roster_blobs(
                fingerprint.sha256,
                fingerprint.header_json,
                fingerprint.agent_digests,
                texts_of,
                sink.has_blob,
            )
        )
    if not sink.has_blob(ruleset.sha256):
        blobs.append(Blob(ruleset.sha256, BlobKind.RULESET, ruleset.source_text))
    return blobs
