"""Canonical forms and digests: one home for canonical JSON, input and roster hashes.

``*_to_dict`` give the canonical JSON form of a case, agent or roster (sets sorted, ``None``
omitted) used for the input hash, the audit record and replay; ``canonical_json`` is the one
encoding every digest is taken over.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from caseroute.domain.case import (
    Case,
)
from caseroute.domain.roster import Agent, Roster


def format_timestamp(value: datetime) -> str:
    """Canonical text of an instant: UTC, ISO-8601, ``Z`` suffix, microseconds only if set."""
    text = value.astimezone(UTC).isoformat()
    return text.replace("+00:00", "Z")


def case_to_dict(case: Case) -> dict[str, Any]:
    """Canonical JSON form of a case (inverse of ``parse_case``; sets sorted, ``None`` omitted)."""
    out: dict[str, Any] = {
        "case_id": case.case_id,
        "created_at": format_timestamp(case.created_at),
        "channel": case.channel.value,
        "intent": case.intent.value,
        "urgency": case.urgency.value,
        "classification_confidence": case.classification_confidence,
        "tier": case.tier.value,
        "required_skills": [
            {"name": s.name, "min_level": s.min_level} for s in case.required_skills
        ],
        "sentiment": [{"score": s.score, "at": format_timestamp(s.at)} for s in case.sentiment],
        "sla_clocks": [
            {
                "name": c.name,
                "started_at": format_timestamp(c.started_at),
                "deadline": format_timestamp(c.deadline),
            }
            for c in case.sla_clocks
        ],
        "flags": sorted(case.flags),
        "attributes": dict(sorted(case.attributes.items())),
    }
    for key in ("patient_location", "region", "preferred_language"):
        value = getattr(case, key)
        if value is not None:
            out[key] = value
    # Adaptive-routing inputs appear only when given, so a case without them keeps the canonical
    # form (and input_sha256, and decision id) it had before they existed.
    if case.waiting_since is not None:
        out["waiting_since"] = format_timestamp(case.waiting_since)
    if case.declined_agents:
        out["declined_agents"] = sorted(case.declined_agents)
    if case.preferred_agents:
        out["preferred_agents"] = [
            {"agent_id": p.agent_id, "reason": p.reason.value}
            | (
                {"last_contact_at": format_timestamp(p.last_contact_at)}
                if p.last_contact_at is not None
                else {}
            )
            for p in case.preferred_agents
        ]
    return out


def agent_to_dict(agent: Agent) -> dict[str, Any]:
    """Canonical JSON form of an agent."""
    out: dict[str, Any] = {
        "agent_id": agent.agent_id,
        "role": agent.role.value,
        "status": agent.status.value,
        "licences": [
            {
                "type": lic.type,
                "jurisdiction": lic.jurisdiction,
                "expires_on": lic.expires_on.isoformat(),
                "multistate": lic.multistate,
            }
            for lic in agent.licences
        ],
        "territories": sorted(agent.territories),
        "skills": [{"name": n, "level": lvl} for n, lvl in sorted(agent.skills.items())],
        "languages": sorted(agent.languages),
        "capacity": {"max": agent.capacity.max, "active": agent.capacity.active},
        "teams": sorted(agent.teams),
        "seniority": agent.seniority,
        "attributes": dict(sorted(agent.attributes.items())),
    }
    if agent.last_assigned_at is not None:
        out["last_assigned_at"] = format_timestamp(agent.last_assigned_at)
    return out


def roster_to_dict(roster: Roster) -> dict[str, Any]:
    """Canonical JSON form of a roster (agents in the order given)."""
    return {
        "snapshot_id": roster.snapshot_id,
        "taken_at": format_timestamp(roster.taken_at),
        "agents": [agent_to_dict(a) for a in roster.agents],
    }


def canonical_json(value: object) -> str:
    """Deterministic JSON text: sorted keys, no spaces, UTF-8 (not ASCII-escaped)."""
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    )


def agent_digest(agent: Agent) -> bytes:
    """sha256 of an agent's canonical JSON; computed once per Agent object and cached on it."""
    cached = agent.digest_cache
    if cached is None:
        cached = hashlib.sha256(canonical_json(agent_to_dict(agent)).encode()).digest()
        object.__setattr__(agent, "digest_cache", cached)  # a cache, not the agent's value
    return cached


def input_sha256(case: Case, roster: Roster) -> str:
    """Fingerprint of case + roster: same data, same hash, whatever the transport.

    Defined as sha256 over: the canonical JSON of the case, a newline, the canonical JSON of
    the roster header (snapshot_id, taken_at), a newline, then each agent's sha256 (of its
    canonical JSON) in roster order. Agent digests are cached, so re-deciding against the same
    or a slightly changed roster (a batch consuming capacity) re-encodes only what changed.
    """
    h = hashlib.sha256()
    h.update(canonical_json(case_to_dict(case)).encode())
    header = {"snapshot_id": roster.snapshot_id, "taken_at": format_timestamp(roster.taken_at)}
    h.update(b"\n" + canonical_json(header).encode() + b"\n")
    for agent in roster.agents:
        h.update(agent_digest(agent))
    return h.hexdigest()


def _roster_digest(header: dict[str, Any], agent_digests: Iterable[bytes]) -> str:
    h = hashlib.sha256(canonical_json(header).encode() + b"\n")
    for digest in agent_digests:
        h.update(digest)
    return h.hexdigest()


def roster_sha256(roster: Roster) -> str:
    """Content hash of a roster snapshot; cached on the Roster object.

    Defined as sha256 over the canonical JSON of the header (snapshot_id, taken_at), a
    newline, then each agent's sha256 (of its canonical JSON) in roster order, so
    ``roster_dict_sha256(roster_to_dict(r)) == roster_sha256(r)``. The audit store keys roster
    snapshots by it: a batch or a repeated roster is stored once.
    """
    cached = roster.digest_cache
    if cached is None:
        header = {"snapshot_id": roster.snapshot_id, "taken_at": format_timestamp(roster.taken_at)}
        cached = _roster_digest(header, (agent_digest(a) for a in roster.agents))
        object.__setattr__(roster, "digest_cache", cached)  # a cache, not the roster's value
    return cached


def roster_dict_sha256(data: Mapping[str, Any]) -> str:
    """``roster_sha256`` of a roster in its ``roster_to_dict`` form (as stored)."""
    header = {"snapshot_id": data["snapshot_id"], "taken_at": data["taken_at"]}
    return _roster_digest(
        header,
        (hashlib.sha256(canonical_json(agent).encode()).digest() for agent in data["agents"]),
    )
