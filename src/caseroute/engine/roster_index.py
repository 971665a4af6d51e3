"""Bitmask indexes over a roster: eligibility as set algebra instead of a loop per agent.

Bit ``i`` of every mask stands for ``roster.agents[i]``. Masks are Python ints, so AND/OR over
thousands of agents are single big-int operations. The index is built once per Roster object
and cached on it (rosters are immutable; the roster cache reuses them across requests). A new
snapshot that holds mostly the same ``Agent`` objects in the same places (the server's roster
cache keeps each agent it has seen) gets a copy of a recent index patched at the places that
changed, its kept agents' bits moved by big-int shifts when agents were added or removed before
them (``index_for``), equal to a fresh build.
"""

from __future__ import annotations

import threading
import weakref
from bisect import bisect_left
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from itertools import compress, filterfalse, repeat
from operator import is_, is_not
from typing import TypeVar

from caseroute.domain.language_tags import extended_language
from caseroute.domain.roster import AGENTS_KEPT, Agent, AgentStatus, Capacity, Role, Roster
from caseroute.domain.territory import RegionAreas, region_areas
from caseroute.engine.licensing import CompactView, licence_valid_at
from caseroute.engine.local_days import LocalDays

MAX_LEVEL = 10
MAX_REMEMBERED = 64
"""Results ``remember`` keeps per index (a resolved need's masks or match); past it, all go.

Bounded for memory: a 5,000-agent roster's match holds ~50 kB (eligible agents, failed masks).
"""
LicenceKey = tuple[tuple[str, ...], str, LocalDays, CompactView]
"""What a licence mask reads besides the agents: the types, the location, the day, the compacts."""
MAX_BASES = 4
"""Indexes ``index_for`` may patch a new roster's index from: the newest it built, held by weak
reference only (an index lives as long as its roster does; this keeps none alive)."""
PROBES = 8
"""Places ``index_for`` compares between a new roster and each base to choose one: a base
sharing the agents at fewer than half of them is not tried."""
PROBE_WINDOW = 8
"""Places either side of where it sat that an agent is looked for in a base, when not at the
same place there counted from the start or from the end (agents added or removed before it
moved it): by ``_closest_base``'s probes and by ``RosterIndex.patched``."""
MAX_CHANGED_SHARE = 4
"""A base is patched when at most 1 place in this many differs (agent replaced, added or
removed). At 1,000 agents a patch of 1 place in 50 took 83 us, 1 in 4 482 us and 1 in 2 882 us,
a fresh build ~925 us: past 1 in 4 the gain shrinks towards nothing."""
MAX_SHIFTS = 4
"""Distinct distances a patched index moves its base's bits by (one agent added mid-roster
makes two: 0 before it, 1 after); each is one more shift and AND per mask."""
MAX_SHIFT_CHANGES = 8
"""Times a patch follows the kept agents to another distance (each login or logout mid-roster
is one). Past it the roster is built afresh: logins and logouts alternating every 8-16 places
made a patch cost 1.8-2.75x a fresh build (every run pays its look-up and its licence lists)."""
MASKS_PER_AGENT_SHIFTED = 2
"""A shifted patch moves every mask once per distance; with more masks x distances than this
many per agent (a roster of ~1,000 distinct skills and territories: ~7,700 masks) a fresh
build is cheaper (2x, measured at 1,000 agents), so the roster is built afresh."""
MAX_CARRIED_LICENCE_MASKS = 8
"""Licence masks a patched index takes over from its base (the base's newest), each patched at
the places that changed; the others are worked out again when asked for."""


_CANTONESE_REGIONS = frozenset({"hk", "mo"})
"""Regions whose Chinese is Cantonese: ``zh-HK`` and ``zh-MO`` name Cantonese, as CLDR and
speech services use them (``yue`` is its own tag)."""


