"""Seeded, realistic synthetic traffic: decide requests over a simulated day, for trying caseroute.

``simulate(cases, agents, seed)`` yields ``SimulatedRequest`` values (one case mostly, some
batches of 2-10) against roster snapshots taken every two hours of a twelve-hour day, with
``now`` advancing from ``DEFAULT_START``. Everything comes from one ``random.Random(seed)`` and
the arguments, never the clock, so the same arguments give the same requests and the same JSON
bytes (``request_to_json`` + ``caseroute.domain.codec.canonical_json``).

The mix follows what the reference ruleset (``rulesets/patient-enquiries``) reads: intents and
urgencies, patient locations in Nurse Licensure Compact states, other US states and the GB
nations (some missing), licences of several types (some near or past expiry, some multistate),
agents at full capacity or away/offline, skills and languages, negative sentiment, SLA clocks
near and past breach, a few ``safeguarding`` and ``consent_missing`` flags, and synthetic
identifiers and notes under attribute names the decision log masks (``patient_id``,
``member_id``, ``notes``). Every request is valid input under ``DEFAULT_LIMITS``.

Adaptive-routing inputs (issue 15) come from a second generator per case, seeded from the seed
and the case's index, so adding them left every other drawn value as it was: most cases carry
``waiting_since`` (time in their current queue, up to 45 minutes, so ladder steps at 10 and 30
minutes are crossed at realistic rates), about a quarter name preferred agents from the roster
(previous contact, care team or named clinician; some last contacts older than a year), and a
few name an agent who declined them.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, TypeVar

from caseroute.domain.case import (
    AttributeValue,
    Case,
    Channel,
    ContinuityReason,
    Intent,
    PreferredAgent,
    RequiredSkill,
    SentimentReading,
    SlaClock,
    Tier,
    Urgency,
)
from caseroute.domain.codec import parse_request
from caseroute.domain.errors import FieldViolation, RequestError
from caseroute.domain.limits import DEFAULT_LIMITS, InputLimits
from caseroute.domain.roster import Agent, AgentStatus, Capacity, Licence, Role, Roster

T = TypeVar("T")

DEFAULT_START = datetime(2026, 11, 21, 7, 0, tzinfo=UTC)
"""The first instant of the simulated day unless ``start`` is given (fixed: no clock)."""

DAY = timedelta(hours=12)
"""How long the simulated day runs; ``now`` advances evenly over it, case by case."""

SNAPSHOT_EVERY = timedelta(hours=2)
"""A new roster snapshot (statuses and load change) is taken this often."""

MAX_SEED = 2**64 - 1
"""Largest seed (ids embed it, so it is bounded)."""

MAX_BATCH = 10
"""Largest batch a simulated caller sends."""

BATCH_SHARE = 0.15
"""Share of requests that are batches (2-``MAX_BATCH`` cases) rather than one case."""

# Nurse Licensure Compact members in the reference ruleset, and states outside it.
COMPACT_STATES = ("US-TX", "US-FL", "US-AZ", "US-CO", "US-GA", "US-NC", "US-TN", "US-VA", "US-PA")
NON_COMPACT_STATES = ("US-CA", "US-NY", "US-IL", "US-MA", "US-WA", "US-OR", "US-MN")
GB_NATIONS = ("GB-ENG", "GB-SCT", "GB-WLS", "GB-NIR")

NEGATIVE_SENTIMENT = -0.5
"""The reference ruleset's threshold: a reply at or below it is negative."""

