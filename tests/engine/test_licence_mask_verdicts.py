"""RosterIndex.licence_mask checks licences alike once per call: the same mask as each one checked.

The oracle is the definition: an agent is in the mask when one of its licences of a wanted type
is valid there that day (``licence_valid_at``), checked agent by agent, licence by licence.
"""

from datetime import date, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from caseroute.domain.roster import Licence
from caseroute.engine.licensing import CompactView, licence_valid_at
from caseroute.engine.local_days import LocalDays
from caseroute.engine.roster_index import RosterIndex
from caseroute.testing import make_agent

DAY = date(2026, 11, 21)
DAYS = LocalDays.single(DAY)
COMPACTS = CompactView(
    (
        ("NLC", frozenset({"RN", "LPN"}), frozenset({"US-TX", "US-AZ", "US-FL"})),
        ("APRN", frozenset({"APRN"}), frozenset({"US-TX", "US-UT"})),
    )
)
TYPES = ["RN", "LPN", "APRN", "pharmacist"]
PLACES = ["US-TX", "US-AZ", "US-FL", "US-UT", "US-CA", "US", "GB", "GB-ENG"]

licences = st.builds(
    Licence,
    st.sampled_from(TYPES),
    st.sampled_from(PLACES),
    st.sampled_from([DAY - timedelta(days=1), DAY, DAY + timedelta(days=1), date(2030, 1, 1)]),
    st.booleans(),
)


def _by_definition(index: RosterIndex, types: tuple[str, ...], location: str) -> int:
    mask = 0
    for i, agent in enumerate(index.agents):
        if any(
            lic.type in types and licence_valid_at(lic, location, DAYS, COMPACTS)[0]
            for lic in agent.licences
        ):
            mask |= 1 << i
    return mask


@settings(max_examples=300)
@given(
    st.lists(st.lists(licences, max_size=3), max_size=12),
    st.lists(st.sampled_from(TYPES), min_size=1, max_size=3).map(tuple),
    st.sampled_from(["US-TX", "US-CA", "US-FL", "GB-ENG", "US-UT"]),
)
def test_licence_mask_is_each_agent_checked_licence_by_licence(
    held: list[list[Licence]], types: tuple[str, ...], location: str
) -> None:
    """Any roster, types and place: the mask the definition gives, licence by licence."""
    agents = tuple(make_agent(f"a{i}", licences=tuple(h)) for i, h in enumerate(held))
    index = RosterIndex.build(agents)
    assert _by_definition(index, types, location) == index.licence_mask(
        types, location, DAYS, COMPACTS
    )


def test_alike_licences_share_a_verdict_and_unlike_ones_do_not() -> None:
    """Same type, place, multistate and expiry side: one verdict; a difference is checked."""
    rn_tx = Licence("RN", "US-TX", DAY, multistate=False)
    agents = (
        make_agent("a0", licences=(Licence("LPN", "US-CA", DAY), rn_tx)),  # LPN not wanted
        make_agent("a1", licences=(Licence("RN", "US-TX", date(2030, 1, 1)),)),  # alike a0's RN
        make_agent("a2", licences=(Licence("RN", "US-TX", DAY - timedelta(days=1)),)),  # expired
        make_agent("a3", licences=(Licence("RN", "US-CA", DAY, multistate=True),)),  # not NLC
        make_agent("a4", licences=(Licence("RN", "US-AZ", DAY, multistate=True),)),  # NLC
        make_agent("a5", licences=(Licence("RN", "US-CA", DAY), rn_tx)),  # second one holds
    )
    index = RosterIndex.build(agents)
    assert index.licence_mask(("RN",), "US-TX", DAYS, COMPACTS) == 0b110011
