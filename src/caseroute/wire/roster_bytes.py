"""A domain roster's Roster message bytes, written directly: no message is built.

``roster_bytes(roster)`` is ``convert.roster_to_proto(roster).SerializeToString(
deterministic=True)``, byte for byte (pinned by a property test,
``tests/wire/test_roster_bytes.py``), for about a third of the CPU: building the messages in
Python and serialising them cost ~13-21 us per agent, this ~5-9 (1,000 benchmark agents).
The roster cache keys a roster, and keeps each of its agents, by these bytes; a roster loaded
from the decision log has no message, and gets its keys here
(``grpc_api.roster_cache.RosterCache.keep_loaded``).

What protobuf's deterministic serialisation writes, as this module writes it: fields in
field-number order; a proto3 scalar only when not its zero value (a oneof member always, once
set); a sub-message whenever set (``capacity``, ``taken_at`` and a given ``last_assigned_at``
always are), even empty; map entries (``attributes``) in upb's deterministic order, each with
its key (even empty) and its value message. upb orders string keys by their UTF-8 bytes,
except that a key comes before any key it is a prefix of (``"k10"``, then ``"k1"``; C++
protobuf orders them the other way). Bytes that differ from the runtime's would only miss the
cache: they are still an encoding of the same value, which is all a kept entry relies on.
"""

from __future__ import annotations

from datetime import UTC, datetime
from struct import Struct

from caseroute.domain.case import AttributeValue
from caseroute.domain.roster import Agent, AgentStatus, Licence, Role, Roster

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_DOUBLE = Struct("<d")

_ROLES = {Role.AGENT: b"\x10\x01", Role.SENIOR: b"\x10\x02", Role.MANAGER: b"\x10\x03"}
"""``Agent.role`` (field 2, an enum) as written: ``ROLE_<NAME>``'s number."""
_STATUSES = {
    AgentStatus.AVAILABLE: b"\x18\x01",
    AgentStatus.BUSY: b"\x18\x02",
    AgentStatus.AWAY: b"\x18\x03",
    AgentStatus.OFFLINE: b"\x18\x04",
}
"""``Agent.status`` (field 3, an enum) as written: ``AGENT_STATUS_<NAME>``'s number."""


_AFTER_EVERY_BYTE = b"\xff"
"""Ends each map key's sort key: no UTF-8 text holds the byte, so a key sorts before any key
it is a prefix of, as upb orders them (``"k10"`` before ``"k1"``; see the module's note)."""


def _varint(value: int) -> bytes:
    """A varint; a negative value as its 64-bit two's complement (as int32 and int64 are)."""
    if value < 0:
        value += 1 << 64
    if value < 0x80:
        return bytes((value,))
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _field(tag: bytes, body: bytes) -> bytes:
    """A length-delimited field: its tag, the body's length and the body."""
    size = len(body)
    return tag + (bytes((size,)) if size < 0x80 else _varint(size)) + body


def _text(tag: bytes, value: str) -> bytes:
    """A string field (written only when not empty, as proto3 does)."""
    return _field(tag, value.encode()) if value else b""


def _int(tag: bytes, value: int) -> bytes:
    """An int32 field (written only when not 0, as proto3 does)."""
    return tag + _varint(value) if value else b""


def timestamp_bytes(value: datetime) -> bytes:
    """A Timestamp message's bytes (``convert.datetime_to_timestamp``'s seconds and nanos)."""
    if value.tzinfo is None:
        value = value.astimezone(UTC)
    delta = value - _EPOCH
    seconds, nanos = delta.days * 86400 + delta.seconds, delta.microseconds * 1000
    return _int(b"\x08", seconds) + _int(b"\x10", nanos)


def _attribute(value: AttributeValue | None) -> bytes:
    """An AttributeValue message's bytes (``convert._attribute_out``: a oneof, always written)."""
    if value is None:
        return b""
    if isinstance(value, bool):
        return b"\x18\x01" if value else b"\x18\x00"
    if isinstance(value, str):
        return _field(b"\x0a", value.encode())
    return b"\x11" + _DOUBLE.pack(float(value))


