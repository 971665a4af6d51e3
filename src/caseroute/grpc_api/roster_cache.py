"""The server's parsed-roster cache: rosters seen before, by their bytes and by their sha256.

One ``RosterCache`` per server, made by ``build_server`` from its settings and held by the
``RoutingServicer``; ``wire.convert``'s command builders read it through the ``RosterStore``
protocol and stay pure converters.
"""

from __future__ import annotations

import hashlib
import threading
from collections import Counter, OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field

from google.protobuf.message import DecodeError

from caseroute.domain.fingerprint import (
    agent_digest,
    agent_json,
    fingerprint_agent_texts,
    fingerprint_roster,
)
from caseroute.domain.limits import DEFAULT_LIMITS, InputLimits
from caseroute.domain.roster import Agent, Roster, with_kept_agents
from caseroute.v1 import routing_pb2 as pb
from caseroute.wire import fast
from caseroute.wire.convert import KnownRoster, RosterStore, roster_from_proto
from caseroute.wire.roster_bytes import roster_bytes

AGENT_OVERHEAD_BYTES = 880
"""Estimated memory of one cached agent beyond its serialized bytes: the value, its canonical
JSON, digest and message key (tracemalloc, all-new rosters of 100, 300 and 1,000 agents)."""
BYTES_PER_WIRE_BYTE = 6
"""Estimated memory per serialized byte of a cached roster: the kept message bytes, the JSON text
and the strings and attribute values it holds (same measurement; a line through 1,333 bytes per
agent at 76 wire bytes and 2,461 at 266, ``tests/grpc_api/test_roster_cache_estimate.py``'s
rosters without and with 5 attributes). Since the audit blob is stored in chunks the
fingerprint keeps the agents' own texts until the blob is written, not a joined copy of them
(the constants were 1,450 and 7 with that copy)."""
MIB = 1024 * 1024
DEFAULT_MAX_AGENTS = 100_000
"""Agents the cache keeps by default (``--roster-cache-agents``)."""
DEFAULT_MAX_BYTES = 256 * MIB
"""Estimated bytes the cache keeps by default (``--roster-cache-mb 256``)."""
MAX_SENT_FORMS = 4
"""Sent byte forms kept per cached roster (``RosterCache.find_sent``): senders that order a
map differently send the same roster as different bytes; past this, the oldest form goes."""
MANY_NEW_AGENTS = 4
"""``RosterCache.parse_sent`` parses a sent roster whole once more than 1 agent in this many is
new (one parse and one serialisation of the roster beat one of each per new agent)."""
PROBE_BYTES = 16
"""Bytes read at each of a sent form's three probe points (start, middle, end): with its
length and the limits, the key under which ``RosterCache.find_sent_at`` finds candidate forms
without hashing a whole roster."""
PROBE_CANDIDATES = 4
"""Forms ``find_sent_at`` compares in place under one probe key; past this it looks the
bytes up by their whole value, as ``find_sent`` does."""
SENT_FORM_OVERHEAD_BYTES = 300
"""Estimated memory of one kept sent form beyond its bytes: the bytes object's header, its
``find_sent`` key and entry, and its probe key (three 16-byte slices, a tuple, a list) and
entry (tracemalloc: 264-300 per form over 80-8,000 forms of two-agent rosters, by how full the
dicts happen to be; ``tests/grpc_api/test_roster_cache_sent_index.py``)."""

_Probe = tuple[int, bytes, bytes, bytes, InputLimits]


