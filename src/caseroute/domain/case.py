"""The case context an orchestration engine sends: what the enquiry is and how urgent."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from math import copysign

AttributeValue = str | int | float | bool
"""A value of a free-form attribute map: string, number or boolean (never null or nested)."""


class Channel(StrEnum):
    """How the enquiry arrived."""

    EMAIL = "email"
    PHONE = "phone"
    PORTAL = "portal"
    CHAT = "chat"


class Intent(StrEnum):
    """What the enquiry is about, as classified upstream."""

    CLINICAL = "clinical"
    PRESCRIPTION = "prescription"
    APPOINTMENT = "appointment"
    BILLING = "billing"
    COMPLAINT = "complaint"
    GENERAL = "general"


class Urgency(StrEnum):
    """Clinical/operational urgency, as classified upstream."""

    ROUTINE = "routine"
    URGENT = "urgent"
    CRITICAL = "critical"


class Tier(StrEnum):
    """Member tier."""

    STANDARD = "standard"
    GOLD = "gold"
    PLATINUM = "platinum"


@dataclass(frozen=True, slots=True)
class RequiredSkill:
    """A skill the case needs, at a minimum level (0-10)."""

    name: str
    min_level: int


@dataclass(frozen=True, slots=True)
class SentimentReading:
    """Sentiment of one reply from the patient/member: score in [-1, 1] at a time."""

    score: float
    at: datetime

    def order_key(self) -> tuple[datetime, float, float]:
        """Where this reading sorts in a case's sentiment: oldest first, a total order.

        Readings may arrive in any order, so equal instants cannot keep the order sent (the
        decision and the input hash would then depend on it). Of readings at one instant the
        lowest score sorts last, so it counts as the latest: a tie never hides a negative
        reply (fail safe). The sign of zero settles the one tie left (``-0.0 == 0.0``), so
        only identical readings compare equal.

        Returns:
            The sort key: the instant, then the score descending, then ``-0.0`` after ``0.0``.
        """
        return (self.at, -self.score, copysign(1.0, -self.score))


@dataclass(frozen=True, slots=True)
class SlaClock:
    """A service-level clock: started at one instant, due at another (e.g. RTT 18 weeks)."""

    name: str
    started_at: datetime
    deadline: datetime


class ContinuityReason(StrEnum):
    """Why a case names a preferred agent (continuity of care)."""

    PREVIOUS_CONTACT = "previous_contact"
    NAMED_CLINICIAN = "named_clinician"
    CARE_TEAM = "care_team"


@dataclass(frozen=True, slots=True)
class PreferredAgent:
    """An agent the case would rather go to: preference ranks, it never admits.

    Attributes:
        agent_id: The agent's id on the roster.
        reason: Why (previous contact, named clinician, care team).
        last_contact_at: When the patient last dealt with this agent; ``None``: not known
            (the ruleset's continuity window then does not apply). Not after the decision's
            ``now``: under a ruleset with continuity such a case is an EXCEPTION
            (``last_contact_after_now``).
    """

    agent_id: str
    reason: ContinuityReason
    last_contact_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Case:
    """Everything caseroute knows about one enquiry.

    Attributes:
        case_id: Caller's identifier of the case.
        created_at: When the enquiry was received (the start of time-to-triage).
        channel: How it arrived.
        intent: What it is about.
        urgency: How urgent it is.
        classification_confidence: Confidence of the upstream classifier, in [0, 1].
        patient_location: Jurisdiction where the patient is at the time of service
            (ISO 3166-2 style: ``US-TX``, ``GB-ENG``); ``None`` when unknown.
        region: Territory / commissioning-area code the case belongs to; ``None`` when unknown.
        tier: Member tier.
        required_skills: Skills the case needs, first one most important.
        preferred_language: BCP 47 language tag (``en``, ``es-MX``); ``None`` when not given.
        sentiment: Sentiment per reply, in ``SentimentReading.order_key`` order (oldest
            first; at one instant the lowest score last).
        sla_clocks: Running SLA clocks.
        flags: Case flags such as ``safeguarding``, ``vip``, ``consent_missing``.
        attributes: Free map that rules may read once the ruleset declares the key's type.
        waiting_since: The instant waiting is counted from for relaxation ladders and
            continuity holds (e.g. when the case entered its current queue); ``None``: the
            case's ``created_at``. Not before ``created_at``: under a ruleset that counts
            waiting such a case is an EXCEPTION (``waiting_since_before_created_at``).
        declined_agents: Agents who declined this case; never offered it again (compared with
            roster agent ids ignoring letter case).
        preferred_agents: Agents the case prefers (continuity of care), most preferred first.
    """

    case_id: str
    created_at: datetime
    channel: Channel
    intent: Intent
    urgency: Urgency
    classification_confidence: float = 1.0
    patient_location: str | None = None
    region: str | None = None
    tier: Tier = Tier.STANDARD
    required_skills: tuple[RequiredSkill, ...] = ()
    preferred_language: str | None = None
    sentiment: tuple[SentimentReading, ...] = ()
    sla_clocks: tuple[SlaClock, ...] = ()
    flags: frozenset[str] = field(default_factory=frozenset)
    attributes: dict[str, AttributeValue] = field(default_factory=dict)
    waiting_since: datetime | None = None
    declined_agents: frozenset[str] = field(default_factory=frozenset)
    preferred_agents: tuple[PreferredAgent, ...] = ()

    @property
    def wait_anchor(self) -> datetime:
        """The instant waiting time counts from: ``waiting_since``, else ``created_at``."""
        return self.waiting_since if self.waiting_since is not None else self.created_at
