"""``wire.roster_bytes`` writes exactly the bytes protobuf writes for ``roster_to_proto``.

The roster cache keys rosters, and keeps agents, by their Roster and Agent messages'
deterministic bytes; a roster loaded from the decision log gets those keys from
``roster_bytes`` instead of building the messages. A byte of difference would miss the
cache; an encoding of another value would give a later sender that value, so the bytes must
be protobuf's own for any roster, however odd its text, instants or numbers.
"""

import dataclasses
from datetime import datetime
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from caseroute.domain.roster import Agent, AgentStatus, Capacity, Licence, Role, Roster
from caseroute.grpc_api.roster_cache import agent_message_bytes
from caseroute.testing import make_agent, make_roster
from caseroute.v1 import routing_pb2 as pb
from caseroute.wire import roster_bytes as roster_bytes_module
from caseroute.wire.convert import roster_to_proto
from caseroute.wire.roster_bytes import agent_bytes, roster_bytes
from tests.wire.test_fast_agent_json import agents, instants, text


def _protobuf_s(roster: Roster) -> bytes:
    return roster_to_proto(roster).SerializeToString(deterministic=True)


@settings(max_examples=300)
@given(st.lists(agents(), max_size=4), text, instants)
def test_the_bytes_are_protobuf_s_for_any_roster(
    members: list[Agent], snapshot_id: str, taken_at: datetime
) -> None:
    """Any text, instant (any offset, before 1970), number, empty value: byte for byte."""
    roster = Roster(snapshot_id, taken_at, tuple(members))
    wire, cut = roster_bytes(roster)
    assert _protobuf_s(roster) == wire
    assert agent_message_bytes(wire) == cut


def test_agents_sharing_parts_are_each_written_whole() -> None:
    """Parts written once per roster (codes, skills, licences, capacities) go to every agent."""
    roster = make_roster(*[make_agent(f"a{i}", seniority=i, attributes={"x": i}) for i in range(5)])
    wire, cut = roster_bytes(roster)
    assert _protobuf_s(roster) == wire
    assert [agent_bytes(agent) for agent in roster.agents] == cut


def test_a_long_agent_and_roster_take_multi_byte_lengths() -> None:
    """An agent over 127 bytes, a roster over 16 kB: their lengths are longer varints."""
    big = make_agent("a" * 60, attributes={f"k{i}": "v" * 300 for i in range(60)})
    roster = make_roster(big, make_agent("b"))
    assert _protobuf_s(roster) == roster_bytes(roster)[0]
    assert len(roster_bytes(roster)[1][0]) > 16_384


def test_every_field_it_writes_is_every_field_there_is() -> None:
    """A field added to a roster message or domain type fails here until this module writes it.

    The property test above only draws the fields its strategy knows: an Agent field added
    later and left out of both would let two agents differing only in it share a cache key.
    """
    written: dict[Any, list[str]] = {
        pb.Roster: ["snapshot_id", "taken_at", "agents"],
        pb.Agent: [
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
        ],
        pb.Licence: ["type", "jurisdiction", "expires_on", "multistate"],
        pb.Skill: ["name", "level"],
        pb.Capacity: ["max", "active"],
        pb.AttributeValue: ["string_value", "number_value", "bool_value"],
    }
    for message, names in written.items():
        fields = message.DESCRIPTOR.fields
        assert [(f.name, f.number) for f in fields] == [(n, i) for i, n in enumerate(names, 1)]
    assert {f.name for f in dataclasses.fields(Agent)} == set(written[pb.Agent])
    assert {f.name for f in dataclasses.fields(Licence)} == set(written[pb.Licence])
    assert {f.name for f in dataclasses.fields(Capacity)} == set(written[pb.Capacity])
    roles = {role: bytes((0x10, pb.Role.Value(f"ROLE_{role.name}"))) for role in Role}
    statuses = {
        s: bytes((0x18, pb.AgentStatus.Value(f"AGENT_STATUS_{s.name}"))) for s in AgentStatus
    }
    assert (roles, statuses) == (roster_bytes_module._ROLES, roster_bytes_module._STATUSES)


def test_a_naive_instant_and_an_unset_attribute_are_written_as_protobuf_writes_them() -> None:
    """A naive datetime (read as local time, as the conversion does) and a None attribute."""
    naive = datetime(2026, 11, 21, 9, 30)  # noqa: DTZ001 - a naive instant is the case tested
    roster = Roster(
        "s1", naive, (make_agent("a1", last_assigned_at=naive, attributes={"x": None, "y": 1.5}),)
    )
    wire, cut = roster_bytes(roster)
    assert _protobuf_s(roster) == wire
    assert agent_message_bytes(wire) == cut
