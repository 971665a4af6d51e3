"""A date is YYYY-MM-DD in every reader (review R31a F6).

Python 3.11's ``date.fromisoformat`` also reads ``20270630`` and ISO week dates
(``2027-W26-3``), so a licence's ``expires_on`` and a compact's ``since``/``until`` took shapes
the contract does not name. No meaning changed, but the documented shape was not the one read.
"""

from __future__ import annotations

import pytest

from caseroute.domain.codec import parse_roster
from caseroute.domain.errors import RequestError
from caseroute.domain.limits import DEFAULT_LIMITS
from caseroute.domain.reader import read_day
from caseroute.testing import (
    CATCH_ALL_RULE,
    MINIMAL_HEADER,
    agent_data,
    compile_text,
    roster_data,
    ruleset_with_rules,
)
from caseroute.v1 import routing_pb2 as pb
from caseroute.wire import fast
from caseroute.wire.convert import roster_from_proto

OTHER_SHAPES = ["20270630", "2027-W26-3", "2027W263", "2027-181", "\uff12\uff10\uff12\uff17-06-30"]


@pytest.mark.parametrize("text", OTHER_SHAPES)
def test_read_day_takes_only_yyyy_mm_dd(text: str) -> None:
    """Each other shape Python reads is no date here; YYYY-MM-DD still is."""
    assert (read_day(text), read_day("2027-06-30").isoformat()) == (None, "2027-06-30")  # type: ignore[union-attr]


@pytest.mark.parametrize("text", OTHER_SHAPES)
def test_a_licence_expiry_in_another_shape_is_refused_by_both_parsers(text: str) -> None:
    """The strict dict parser and the protobuf fast path refuse it at the same field."""
    agent = agent_data("a1")
    agent["licences"] = [{"type": "RN", "jurisdiction": "US-TX", "expires_on": text}]
    with pytest.raises(RequestError) as strict:
        parse_roster(roster_data(agent))
    assert [v.field for v in strict.value.violations] == ["roster.agents[0].licences[0].expires_on"]
    msg = pb.Roster(snapshot_id="s1", agents=[pb.Agent(agent_id="a1")])
    msg.taken_at.FromJsonString("2026-11-21T09:00:00Z")
    msg.agents[0].licences.add(type="RN", jurisdiction="US-TX", expires_on=text)
    with pytest.raises(fast.Doubt):
        fast.agents_from_proto(msg.agents, DEFAULT_LIMITS)
    with pytest.raises(RequestError) as served:
        roster_from_proto(msg)
    assert "roster.agents[0].licences[0].expires_on" in [v.field for v in served.value.violations]


@pytest.mark.parametrize("text", ["20180119", "2018-W03-5"])
def test_a_compact_date_in_another_shape_is_a_ruleset_error(text: str) -> None:
    """`since` must be written YYYY-MM-DD in a ruleset too."""
    section = (
        "compacts:\n"
        "  - name: nlc\n"
        "    licence_types: [RN]\n"
        f"    members: [{{jurisdiction: US-TX, since: '{text}'}}]\n"
    )
    with pytest.raises(Exception, match=f"member since must be a date YYYY-MM-DD, got '{text}'"):
        compile_text(ruleset_with_rules(CATCH_ALL_RULE, MINIMAL_HEADER + section))
