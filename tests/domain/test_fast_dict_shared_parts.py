"""A roster parsed from JSON shares its agents' repeated parts, as a converted roster does.

Codes, sets of them, licences and capacities are immutable; built once per parse they keep a
roster parsed from its stored JSON (a roster loaded from the decision log) as small as the
same roster converted from its message (``tests/grpc_api/test_roster_cache_loaded.py``
measures both against the roster cache's estimate).
"""

import json

from caseroute.domain.codec import parse_roster
from caseroute.domain.fingerprint import roster_json
from caseroute.testing import make_agent, make_roster


def test_agents_parsed_together_share_their_equal_parts() -> None:
    """Equal territories, languages, licences and capacities are one object each."""
    text = roster_json(make_roster(make_agent("a1"), make_agent("a2")))
    first, second = parse_roster(json.loads(text)).agents
    assert first.territories is second.territories
    assert first.languages is second.languages
    assert first.licences[0] is second.licences[0]
    assert first.capacity is second.capacity
    assert next(iter(first.skills)) is next(iter(second.skills))


def test_shared_parts_keep_each_agent_s_own_values() -> None:
    """Sharing is by value: agents with other values get their own."""
    roster = make_roster(
        make_agent("a1", territories=frozenset({"US-TX"})),
        make_agent("a2", territories=frozenset({"US-TX", "US-CA"}), seniority=4),
    )
    parsed = parse_roster(json.loads(roster_json(roster)))
    assert roster == parsed
