"""The roster snapshot: who could take the case, with licences, skills and free capacity."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum

from caseroute.domain.case import AttributeValue


class Role(StrEnum):
    """An agent's role; escalations can ask for senior roles."""

    AGENT = "agent"
    SENIOR = "senior"
    MANAGER = "manager"


class AgentStatus(StrEnum):
    """An agent's presence at snapshot time."""

    AVAILABLE = "available"
    BUSY = "busy"
    AWAY = "away"
    OFFLINE = "offline"


@dataclass(frozen=True, slots=True)
class Licence:
    """A professional licence.

    Attributes:
        type: Licence type, e.g. ``RN``, ``LPN``, ``APRN``, ``pharmacist``.
        jurisdiction: Issuing jurisdiction (``US-TX``; ``GB`` for a UK-wide registration).
        expires_on: Last day the licence is valid (inclusive, UTC date).
        multistate: Issued as a multistate licence under an interstate compact (e.g. NLC).
    """

    type: str
    jurisdiction: str
    expires_on: date
    multistate: bool = False


@dataclass(frozen=True, slots=True)
class Capacity:
    """Concurrent work: at most ``max`` cases, ``active`` in progress now."""

    max: int
    active: int

    @property
    def utilisation(self) -> float:
        """Active / max; 1.0 (full) when ``max`` is 0."""
        return self.active / self.max if self.max > 0 else 1.0


@dataclass(frozen=True, slots=True)
class Agent:
    """One person on the roster.

    Attributes:
        agent_id: Stable identifier.
        role: Role (agent, senior, manager).
        status: Presence at snapshot time.
        licences: Professional licences held.
        territories: Territory codes covered; a code covers itself and its sub-codes
            (``US`` covers ``US-TX``; ``GB-ENG`` covers ``GB-ENG-NW``).
        skills: Skill name -> level (0-10).
        languages: BCP 47 language tags spoken.
        capacity: Concurrent capacity and load.
        last_assigned_at: When the agent last received a case (``None``: never); one after
            the decision's ``now`` ranks as idle 0 under ``longest_idle``, never negative.
        teams: Team names.
        seniority: Years of experience (ranking may prefer more).
        attributes: Free map for the operator's own data.
    """

    agent_id: str
    role: Role
    status: AgentStatus
    capacity: Capacity
    licences: tuple[Licence, ...] = ()
    territories: frozenset[str] = field(default_factory=frozenset)
    skills: dict[str, int] = field(default_factory=dict)
    languages: frozenset[str] = field(default_factory=frozenset)
    last_assigned_at: datetime | None = None
    teams: frozenset[str] = field(default_factory=frozenset)
    seniority: int = 0
    attributes: dict[str, AttributeValue] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Roster:
    """A point-in-time snapshot of the agents."""

    snapshot_id: str
    taken_at: datetime
    agents: tuple[Agent, ...]
    # Cache of the engine's lookup index for these agents; not part of the roster's value.
    index_cache: object | None = field(default=None, init=False, repr=False, compare=False)


class _AgentsKept:
    """The type of ``AGENTS_KEPT`` (one instance)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "AGENTS_KEPT"


AGENTS_KEPT = _AgentsKept()
"""``Roster.index_cache`` before indexing: the roster's agents are kept unchanged by its builder."""


def with_kept_agents(roster: Roster) -> Roster:
    """``roster``, marked as built from ``Agent`` values its builder keeps and never changes.

    The server's roster cache marks the rosters it builds from the agents it keeps across
    snapshots: such a roster's index may be patched from a recent one holding the same
    ``Agent`` objects (``engine.roster_index.index_for``). A roster built anywhere else is
    indexed afresh, because its builder may still change an agent's ``skills`` or
    ``attributes`` dict in place between two rosters (a frozen dataclass does not freeze them).
    """
    if roster.index_cache is None:
        object.__setattr__(roster, "index_cache", AGENTS_KEPT)
    return roster
