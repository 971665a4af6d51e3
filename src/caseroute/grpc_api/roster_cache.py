"""The server's parsed-roster cache: rosters seen before, by their bytes and by their sha256.

One ``RosterCache`` per server, made by ``build_server`` from its settings and held by the
``RoutingServicer``; ``wire.convert``'s command builders read it through the ``RosterStore``
protocol and stay pure converters.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from dataclasses import dataclass

from caseroute.domain.fingerprint import RosterFingerprint, fingerprint_roster
from caseroute.domain.limits import DEFAULT_LIMITS, InputLimits
from caseroute.v1 import routing_pb2 as pb
from caseroute.wire.convert import KnownRoster, roster_from_proto

AGENT_OVERHEAD_BYTES = 1500
"""Estimated memory of one parsed agent beyond its serialized bytes (measured: ~1.6 KB)."""
BYTES_PER_WIRE_BYTE = 3
"""Estimated memory per serialized byte of a parsed roster (strings, attribute values)."""
MIB = 1024 * 1024
DEFAULT_MAX_AGENTS = 100_000
"""Agents the cache keeps by default (``--roster-cache-agents``)."""
DEFAULT_MAX_BYTES = 256 * MIB
"""Estimated bytes the cache keeps by default (``--roster-cache-mb 256``)."""


def estimate_roster_bytes(agents: int, wire_bytes: int) -> int:
    """Estimated memory a parsed roster holds: measured with tracemalloc on typical rosters.

    Args:
        agents: Agents in the roster.
        wire_bytes: Size of the serialized Roster message.

    Returns:
        Estimated bytes (within about 20% for rosters with and without many attributes).
    """
    return AGENT_OVERHEAD_BYTES * agents + BYTES_PER_WIRE_BYTE * wire_bytes


@dataclass(frozen=True, slots=True)
class _Entry:
    """One cached roster, its fingerprint and its estimated size."""

    known: KnownRoster
    size: int
    sha_key: tuple[str, InputLimits]


class RosterCache:
    """Parsed rosters with their fingerprints, least recently used first out.

    Orchestrators send the same roster snapshot for many cases; a hit skips validation,
    conversion and hashing. Entries are found two ways: by the sha256 of the Roster message's
    deterministic bytes (a request that sends the roster) and by the roster's content hash,
    ``roster_sha256`` (a request that sends only ``roster_sha256``). Rosters are immutable,
    so sharing one between concurrent calls is safe. Invalid rosters raise before they are
    stored. Bounded twice: by agents and by estimated memory (``estimate_roster_bytes``);
    past either budget the least recently used rosters go, and a roster bigger than a whole
    budget is not cached at all. Either budget at 0 turns it off. Both keys include the limits
    the roster was validated against, so a stricter server never trusts a roster a looser one
    accepted.
    """

    def __init__(
        self, max_agents: int = DEFAULT_MAX_AGENTS, max_bytes: int = DEFAULT_MAX_BYTES
    ) -> None:
        """Keep rosters within ``max_agents`` agents and ``max_bytes`` estimated bytes."""
        self.max_agents = max_agents
        self.max_bytes = max_bytes
        self._entries: OrderedDict[tuple[bytes, InputLimits], _Entry] = OrderedDict()
        self._by_sha: dict[tuple[str, InputLimits], tuple[bytes, InputLimits]] = {}
        self._agents = 0
        self._bytes = 0
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0
        self.evictions = 0

    @property
    def cached_bytes(self) -> int:
        """Estimated bytes held by the cached rosters."""
        return self._bytes

    @property
    def cached_agents(self) -> int:
        """Agents in the cached rosters."""
        return self._agents

    def __len__(self) -> int:
        """Rosters cached."""
        return len(self._entries)

    def configure(self, *, max_agents: int, max_bytes: int) -> None:
        """Set both budgets, evicting what no longer fits."""
        with self._lock:
            self.max_agents, self.max_bytes = max_agents, max_bytes
            self._evict()

    def _evict(self) -> None:
        while self._entries and (self._agents > self.max_agents or self._bytes > self.max_bytes):
            key, evicted = self._entries.popitem(last=False)
            if self._by_sha.get(evicted.sha_key) == key:
                del self._by_sha[evicted.sha_key]
            self._agents -= len(evicted.known.roster.agents)
            self._bytes -= evicted.size
            self.evictions += 1

    def parse(
        self, msg: pb.Roster, path: str = "roster", *, limits: InputLimits = DEFAULT_LIMITS
    ) -> KnownRoster:
        """The domain roster for a message and its fingerprint, cached when the bytes were seen.

        Raises:
            RequestError: If the roster is invalid (never cached).
        """
        if self.max_agents == 0 or self.max_bytes == 0:
            roster = roster_from_proto(msg, path, limits=limits)
            return KnownRoster(roster, fingerprint_roster(roster, keep_json=True))
        wire = msg.SerializeToString(deterministic=True)
        key = (hashlib.sha256(wire).digest(), limits)
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None:
                self._entries.move_to_end(key)
                self.hits += 1
                return entry.known
            self.misses += 1
        roster = roster_from_proto(msg, path, limits=limits)
        fingerprint: RosterFingerprint = fingerprint_roster(roster, keep_json=True)
        known = KnownRoster(roster, fingerprint)
        size = estimate_roster_bytes(len(roster.agents), len(wire))
        with self._lock:
            fits = len(roster.agents) <= self.max_agents and size <= self.max_bytes
            if key not in self._entries and fits:
                sha_key = (fingerprint.sha256, limits)
                self._entries[key] = _Entry(known, size, sha_key)
                self._by_sha[sha_key] = key
                self._agents += len(roster.agents)
                self._bytes += size
                self._evict()
        return known

    def find(
        self, roster_sha256: str, *, limits: InputLimits = DEFAULT_LIMITS
    ) -> KnownRoster | None:
        """The cached roster whose ``roster_sha256`` this is, validated under ``limits``, or None.

        A hit counts as a hit and makes the roster the most recently used; a miss counts as a
        miss (the caller is then asked to send the roster).
        """
        with self._lock:
            key = self._by_sha.get((roster_sha256, limits))
            if key is None:
                self.misses += 1
                return None
            self._entries.move_to_end(key)
            self.hits += 1
            return self._entries[key].known