_INTENTS = (
    (Intent.CLINICAL, 30),
    (Intent.PRESCRIPTION, 18),
    (Intent.APPOINTMENT, 20),
    (Intent.BILLING, 12),
    (Intent.COMPLAINT, 8),
    (Intent.GENERAL, 12),
)
_URGENCIES = ((Urgency.ROUTINE, 68), (Urgency.URGENT, 22), (Urgency.CRITICAL, 10))
_TIERS = ((Tier.STANDARD, 75), (Tier.GOLD, 18), (Tier.PLATINUM, 7))
_CHANNELS = ((Channel.PHONE, 35), (Channel.EMAIL, 25), (Channel.PORTAL, 25), (Channel.CHAT, 15))
# Skill a case of each intent may ask for (None: no skill).
_INTENT_SKILL = {
    Intent.CLINICAL: "clinical-triage",
    Intent.PRESCRIPTION: "pharmacology",
    Intent.APPOINTMENT: "scheduling",
    Intent.BILLING: "billing",
    Intent.COMPLAINT: "complaints",
    Intent.GENERAL: None,
}
# Minutes to the first-response deadline, by urgency.
_RESPONSE_MINUTES = {Urgency.ROUTINE: 24 * 60, Urgency.URGENT: 4 * 60, Urgency.CRITICAL: 60}
_STATUSES = (
    (AgentStatus.AVAILABLE, 68),
    (AgentStatus.BUSY, 12),
    (AgentStatus.AWAY, 11),
    (AgentStatus.OFFLINE, 9),
)
# Licence profile of an agent: (licence type or None, weight).
_PROFESSIONS = (("RN", 45), ("LPN", 8), ("APRN", 5), ("pharmacist", 20), (None, 22))
_PROFESSION_SKILLS = {
    "RN": ("clinical-triage", "scheduling"),
    "LPN": ("clinical-triage", "scheduling"),
    "APRN": ("clinical-triage", "pharmacology"),
    "pharmacist": ("pharmacology",),
    None: ("billing", "scheduling", "complaints"),
}


_NOTES = (
    "Asks when the repeat prescription will be ready.",
    "Wants to move next week's appointment.",
    "Unhappy about a second chase for the same bill.",
    "Reports new symptoms since the last call.",
    "Asks who to contact out of hours.",
)
"""Canned free text for ``case.attributes.notes`` (synthetic; masked in the decision log)."""


@dataclass(frozen=True, slots=True)
class SimulatedRequest:
    """One simulated Decide/DecideBatch request.

    Attributes:
        request_id: Idempotency key, derived from the seed and the request's index.
        now: Decision instant; advances through the simulated day.
        cases: One case mostly; some batches of 2-10 (capacity is consumed within a batch).
        roster: The roster snapshot current at ``now`` (one of several over the day).
    """

    request_id: str
    now: datetime
    cases: tuple[Case, ...]
    roster: Roster


def _pick(rng: random.Random, weighted: Sequence[tuple[T, int]]) -> T:
    values = [value for value, _ in weighted]
    weights = [weight for _, weight in weighted]
    return rng.choices(values, weights)[0]


def _location(rng: random.Random) -> str | None:
    roll = rng.random()
    if roll < 0.07:
        return None  # unknown: licensed intents become EXCEPTION decisions
    if roll < 0.55:
        return rng.choice(COMPACT_STATES)
    if roll < 0.82:
        return rng.choice(NON_COMPACT_STATES)
    return rng.choice(GB_NATIONS)


def _language(rng: random.Random, location: str | None) -> str | None:
    roll = rng.random()
    if roll < 0.6:
        return None
    if roll < 0.8:
        return "en"
    if location == "GB-WLS" and roll < 0.9:
        return "cy"
    return rng.choice(("es", "es", "es", "pl", "fr"))


@dataclass(frozen=True, slots=True)
class _AgentProfile:
    """What stays fixed about an agent all day; status and load change per snapshot."""

    agent_id: str
    role: Role
    licences: tuple[Licence, ...]
    territories: frozenset[str]
    skills: dict[str, int]
    languages: frozenset[str]
    max_capacity: int
    teams: frozenset[str]
    seniority: int


def _expiry(rng: random.Random, today: date) -> date:
    roll = rng.random()
    if roll < 0.06:
        return today - timedelta(days=rng.randint(1, 90))  # lapsed: licence check fails
    if roll < 0.16:
        return today + timedelta(days=rng.randint(0, 30))  # near expiry
    return today + timedelta(days=rng.randint(60, 900))