def language_key(tag: str) -> str:
    """What two BCP 47 tags must share for a speaker of one to meet the other (docs/rulesets.md).

    The primary subtag (``en-GB`` and ``en-US`` are both ``en``: the requirement is a spoken
    language, not a dialect), except where the tag itself names another spoken language:

    * an extended language subtag is the language (RFC 5646 2.2.2: ``zh-yue`` is ``yue``,
      ``sgn-ase`` is ``ase``, American Sign Language, not British ``bfi``), where the registry
      lists it after that primary subtag (``domain.language_tags``); any other subtag after
      the primary is not compared (``en-gbr``, no valid tag, is ``en``, not ``gbr``);
    * ``cmn`` (Mandarin) is ``zh``, which names Mandarin unless a region says otherwise;
    * Chinese for Hong Kong or Macau (``zh-HK``, ``zh-Hant-HK``, ``zh-MO``) is Cantonese,
      ``yue``: a Mandarin speaker listed as ``zh-CN`` does not meet it.

    Script is not compared (``zh-Hant`` and ``zh-Hans`` are one spoken language).

    Args:
        tag: A language tag (normalised on input: lower case, ``-``).

    Returns:
        The key: a language subtag.
    """
    parts = tag.lower().split("-")
    key, rest = parts[0], parts[1:]
    if rest and extended_language(key, rest[0]):  # only a registered one: en-gbr is en
        key, rest = rest[0], rest[1:]
    if key == "cmn":
        return "zh"
    if key == "zh":
        if rest and len(rest[0]) == 4 and rest[0].isalpha():  # script
            rest = rest[1:]
        if rest and rest[0] in _CANTONESE_REGIONS:  # region (a singleton such as x- is not)
            return "yue"
    return key


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


