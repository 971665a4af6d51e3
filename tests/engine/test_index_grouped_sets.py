"""The roster index's territory and language masks, built per distinct set, against agent by agent.

``RosterIndex.build`` ORs each agent's bit into its territory set's and language set's mask and
spreads each set's mask over its codes afterwards (issue 13 target 3: the roster cache shares
one object per distinct set). The masks must be those an agent-by-agent walk gives, whether the
agents share set objects, hold equal sets as different objects, overlapping or empty sets.
"""

from datetime import date

from hypothesis import given, settings
from hypothesis import strategies as st

from caseroute.domain.roster import Agent, AgentStatus, Capacity, Licence, Role
from caseroute.engine.roster_index import RosterIndex, language_key

TERRITORIES = ["US", "US-TX", "US-CA", "GB-ENG", "GB-ENG-NW"]
LANGUAGES = ["en", "en-gb", "es", "es-mx", "fr"]


def _by_agent(agents: tuple[Agent, ...]) -> tuple[dict[str, int], dict[str, int]]:
    """The oracle: each code's and primary language's mask, one agent at a time."""
    territories: dict[str, int] = {}
    languages: dict[str, int] = {}
    for i, agent in enumerate(agents):
        for code in agent.territories:
            territories[code] = territories.get(code, 0) | 1 << i
        for tag in agent.languages:
            primary = language_key(tag)
            languages[primary] = languages.get(primary, 0) | 1 << i
    return territories, languages


def _agent(i: int, territories: frozenset[str], languages: frozenset[str]) -> Agent:
    return Agent(
        f"a{i}",
        Role.AGENT,
        AgentStatus.AVAILABLE,
        Capacity(2, i % 3),
        (Licence("RN", "US-TX", date(2030, 1, 1)),),
        territories,
        {"triage": i % 11},
        languages,
    )


@settings(max_examples=200)
@given(
    st.lists(
        st.tuples(
            st.frozensets(st.sampled_from(TERRITORIES), max_size=3),
            st.frozensets(st.sampled_from(LANGUAGES), max_size=3),
            st.booleans(),
        ),
        max_size=40,
    )
)
def test_masks_per_set_are_the_masks_agent_by_agent(
    drawn: list[tuple[frozenset[str], frozenset[str], bool]],
) -> None:
    """Shared, equal-but-distinct, overlapping and empty sets: the same masks as one by one."""
    shared: dict[tuple[frozenset[str], frozenset[str]], tuple[frozenset[str], frozenset[str]]] = {}
    agents = []
    for i, (drawn_territories, drawn_languages, share) in enumerate(drawn):
        if share:  # one object per distinct pair, as the roster cache's conversion gives
            pair = (drawn_territories, drawn_languages)
            territories, languages = shared.setdefault(pair, pair)
        else:  # an equal set as a new object, as the strict parser gives
            territories = frozenset(set(drawn_territories))
            languages = frozenset(set(drawn_languages))
        agents.append(_agent(i, territories, languages))
    roster = tuple(agents)
    index = RosterIndex.build(roster)
    assert (index.by_territory, index.by_language) == _by_agent(roster)


def test_two_sets_sharing_a_code_and_a_language_key_merge_their_masks() -> None:
    """US-TX in two sets, en and en-gb in two: each code's mask holds both sets' agents."""
    one = _agent(0, frozenset({"US-TX", "US"}), frozenset({"en"}))
    two = _agent(1, frozenset({"US-TX"}), frozenset({"en-gb", "es"}))
    three = _agent(2, frozenset(), frozenset())
    index = RosterIndex.build((one, two, three))
    assert index.by_territory == {"US-TX": 0b011, "US": 0b001}
    assert index.by_language == {"en": 0b011, "es": 0b010}
    assert (index.territory_mask("US-TX-AUS"), index.language_mask("en-US")) == (0b011, 0b011)