def _agent_profile(rng: random.Random, seed: int, index: int, today: date) -> _AgentProfile:
    profession = _pick(rng, _PROFESSIONS)
    gb = rng.random() < 0.2
    home = rng.choice(GB_NATIONS) if gb else rng.choice(COMPACT_STATES + NON_COMPACT_STATES)
    licences: list[Licence] = []
    territories = {home}
    if profession is not None:
        if gb:
            licences.append(Licence(profession, "GB", _expiry(rng, today)))
            territories.add("GB")
        else:
            multistate = (
                profession in ("RN", "LPN") and home in COMPACT_STATES and rng.random() < 0.75
            )
            licences.append(Licence(profession, home, _expiry(rng, today), multistate))
            if rng.random() < 0.3:  # a second single-state licence
                other = rng.choice(NON_COMPACT_STATES)
                if other != home:
                    licences.append(Licence(profession, other, _expiry(rng, today)))
                    territories.add(other)
    if gb:
        territories.add("GB")
    elif rng.random() < 0.25:
        territories.add("US")  # a national team covers every state
    else:
        territories.update(rng.sample(COMPACT_STATES, 2))
    names = _PROFESSION_SKILLS[profession]
    skills = {name: rng.randint(1, 5) for name in names}
    if rng.random() < 0.3:
        skills["complaints"] = rng.randint(1, 5)
    languages = {"en"}
    if rng.random() < 0.25:
        languages.add("es")
    if gb and rng.random() < 0.2:
        languages.add("cy")
    if rng.random() < 0.05:
        languages.add(rng.choice(("pl", "fr")))
    role = _pick(rng, ((Role.AGENT, 72), (Role.SENIOR, 22), (Role.MANAGER, 6)))
    team = "gb" if gb else ("compact" if home in COMPACT_STATES else "us-west-northeast")
    return _AgentProfile(
        agent_id=f"sim{seed}-agent-{index:04d}",
        role=role,
        licences=tuple(licences),
        territories=frozenset(territories),
        skills=skills,
        languages=frozenset(languages),
        max_capacity=rng.randint(2, 8),
        teams=frozenset({team, (profession or "admin").lower()}),
        seniority=rng.randint(0, 25) + (5 if role is not Role.AGENT else 0),
    )


def _snapshot(
    rng: random.Random,
    seed: int,
    number: int,
    taken_at: datetime,
    profiles: Sequence[_AgentProfile],
) -> Roster:
    agents = []
    for profile in profiles:
        status = _pick(rng, _STATUSES)
        # Some agents are full: their capacity check fails.
        full = rng.random() < 0.15
        active = profile.max_capacity if full else rng.randint(0, profile.max_capacity - 1)
        last = None if rng.random() < 0.1 else taken_at - timedelta(minutes=rng.randint(1, 240))
        agents.append(
            Agent(
                agent_id=profile.agent_id,
                role=profile.role,
                status=status,
                capacity=Capacity(profile.max_capacity, active),
                licences=profile.licences,
                territories=profile.territories,
                skills=dict(profile.skills),
                languages=profile.languages,
                last_assigned_at=last,
                teams=profile.teams,
                seniority=profile.seniority,
            )
        )
    return Roster(
        snapshot_id=f"sim{seed}-roster-{number:02d}", taken_at=taken_at, agents=tuple(agents)
    )


_REASONS = (
    (ContinuityReason.PREVIOUS_CONTACT, 70),
    (ContinuityReason.CARE_TEAM, 20),
    (ContinuityReason.NAMED_CLINICIAN, 10),
)


def _adaptive(
    seed: int, index: int, now: datetime, created: datetime, agent_ids: Sequence[str]
) -> dict[str, Any]:
    """Wait anchor, preferred and declined agents of one case, from its own generator."""
    arng = random.Random(seed * 1_000_003 + index)  # noqa: S311 - synthetic data, seeded
    out: dict[str, Any] = {}
    if arng.random() < 0.6:
        waited = min(arng.randint(0, 45 * 60), int((now - created).total_seconds()))
        out["waiting_since"] = now - timedelta(seconds=waited)
    if agent_ids and arng.random() < 0.25:
        chosen = arng.sample(list(agent_ids), min(len(agent_ids), 1 + (arng.random() < 0.2)))
        preferred = []
        for agent_id in chosen:
            reason = _pick(arng, _REASONS)
            last = None
            if reason is not ContinuityReason.NAMED_CLINICIAN or arng.random() < 0.5:
                last = now - timedelta(days=arng.randint(1, 500), minutes=arng.randint(0, 1439))
            preferred.append(PreferredAgent(agent_id, reason, last))
        out["preferred_agents"] = tuple(preferred)
    if agent_ids and arng.random() < 0.04:
        out["declined_agents"] = frozenset({arng.choice(list(agent_ids))})
    return out


