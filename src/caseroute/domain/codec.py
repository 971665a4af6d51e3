"""JSON-shaped data <-> domain values: strict parsing that names every bad field path.

Parsing collects every violation before raising one ``RequestError``, so a caller fixes a
request in one round trip. ``*_to_dict`` give the canonical JSON form used for the input hash,
the audit record and replay; ``to_jsonable`` renders any decision/explanation value.
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import json
import math
import re
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, date, datetime
from enum import Enum, StrEnum
from typing import Any, TypeVar

from caseroute.domain.case import (
    AttributeValue,
    Case,
    Channel,
    Intent,
    RequiredSkill,
    SentimentReading,
    SlaClock,
    Tier,
    Urgency,
)
from caseroute.domain.errors import FieldViolation, RequestError
from caseroute.domain.roster import Agent, AgentStatus, Capacity, Licence, Role, Roster

E = TypeVar("E", bound=StrEnum)
T = TypeVar("T")

JURISDICTION_RE = re.compile(r"^[A-Z]{2}(-[A-Z0-9]{1,3})*$")
CODE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:/-]*$")
LANGUAGE_RE = re.compile(r"^[a-z]{2,3}(-[a-z0-9]{2,8})*$")
ATTRIBUTE_KEY_RE = re.compile(r"^[a-z_][a-z0-9_]*$")
MAX_ABS_NUMBER = 1e15  # beyond this, doubles lose integer precision; no routing datum needs it

_MISSING: Any = object()


class _Reader:
    """Reads one JSON object at a field path, collecting violations instead of raising."""

    def __init__(
        self, data: object, path: str, violations: list[FieldViolation], allowed: tuple[str, ...]
    ) -> None:
        self.path = path
        self.violations = violations
        self.data: Mapping[str, Any] = {}
        if not isinstance(data, Mapping):
            self.fail("", f"must be an object, got {_json_type(data)}")
            return
        self.data = data
        for key in data:
            if key not in allowed:
                hint = difflib.get_close_matches(str(key), allowed, n=1)
                tip = (
                    f" (did you mean `{hint[0]}`?)" if hint else f"; allowed: {', '.join(allowed)}"
                )
                self.fail(str(key), f"unknown field{tip}")

    def at(self, key: str) -> str:
        return f"{self.path}.{key}" if key else self.path

    def fail(self, key: str, message: str) -> None:
        self.violations.append(FieldViolation(self.at(key), message))

    def raw(self, key: str, *, required: bool) -> Any:
        value = self.data.get(key, _MISSING)
        if value is None:
            value = _MISSING
        if value is _MISSING and required:
            self.fail(key, "is required")
        return value

    def string(
        self,
        key: str,
        *,
        required: bool = True,
        pattern: re.Pattern[str] | None = None,
        hint: str = "",
    ) -> str | None:
        value = self.raw(key, required=required)
        if value is _MISSING:
            return None
        if not isinstance(value, str) or not value.strip():
            self.fail(key, f"must be a non-empty string, got {_json_type(value)}")
            return None
        if pattern is not None and not pattern.match(value):
            self.fail(key, f"{value!r} is not a valid value{hint}")
            return None
        return value

    def number(
        self,
        key: str,
        *,
        required: bool = True,
        low: float | None = None,
        high: float | None = None,
        integer: bool = False,
    ) -> float | None:
        value = self.raw(key, required=required)
        if value is _MISSING:
            return None
        ok_type = isinstance(value, int) if integer else isinstance(value, int | float)
        if isinstance(value, bool) or not ok_type:
            kind = "an integer" if integer else "a number"
            self.fail(key, f"must be {kind}, got {_json_type(value)}")
            return None
        if not math.isfinite(value) or abs(value) > MAX_ABS_NUMBER:
            self.fail(key, f"must be a finite number within ±{MAX_ABS_NUMBER:g}, got {value!r}")
            return None
        if (low is not None and value < low) or (high is not None and value > high):
            self.fail(key, f"must be between {low:g} and {high:g}, got {value!r}")
            return None
        return float(value) if not integer else value

    def integer(
        self, key: str, *, required: bool = True, low: int = 0, high: int = 1_000_000
    ) -> int | None:
        value = self.number(key, required=required, low=low, high=high, integer=True)
        return None if value is None else int(value)

    def boolean(self, key: str, *, default: bool) -> bool:
        value = self.raw(key, required=False)
        if value is _MISSING:
            return default
        if not isinstance(value, bool):
            self.fail(key, f"must be true or false, got {_json_type(value)}")
            return default
        return value

    def enum(self, key: str, kind: type[E], *, required: bool = True) -> E | None:
        value = self.raw(key, required=required)
        if value is _MISSING:
            return None
        members = [m.value for m in kind]
        if not isinstance(value, str) or value not in members:
            hint = difflib.get_close_matches(str(value), members, n=1)
            tip = f" (did you mean {hint[0]!r}?)" if hint else ""
            self.fail(key, f"must be one of {', '.join(members)}; got {value!r}{tip}")
            return None
        return kind(value)

    def timestamp(self, key: str, *, required: bool = True) -> datetime | None:
        value = self.raw(key, required=required)
        if value is _MISSING:
            return None
        parsed = parse_timestamp(value)
        if parsed is None:
            self.fail(
                key,
                "must be an ISO-8601 timestamp with a UTC offset, e.g. "
                f"2026-11-21T09:30:00Z; got {value!r}",
            )
        return parsed

    def day(self, key: str) -> date | None:
        value = self.raw(key, required=True)
        if value is _MISSING:
            return None
        if isinstance(value, str):
            try:
                return date.fromisoformat(value)
            except ValueError:
                pass
        self.fail(key, f"must be a date YYYY-MM-DD, got {value!r}")
        return None

    def items(self, key: str) -> list[tuple[str, Any]]:
        """Elements of a list field with their paths (missing list: empty)."""
        value = self.raw(key, required=False)
        if value is _MISSING:
            return []
        if not isinstance(value, list):
            self.fail(key, f"must be a list, got {_json_type(value)}")
            return []
        return [(f"{self.at(key)}[{i}]", item) for i, item in enumerate(value)]

    def strings(
        self,
        key: str,
        *,
        pattern: re.Pattern[str] | None = None,
        hint: str = "",
        transform: Callable[[str], str] = str,
    ) -> list[str]:
        out: list[str] = []
        for path, item in self.items(key):
            if not isinstance(item, str) or (
                pattern is not None and not pattern.match(transform(item))
            ):
                self.violations.append(FieldViolation(path, f"{item!r} is not a valid value{hint}"))
                continue
            out.append(transform(item))
        return out

    def attributes(self, key: str) -> dict[str, AttributeValue]:
        value = self.raw(key, required=False)
        if value is _MISSING:
            return {}
        if not isinstance(value, Mapping):
            self.fail(
                key, f"must be an object of string/number/boolean values, got {_json_type(value)}"
            )
            return {}
        out: dict[str, AttributeValue] = {}
        for k, v in value.items():
            path = f"{self.at(key)}.{k}"
            if not isinstance(k, str) or not ATTRIBUTE_KEY_RE.match(k):
                self.violations.append(
                    FieldViolation(
                        path, "attribute names must be lower_snake_case ([a-z_][a-z0-9_]*)"
                    )
                )
            elif isinstance(v, bool | str) or (
                isinstance(v, int | float) and math.isfinite(v) and abs(v) <= MAX_ABS_NUMBER
            ):
                out[k] = v
            else:
                self.violations.append(
                    FieldViolation(
                        path, f"must be a string, finite number or boolean, got {_json_type(v)}"
                    )
                )
        return out


def _json_type(value: object) -> str:
    if value is None or value is _MISSING:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return f"number {value!r}"
    if isinstance(value, str):
        return f"string {value!r}"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, Mapping):
        return "an object"
    return type(value).__name__


def parse_timestamp(value: object) -> datetime | None:
    """Parse an ISO-8601 timestamp (or take an aware datetime); returns it in UTC or ``None``."""
    if isinstance(value, datetime):
        return value.astimezone(UTC) if value.tzinfo is not None else None
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        return None
    return parsed.astimezone(UTC)


def _jurisdiction(value: str) -> str:
    return value.strip().upper()


def _language(value: str) -> str:
    return value.strip().lower().replace("_", "-")


_CASE_FIELDS = (
    "case_id",
    "created_at",
    "channel",
    "intent",
    "urgency",
    "classification_confidence",
    "patient_location",
    "region",
    "tier",
    "required_skills",
    "preferred_language",
    "sentiment",
    "sla_clocks",
    "flags",
    "attributes",
)
_JURISDICTION_HINT = " (expected an ISO 3166 code such as US-TX or GB-ENG)"
_LANGUAGE_HINT = " (expected a BCP 47 tag such as en or es-MX)"
_CODE_HINT = " (letters, digits and _ . : / -, starting with a letter or digit)"


def parse_case(data: object, path: str = "case") -> Case:
    """Build a ``Case`` from its JSON form.

    Args:
        data: The decoded JSON object.
        path: Field path prefix used in error messages.

    Returns:
        The case.

    Raises:
        RequestError: Listing every invalid field.
    """
    violations: list[FieldViolation] = []
    r = _Reader(data, path, violations, _CASE_FIELDS)
    case_id = r.string("case_id")
    created_at = r.timestamp("created_at")
    channel = r.enum("channel", Channel)
    intent = r.enum("intent", Intent)
    urgency = r.enum("urgency", Urgency)
    confidence = r.number("classification_confidence", required=False, low=0.0, high=1.0)
    location = r.string("patient_location", required=False)
    if location is not None:
        location = _jurisdiction(location)
        if not JURISDICTION_RE.match(location):
            r.fail("patient_location", f"{location!r} is not a valid value{_JURISDICTION_HINT}")
    region = r.string("region", required=False, pattern=CODE_RE, hint=_CODE_HINT)
    tier = r.enum("tier", Tier, required=False)
    language = r.string("preferred_language", required=False)
    if language is not None:
        language = _language(language)
        if not LANGUAGE_RE.match(language):
            r.fail("preferred_language", f"{language!r} is not a valid value{_LANGUAGE_HINT}")

    skills: list[RequiredSkill] = []
    for item_path, item in r.items("required_skills"):
        s = _Reader(item, item_path, violations, ("name", "min_level"))
        name = s.string("name", pattern=CODE_RE, hint=_CODE_HINT)
        level = s.integer("min_level", low=0, high=10)
        if name is not None and level is not None:
            skills.append(RequiredSkill(name, level))

    readings: list[SentimentReading] = []
    for item_path, item in r.items("sentiment"):
        s = _Reader(item, item_path, violations, ("score", "at"))
        score = s.number("score", low=-1.0, high=1.0)
        at = s.timestamp("at")
        if score is not None and at is not None:
            readings.append(SentimentReading(score, at))
    # Oldest first is the contract; a stable sort keeps equal timestamps in sent order.
    readings.sort(key=lambda reading: reading.at)

    clocks: list[SlaClock] = []
    seen_clocks: set[str] = set()
    for item_path, item in r.items("sla_clocks"):
        s = _Reader(item, item_path, violations, ("name", "started_at", "deadline"))
        name = s.string("name", pattern=CODE_RE, hint=_CODE_HINT)
        started = s.timestamp("started_at")
        deadline = s.timestamp("deadline")
        if name is not None and name in seen_clocks:
            s.fail("name", f"duplicate SLA clock name {name!r}; each clock needs its own name")
        if name is not None and started is not None and deadline is not None:
            seen_clocks.add(name)
            clocks.append(SlaClock(name, started, deadline))

    flags = r.strings("flags", pattern=CODE_RE, hint=_CODE_HINT)
    attributes = r.attributes("attributes")
    if violations:
        raise RequestError(violations)
    # Each is None only if a violation was recorded, and then we raised above.
    assert case_id is not None  # noqa: S101
    assert created_at is not None  # noqa: S101
    assert channel is not None  # noqa: S101
    assert intent is not None  # noqa: S101
    assert urgency is not None  # noqa: S101
    return Case(
        case_id=case_id,
        created_at=created_at,
        channel=channel,
        intent=intent,
        urgency=urgency,
        classification_confidence=1.0 if confidence is None else confidence,
        patient_location=location,
        region=region,
        tier=tier or Tier.STANDARD,
        required_skills=tuple(skills),
        preferred_language=language,
        sentiment=tuple(readings),
        sla_clocks=tuple(clocks),
        flags=frozenset(flags),
        attributes=attributes,
    )


_AGENT_FIELDS = (
    "agent_id",
    "role",
    "status",
    "licences",
    "territories",
    "skills",
    "languages",
    "capacity",
    "last_assigned_at",
    "teams",
    "seniority",
    "attributes",
)


def _parse_agent(data: object, path: str, violations: list[FieldViolation]) -> Agent | None:
    before = len(violations)
    r = _Reader(data, path, violations, _AGENT_FIELDS)
    agent_id = r.string("agent_id", pattern=CODE_RE, hint=_CODE_HINT)
    role = r.enum("role", Role, required=False)
    status = r.enum("status", AgentStatus)
    licences: list[Licence] = []
    for item_path, item in r.items("licences"):
        s = _Reader(
            item, item_path, violations, ("type", "jurisdiction", "expires_on", "multistate")
        )
        kind = s.string("type", pattern=CODE_RE, hint=_CODE_HINT)
        where = s.string("jurisdiction")
        if where is not None:
            where = _jurisdiction(where)
            if not JURISDICTION_RE.match(where):
                s.fail("jurisdiction", f"{where!r} is not a valid value{_JURISDICTION_HINT}")
        expires = s.day("expires_on")
        multistate = s.boolean("multistate", default=False)
        if kind is not None and where is not None and expires is not None:
            licences.append(Licence(kind, where, expires, multistate))
    territories = r.strings("territories", pattern=CODE_RE, hint=_CODE_HINT)
    skills: dict[str, int] = {}
    for item_path, item in r.items("skills"):
        s = _Reader(item, item_path, violations, ("name", "level"))
        name = s.string("name", pattern=CODE_RE, hint=_CODE_HINT)
        level = s.integer("level", low=0, high=10)
        if name is not None and name in skills:
            s.fail("name", f"skill {name!r} listed twice; give each skill once with its level")
        elif name is not None and level is not None:
            skills[name] = level
    languages = r.strings(
        "languages", pattern=LANGUAGE_RE, hint=_LANGUAGE_HINT, transform=_language
    )
    capacity: Capacity | None = None
    cap_raw = r.raw("capacity", required=True)
    if cap_raw is not _MISSING:
        c = _Reader(cap_raw, r.at("capacity"), violations, ("max", "active"))
        cap_max = c.integer("max", low=0, high=10_000)
        active = c.integer("active", low=0, high=10_000)
        if cap_max is not None and active is not None:
            capacity = Capacity(cap_max, active)
    last = r.timestamp("last_assigned_at", required=False)
    teams = r.strings("teams", pattern=CODE_RE, hint=_CODE_HINT)
    seniority = r.integer("seniority", required=False, low=0, high=100)
    attributes = r.attributes("attributes")
    if len(violations) > before or agent_id is None or status is None or capacity is None:
        return None
    return Agent(
        agent_id=agent_id,
        role=role or Role.AGENT,
        status=status,
        capacity=capacity,
        licences=tuple(licences),
        territories=frozenset(territories),
        skills=skills,
        languages=frozenset(languages),
        last_assigned_at=last,
        teams=frozenset(teams),
        seniority=seniority or 0,
        attributes=attributes,
    )


MAX_ROSTER_AGENTS = 20_000


def parse_roster(data: object, path: str = "roster") -> Roster:
    """Build a ``Roster`` from its JSON form.

    Args:
        data: The decoded JSON object.
        path: Field path prefix used in error messages.

    Returns:
        The roster.

    Raises:
        RequestError: Listing every invalid field (including duplicate agent ids).
    """
    violations: list[FieldViolation] = []
    r = _Reader(data, path, violations, ("snapshot_id", "taken_at", "agents"))
    snapshot_id = r.string("snapshot_id")
    taken_at = r.timestamp("taken_at")
    entries = r.items("agents")
    if len(entries) > MAX_ROSTER_AGENTS:
        r.fail(
            "agents",
            f"has {len(entries)} agents; the limit is {MAX_ROSTER_AGENTS} per "
            "request: split the roster by team or territory",
        )
        entries = []
    agents: list[Agent] = []
    first_seen: dict[str, str] = {}
    for item_path, item in entries:
        agent = _parse_agent(item, item_path, violations)
        if agent is None:
            continue
        if agent.agent_id in first_seen:
            violations.append(
                FieldViolation(
                    f"{item_path}.agent_id",
                    f"duplicate agent_id {agent.agent_id!r} (first at "
                    f"{first_seen[agent.agent_id]}); each agent must appear once",
                )
            )
            continue
        first_seen[agent.agent_id] = item_path
        agents.append(agent)
    if violations:
        raise RequestError(violations)
    assert snapshot_id is not None  # noqa: S101 - else a violation was raised above
    assert taken_at is not None  # noqa: S101
    return Roster(snapshot_id=snapshot_id, taken_at=taken_at, agents=tuple(agents))


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


_FIELD_NAMES: dict[type, tuple[str, ...]] = {}
_PLAIN = (str, int, float, bool, type(None))


def to_jsonable(value: object) -> Any:
    """Render a decision/explanation (dataclasses, enums, datetimes, tuples) as JSON data.

    Every decision passes through here on its way to the audit log, so the common cases
    come first and dataclass field names are looked up once per type.
    """
    kind = type(value)
    if kind in _PLAIN:  # exact types: an Enum subclassing str must not stop here
        return value
    names = _FIELD_NAMES.get(kind)
    if names is None and dataclasses.is_dataclass(value) and not isinstance(value, type):
        names = _FIELD_NAMES[kind] = tuple(f.name for f in dataclasses.fields(value))
    if names is not None:
        return {name: to_jsonable(getattr(value, name)) for name in names}
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, datetime):
        return format_timestamp(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, tuple | list):
        return [to_jsonable(v) for v in value]
    if isinstance(value, frozenset | set):
        return sorted(to_jsonable(v) for v in value)
    if isinstance(value, Mapping):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    return value
