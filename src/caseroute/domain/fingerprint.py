"""Canonical forms and digests: one home for canonical JSON, every hash and the decision-id rule.

``*_to_dict`` give the canonical JSON form of a case, agent or roster (sets sorted, ``None``
omitted) used for the input hash, the audit record and replay; ``canonical_json`` is the one
encoding every digest is taken over. Hot texts are written directly, equal to it by
construction and pinned by property tests: ``case_forms`` (a case's dict and text, each instant
formatted once), ``agent_json``, the request hash's header and ``record_input_json``. The hashes:

- ``roster_sha256``: a roster snapshot's content hash (the audit log keys snapshots by it, and a
  caller may send it instead of the roster: ``DecideRequest.roster_sha256``);
- ``input_sha256``: case + roster, in each decision's explanation;
- ``request_sha256``: what a request asks for (idempotency: the same request_id must carry it);
- the decision id: ``request_decision_id`` when the request has an id (every served decision),
  else ``derive_decision_id`` from the input hash, ruleset and ``now`` (a local ``decide``).

Nothing here caches on a domain value: a roster's digests are computed once into a
``RosterFingerprint``, kept by whoever keeps the roster (the server's roster cache).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from json.encoder import c_make_encoder, encode_basestring  # type: ignore[attr-defined]
from typing import Any

from caseroute.domain.case import (
    Case,
)
from caseroute.domain.roster import Agent, Roster


def format_timestamp(value: datetime) -> str:
    """Canonical text of an instant: UTC, ISO-8601, ``Z`` suffix, microseconds only if set."""
    if value.tzinfo is not UTC:  # astimezone(UTC) of a UTC instant is the instant itself
        value = value.astimezone(UTC)
    return value.isoformat().replace("+00:00", "Z")


def case_to_dict(case: Case) -> dict[str, Any]:
    """Canonical JSON form of a case (inverse of ``parse_case``; sets sorted, ``None`` omitted)."""
    return _case_data(case, {})


def _case_data(case: Case, stamps: dict[datetime, str]) -> dict[str, Any]:
    """``case_to_dict``, each instant's text kept in (and taken from) ``stamps``."""
    out: dict[str, Any] = {
        "case_id": case.case_id,
        "created_at": stamp_of(stamps, case.created_at),
        "channel": case.channel.value,
        "intent": case.intent.value,
        "urgency": case.urgency.value,
        "classification_confidence": case.classification_confidence,
        "tier": case.tier.value,
        "required_skills": [
            {"name": s.name, "min_level": s.min_level} for s in case.required_skills
        ],
        "sentiment": [{"score": s.score, "at": stamp_of(stamps, s.at)} for s in case.sentiment],
        "sla_clocks": [
            {
                "name": c.name,
                "started_at": stamp_of(stamps, c.started_at),
                "deadline": stamp_of(stamps, c.deadline),
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
        out["waiting_since"] = stamp_of(stamps, case.waiting_since)
    if case.declined_agents:
        out["declined_agents"] = sorted(case.declined_agents)
    if case.preferred_agents:
        out["preferred_agents"] = [
            {"agent_id": p.agent_id, "reason": p.reason.value}
            | (
                {"last_contact_at": stamp_of(stamps, p.last_contact_at)}
                if p.last_contact_at is not None
                else {}
            )
            for p in case.preferred_agents
        ]
    return out


@dataclass(frozen=True, slots=True)
class CaseForms:
    """A case's canonical forms, built together: each of its instants formatted once.

    Attributes:
        data: ``case_to_dict(case)`` (masking and the audit record read it).
        text: ``canonical_json(data)``, written directly (the request and input hashes, and
            the record's input text).
        attributes_text: ``canonical_json(data["attributes"])``: ``text`` starts with
            ``{"attributes":`` and this (``attributes`` sorts before every other case key).
        stamps: Each instant of the case and its ``format_timestamp`` text.
    """

    data: dict[str, Any]
    text: str
    attributes_text: str
    stamps: dict[datetime, str]


def stamp_of(stamps: dict[datetime, str], value: datetime) -> str:
    """``format_timestamp(value)``, kept in ``stamps`` for the next use of the same instant.

    A value with ``fold=1`` (the second 01:30 when clocks go back) is never kept or looked
    up: it compares and hashes equal to its ``fold=0`` twin in the same zone, an hour apart.
    Every value kept has ``fold=0``, and equal ones of those are the same instant.
    """
    if value.fold:
        return format_timestamp(value)
    text = stamps.get(value)
    if text is None:
        text = stamps[value] = format_timestamp(value)
    return text


def string_json(value: object) -> str:
    """``canonical_json(value)`` for a str, by the encoder's own escaping (~1 us less a call).

    Anything but a plain str goes through ``canonical_json`` itself, so the text is always
    exactly what it would write.
    """
    return encode_basestring(value) if type(value) is str else canonical_json(value)


_str = string_json


def _num(value: object) -> str:
    """A number as canonical JSON text: a finite float or a plain int as the encoder writes it."""
    if type(value) is float and value - value == 0:  # finite: not inf or nan
        return float.__repr__(value)
    if type(value) is int:
        return int.__repr__(value)
    return canonical_json(value)  # a bool, nan (refused), or whatever a test put there


def case_forms(case: Case) -> CaseForms:
    """A case's dict form and canonical JSON text, each instant formatted once for both.

    The text equals ``canonical_json(case_to_dict(case))`` by construction: it is written
    from the dict's own values, keys in sorted order, strings escaped by the encoder
    ``canonical_json`` itself uses, numbers as it writes them (anything else goes through it).
    Pinned by a property test (``tests/domain/test_case_forms.py``).
    """
    stamps: dict[datetime, str] = {}
    data = _case_data(case, stamps)
    attributes = data["attributes"]
    location = data.get("patient_location")
    region = data.get("region")
    language = data.get("preferred_language")
    waiting = data.get("waiting_since")
    declined = data.get("declined_agents")
    preferred = data.get("preferred_agents")
    flags, skills = data["flags"], data["required_skills"]
    sentiment, clocks = data["sentiment"], data["sla_clocks"]
    attributes_text = canonical_json(attributes) if attributes else "{}"
    # Invariant: keys in sorted order (attributes < case_id < channel < ... < waiting_since).
    parts = [
        (
            f'{{"attributes":{attributes_text},"case_id":{_str(data["case_id"])},'
            f'"channel":{_str(data["channel"])},'
            f'"classification_confidence":{_num(data["classification_confidence"])},'
            f'"created_at":{_str(data["created_at"])},'
        )
    ]
    if declined is not None:
        parts.append(f'"declined_agents":[{",".join(map(_str, declined))}],')
    parts.append(f'"flags":[{",".join(map(_str, flags))}],"intent":{_str(data["intent"])},')
    if location is not None:
        parts.append(f'"patient_location":{_str(location)},')
    if preferred is not None:
        items = [
            f'{{"agent_id":{_str(p["agent_id"])},'
            + (f'"last_contact_at":{_str(p["last_contact_at"])},' if "last_contact_at" in p else "")
            + f'"reason":{_str(p["reason"])}}}'
            for p in preferred
        ]
        parts.append(f'"preferred_agents":[{",".join(items)}],')
    if language is not None:
        parts.append(f'"preferred_language":{_str(language)},')
    if region is not None:
        parts.append(f'"region":{_str(region)},')
    skill_items = [
        f'{{"min_level":{_num(s["min_level"])},"name":{_str(s["name"])}}}' for s in skills
    ]
    reading_items = [f'{{"at":{_str(r["at"])},"score":{_num(r["score"])}}}' for r in sentiment]
    clock_items = [
        f'{{"deadline":{_str(c["deadline"])},"name":{_str(c["name"])},'
        f'"started_at":{_str(c["started_at"])}}}'
        for c in clocks
    ]
    parts.append(
        f'"required_skills":[{",".join(skill_items)}],"sentiment":[{",".join(reading_items)}],'
        f'"sla_clocks":[{",".join(clock_items)}],"tier":{_str(data["tier"])},'
        f'"urgency":{_str(data["urgency"])}'
    )
    if waiting is not None:
        parts.append(f',"waiting_since":{_str(waiting)}')
    parts.append("}")
    return CaseForms(data, "".join(parts), attributes_text, stamps)


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


def agent_json(agent: Agent) -> str:
    """An agent's canonical JSON text: ``canonical_json(agent_to_dict(agent))``, built directly.

    The one encoding of an agent, for its digest and the stored roster blob alike: a cold
    roster's agents were each turned into a dict and encoded for the digest and again for the
    blob (~30 us per agent); text built from the fields is about half of one of those. Equal to
    the dict form by construction (keys in sorted order; strings escaped by the encoder
    ``json.dumps`` itself uses with ``ensure_ascii=False``), and pinned by a property test
    (``tests/wire/test_fast_agent_json.py``).
    """
    capacity = agent.capacity
    licences = ",".join(
        [
            f'{{"expires_on":{_text(lic.expires_on.isoformat())},'
            f'"jurisdiction":{_text(lic.jurisdiction)},"multistate":{_bool(lic.multistate)},'
            f'"type":{_text(lic.type)}}}'
            for lic in agent.licences
        ]
    )
    # Plain ints are formatted in place (an f-string formats an int as repr does; a bool or a
    # float someone put in a test agent takes _int's general path), and the enums are encoded
    # as the str they are (a StrEnum member's text is its value): ~1 us less per agent.
    skills = ",".join(
        [
            f'{{"level":{level if type(level) is int else _int(level)},"name":{_text(name)}}}'
            for name, level in sorted(agent.skills.items())
        ]
    )
    last = agent.last_assigned_at
    active, most, seniority = capacity.active, capacity.max, agent.seniority
    return (
        f'{{"agent_id":{_text(agent.agent_id)},'
        f'"attributes":{canonical_json(agent.attributes) if agent.attributes else "{}"},'
        f'"capacity":{{"active":{active if type(active) is int else _int(active)},'
        f'"max":{most if type(most) is int else _int(most)}}},'
        f'"languages":{_texts(agent.languages)},'
        + (f'"last_assigned_at":{_text(format_timestamp(last))},' if last is not None else "")
        + f'"licences":[{licences}],"role":{_text(agent.role)},'
        f'"seniority":{seniority if type(seniority) is int else _int(seniority)},'
        f'"skills":[{skills}],"status":{_text(agent.status)},'
        f'"teams":{_texts(agent.teams) if agent.teams else "[]"},'
        f'"territories":{_texts(agent.territories)}}}'
    )


_text = encode_basestring
"""A string as JSON text: the encoder ``json.dumps(ensure_ascii=False)`` itself uses (C)."""


def _texts(values: frozenset[str]) -> str:
    """A set of strings as the canonical form lists it: sorted."""
    return "[" + ",".join(map(_text, sorted(values))) + "]"


def _int(value: int) -> str:
    # Anything but a plain int (a float someone put in a test agent) takes the general path.
    return int.__repr__(value) if type(value) is int else canonical_json(value)


def _bool(value: bool) -> str:
    return "true" if value is True else "false" if value is False else canonical_json(value)


def roster_json(roster: Roster) -> str:
    """The canonical JSON text of a roster (``canonical_json(roster_to_dict(roster))``).

    What the audit log reads back as the roster blob (``audit.roster_blob`` stores it as
    chunks of each agent's ``agent_json``): each agent's text, joined.
    """
    agents = ",".join([agent_json(a) for a in roster.agents])
    return (
        f'{{"agents":[{agents}],"snapshot_id":{_text(roster.snapshot_id)},'
        f'"taken_at":{_text(format_timestamp(roster.taken_at))}}}'
    )


def roster_to_dict(roster: Roster) -> dict[str, Any]:
    """Canonical JSON form of a roster (agents in the order given)."""
    return {
        "snapshot_id": roster.snapshot_id,
        "taken_at": format_timestamp(roster.taken_at),
        "agents": [agent_to_dict(a) for a in roster.agents],
    }


def _kept_encoder() -> Any:
    """The C encoder ``json.dumps`` builds for canonical JSON's options, built once (or None).

    ``json.dumps`` with any option makes a ``JSONEncoder`` and a C encoder on every call (~3
    us, and every Decide encodes several values). This is that same C encoder, kept, with one
    difference: no circular-reference check (its memo would be shared between threads), so a
    self-containing value raises RecursionError instead of ValueError; canonical values are
    trees built by this package. None where Python has no C encoder.
    """
    if c_make_encoder is None:
        return None
    sort_keys, skip_keys, allow_nan = True, False, False
    return c_make_encoder(
        None,
        json.JSONEncoder().default,
        encode_basestring,
        None,
        ":",
        ",",
        sort_keys,
        skip_keys,
        allow_nan,
    )


_ENCODE = _kept_encoder()


def canonical_json(value: object) -> str:
    """Deterministic JSON text: sorted keys, no spaces, UTF-8 (not ASCII-escaped)."""
    if _ENCODE is None:
        return json.dumps(
            value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
        )
    return "".join(_ENCODE(value, 0))


def case_json(case: Case) -> str:
    """The canonical JSON text of a case: what the input and request hashes cover."""
    return canonical_json(case_to_dict(case))


def agent_sha256(agent: Agent) -> bytes:
    """sha256 (raw bytes) of an agent's canonical JSON (``agent_json``)."""
    return agent_digest(agent_json(agent))


def roster_header_json(roster: Roster) -> bytes:
    """The canonical JSON (UTF-8) of a roster's header: snapshot_id and taken_at."""
    header = {"snapshot_id": roster.snapshot_id, "taken_at": format_timestamp(roster.taken_at)}
    return canonical_json(header).encode()


@dataclass(frozen=True, slots=True)
class RosterFingerprint:
    """A roster's digests, computed once: its ``roster_sha256`` and what ``input_sha256`` needs.

    Kept beside a roster by whoever keeps the roster (the server's roster cache), never on the
    roster itself. With it, the input hash of a case costs one sha256 over the case's canonical
    JSON and ``32 x agents`` bytes, and a batch that changes one agent re-encodes only that one.

    Attributes:
        sha256: The roster's content hash (``roster_sha256``), as the audit log stores it.
        header_json: The header's canonical JSON (``roster_header_json``).
        agent_digests: Each agent's sha256 (``agent_sha256``), in roster order.
        input_tail: A newline, ``header_json``, a newline, the agent digests joined: what
            ``input_sha256`` hashes after the case.
        first_texts: Each agent's canonical JSON (``agent_json``), in roster order, until
            someone takes them (``take_texts``): ``fingerprint_roster(keep_texts=True)`` keeps
            the texts it hashed, so a roster seen for the first time is encoded once for its
            digests and its audit blob. Empty once taken (or never kept); not part of the
            value.
    """

    sha256: str
    header_json: bytes
    agent_digests: tuple[bytes, ...]
    input_tail: bytes
    first_texts: list[tuple[str, ...]] = field(default_factory=list, compare=False, repr=False)

    def take_texts(self) -> tuple[str, ...] | None:
        """The agents' canonical JSON texts if still held (then no longer held), else None."""
        try:
            return self.first_texts.pop()  # atomic: two callers never both get them
        except IndexError:
            return None

    @classmethod
    def of(cls, header_json: bytes, agent_digests: tuple[bytes, ...]) -> RosterFingerprint:
        """The fingerprint of a roster given its header's canonical JSON and agent digests."""
        joined = b"".join(agent_digests)
        sha = hashlib.sha256(header_json + b"\n" + joined).hexdigest()
        return cls(sha, header_json, agent_digests, b"\n" + header_json + b"\n" + joined)

    def after_assignment(self, roster: Roster, agent_id: str) -> RosterFingerprint:
        """The fingerprint of ``roster``: this one's roster after ``agent_id`` changed.

        ``roster`` is ``engine.roster_index.roster_after_assignment``'s result: the same
        agents in the same order, ``agent_id``'s replaced. Only that agent is hashed again.
        """
        for index, agent in enumerate(roster.agents):
            if agent.agent_id == agent_id:
                digests = list(self.agent_digests)
                digests[index] = agent_sha256(agent)
                return RosterFingerprint.of(self.header_json, tuple(digests))
        return self


def fingerprint_roster(roster: Roster, *, keep_texts: bool = False) -> RosterFingerprint:
    """Every digest of a roster (one canonical JSON encoding per agent).

    Args:
        roster: The roster.
        keep_texts: Also keep the agents' canonical JSON texts it hashed, for one
            ``take_texts`` (the audit blob of a roster about to be recorded).
    """
    texts = [agent_json(a) for a in roster.agents]
    return fingerprint_agent_texts(roster, texts, [agent_digest(t) for t in texts], keep_texts)


def agent_digest(text: str) -> bytes:
    """An agent's sha256 (raw bytes) from its canonical JSON text (``agent_json``)."""
    return hashlib.sha256(text.encode()).digest()


def fingerprint_agent_texts(
    roster: Roster, texts: Sequence[str], digests: Sequence[bytes], keep_texts: bool = False
) -> RosterFingerprint:
    """``fingerprint_roster`` of a roster whose agents' texts and digests are already known.

    For a roster cache that keeps each agent's ``agent_json`` and ``agent_digest`` from an
    earlier roster: a new snapshot of agents already seen is not encoded again.

    Args:
        roster: The roster.
        texts: ``agent_json`` of each agent, in roster order.
        digests: ``agent_digest`` of each text, in roster order.
        keep_texts: As ``fingerprint_roster``'s.
    """
    fingerprint = RosterFingerprint.of(roster_header_json(roster), tuple(digests))
    if keep_texts:
        fingerprint.first_texts.append(tuple(texts))
    return fingerprint


def roster_sha256(roster: Roster) -> str:
    """Content hash of a roster snapshot.

    Defined as sha256 over the canonical JSON of the header (snapshot_id, taken_at), a
    newline, then each agent's sha256 (of its canonical JSON) in roster order, so
    ``roster_dict_sha256(roster_to_dict(r)) == roster_sha256(r)``. The audit store keys roster
    snapshots by it: a batch or a repeated roster is stored once. Encodes every agent: code
    that hashes the same roster again keeps its ``fingerprint_roster`` instead.
    """
    return fingerprint_roster(roster).sha256


def roster_dict_sha256(data: Mapping[str, Any]) -> str:
    """``roster_sha256`` of a roster in its ``roster_to_dict`` form (as stored)."""
    header = {"snapshot_id": data["snapshot_id"], "taken_at": data["taken_at"]}
    return RosterFingerprint.of(
        canonical_json(header).encode(),
        tuple(hashlib.sha256(canonical_json(agent).encode()).digest() for agent in data["agents"]),
    ).sha256


def record_input_json(
    case_text: str, masked_with: str, roster_sha256: str, assigned_before: Sequence[str]
) -> str:
    """``canonical_json`` of an audit record's input, from its case's canonical text.

    The input is ``{"case": <case>, "masked_with": <key fingerprint>, "roster": {"sha256":
    ..., "assigned_before": [...]}}`` (``audit.recorder.build_records``); its keys sort as
    written here.

    Args:
        case_text: ``canonical_json`` of the (masked) case.
        masked_with: The fingerprint of the key the case was masked with.
        roster_sha256: The roster snapshot's hash.
        assigned_before: Agents given a case earlier in the same batch, in order.
    """
    assigned = ",".join(map(_str, assigned_before))
    return (
        f'{{"case":{case_text},"masked_with":{_str(masked_with)},'
        f'"roster":{{"assigned_before":[{assigned}],"sha256":{_str(roster_sha256)}}}}}'
    )


def input_sha256_of(case_text: str, roster: RosterFingerprint) -> str:
    """``input_sha256`` from a case's canonical JSON (``case_json``) and a roster's fingerprint."""
    h = hashlib.sha256(case_text.encode())
    h.update(roster.input_tail)
    return h.hexdigest()


def input_sha256(case: Case, roster: Roster) -> str:
    """Fingerprint of case + roster: same data, same hash, whatever the transport.

    Defined as sha256 over: the canonical JSON of the case, a newline, the canonical JSON of
    the roster header (snapshot_id, taken_at), a newline, then each agent's sha256 (of its
    canonical JSON) in roster order. Encodes every agent: code deciding many cases against one
    roster uses ``input_sha256_of`` with the roster's ``fingerprint_roster``.
    """
    return input_sha256_of(case_json(case), fingerprint_roster(roster))


def request_sha256(
    *,
    ruleset_name: str,
    ruleset_version: str,
    agent_detail: bool,
    now: datetime | None,
    case_texts: Sequence[str],
    roster_sha256: str,
    now_text: str | None = None,
) -> str:
    """Fingerprint of what a request asks for; the same request_id must always carry it.

    Defined as sha256 over the canonical JSON of ``{ruleset_name, ruleset_version,
    agent_detail, now}`` (the selector as sent; ``now`` null when the server chose it) and a
    newline, then each case's canonical JSON and a newline, then the roster's content hash
    (hex). Not the caller identity: a retry may come from a sibling node.

    Args:
        ruleset_name: Ruleset name as sent ("" for the default).
        ruleset_version: Version as sent ("" for the active one).
        agent_detail: True for EXPLANATION_LEVEL_FULL.
        now: The instant the caller gave (None: the server's clock).
        case_texts: Each case's ``case_json``, in request order.
        roster_sha256: The roster's content hash.
        now_text: ``format_timestamp(now)`` when the caller has it (formatted here if not).

    Returns:
        64 lowercase hex characters.
    """
    if now is None:
        stamp = "null"
    else:
        stamp = _text(now_text if now_text is not None else format_timestamp(now))
    # canonical_json of {agent_detail, now, ruleset_name, ruleset_version}, keys in that order.
    header = (
        f'{{"agent_detail":{_bool(agent_detail)},"now":{stamp},'
        f'"ruleset_name":{_str(ruleset_name)},"ruleset_version":{_str(ruleset_version)}}}'
    )
    h = hashlib.sha256(header.encode() + b"\n")
    for text in case_texts:
        h.update(text.encode() + b"\n")
    h.update(roster_sha256.encode())
    return h.hexdigest()


def request_decision_id(request_id: str, index: int) -> str:
    """Decision id of the ``index``-th case of a request: a retry gets the same id.

    The rule for every decision a server records (and ``caseroute decide --request``, which
    must print the id the server would give): ``dec_`` + the first 28 hex characters of
    sha256 over the request id, a NUL and the index.
    """
    digest = hashlib.sha256(f"{request_id}\x00{index}".encode()).hexdigest()
    return "dec_" + digest[:28]


def derive_decision_id(input_hash: str, ruleset_sha256: str, now: datetime) -> str:
    """Decision id of a decision made without a request id (a local ``decide``, golden cases).

    Same input, ruleset and ``now`` give the same id: ``dec_`` + the first 28 hex characters
    of sha256 over ``<input_sha256>:<ruleset_sha256>:<now>``.
    """
    seed = f"{input_hash}:{ruleset_sha256}:{format_timestamp(now)}"
    return "dec_" + hashlib.sha256(seed.encode()).hexdigest()[:28]