def _case(
    rng: random.Random,
    seed: int,
    index: int,
    now: datetime,
    agent_ids: Sequence[str] = (),
) -> Case:
    intent = _pick(rng, _INTENTS)
    urgency = _pick(rng, _URGENCIES)
    location = _location(rng)
    region = location if location is not None or rng.random() < 0.5 else None
    age = rng.randint(1, 8 * 60)
    created = now - timedelta(minutes=age, seconds=rng.randint(0, 59))
    skills: list[RequiredSkill] = []
    skill = _INTENT_SKILL[intent]
    if skill is not None and rng.random() < 0.5:
        skills.append(RequiredSkill(skill, rng.randint(1, 3)))
    readings: list[SentimentReading] = []
    for n in range(rng.choice((0, 0, 1, 2, 3, 4))):
        score = round(rng.uniform(-0.6, 1.0), 2)  # mostly neutral to happy
        readings.append(SentimentReading(score, created + timedelta(minutes=n + 1)))
    if readings and rng.random() < 0.15:  # an unhappy thread: the latest reply is negative
        last = readings[-1]
        readings[-1] = SentimentReading(round(rng.uniform(-1.0, NEGATIVE_SENTIMENT), 2), last.at)
    clocks: list[SlaClock] = []
    if rng.random() < 0.85:
        roll = rng.random()
        if roll < 0.18:
            left = rng.randint(-180, -1)  # breached
        elif roll < 0.4:
            left = rng.randint(0, 60)  # at risk
        else:
            left = rng.randint(61, _RESPONSE_MINUTES[urgency] + 61)
        # Invariant: deadline after started_at, so the clock is valid data.
        deadline = max(now + timedelta(minutes=left), created + timedelta(minutes=1))
        clocks.append(SlaClock("first-response", created, deadline))
    flags: set[str] = set()
    if rng.random() < 0.02:
        flags.add("safeguarding")
    if rng.random() < 0.03:
        flags.add("consent_missing")
    tier = _pick(rng, _TIERS)
    if tier is not Tier.STANDARD and rng.random() < 0.3:
        flags.add("vip")
    # Synthetic identifiers and free text under the attribute names the decision log masks by
    # default, so traffic exercises masking (no real person: ids from the seed, canned notes).
    attributes: dict[str, AttributeValue] = {"patient_id": f"PT-{seed}-{index:06d}"}
    if rng.random() < 0.6:
        attributes["member_id"] = f"M{rng.randrange(10**9):09d}"
    if rng.random() < 0.4:
        attributes["notes"] = rng.choice(_NOTES)
    return Case(
        case_id=f"SIM-{seed}-{index:06d}",
        created_at=created,
        channel=_pick(rng, _CHANNELS),
        intent=intent,
        urgency=urgency,
        classification_confidence=round(rng.uniform(0.55, 0.99), 2),
        patient_location=location,
        region=region,
        tier=tier,
        required_skills=tuple(skills),
        preferred_language=_language(rng, location),
        sentiment=tuple(readings),
        sla_clocks=tuple(clocks),
        flags=frozenset(flags),
        attributes=attributes,
        **_adaptive(seed, index, now, created, agent_ids),
    )


def simulate(
    cases: int, agents: int, seed: int, *, start: datetime | None = None
) -> Iterator[SimulatedRequest]:
    """Yield seeded, realistic decide requests over a simulated twelve-hour day.

    Args:
        cases: Cases in all (at least 1); batches count each of their cases.
        agents: Agents on every roster snapshot (1 to ``DEFAULT_LIMITS.max_agents``).
        seed: Seed of the one random generator (0 to ``MAX_SEED``); the same arguments give
            the same requests.
        start: First instant of the day, with a UTC offset (default ``DEFAULT_START``).

    Yields:
        Requests in order, ``now`` never going back.

    Raises:
        ValueError: If an argument is out of range (the message names it and the range).
    """
    if isinstance(cases, bool) or cases < 1:
        raise ValueError(f"--cases must be at least 1, got {cases!r}")
    if isinstance(agents, bool) or not 1 <= agents <= DEFAULT_LIMITS.max_agents:
        raise ValueError(
            f"--agents must be between 1 and {DEFAULT_LIMITS.max_agents}, got {agents!r}"
        )
    if isinstance(seed, bool) or not 0 <= seed <= MAX_SEED:
        # Ids embed the seed: bounded, so every id stays within --max-id-chars.
        raise ValueError(f"--seed must be a whole number from 0 to {MAX_SEED}, got {seed!r}")
    begin = DEFAULT_START if start is None else start
    if begin.tzinfo is None:
        raise ValueError("start must carry a UTC offset, e.g. 2026-11-21T07:00:00Z")
    begin = begin.astimezone(UTC)
    return _generate(cases, agents, seed, begin)


