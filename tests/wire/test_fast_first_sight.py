"""wire.fast's first-sight conversion: what one roster's agents share, and what stays their own.

``fast.known_agents_from_proto`` remembers, per conversion, each distinct skill list, licence
expiry text and empty team set (issue 13 target 3, all-new agents): only immutable values and
texts are shared; every agent still gets its own skill map, and every value, text and digest
is the one the three separate steps give (``agents_from_proto``, ``agent_json``,
``agent_digest``).
"""

import pytest

from caseroute.domain.fingerprint import agent_digest, agent_json
from caseroute.domain.roster import Role
from caseroute.v1 import routing_pb2 as pb
from caseroute.wire import fast
from tests.wire.test_fast_agreement import LIMITS


def _agent(agent_id: str, **fields: object) -> pb.Agent:
    msg = pb.Agent(agent_id=agent_id, status=pb.AGENT_STATUS_AVAILABLE, **fields)  # type: ignore[arg-type]
    msg.capacity.max = 2
    return msg


def _three_steps(msgs: list[pb.Agent]) -> list[tuple[object, str, bytes]]:
    agents = fast.agents_from_proto(msgs, LIMITS)
    return [(a, agent_json(a), agent_digest(agent_json(a))) for a in agents]


def test_agents_with_the_same_skill_list_get_equal_maps_but_each_its_own() -> None:
    """A remembered skill list: equal maps, never one dict shared (a dict can be written)."""
    one, two = _agent("a"), _agent("b")
    for msg in (one, two):
        msg.skills.add(name="triage", level=3)
        msg.skills.add(name="billing", level=1)
    [(a, a_text, _), (b, b_text, _)] = fast.known_agents_from_proto([one, two], LIMITS)
    assert (b.skills, a.skills is b.skills) == ({"triage": 3, "billing": 1}, False)
    assert a_text.replace('"a"', '"b"', 1) == b_text
    assert _three_steps([one, two]) == fast.known_agents_from_proto([one, two], LIMITS)


def test_a_skill_list_seen_in_another_order_is_its_own_map_in_its_own_order() -> None:
    """The remembered list is keyed in sent order: a map keeps the order its agent sent."""
    one, two = _agent("a"), _agent("b")
    one.skills.add(name="x", level=1)
    one.skills.add(name="y", level=2)
    two.skills.add(name="y", level=2)
    two.skills.add(name="x", level=1)
    [(a, *_), (b, *_)] = fast.known_agents_from_proto([one, two], LIMITS)
    assert (list(a.skills), list(b.skills)) == (["x", "y"], ["y", "x"])
    assert _three_steps([one, two]) == fast.known_agents_from_proto([one, two], LIMITS)


def test_a_duplicate_skill_is_doubted_after_its_first_entry_was_seen_alone() -> None:
    """A list holding a remembered list's skill twice is checked afresh: doubted."""
    one, two = _agent("a"), _agent("b")
    one.skills.add(name="x", level=1)
    two.skills.add(name="x", level=1)
    two.skills.add(name="x", level=2)
    with pytest.raises(fast.Doubt):
        fast.known_agents_from_proto([one, two], LIMITS)


def test_licences_expiring_on_one_day_share_one_date_and_other_shapes_are_doubted() -> None:
    """The expiry is remembered per text sent; '20270101' is no date here (R31a F6): doubted."""
    msgs = [_agent("a"), _agent("b"), _agent("c")]
    for msg in msgs:
        msg.licences.add(type="RN", jurisdiction="US-TX", expires_on="2027-01-01")
    triples = fast.known_agents_from_proto(msgs, LIMITS)
    assert [text.count('"expires_on":"2027-01-01"') for _, text, _ in triples] == [1, 1, 1]
    assert triples[0][0].licences[0].expires_on is triples[2][0].licences[0].expires_on
    assert _three_steps(msgs) == triples
    msgs[1].licences[0].expires_on = "20270101"
    with pytest.raises(fast.Doubt):
        fast.known_agents_from_proto(msgs, LIMITS)


@pytest.mark.parametrize("expires_on", ["2027-13-01", "2027-01-01" + "x" * 60])
def test_an_expiry_doubted_once_is_doubted_again(expires_on: str) -> None:
    """A bad expiry is never remembered: the next licence with it is doubted too."""
    msg = _agent("a")
    msg.licences.add(type="RN", jurisdiction="US-TX", expires_on=expires_on)
    for _ in range(2):
        with pytest.raises(fast.Doubt):
            fast.known_agents_from_proto([msg, msg], LIMITS)


def test_agents_without_teams_share_one_empty_team_set() -> None:
    """No teams: one empty frozenset for all (one object fewer per agent for the GC to walk)."""
    [(a, *_), (b, *_)] = fast.known_agents_from_proto([_agent("a"), _agent("b")], LIMITS)
    assert (frozenset(), True) == (a.teams, a.teams is b.teams)


@pytest.mark.parametrize(
    ("field", "number"), [("role", 99), ("status", 99), ("status", 0)], ids=str
)
def test_an_unknown_role_or_status_number_or_no_status_is_doubted(field: str, number: int) -> None:
    """A number the domain has no member for (or no status) is left to the strict path."""
    msg = _agent("a")
    setattr(msg, field, number)
    with pytest.raises(fast.Doubt):
        fast.agents_from_proto([msg], LIMITS)
    with pytest.raises(fast.Doubt):
        fast.known_agents_from_proto([msg], LIMITS)


def test_an_unset_role_is_the_default_role_in_value_and_text() -> None:
    """Role 0 (unset) reads as Role.AGENT, written "agent", as the strict path reads it."""
    [(agent, text, digest)] = fast.known_agents_from_proto([_agent("a")], LIMITS)
    assert (agent.role, '"role":"agent"' in text) == (Role.AGENT, True)
    assert [(agent, text, digest)] == _three_steps([_agent("a")])
