"""Bitmask indexes over a roster: eligibility as set algebra instead of a loop per agent.

Bit ``i`` of every mask stands for ``roster.agents[i]``. Masks are Python ints, so AND/OR over
thousands of agents are single big-int operations. The index is built once per Roster object
and cached on it (rosters are immutable; the roster cache reuses them across requests).
"""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import date, datetime

from caseroute.domain.roster import Agent, AgentStatus, Capacity, Role, Roster
from caseroute.engine.licensing import CompactView, licence_valid_at

MAX_LEVEL = 10
MAX_REMEMBERED = 64
"""Results ``remember`` keeps per index (a resolved need's masks or match); past it, all go.

Bounded for memory: a 5,000-agent roster's match holds ~50 kB (eligible agents, failed masks).
"""


def primary_language(tag: str) -> str:
    """The primary subtag of a BCP 47 tag (``en-GB`` -> ``en``)."""
    return tag.split("-", 1)[0]


def ancestors(code: str) -> list[str]:
    """A code and every area containing it: ``GB-ENG-NW`` -> GB-ENG-NW, GB-ENG, GB."""
    parts = code.split("-")
    return ["-".join(parts[:k]) for k in range(len(parts), 0, -1)]


def bits(mask: int) -> Iterator[int]:
    """Indices of the set bits, ascending."""
    while mask:
        low = mask & -mask
        yield low.bit_length() - 1
        mask ^= low


def _or(masks: dict[object, int], keys: object) -> int:
    out = 0
    for key in keys:  # type: ignore[attr-defined]
        out |= masks.get(key, 0)
    return out


