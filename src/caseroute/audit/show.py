"""Render one audit record for a reader: provenance, the recorded input, then the explanation."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from caseroute.audit.masking import MASK_PREFIX
from caseroute.audit.record import AuditRecord, Blob
from caseroute.audit.sql_rows import is_key_fingerprint
from caseroute.audit.store import KeyEra
from caseroute.domain.decision import Decision
from caseroute.render import escape_text, render_text


def _masked_paths(data: Any, prefix: str) -> list[str]:
    if isinstance(data, dict):
        return [p for k, v in sorted(data.items()) for p in _masked_paths(v, f"{prefix}.{k}")]
    if isinstance(data, str) and data.startswith(MASK_PREFIX):
        return [prefix]
    return []


def _key_line(record: AuditRecord, key_era: KeyEra | None) -> str:
    """Which key masked the record: its era, and the key the record names when that differs."""
    if "masked_with" in record.input and not is_key_fingerprint(record.input["masked_with"]):
        # Only an edit writes this: every build that names the key writes a fingerprint.
        era = (
            f"era {key_era.era}, fingerprint {key_era.new_fingerprint}"
            if key_era is not None
            else "no key era covers the record"
        )
        return (
            f"  masking key: {era}; but the record's masked_with, "
            f"{json.dumps(record.input['masked_with'])}, is no key fingerprint: the record was "
            "edited (run `caseroute audit verify`)"
        )
    named = record.input.get("masked_with")
    if key_era is None:
        if named is not None:
            return (
                f"  masking key: {named}, named by the record, but no key era covers it: the "
                "key history was edited (run `caseroute audit verify`)"
            )
        return "  masking key: not recorded (written before key fingerprints)"
    line = (
        f"  masking key: era {key_era.era}, fingerprint {key_era.new_fingerprint} (records "
        f"from {key_era.first_seq})"
    )
    if named is not None and named != key_era.new_fingerprint:
        line += (
            f"; but the record names key {named}: the key history was edited (run "
            "`caseroute audit verify`)"
        )
    return line


def _roster_note(
    get_blob: Callable[[str], Blob | None], sha256: str
) -> tuple[list[str] | None, str]:
    """The snapshot's agent ids (None: unknown) and the line that names it, as stored.

    A blob that is no roster's JSON, or a row no caseroute writes (an unknown kind, two rows
    under the key), was edited in the store: said so, not raised, since the auditor reading
    this record is the one who needs to hear it.
    """
    edited = (
        f"roster snapshot {sha256} EDITED in the store: it is not a roster's JSON "
        "(run `caseroute audit verify`)"
    )
    try:
        blob = get_blob(sha256)
    except ValueError:
        return None, edited
    if blob is None:
        return None, "roster snapshot MISSING from the store (run `caseroute audit verify`)"
    try:
        roster = json.loads(blob.content)
        agent_ids = [str(a["agent_id"]) for a in roster["agents"]]
        taken = f"roster {roster['snapshot_id']} taken {roster['taken_at']}"
    except (ValueError, TypeError, KeyError, RecursionError):
        return None, edited
    return agent_ids, f"{taken}, {len(agent_ids)} agents (sha256 {blob.sha256})"


def render_record(
    record: AuditRecord,
    decision: Decision,
    get_blob: Callable[[str], Blob | None],
    key_era: KeyEra | None = None,
) -> str:
    """One decision as an auditor reads it.

    Args:
        record: The stored record.
        decision: The decision rebuilt from it.
        get_blob: Looks up the roster snapshot the record references.
        key_era: The masking key era the record belongs to (None: not recorded).

    Returns:
        Multi-line text.
    """
    roster_ref = record.input.get("roster", {})
    agent_ids, roster_note = _roster_note(get_blob, str(roster_ref.get("sha256", "")))
    before = roster_ref.get("assigned_before") or []
    masked = _masked_paths(record.input.get("case", {}), "case")
    lines = [
        f"Audit record {record.seq}: decision {record.decision_id}",
        (
            f"  case {record.case_id}, request {record.request_id}, recorded "
            f"{record.recorded_at}, caller {record.caller or '(not authenticated)'}"
        ),
        (
            f"  ruleset {record.ruleset_name} {record.ruleset_version} (sha256 "
            f"{record.ruleset_sha256}), caseroute {record.caseroute_version}"
        ),
        f"  input: {roster_note}",
    ]
    if before:
        lines.append("  earlier in the same batch, one case each went to: " + ", ".join(before))
    lines.append("  masked (stored as keyed digests): " + (", ".join(masked) if masked else "none"))
    lines.append(_key_line(record, key_era))
    lines.append(f"  chain: record_hash {record.record_hash}, prev_hash {record.prev_hash}")
    # Invariant: each element is one line; stored strings are caller data, escaped on it.
    return "\n".join([*map(escape_text, lines), "", render_text(decision, agent_ids)])