@dataclass(slots=True, weakref_slot=True)
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
    repeated: tuple[str, int, int] | None
    """The first agent_id the roster repeats and its two places (``first_repeated_id``)."""
    _licence_masks: dict[LicenceKey, int] = field(default_factory=dict)
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
        by_status, by_role, capacity, by_territory, by_language, levels, licensed = _collect(
            enumerate(agents)
        )
        return cls(
            agents,
            (1 << len(agents)) - 1,
            by_status,
            by_role,
            capacity,
            by_territory,
            by_language,
            _cumulative(levels),
            licensed,
            first_repeated_id(agents),
        )

    def patched(self, agents: tuple[Agent, ...]) -> RosterIndex | None:
        """The index of ``agents``, patched from this one where they differ, or None.

        Equal to ``RosterIndex.build(agents)`` (``tests/engine/test_index_reuse.py``,
        ``tests/engine/test_index_shifted.py``): a place holding an ``Agent`` object this
        index holds takes that object's bits, moved from its place here (an agent added or
        removed before it shifts it), and every other place (an agent replaced by another
        value, or added) gets its new agent's, worked out by the build's own code. The newest
        licence masks come along, patched the same way (their keys hold everything else they
        read).

        Returns:
            None when more than 1 place in ``MAX_CHANGED_SHARE`` differs, or the kept agents
            moved by more than ``MAX_SHIFTS`` distances, ``MAX_SHIFT_CHANGES`` times, or out
            of order, or a shifted patch would move more than ``MASKS_PER_AGENT_SHIFTED``
            masks per agent: build afresh.
        """
        old = self.agents
        n_old, n_new = len(old), len(agents)
        # Invariant: the agents are kept unchanged by their builder (frozen, and their dicts
        # never written after conversion: only rosters marked AGENTS_KEPT get here), so the
        # same object indexes the same wherever it sits.
        aligned = _aligned(old, agents)
        if aligned is None:
            return None
        spans, added, moves = aligned
        if len(moves) > 1 and self._mask_count() * len(moves) > MASKS_PER_AGENT_SHIFTED * n_new:
            return None
        by_status, by_role, capacity, by_territory, by_language, levels, licensed = _collect(
            (i, agents[i]) for i in added
        )
        move = _mover(moves)
        at_least = self.skill_at_least
        fresh_levels = _cumulative(levels)
        skill_at_least: dict[str, list[int]] = {}
        for name in at_least.keys() | fresh_levels.keys():
            merged = [
                move(was) | new
                for was, new in zip(
                    at_least.get(name, _NO_LEVELS), fresh_levels.get(name, _NO_LEVELS), strict=True
                )
            ]
            if merged[0]:  # level 0 holds every agent with the skill
                skill_at_least[name] = merged
        in_place = n_new == n_old and len(moves) == 1 and not moves[0][0]
        index = RosterIndex(
            agents,
            (1 << n_new) - 1,
            _merged(self.by_status, by_status, move),
            _merged(self.by_role, by_role, move),
            move(self.has_capacity) | capacity,
            _merged(self.by_territory, by_territory, move),
            _merged(self.by_language, by_language, move),
            skill_at_least,
            _moved_lists(self.licensed, licensed, spans),
            # The same ids at the same places (kept places hold the same objects): the base's
            # repeat, if any; else worked out afresh (a new id may repeat a kept agent's, and
            # a shift moves the places).
            self.repeated
            if in_place and all(agents[i].agent_id == old[i].agent_id for i in added)
            else first_repeated_id(agents),
        )
        with self._lock:
            carried = list(self._licence_masks.items())[-MAX_CARRIED_LICENCE_MASKS:]
        licence_masks = index._licence_masks
        for key, mask in carried:
            types, location, day, compacts = key
            licence_masks[key] = move(mask) | _licence_bits(
                agents,
                [licensed.get(kind, ()) for kind in set(types)],
                types,
                location,
                day,
                compacts,
            )
        return index

    def _mask_count(self) -> int:
        """How many masks a patch moves (licence masks aside): one big-int shift each."""
        return (
            len(self.by_status)
            + len(self.by_role)
            + len(self.by_territory)
            + len(self.by_language)
            + sum(map(len, self.skill_at_least.values()))
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
            self.repeated,  # same ids in the same order
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

    def territory_mask(self, region: str, areas: RegionAreas | None = None) -> int:
        """Agents with a territory covering ``region``: the code or an area it lies within.

        ``areas`` is ``region``'s areas, worked out once per ruleset and region (``build_need``);
        without it, its areas by the facts alone (sub-codes, ISO 3166-2 parents). One mask per
        area ORed: never a walk per agent.
        """
        within = areas if areas is not None else region_areas(region, {})
        return _or(self.by_territory, within.codes)  # type: ignore[arg-type]

    def language_mask(self, tag: str) -> int:
        """Agents speaking the primary language of ``tag``."""
        return self.by_language.get(language_key(tag), 0)

    def skill_mask(self, name: str, min_level: int) -> int:
        """Agents with skill ``name`` at ``min_level`` or above."""
        levels = self.skill_at_least.get(name)
        return 0 if levels is None else levels[min(max(min_level, 0), MAX_LEVEL)]

    def licence_mask(
        self, types: tuple[str, ...], location: str, day: LocalDays, compacts: CompactView
    ) -> int:
        """Agents holding a licence of one of ``types`` valid at ``location`` on ``day``."""
        key = (types, location, day, compacts)
        with self._lock:
            cached = self._licence_masks.get(key)
        if cached is not None:
            return cached
        mask = _licence_bits(
            self.agents,
            [self.licensed.get(kind, ()) for kind in set(types)],
            types,
            location,
            day,
            compacts,
        )
        with self._lock:
            self._licence_masks[key] = mask
        return mask


_NO_LEVELS = [0] * (MAX_LEVEL + 1)


def first_repeated_id(agents: Sequence[Agent]) -> tuple[str, int, int] | None:
    """The first agent_id met twice walking ``agents``: (id, first place, repeat's place).

    A parsed roster never repeats one (the parsers refuse it), but a ``Roster`` built in code
    may, and the engine keys agents by id (ranking keys, positions, preferences, continuity):
    ``engine.decide`` makes selecting over such a roster an EXCEPTION. Worked out once per
    index build: one set of the ids, ~19 us at 1,000 agents (~2% of a build); the places are
    looked for only when the set is short. A patched index whose changed places keep their
    ids carries its base's result instead.

    Returns:
        None when every id is distinct.
    """
    if len({agent.agent_id for agent in agents}) == len(agents):
        return None
    first: dict[str, int] = {}
    places = ((a.agent_id, first.setdefault(a.agent_id, i), i) for i, a in enumerate(agents))
    return next(place for place in places if place[1] != place[2])


_K = TypeVar("_K")


def _collect(
    placed: Iterable[tuple[int, Agent]],
) -> tuple[
    dict[AgentStatus, int],
    dict[Role, int],
    int,
    dict[str, int],
    dict[str, int],
    dict[str, list[int]],
    dict[str, list[int]],
]:
    """The masks and lists of the agents given with their places (one pass).

    Returns:
        By status, by role, with capacity, by territory, by primary language, by skill the
        mask per exact level 0..10, and by licence type the places holding one (ascending as
        ``placed`` is).
    """
    by_status: dict[AgentStatus, int] = defaultdict(int)
    by_role: dict[Role, int] = defaultdict(int)
    # Agents of a roster repeat a handful of territory and language sets (the roster cache's
    # conversion even shares one object per distinct set, whose hash a frozenset keeps): each
    # agent's bit goes to its set's mask, and each set's mask to its codes' after the loop
    # (a big-int OR per code per agent was ~1/4 of an all-new build).
    by_territories: dict[frozenset[str], int] = defaultdict(int)
    by_languages: dict[frozenset[str], int] = defaultdict(int)
    levels: dict[str, list[int]] = defaultdict(lambda: [0] * (MAX_LEVEL + 1))
    licensed: dict[str, list[int]] = defaultdict(list)
    capacity = 0
    for i, agent in placed:
        bit = 1 << i
        by_status[agent.status] |= bit
        by_role[agent.role] |= bit
        held = agent.capacity
        if held.active < held.max:
            capacity |= bit
        # Parsers build frozensets; an Agent built in code may hold a set or a list.
        codes, tags = agent.territories, agent.languages
        by_territories[codes if type(codes) is frozenset else frozenset(codes)] |= bit
        by_languages[tags if type(tags) is frozenset else frozenset(tags)] |= bit
        for name, level in agent.skills.items():
            levels[name][level] |= bit
        licences = agent.licences
        if len(licences) == 1:  # most holders hold one: no set of one type to build
            licensed[licences[0].type].append(i)
        elif licences:
            for kind in {lic.type for lic in licences}:
                licensed[kind].append(i)
    by_territory: dict[str, int] = defaultdict(int)
    for codes, mask in by_territories.items():
        for code in codes:
            by_territory[code] |= mask
    by_language: dict[str, int] = defaultdict(int)
    for tags, mask in by_languages.items():
        for tag in tags:
            by_language[language_key(tag)] |= mask
    return (
        dict(by_status),
        dict(by_role),
        capacity,
        dict(by_territory),
        dict(by_language),
        dict(levels),
        dict(licensed),
    )


def _cumulative(levels: dict[str, list[int]]) -> dict[str, list[int]]:
    """Per skill, the mask of each exact level made the mask of that level or above."""
    at_least: dict[str, list[int]] = {}
    for name, exact in levels.items():
        cumulative, acc = [0] * (MAX_LEVEL + 1), 0
        for level in range(MAX_LEVEL, -1, -1):
            acc |= exact[level]
            cumulative[level] = acc
        at_least[name] = cumulative
    return at_least


_Span = tuple[int, int, int, set[int]]
"""Base places ``low`` up to ``high`` whose agents sit at their place less ``shift`` in a new
roster, but the places in the set (their agents are not there any more)."""


def _aligned(
    old: tuple[Agent, ...], agents: tuple[Agent, ...]
) -> tuple[list[_Span], list[int], list[tuple[int, int]]] | None:
    """Where ``agents`` hold ``old``'s objects, and the places that hold none of them.

    Place by place first (one identity compare each): the same objects in the same places
    need nothing else. Past ``MAX_CHANGED_SHARE`` that way (an agent added or removed
    mid-roster shifts every later place), runs are followed: from the first place where the
    objects part, the object there is looked for near its place in ``old`` (``_place_near``);
    found, the run goes on at the new shift (one more compare per place), else the place
    holds a new agent.

    Returns:
        The spans of ``old`` whose objects moved by one shift each (ascending), the places
        of ``agents`` holding another agent (ascending), and each shift with the mask of the
        places it fills (one shift of 0 when nothing moved); None when more than 1 place in
        ``MAX_CHANGED_SHARE`` differs, or the objects moved by more than ``MAX_SHIFTS``
        distances, out of order or farther than ``_place_near`` looks.
    """
    n_old, n_new = len(old), len(agents)
    common = min(n_old, n_new)
    changed = list(compress(range(common), map(is_not, old, agents)))
    if (len(changed) + abs(n_new - n_old)) * MAX_CHANGED_SHARE <= n_new:
        keep = ((1 << n_new) - 1) & ~_bits(changed, n_new)
        return [(0, common, 0, set(changed))], [*changed, *range(n_old, n_new)], [(0, keep)]
    budget = n_new // MAX_CHANGED_SHARE
    # Per shift, the places from where it was first followed whose objects part at it.
    parted = {0: changed}
    runs: list[tuple[int, int, int]] = []  # new places start to stop, from start + shift on
    added: list[int] = []
    start = shift = changes = 0
    while start < n_new:
        # Past ``n_old - shift``, ``old`` has no place at this shift.
        stop = max(start, min(n_new, n_old - shift))
        misses = parted.get(shift)
        if misses is None:
            if len(parted) == MAX_SHIFTS:
                return None
            misses = list(
                compress(
                    range(start, stop),
                    map(is_not, agents[start:stop], old[start + shift : stop + shift]),
                )
            )
            parted[shift] = misses
        at = bisect_left(misses, start)
        if at < len(misses):
            stop = misses[at]
        if start < stop:
            runs.append((start, stop, shift))
        if stop == n_new:
            break
        after = stop + 1 + shift
        if after < n_old and stop + 1 < n_new and agents[stop + 1] is old[after]:
            place = None  # one agent replaced, the run goes on: not worth a look-up
        else:
            place = _place_near(old, agents[stop], stop + shift, stop + n_old - n_new)
        if place is None:  # a new agent: the run may go on after it
            added.append(stop)
            start = stop + 1
        else:
            shift, start = place - stop, stop
            changes += 1
        if len(added) > budget or len(runs) > 1 + 2 * budget or changes > MAX_SHIFT_CHANGES:
            return None
    kept = n_new - len(added)
    differing = max(len(added), n_old - kept)
    # Each place added or removed starts at most one run: more means agents moved about.
    if differing * MAX_CHANGED_SHARE > n_new or len(runs) > 1 + 2 * differing:
        return None
    moves: dict[int, int] = {}
    spans: list[_Span] = []
    for start, stop, shift in runs:
        moves[shift] = moves.get(shift, 0) | ((1 << (stop - start)) - 1) << start
        low, high = start + shift, stop + shift
        if spans and spans[-1][2] == shift and spans[-1][1] <= low:
            # The same shift after places replaced: one span, those places' agents dropped.
            gone = spans[-1][3]
            gone.update(range(spans[-1][1], low))
            spans[-1] = (spans[-1][0], high, shift, gone)
        else:
            spans.append((low, high, shift, set()))
    return spans, added, list(moves.items())


def _place_near(held: tuple[Agent, ...], agent: Agent, place: int, from_end: int) -> int | None:
    """Where ``held`` holds ``agent``: at ``from_end``, or within ``PROBE_WINDOW`` of ``place``.

    ``from_end`` is the place counted from the end (any number of agents added or removed
    before it); the window catches a few added or removed before it and others after.
    """
    n = len(held)
    if 0 <= from_end < n and held[from_end] is agent:
        return from_end
    low, high = max(place - PROBE_WINDOW, 0), min(place + PROBE_WINDOW + 1, n)
    return next(compress(range(low, high), map(is_, held[low:high], repeat(agent))), None)


def _mover(moves: list[tuple[int, int]]) -> Callable[[int], int]:
    """The function taking a base mask to the bits it keeps, at their new places."""
    if len(moves) == 1 and moves[0][0] == 0:
        return moves[0][1].__and__  # nothing moved: one AND, no Python frame per mask

    def move(mask: int) -> int:
        out = 0
        for shift, keep in moves:
            out |= (mask >> shift if shift >= 0 else mask << -shift) & keep
        return out

    return move


def _merged(was: dict[_K, int], new: dict[_K, int], move: Callable[[int], int]) -> dict[_K, int]:
    """Each key's mask: its bits ``move`` keeps from ``was``, and ``new``'s; none left empty."""
    out = {key: new_mask for key, new_mask in new.items() if key not in was}
    for key, mask in was.items():
        merged = move(mask) | new.get(key, 0)
        if merged:
            out[key] = merged
    return out


def _moved_lists(
    was: dict[str, list[int]], new: dict[str, list[int]], spans: list[_Span]
) -> dict[str, list[int]]:
    """Each licence type's places: ``was``'s within ``spans``, moved as they say, and ``new``'s.

    Ascending, as a build's. Per span a slice of each type's sorted places (two bisections),
    filtered and moved at C speed; ``sorted`` of the two sorted runs merges them in linear
    time (a delete and an insert per changed place made a patch at 1 place in 4 of a
    50,000-agent roster 2.3x a fresh build).
    """
    out = {kind: new_places for kind, new_places in new.items() if kind not in was}
    for kind, places in was.items():
        kept: list[int] = []
        for low, high, shift, gone in spans:
            first = bisect_left(places, low)
            last = bisect_left(places, high, first)
            if first < last:
                part: Iterable[int] = places[first:last]
                if gone:
                    part = filterfalse(gone.__contains__, part)
                kept += map((-shift).__add__, part) if shift else part
        added = new.get(kind)
        if added:
            kept = sorted(kept + added)
        if kept:
            out[kind] = kept
    return out


def _bits(places: Iterable[int], width: int) -> int:
    """The int with bit ``i`` set for each of ``places`` (each below ``width``).

    Built in a byte buffer, then converted once: setting bits on a Python int one at a time
    copies the whole int each time.
    """
    buf = bytearray((width + 7) // 8)
    for i in places:
        buf[i >> 3] |= 1 << (i & 7)
    return int.from_bytes(buf, "little")


def _licence_bits(
    agents: tuple[Agent, ...],
    candidates: list[Sequence[int]],
    types: tuple[str, ...],
    location: str,
    day: LocalDays,
    compacts: CompactView,
) -> int:
    """Which agents at ``candidates``' places hold a licence of one of ``types`` valid there.

    Valid at ``location`` on ``day``; a place may come more than once.
    """
    mask = 0
    # Invariant: licence_valid_at's verdict reads a licence's type, jurisdiction and
    # multistate, and its expiry only as "before ``day``": licences alike in those four
    # get one verdict, so each such kind is checked once (a roster's 1,000 licences hold a
    # few dozen; the check builds its explanation note every time, ~1 us).
    verdicts: dict[tuple[str, str, bool, bool], bool] = {}
    latest_at: dict[str, date] = {}
    for places in candidates:
        for i in places:
            if mask >> i & 1:
                continue
            for lic in agents[i].licences:
                if lic.type not in types:
                    continue
                latest = latest_at.get(lic.jurisdiction)
                if latest is None:  # the later of the patient's and the issuer's last date
                    latest = latest_at[lic.jurisdiction] = max(
                        day.latest, day.at(lic.jurisdiction).latest
                    )
                alike = (lic.type, lic.jurisdiction, lic.multistate, lic.expires_on < latest)
                valid = verdicts.get(alike)
                if valid is None:
                    valid = licence_valid_at(lic, location, day, compacts)[0]
                    verdicts[alike] = valid
                if valid:
                    mask |= 1 << i
                    break
    return mask


_build_lock = threading.Lock()
_bases: list[weakref.ref[RosterIndex]] = []
"""``MAX_BASES`` weak references to the indexes ``index_for`` built last, newest first."""


def index_for(roster: Roster) -> RosterIndex:
    """The roster's index, built on first use and cached on the roster.

    A roster of kept agents (``domain.roster.with_kept_agents``: the server's roster cache) is
    built by patching a recent one's index (``RosterIndex.patched``) when it shares the agents
    at most places, else afresh: the same index either way. Any other roster is built afresh.
    """
    index = roster.index_cache
    if isinstance(index, RosterIndex):
        return index
    with _build_lock:
        index = roster.index_cache
        if not isinstance(index, RosterIndex):
            # Only a roster of kept agents is patched, or becomes a base: any other caller may
            # still write to an agent's dicts, so the same object need not index the same.
            if index is AGENTS_KEPT:
                index = _index_agents(roster.agents)
            else:
                index = RosterIndex.build(roster.agents)
            object.__setattr__(roster, "index_cache", index)  # a cache, not the roster's value
    return index


def _index_agents(agents: tuple[Agent, ...]) -> RosterIndex:
    """``agents``' index, patched from the base sharing most probed places or built afresh.

    Called under ``_build_lock``, which guards ``_bases``.
    """
    index = None
    base = _closest_base(agents)
    if base is not None:
        index = base.patched(agents)
    if index is None:
        index = RosterIndex.build(agents)
    _bases[:] = [weakref.ref(index), *(ref for ref in _bases if ref() is not None)][:MAX_BASES]
    return index


def _closest_base(agents: tuple[Agent, ...]) -> RosterIndex | None:
    """The live base holding the same agent objects at most of ``PROBES`` places, if half.

    A probed agent counts where the base holds it at the same place, counted from the start
    or from the end, or (``_place_near``) a few places off: agents added or removed before
    it moved it (``RosterIndex.patched`` follows them). A base holding none of the probed
    agents at their places from the start or the end, nor one place off either way, is not
    searched further: a stranger's (another roster's) base costs a few compares, not a
    look-up each.
    """
    best, best_hits = None, 0
    n_new = len(agents)
    places = {n_new * k // PROBES for k in range(PROBES)} if n_new else set()
    for ref in _bases:
        base = ref()
        if base is None or not base.agents:
            continue
        held = base.agents
        n_old, shift = len(held), len(held) - n_new
        missed = [
            i
            for i in places
            if not (i < n_old and held[i] is agents[i])
            and not (0 <= i + shift < n_old and held[i + shift] is agents[i])
        ]
        if len(missed) == len(places) and not any(
            (0 < i <= n_old and held[i - 1] is agents[i])
            or (i + 1 < n_old and held[i + 1] is agents[i])
            or (0 < i + shift <= n_old and held[i + shift - 1] is agents[i])
            or (0 <= i + shift + 1 < n_old and held[i + shift + 1] is agents[i])
            for i in places
        ):
            continue  # not even one place off (from the start or the end): a stranger's base
        hits = len(places) - len(missed)
        hits += sum(_place_near(held, agents[i], i, i + shift) is not None for i in missed)
        if hits * 2 >= len(places) and hits > best_hits:
            best, best_hits = base, hits
            if hits == len(places):
                break  # no later (older) base can hold more
    return best


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