@dataclass(slots=True)
class RosterIndex:
    """Masks of agents by status, role, capacity, territory, language, skill level, licence."""

    agents: tuple[Agent, ...]
    everyone: int
    by_status: dict[AgentStatus, int]
    by_role: dict[Role, int]
    has_capacity: int
    by_territory: dict[str, int]
    by_language: dict[str, int]
    skill_at_least: dict[str, list[int]]  # name -> mask per minimum level 0..10
    licensed: dict[str, list[int]]  # licence type -> agent indices holding one
    _licence_masks: dict[object, int] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _positions: dict[str, int] | None = None
    _remembered: dict[object, object] = field(default_factory=dict)

    def recall(self, key: object) -> object | None:
        """What ``remember`` kept under ``key`` for this index, or None.

        Matching keeps its per-need results here: they depend on the need and the agents
        alone, so they live exactly as long as this index (a roster's, or a batch's copy once
        an agent took a case, which starts empty: capacity changed).
        """
        return self._remembered.get(key)

    def remember(self, key: object, value: object) -> None:
        """Keep ``value`` under ``key`` (immutable values only: every caller shares it)."""
        remembered = self._remembered
        if len(remembered) >= MAX_REMEMBERED:
            remembered.clear()  # bounded: rosters live long, and needs vary with cases
        remembered[key] = value

    def positions(self) -> dict[str, int]:
        """Agent id -> bit position, built on first use (adaptive routing reads it)."""
        positions = self._positions
        if positions is None:
            # Idempotent: two threads racing build equal dicts; either may win.
            positions = {agent.agent_id: i for i, agent in enumerate(self.agents)}
            self._positions = positions
        return positions

    @classmethod
    def build(cls, agents: tuple[Agent, ...]) -> RosterIndex:
        """Index a roster's agents (one pass)."""
        by_status: dict[AgentStatus, int] = defaultdict(int)
        by_role: dict[Role, int] = defaultdict(int)
        by_territory: dict[str, int] = defaultdict(int)
        by_language: dict[str, int] = defaultdict(int)
        levels: dict[str, list[int]] = defaultdict(lambda: [0] * (MAX_LEVEL + 1))
        licensed: dict[str, list[int]] = defaultdict(list)
        capacity = 0
        # A roster repeats a handful of language tags: each one's primary subtag is split off
        # once (a call and a split per tag per agent were ~20% of a build).
        primaries: dict[str, str] = {}
        for i, agent in enumerate(agents):
            bit = 1 << i
            by_status[agent.status] |= bit
            by_role[agent.role] |= bit
            held = agent.capacity
            if held.active < held.max:
                capacity |= bit
            for code in agent.territories:
                by_territory[code] |= bit
            for tag in agent.languages:
                primary = primaries.get(tag)
                if primary is None:
                    primary = primaries[tag] = primary_language(tag)
                by_language[primary] |= bit
            for name, level in agent.skills.items():
                levels[name][level] |= bit
            licences = agent.licences
            if len(licences) == 1:  # most holders hold one: no set of one type to build
                licensed[licences[0].type].append(i)
            elif licences:
                for kind in {lic.type for lic in licences}:
                    licensed[kind].append(i)
        at_least: dict[str, list[int]] = {}
        for name, exact in levels.items():
            cumulative, acc = [0] * (MAX_LEVEL + 1), 0
            for level in range(MAX_LEVEL, -1, -1):
                acc |= exact[level]
                cumulative[level] = acc
            at_least[name] = cumulative
        return cls(
            agents,
            (1 << len(agents)) - 1,
            dict(by_status),
            dict(by_role),
            capacity,
            dict(by_territory),
            dict(by_language),
            at_least,
            dict(licensed),
        )

    def after_assignment(self, position: int, agent: Agent) -> RosterIndex:
        """The index once ``agents[position]`` is replaced by ``agent`` with more load.

        Only capacity (and idle time, which matching does not read) changes in a batch, so
        every other mask and the licence cache carry over.
        """
        agents = (*self.agents[:position], agent, *self.agents[position + 1 :])
        bit = 1 << position
        capacity = self.has_capacity & ~bit
        if agent.capacity.active < agent.capacity.max:
            capacity |= bit
        return RosterIndex(
            agents,
            self.everyone,
            self.by_status,
            self.by_role,
            capacity,
            self.by_territory,
            self.by_language,
            self.skill_at_least,
            self.licensed,
            self._licence_masks,
            self._lock,
            self._positions,  # same ids in the same order: only capacity changed
            # Not the remembered matches: they read capacity.
        )

    def status_mask(self, statuses: frozenset[AgentStatus]) -> int:
        """Agents whose status is one of ``statuses``."""
        return _or(self.by_status, statuses)  # type: ignore[arg-type]

    def role_mask(self, roles: frozenset[Role]) -> int:
        """Agents whose role is one of ``roles``."""
        return _or(self.by_role, roles)  # type: ignore[arg-type]

    def territory_mask(self, region: str) -> int:
        """Agents with a territory covering ``region`` (the code itself or a parent area)."""
        return _or(self.by_territory, ancestors(region))  # type: ignore[arg-type]

    def language_mask(self, tag: str) -> int:
        """Agents speaking the primary language of ``tag``."""
        return self.by_language.get(primary_language(tag), 0)

    def skill_mask(self, name: str, min_level: int) -> int:
        """Agents with skill ``name`` at ``min_level`` or above."""
        levels = self.skill_at_least.get(name)
        return 0 if levels is None else levels[min(max(min_level, 0), MAX_LEVEL)]

    def licence_mask(
        self, types: tuple[str, ...], location: str, day: date, compacts: CompactView
    ) -> int:
        """Agents holding a licence of one of ``types`` valid at ``location`` on ``day``."""
        key = (types, location, day, compacts)
        with self._lock:
            cached = self._licence_masks.get(key)
        if cached is not None:
            return cached
        mask = 0
        # Invariant: licence_valid_at's verdict reads a licence's type, jurisdiction and
        # multistate, and its expiry only as "before ``day``": licences alike in those four
        # get one verdict, so each such kind is checked once (a roster's 1,000 licences hold a
        # few dozen; the check builds its explanation note every time, ~1 us).
        verdicts: dict[tuple[str, str, bool, bool], bool] = {}
        agents = self.agents
        for kind in set(types):
            for i in self.licensed.get(kind, ()):
                if mask >> i & 1:
                    continue
                for lic in agents[i].licences:
                    if lic.type not in types:
                        continue
                    alike = (lic.type, lic.jurisdiction, lic.multistate, lic.expires_on < day)
                    valid = verdicts.get(alike)
                    if valid is None:
                        valid = licence_valid_at(lic, location, day, compacts)[0]
                        verdicts[alike] = valid
                    if valid:
                        mask |= 1 << i
                        break
        with self._lock:
            self._licence_masks[key] = mask
        return mask


_build_lock = threading.Lock()


def index_for(roster: Roster) -> RosterIndex:
    """The roster's index, built on first use and cached on the roster."""
    index = roster.index_cache
    if isinstance(index, RosterIndex):
        return index
    with _build_lock:
        index = roster.index_cache
        if not isinstance(index, RosterIndex):
            index = RosterIndex.build(roster.agents)
            object.__setattr__(roster, "index_cache", index)  # a cache, not the roster's value
    return index


def roster_after_assignment(roster: Roster, agent_id: str, now: datetime) -> Roster:
    """The roster once ``agent_id`` takes one more case at ``now`` (batch capacity use).

    The index carries over incrementally instead of being rebuilt.
    """
    for i, agent in enumerate(roster.agents):
        if agent.agent_id == agent_id:
            taken = replace(
                agent,
                capacity=Capacity(agent.capacity.max, agent.capacity.active + 1),
                last_assigned_at=now,
            )
            updated = replace(roster, agents=(*roster.agents[:i], taken, *roster.agents[i + 1 :]))
            if isinstance(roster.index_cache, RosterIndex):
                object.__setattr__(
                    updated, "index_cache", roster.index_cache.after_assignment(i, taken)
                )
            return updated
    return roster
