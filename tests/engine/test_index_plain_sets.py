"""An Agent built in code with plain sets or lists for territories and languages decides.

The type hints say frozenset, and every parser builds one, but a library caller (or
``caseroute.testing``) naturally passes a set or a list: the roster index groups agents by
their territory and language collections and must not need them hashable (a reviewer's
finding on this pass's grouped index build: ``TypeError: unhashable type: 'set'``).
"""

from typing import Any

import pytest

from caseroute.domain.decision_codec import decision_to_dict
from caseroute.engine.decide import decide
from caseroute.engine.roster_index import RosterIndex
from caseroute.testing import NOW, make_agent, make_case, make_roster, reference_ruleset


@pytest.mark.parametrize(
    "spelling",
    [
        {"territories": {"US-TX"}},
        {"territories": ["US-TX"]},
        {"languages": {"en"}},
        {"languages": ["en"]},
    ],
    ids=["set-territories", "list-territories", "set-languages", "list-languages"],
)
def test_a_plain_collection_decides_as_its_frozenset(spelling: dict[str, Any]) -> None:
    """decide() with a set/list: the frozenset spelling's decision, field for field (ASSIGN a1)."""
    ruleset = reference_ruleset()
    frozen = {name: frozenset(value) for name, value in spelling.items()}
    plain = decide(make_case(), make_roster(make_agent("a1", **spelling)), ruleset, NOW)
    same = decide(make_case(), make_roster(make_agent("a1", **frozen)), ruleset, NOW)
    assert (plain.outcome.value, plain.agent_id) == ("ASSIGN", "a1")
    assert decision_to_dict(plain) == decision_to_dict(same)


def test_plain_and_frozen_collections_index_alike() -> None:
    """The index built from set/list spellings has the masks of the frozenset spellings."""
    plain = make_roster(
        make_agent("a1", territories={"US-TX", "US-NM"}, languages=["en", "es-MX"]),
        make_agent("a2", territories=["US-TX"], languages={"en"}),
    )
    frozen = make_roster(
        make_agent(
            "a1", territories=frozenset({"US-TX", "US-NM"}), languages=frozenset({"en", "es-MX"})
        ),
        make_agent("a2", territories=frozenset({"US-TX"}), languages=frozenset({"en"})),
    )
    built, expected = RosterIndex.build(plain.agents), RosterIndex.build(frozen.agents)
    assert (dict(built.by_territory), dict(built.by_language)) == (
        {"US-TX": 0b11, "US-NM": 0b01},
        {"en": 0b11, "es": 0b01},
    )
    assert (built.by_territory, built.by_language) == (expected.by_territory, expected.by_language)