class _Parts:
    """Parts of one roster's agents already written, by value.

    A roster's agents share codes, skills, licences and capacities: each part is written once
    per roster (2.7x less time for the benchmark's 1,000 agents than writing each), and not
    kept across rosters, so nothing grows with what callers send.
    """

    __slots__ = ("capacities", "languages", "licences", "skills", "teams", "territories")

    def __init__(self) -> None:
        self.territories: dict[frozenset[str], bytes] = {}
        self.languages: dict[frozenset[str], bytes] = {}
        self.teams: dict[frozenset[str], bytes] = {}
        self.skills: dict[tuple[str, int], bytes] = {}
        self.licences: dict[Licence, bytes] = {}
        self.capacities: dict[tuple[int, int], bytes] = {}


def _codes(kept: dict[frozenset[str], bytes], tag: bytes, values: frozenset[str]) -> bytes:
    """A repeated string field of a set, sorted (as ``roster_to_proto`` lists it)."""
    out = kept.get(values)
    if out is None:
        out = kept[values] = b"".join([_field(tag, code.encode()) for code in sorted(values)])
    return out


def _licence(lic: Licence) -> bytes:
    return _field(
        b"\x22",
        _text(b"\x0a", lic.type)
        + _text(b"\x12", lic.jurisdiction)
        + _text(b"\x1a", lic.expires_on.isoformat())
        + (b"\x20\x01" if lic.multistate else b""),
    )


def agent_bytes(agent: Agent, parts: _Parts | None = None) -> bytes:
    """One Agent message's bytes, as ``roster_to_proto`` builds it and protobuf writes it.

    Args:
        agent: The agent.
        parts: Parts written for the roster's other agents (None: a roster of one).
    """
    kept = _Parts() if parts is None else parts
    out = [_text(b"\x0a", agent.agent_id), _ROLES[agent.role], _STATUSES[agent.status]]
    licences = kept.licences
    for lic in agent.licences:
        written = licences.get(lic)
        if written is None:
            written = licences[lic] = _licence(lic)
        out.append(written)
    out.append(_codes(kept.territories, b"\x2a", agent.territories))
    skills = kept.skills
    for skill in sorted(agent.skills.items()):
        written = skills.get(skill)
        if written is None:
            written = skills[skill] = _field(
                b"\x32", _text(b"\x0a", skill[0]) + _int(b"\x10", skill[1])
            )
        out.append(written)
    out.append(_codes(kept.languages, b"\x3a", agent.languages))
    capacity = agent.capacity
    key = (capacity.max, capacity.active)
    written = kept.capacities.get(key)
    if written is None:
        written = kept.capacities[key] = _field(
            b"\x42", _int(b"\x08", key[0]) + _int(b"\x10", key[1])
        )
    out.append(written)
    if agent.last_assigned_at is not None:
        out.append(_field(b"\x4a", timestamp_bytes(agent.last_assigned_at)))
    if agent.teams:
        out.append(_codes(kept.teams, b"\x52", agent.teams))
    if agent.seniority:
        out.append(b"\x58" + _varint(agent.seniority))
    if agent.attributes:
        out.extend(
            _field(b"\x62", _field(b"\x0a", key[:-1]) + _field(b"\x12", _attribute(value)))
            for key, value in sorted(
                [
                    (name.encode() + _AFTER_EVERY_BYTE, value)
                    for name, value in agent.attributes.items()
                ]
            )
        )
    return b"".join(out)


def roster_bytes(roster: Roster) -> tuple[bytes, list[bytes]]:
    """A roster's Roster message bytes, and each of its Agent messages' bytes.

    Returns:
        ``convert.roster_to_proto(roster).SerializeToString(deterministic=True)``, and each
        agent's message bytes in roster order (what ``roster_cache.agent_message_bytes`` cuts
        from the former).
    """
    parts = _Parts()
    agents = [agent_bytes(agent, parts) for agent in roster.agents]
    header = _text(b"\x0a", roster.snapshot_id) + _field(b"\x12", timestamp_bytes(roster.taken_at))
    return header + b"".join([_field(b"\x1a", body) for body in agents]), agents