def _max_batch(agents: int, limits: InputLimits) -> int:
    # Invariant: a batch respects both --max-batch-cases and --max-batch-pairs.
    return max(1, min(MAX_BATCH, limits.max_batch_cases, limits.max_batch_pairs // agents))


def _generate(cases: int, agents: int, seed: int, begin: datetime) -> Iterator[SimulatedRequest]:
    rng = random.Random(seed)  # noqa: S311 - synthetic data, not security: seeded on purpose
    today = begin.date()
    profiles = [_agent_profile(rng, seed, i, today) for i in range(agents)]
    rosters: dict[int, Roster] = {}
    step = DAY / cases
    largest = _max_batch(agents, DEFAULT_LIMITS)
    index = 0
    number = 0
    while index < cases:
        # Whole seconds: the instant reads the same in JSON and in the decision log.
        now = begin + timedelta(seconds=int((step * index).total_seconds()))
        slot = int((now - begin) / SNAPSHOT_EVERY)
        roster = rosters.get(slot)
        if roster is None:
            rosters.clear()  # the day moves on: earlier snapshots are never used again
            taken = begin + SNAPSHOT_EVERY * slot
            roster = rosters[slot] = _snapshot(rng, seed, slot, taken, profiles)
        size = 1
        if largest > 1 and cases - index > 1 and rng.random() < BATCH_SHARE:
            size = rng.randint(2, min(largest, cases - index))
        agent_ids = [p.agent_id for p in profiles]
        batch = tuple(_case(rng, seed, index + k, now, agent_ids) for k in range(size))
        yield SimulatedRequest(f"sim-{seed}-{number:06d}", now, batch, roster)
        index += size
        number += 1


def _unset(key: str, value: object) -> str:
    """Why ``value`` of a simulated line's ``key`` counts as not sent ("" when it was sent)."""
    if value is None:
        return "is required"
    if key == "request_id" and value == "":
        return 'is empty, which reads as unset (docs/json.md, "Empty envelope strings")'
    return ""


def request_from_json(data: object) -> SimulatedRequest:
    """Read one line of ``caseroute simulate --out``.

    A line is the request ``--server`` sends for it (``caseroute.wire.json_dialect.
    simulated_request_to_json``): a ``caseroute.v1.DecideRequest`` (``case``) or, for several
    cases, a ``DecideBatchRequest`` (``cases``). It is read by ``parse_request``, the reader of
    ``caseroute decide --request``, so paths and messages are the ones gRPC reports; a simulated
    request must also carry its ``request_id`` and ``now``.

    Raises:
        RequestError: Naming every invalid field path (``cases[2].intent``, ``now``...).
    """
    if not isinstance(data, dict):
        raise RequestError([FieldViolation("request", "must be a JSON object")])
    violations = [
        FieldViolation(key, f"{problem}: a simulated request carries its {what}")
        for key, what in (("request_id", "idempotency key"), ("now", "decision instant"))
        # Present but bad: parse_request says what is wrong. An empty request_id is not
        # bad there (proto3 reads "" as unset and derives one), but a line needs its own.
        if (problem := _unset(key, data.get(key)))
    ]
    try:
        parsed = parse_request(data)
    except RequestError as error:
        raise RequestError([*violations, *error.violations]) from None
    if violations:
        raise RequestError(violations)
    assert parsed.now is not None  # noqa: S101 - refused above when missing
    return SimulatedRequest(parsed.request_id, parsed.now, parsed.cases, parsed.roster)