def _probe(data: bytes, start: int, stop: int, limits: InputLimits) -> _Probe:
    """The probe key of the form ``data[start:stop]`` under ``limits`` (see ``PROBE_BYTES``)."""
    # Each point is clipped to the form, so a short form reads the same in a request as kept.
    middle = max(start, (start + stop - PROBE_BYTES) // 2)
    return (
        stop - start,
        data[start : min(start + PROBE_BYTES, stop)],
        data[middle : min(middle + PROBE_BYTES, stop)],
        data[max(start, stop - PROBE_BYTES) : stop],
        limits,
    )


def sent_form_bytes(sent: bytes) -> int:
    """Estimated memory a kept sent form holds: its bytes and ``SENT_FORM_OVERHEAD_BYTES``."""
    return len(sent) + SENT_FORM_OVERHEAD_BYTES


def estimate_roster_bytes(agents: int, wire_bytes: int) -> int:
    """Estimated memory a parsed roster holds: measured with tracemalloc on typical rosters.

    Args:
        agents: Agents in the roster.
        wire_bytes: Size of the serialized Roster message.

    Returns:
        Estimated bytes (within about 5% of tracemalloc's count for the benchmark's rosters
        with and without attributes; the former constants, 1,500 + 3 per byte, undercounted by
        17-34% once agents were kept with their JSON).
    """
    return AGENT_OVERHEAD_BYTES * agents + BYTES_PER_WIRE_BYTE * wire_bytes


KnownAgent = tuple[Agent, str, bytes]
"""One converted agent as a roster cache keeps it: the domain value (``wire.fast``'s conversion
of its message), its canonical JSON (``fingerprint.agent_json``) and that text's
``fingerprint.agent_digest``. A plain tuple: one is made per new agent of a cold roster, and a
frozen dataclass cost ~0.65 us more each."""

_AGENTS_TAG = (pb.Roster.DESCRIPTOR.fields_by_name["agents"].number << 3) | 2
"""The wire tag of ``Roster.agents`` (a length-delimited field)."""


def agent_message_bytes(wire: bytes) -> list[bytes] | None:
    """Each Agent message's bytes, cut from its Roster message's serialisation, in order.

    The deterministic serialisation of a Roster holds each agent's deterministic serialisation
    whole (a length-delimited field), so cutting them out costs ~0.2 us per agent where
    serialising each agent again cost ~1 us.

    Returns:
        The agents' bytes, or None if ``wire`` holds a field that is not length-delimited (a
        newer or odd sender's unknown field): the caller then serialises each agent.
    """
    out = []
    i, end = 0, len(wire)
    try:
        while i < end:
            # One-byte tags and lengths read inline (every tag here; an agent under 128
            # bytes): a call of _varint per varint was half of the cut's time.
            tag = wire[i]
            if tag < 0x80:
                i += 1
            else:
                tag, i = _varint(wire, i)
            if tag & 7 != 2:
                return None
            size = wire[i]
            if size < 0x80:
                i += 1
            else:
                size, i = _varint(wire, i)
            if tag == _AGENTS_TAG:
                out.append(wire[i : i + size])
            i += size
    except IndexError:  # pragma: no cover - protobuf's own output is well formed
        return None
    return out


_HEADER_TAGS = (
    (pb.Roster.DESCRIPTOR.fields_by_name["snapshot_id"].number << 3) | 2,
    (pb.Roster.DESCRIPTOR.fields_by_name["taken_at"].number << 3) | 2,
)
"""The wire tags of the Roster fields before ``agents``, in field-number order."""
_MAX_LENGTH_BYTES = 5
"""The longest varint of a length protobuf writes (a length under 2**32)."""


def sent_layout(sent: bytes) -> tuple[int, list[bytes]] | None:
    """Where a sent Roster's agents begin, and each agent's bytes, if laid out as protobuf's own.

    The deterministic serialisation of a Roster writes ``snapshot_id`` and ``taken_at`` (each
    at most once, in that order), then each agent as tag, minimal length and bytes, and
    nothing after. Bytes laid out otherwise (another order, a repeated or unknown field, a
    longer varint than needed, a length past the end) get None: the caller parses them whole.
    That the header and each agent are themselves deterministic is for the caller to check.

    Returns:
        ``(start, agents)``: ``sent[:start]`` is the header, ``agents`` each Agent's bytes.
    """
    i, end = 0, len(sent)
    try:
        for tag in _HEADER_TAGS:
            if i < end and sent[i] == tag:
                size, i = _length(sent, i + 1)
                i += size
        start = i
        out = []
        while i < end:
            if sent[i] != _AGENTS_TAG:
                return None
            size = sent[i + 1]
            if size < 0x80:
                i += 2
            else:
                size, i = _length(sent, i + 1)
            out.append(sent[i : i + size])
            i += size
    except (IndexError, ValueError):
        return None
    if i != end or start > end:
        return None
    return start, out


def _length(data: bytes, i: int) -> tuple[int, int]:
    """The minimally encoded varint length at ``data[i]`` and the index after it.

    Raises:
        ValueError: If it is longer than needed or than ``_MAX_LENGTH_BYTES``.
        IndexError: If it runs past the end.
    """
    value, shift, first = 0, 0, i
    while True:
        byte = data[i]
        i += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            if (byte == 0 and i - first > 1) or i - first > _MAX_LENGTH_BYTES:
                raise ValueError
            return value, i
        shift += 7


def _varint(wire: bytes, i: int) -> tuple[int, int]:
    """The varint at ``wire[i]`` and the index after it (callers read one-byte varints inline)."""
    value, shift = 0, 0
    while True:
        byte = wire[i]
        i += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, i
        shift += 7


def _keepable(agent: Agent) -> bool:
    """Whether ``agent`` is the value its Roster-message form converts to (``keep_loaded``)."""
    return all(type(value) is not int for value in agent.attributes.values())


def _known_agent(agent: Agent) -> KnownAgent:
    """``agent``, its canonical JSON and that text's digest."""
    text = agent_json(agent)
    return agent, text, agent_digest(text)


def _merged(found: list[KnownAgent | None], made: list[KnownAgent]) -> list[KnownAgent]:
    """``found`` with each None replaced by the next of ``made``, in order."""
    new = iter(made)
    return [next(new) if known is None else known for known in found]


@dataclass(frozen=True, slots=True)
class _Entry:
    """One cached roster, its fingerprint, its estimated size and its agents' message bytes.

    ``sent`` holds the byte forms the roster arrived in (``RosterCache.find_sent``), oldest
    first, at most ``MAX_SENT_FORMS``; each counts in the cache's bytes beside ``size`` as
    ``sent_form_bytes`` (its bytes and its index).
    """

    known: KnownRoster
    size: int
    sha_key: tuple[str, InputLimits]
    agent_keys: tuple[bytes, ...]
    limits: InputLimits
    sent: list[bytes] = field(default_factory=list)


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

    A roster loaded from the decision log by its ``roster_sha256`` (``keep_loaded``) is
    cached as the same roster sent would be: under its Roster message's key and with its
    agents kept, the message's bytes written from the parsed roster (``wire.roster_bytes``).

    A third way finds a roster without parsing it: by the roster field's bytes exactly as a
    request carried them (``find_sent``; the server cuts them from the request unparsed,
    ``wire.request_bytes``). Those bytes are not canonical (one sender orders a map
    differently from another), so they are only an alias of an entry: ``parse`` adds one when
    told the bytes a roster came in (``sent``), after finding or storing the roster by its
    deterministic bytes. The dict is keyed by the bytes themselves, so equal keys are equal
    bytes (no collision question). At most ``MAX_SENT_FORMS`` forms per roster, their bytes
    counted in the memory budget, dropped with the roster.

    The agents of the cached rosters are also kept one by one, by their Agent message's
    deterministic bytes and the limits (``KnownAgent``: the value, its canonical JSON and its
    digest), so a new snapshot of agents already seen (a roster re-sent with a few changes)
    converts and encodes only the agents whose messages changed. An agent is kept exactly as
    long as a cached roster holds its message (counted per roster), so it lives within the
    rosters' budgets and leaves with the last of them; only agents of a roster that was
    accepted whole are kept (an invalid roster, and every agent in it, never is). Its value
    depends only on its message and the limits, so a kept agent is the value a conversion
    would give again (``tests/grpc_api/test_agent_cache.py``).
    """

    def __init__(
        self, max_agents: int = DEFAULT_MAX_AGENTS, max_bytes: int = DEFAULT_MAX_BYTES
    ) -> None:
        """Keep rosters within ``max_agents`` agents and ``max_bytes`` estimated bytes."""
        self.max_agents = max_agents
        self.max_bytes = max_bytes
        self._entries: OrderedDict[tuple[bytes, InputLimits], _Entry] = OrderedDict()
        # Every cached wire form of one content, oldest first: a roster sent with an unknown
        # field is cached apart from the same roster without it, and evicting one form must
        # leave the other found by its roster_sha256.
        self._by_sha: dict[tuple[str, InputLimits], list[tuple[bytes, InputLimits]]] = {}
        self._by_sent: dict[tuple[bytes, InputLimits], tuple[bytes, InputLimits]] = {}
        # The same forms by probe key (_probe): found by a few bytes, then compared in place.
        self._by_probe: dict[_Probe, list[bytes]] = {}
        # Per limits: kept agents by message bytes, and how many cached rosters hold each.
        self._kept: dict[InputLimits, dict[bytes, KnownAgent]] = {}
        self._holders: dict[InputLimits, Counter[bytes]] = {}
        self._agents = 0
        self._bytes = 0
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0
        self.evictions = 0
        self.agent_hits = 0
        self.agent_misses = 0

    @property
    def cached_bytes(self) -> int:
        """Estimated bytes held by the cached rosters."""
        return self._bytes

    @property
    def cached_agents(self) -> int:
        """Agents in the cached rosters."""
        return self._agents

    @property
    def known_agents(self) -> int:
        """Distinct agent messages kept (under any limits) for the next snapshots."""
        return sum(len(kept) for kept in self._kept.values())

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
            forms = self._by_sha[evicted.sha_key]
            forms.remove(key)
            if not forms:
                del self._by_sha[evicted.sha_key]
            self._agents -= len(evicted.known.roster.agents)
            self._bytes -= evicted.size
            for sent in evicted.sent:
                self._forget_sent(sent, evicted.limits)
                self._bytes -= sent_form_bytes(sent)
            self.evictions += 1
            self._release_agents(evicted)

    def _hold_agents(self, entry: _Entry, agents: list[KnownAgent]) -> None:
        """Count ``entry``'s agents as held by one more roster (under the lock)."""
        # dict.update and Counter.update run in C: ~0.1 us per agent of a cold roster.
        self._kept.setdefault(entry.limits, {}).update(zip(entry.agent_keys, agents, strict=True))
        self._holders.setdefault(entry.limits, Counter()).update(entry.agent_keys)

    def _release_agents(self, entry: _Entry) -> None:
        """One roster fewer holds ``entry``'s agents; those no roster holds go (under the lock)."""
        if not entry.agent_keys:
            return
        kept, holders = self._kept[entry.limits], self._holders[entry.limits]
        # One pass (Counter.subtract, then a pass for the zeros, cost 0.8x more; /tmp timing):
        # a roster's agent keys are distinct (a roster whose agents share an id keeps none).
        for key in entry.agent_keys:
            held = holders[key] - 1
            if held:
                holders[key] = held
            else:
                del holders[key], kept[key]
        if not kept:
            del self._kept[entry.limits], self._holders[entry.limits]

    def _remember_sent(self, key: tuple[bytes, InputLimits], entry: _Entry, sent: bytes) -> None:
        """Find ``entry`` by ``sent`` too, its oldest form dropped past the bound (under the lock).

        A form that would make the roster bigger than the whole memory budget is not kept (the
        roster stays cached, found by its deterministic bytes).
        """
        sent_key = (sent, entry.limits)
        if sent_key in self._by_sent:
            return  # another call with these bytes raced this one to the same roster
        full = len(entry.sent) >= MAX_SENT_FORMS
        kept = entry.sent[1:] if full else entry.sent
        if entry.size + sum(map(sent_form_bytes, kept)) + sent_form_bytes(sent) > self.max_bytes:
            return
        if full:
            oldest = entry.sent.pop(0)
            self._forget_sent(oldest, entry.limits)
            self._bytes -= sent_form_bytes(oldest)
        entry.sent.append(sent)
        self._by_sent[sent_key] = key
        self._by_probe.setdefault(_probe(sent, 0, len(sent), entry.limits), []).append(sent)
        self._bytes += sent_form_bytes(sent)
        self._evict()

    def _forget_sent(self, sent: bytes, limits: InputLimits) -> None:
        """Find no roster by the form ``sent`` any more (under the lock)."""
        del self._by_sent[(sent, limits)]
        probe = _probe(sent, 0, len(sent), limits)
        forms = self._by_probe[probe]
        forms.remove(sent)
        if not forms:
            del self._by_probe[probe]

    def find_sent(self, sent: bytes, *, limits: InputLimits = DEFAULT_LIMITS) -> KnownRoster | None:
        """The cached roster that arrived before as exactly these Roster message bytes, or None.

        ``sent`` is a request's roster field as the caller serialised it, unparsed. A hit counts
        as a hit and makes the roster the most recently used; a miss counts nothing (the caller
        then parses the roster with ``parse``, which counts it, and passes ``sent`` along so
        the next request with these bytes is found here).
        """
        with self._lock:
            key = self._by_sent.get((sent, limits))
            if key is None:
                return None
            self._entries.move_to_end(key)
            self.hits += 1
            return self._entries[key].known

    def find_sent_at(
        self, data: bytes, start: int, stop: int, *, limits: InputLimits = DEFAULT_LIMITS
    ) -> KnownRoster | None:
        """``find_sent(data[start:stop])`` without copying or hashing those bytes.

        A request's roster field is found by a probe (its length and 16 bytes at its start,
        middle and end) and then compared in place with the kept form (a memcmp, ~2 us per
        110 kB, where slicing and hashing it cost ~25-50 us). When more than
        ``PROBE_CANDIDATES`` kept forms share the probe (snapshots differing away from the
        probe points), the bytes are sliced and looked up whole, as ``find_sent`` does; when
        none does, it is a miss at once. Counted as ``find_sent`` counts.
        """
        with self._lock:
            forms = self._by_probe.get(_probe(data, start, stop, limits))
            if forms is None:
                return None
            if len(forms) > PROBE_CANDIDATES:
                key = self._by_sent.get((data[start:stop], limits))
            else:
                # Invariant: each form has the probe's length, so a prefix match is equality.
                same = [form for form in forms if data.startswith(form, start)]
                # A kept form's hash is cached, so this lookup does not read its bytes again.
                key = self._by_sent[(same[0], limits)] if same else None
            if key is None:
                return None
            self._entries.move_to_end(key)
            self.hits += 1
            return self._entries[key].known

    def parse(
        self,
        msg: pb.Roster,
        path: str = "roster",
        *,
        limits: InputLimits = DEFAULT_LIMITS,
        sent: bytes | None = None,
    ) -> KnownRoster:
        """The domain roster for a message and its fingerprint, cached when the bytes were seen.

        Args:
            msg: The Roster message.
            path: Its field path, for errors.
            limits: The limits to validate it under.
            sent: The bytes ``msg`` was parsed from, as sent; when given and the roster is (or
                now gets) cached, ``find_sent`` finds it by them from now on.

        Raises:
            RequestError: If the roster is invalid (never cached).
        """
        if self.max_agents == 0 or self.max_bytes == 0:
            roster = roster_from_proto(msg, path, limits=limits)
            return KnownRoster(roster, fingerprint_roster(roster, keep_texts=True))
        wire = msg.SerializeToString(deterministic=True)
        key = (hashlib.sha256(wire).digest(), limits)
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None:
                self._entries.move_to_end(key)
                self.hits += 1
                if sent is not None:
                    self._remember_sent(key, entry, sent)
                return entry.known
            self.misses += 1
        known, agent_keys, agents = self._convert(msg, wire, path, limits)
        self._store(key, known, agent_keys, agents, len(wire), sent)
        return known

    def _store(
        self,
        key: tuple[bytes, InputLimits],
        known: KnownRoster,
        agent_keys: tuple[bytes, ...],
        agents: list[KnownAgent],
        wire_bytes: int,
        sent: bytes | None,
    ) -> None:
        """Cache a roster just converted under ``key``, if it fits (and no other call did)."""
        roster = known.roster
        limits = key[1]
        size = estimate_roster_bytes(len(roster.agents), wire_bytes)
        with self._lock:
            fits = len(roster.agents) <= self.max_agents and size <= self.max_bytes
            if key not in self._entries and fits:
                sha_key = (known.fingerprint.sha256, limits)
                entry = _Entry(known, size, sha_key, agent_keys, limits)
                self._entries[key] = entry
                self._by_sha.setdefault(sha_key, []).append(key)
                self._agents += len(roster.agents)
                self._bytes += size
                if agent_keys:
                    self._hold_agents(entry, agents)
                self._evict()
                # Invariant: the new entry is still cached (it fits alone and is evicted last).
                if sent is not None:
                    self._remember_sent(key, entry, sent)

    def parse_sent(
        self, sent: bytes, *, limits: InputLimits = DEFAULT_LIMITS
    ) -> KnownRoster | None:
        """A roster ``find_sent`` missed, read from the bytes it was sent as; None: parse whole.

        ``parse`` of ``pb.Roster.FromString(sent)`` with ``sent`` given, without parsing or
        serialising the agents already kept: when ``sent`` is laid out as protobuf's
        deterministic serialisation (``sent_layout``), each agent's bytes are looked up among
        the kept agents as they lie; only the header and the new agents are parsed, and each
        is checked to serialise deterministically to the very bytes sent (so ``sent`` is the
        roster's deterministic serialisation, and its sha256 the key ``parse`` would use).
        When more than 1 agent in ``MANY_NEW_AGENTS`` is new, the whole roster is parsed once
        and serialised once to check that instead.

        Anything else gives None and counts nothing: bytes laid out otherwise or not
        deterministic (a sender ordering a map its own way), bytes that do not parse, a cache
        turned off, more agents than ``limits`` allow, and a roster the fast path doubts
        (``fast.Doubt``): the caller then parses the request whole and calls ``parse``, whose
        strict path names each bad field. A roster given is the one ``parse`` would give,
        counted and cached as ``parse`` counts and caches it
        (``tests/grpc_api/test_cold_sent_roster.py``).
        """
        if self.max_agents == 0 or self.max_bytes == 0:
            return None
        layout = sent_layout(sent)
        if layout is None or len(layout[1]) > limits.max_agents:
            return None
        start, cut = layout
        keys = tuple(cut)
        with self._lock:
            kept = self._kept.get(limits)
            found: list[KnownAgent | None] = (
                [kept.get(k) for k in keys] if kept else [None] * len(keys)
            )
        missing = [i for i, known in enumerate(found) if known is None]
        whole = len(missing) * MANY_NEW_AGENTS > len(keys)
        try:
            if whole:
                header = pb.Roster.FromString(sent)
                if header.SerializeToString(deterministic=True) != sent:
                    return None
                new: Sequence[pb.Agent] = header.agents
            else:
                header = pb.Roster.FromString(sent[:start])
                if header.SerializeToString(deterministic=True) != sent[:start]:
                    return None
                new = [pb.Agent.FromString(keys[i]) for i in missing]
                for agent, i in zip(new, missing, strict=True):
                    if agent.SerializeToString(deterministic=True) != keys[i]:
                        return None
        except DecodeError:
            return None
        key = (hashlib.sha256(sent).digest(), limits)
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None:  # cached, but no longer found by these bytes
                self._entries.move_to_end(key)
                self.hits += 1
                self._remember_sent(key, entry, sent)
                return entry.known
        try:
            agents = (
                fast.known_agents(new, found, limits)
                if whole
                else _merged(found, fast.known_agents_from_proto(new, limits))
            )
            values, texts, digests = zip(*agents, strict=True) if agents else ((), (), ())
            roster = with_kept_agents(fast.roster_with_agents(header, values, limits))
        except fast.Doubt:
            return None  # not plainly valid: the strict path decides, and names each bad field
        fingerprint = fingerprint_agent_texts(roster, texts, digests, keep_texts=True)
        known = KnownRoster(roster, fingerprint)
        with self._lock:
            self.misses += 1
            self.agent_hits += len(keys) - len(missing)
            self.agent_misses += len(missing)
        self._store(key, known, keys, agents, len(sent), sent)
        return known

    def _convert(
        self, msg: pb.Roster, wire: bytes, path: str, limits: InputLimits
    ) -> tuple[KnownRoster, tuple[bytes, ...], list[KnownAgent]]:
        """A roster not cached: kept agents reused, the others converted, encoded and hashed.

        Returns:
            The roster and its fingerprint, each agent's message bytes and ``KnownAgent``
            (both empty when the roster went through the strict path: nothing is kept then).

        Raises:
            RequestError: If the roster is invalid.
        """
        agent_msgs = msg.agents
        if len(agent_msgs) <= limits.max_agents:
            cut = agent_message_bytes(wire)
            if cut is None or len(cut) != len(agent_msgs):
                cut = [a.SerializeToString(deterministic=True) for a in agent_msgs]
            keys = tuple(cut)
            with self._lock:
                kept = self._kept.get(limits)
                found: list[KnownAgent | None] = (
                    [kept.get(k) for k in keys] if kept else [None] * len(keys)
                )
                missing = found.count(None)
                self.agent_hits += len(keys) - missing
                self.agent_misses += missing
            try:
                agents = self._known_agents(agent_msgs, found, limits)
                values, texts, digests = zip(*agents, strict=True) if agents else ((), (), ())
                roster = with_kept_agents(fast.roster_with_agents(msg, values, limits))
            except fast.Doubt:
                pass  # not plainly valid: the strict path decides, and names each bad field
            else:
                fingerprint = fingerprint_agent_texts(roster, texts, digests, keep_texts=True)
                return KnownRoster(roster, fingerprint), keys, agents
        roster = roster_from_proto(msg, path, limits=limits)
        return KnownRoster(roster, fingerprint_roster(roster, keep_texts=True)), (), []

    def _known_agents(
        self, agent_msgs: Sequence[pb.Agent], found: list[KnownAgent | None], limits: InputLimits
    ) -> list[KnownAgent]:
        """Each agent of a roster: kept (``found``) or converted, encoded and hashed now.

        Raises:
            Doubt: If an agent to convert is not plainly valid.
        """
        return fast.known_agents(agent_msgs, found, limits)

    def find(
        self, roster_sha256: str, *, limits: InputLimits = DEFAULT_LIMITS
    ) -> KnownRoster | None:
        """The cached roster whose ``roster_sha256`` this is, validated under ``limits``, or None.

        A hit counts as a hit and makes the roster the most recently used; a miss counts as a
        miss (the caller is then asked to send the roster).
        """
        with self._lock:
            forms = self._by_sha.get((roster_sha256, limits))
            if forms is None:
                self.misses += 1
                return None
            key = forms[-1]
            self._entries.move_to_end(key)
            self.hits += 1
            return self._entries[key].known

    def keep_loaded(
        self, roster: Roster, roster_sha256: str, *, limits: InputLimits
    ) -> KnownRoster | None:
        """A roster read from the decision log, cached as the same roster sent would be.

        ``roster`` is what a stored snapshot's JSON parses to (``grpc_api.roster_log``),
        validated under ``limits``. It is cached under the key, with the agent keys, that its
        Roster message would get (``wire.roster_bytes`` writes that message's deterministic
        bytes without building it), so a request sending it later is a hit and a later
        snapshot reuses its agents; agents already kept are reused here too (their values,
        texts and digests), the others encoded and hashed once. One conversion, where sending
        it through ``roster_to_proto`` and ``parse`` converted it twice.

        Invariant: a kept agent is the value its message converts to. An agent parsed from
        JSON is that value unless an attribute number was read as an int (the message holds a
        double, which converts to a float: ``5`` would come back ``5.0``); text caseroute
        writes holds none, and a roster with one is refused here, as the round trip through
        a message refused it (its digests changed).

        Args:
            roster: The roster, as parsed.
            roster_sha256: The content hash asked for.
            limits: The limits it was validated under.

        Returns:
            The roster (built from kept agents where there are any) and its fingerprint,
            cached if it fits the budgets; None, caching nothing, when it does not hash to
            ``roster_sha256`` or would not come back the same through a message.
        """
        if not all(map(_keepable, roster.agents)):
            return None
        if self.max_agents == 0 or self.max_bytes == 0:
            fingerprint = fingerprint_roster(roster)
            return KnownRoster(roster, fingerprint) if fingerprint.sha256 == roster_sha256 else None
        wire, cut = roster_bytes(roster)
        keys = tuple(cut)
        key = (hashlib.sha256(wire).digest(), limits)
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None and entry.known.fingerprint.sha256 == roster_sha256:
                self._entries.move_to_end(key)
                self.hits += 1
                return entry.known
            kept = self._kept.get(limits)
            found: list[KnownAgent | None] = (
                [kept.get(k) for k in keys] if kept else [None] * len(keys)
            )
        agents = [
            _known_agent(agent) if known is None else known
            for agent, known in zip(roster.agents, found, strict=True)
        ]
        values, texts, digests = zip(*agents, strict=True) if agents else ((), (), ())
        built = with_kept_agents(Roster(roster.snapshot_id, roster.taken_at, values))
        # No texts kept for the audit blob: the log this roster came from holds its snapshot.
        fingerprint = fingerprint_agent_texts(built, texts, digests)
        if fingerprint.sha256 != roster_sha256:
            return None
        known = KnownRoster(built, fingerprint)
        missing = found.count(None)
        with self._lock:
            self.misses += 1
            self.agent_hits += len(keys) - missing
            self.agent_misses += missing
        self._store(key, known, keys, agents, len(wire), None)
        return known

    def sent_as(self, sent: bytes) -> RosterStore:
        """This cache as the ``RosterStore`` of one request whose roster arrived as ``sent``.

        Its ``parse`` tells the cache those bytes (``parse(..., sent=sent)``), so the next
        request that sends them is found by ``find_sent`` without parsing.
        """
        return _SentAs(self, sent)


class _SentAs:
    """``RosterCache.sent_as``: one request's view of the cache, knowing its roster's bytes."""

    __slots__ = ("_cache", "_sent")

    def __init__(self, cache: RosterCache, sent: bytes) -> None:
        self._cache = cache
        self._sent = sent

    def parse(
        self, msg: pb.Roster, path: str = "roster", *, limits: InputLimits = DEFAULT_LIMITS
    ) -> KnownRoster:
        """``RosterCache.parse`` of ``msg``, parsed from the bytes this view knows."""
        return self._cache.parse(msg, path, limits=limits, sent=self._sent)

    def find(self, roster_sha256: str, *, limits: InputLimits) -> KnownRoster | None:
        """``RosterCache.find``."""
        return self._cache.find(roster_sha256, limits=limits)
