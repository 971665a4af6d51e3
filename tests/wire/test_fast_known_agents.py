"""wire.fast's one-pass agents: the same values, canonical JSON and digests as the three steps.

``fast.known_agents_from_proto`` converts an Agent message and writes its canonical JSON in one
pass (issue 13 target 3). Its oracle is the code it replaces: ``fast.agents_from_proto`` for
the value, ``fingerprint.agent_json`` (itself pinned to ``canonical_json(agent_to_dict(...))``)
for the text and ``fingerprint.agent_digest`` for the digest; where one doubts, so does the
other. Hash definitions never change, so every text must match byte for byte.
"""

import hashlib
from datetime import date
from json.encoder import encode_basestring
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from caseroute.domain.codec import CODE_RE, JURISDICTION_RE, LANGUAGE_RE, MAX_ABS_NUMBER
from caseroute.domain.fingerprint import agent_digest, agent_json, format_timestamp
from caseroute.domain.limits import DEFAULT_LIMITS, InputLimits
from caseroute.domain.roster import Agent, AgentStatus, Capacity, Licence, Role
from caseroute.v1 import routing_pb2 as pb
from caseroute.wire import fast
from tests.code_texts import ALNUM, IDENTIFIER_REST, KEY_FIRST, KEY_REST, pattern_texts
from tests.wire.test_fast_agreement import LIMITS, agent_msgs, roster_msgs

KnownAgent = tuple[Agent, str, bytes]


def _three_steps(msgs: list[pb.Agent], limits: InputLimits) -> list[KnownAgent] | None:
    """The oracle: agents_from_proto, agent_json, agent_digest (None: it doubts)."""
    try:
        agents = fast.agents_from_proto(msgs, limits)
    except fast.Doubt:
        return None
    return [(a, agent_json(a), agent_digest(agent_json(a))) for a in agents]


def _one_pass(msgs: list[pb.Agent], limits: InputLimits) -> list[KnownAgent] | None:
    try:
        return fast.known_agents_from_proto(msgs, limits)
    except fast.Doubt:
        return None


@settings(max_examples=400)
@given(roster_msgs())
def test_one_pass_equals_the_three_steps_on_valid_and_near_valid_agents(msg: pb.Roster) -> None:
    """Near-valid rosters (shared sets, limits crossed): the same triples, or both doubt."""
    msgs = list(msg.agents)
    assert _three_steps(msgs, LIMITS) == _one_pass(msgs, LIMITS)


@settings(max_examples=200)
@given(st.lists(agent_msgs(), max_size=4))
def test_one_pass_equals_the_three_steps_across_agents_sharing_a_conversion(
    msgs: list[pb.Agent],
) -> None:
    """Agents converted together (remembered sets, capacities, days) equal the three steps."""
    assert _three_steps(msgs, LIMITS) == _one_pass(msgs, LIMITS)


# Any character a JSON encoder must escape or pass through (protobuf strings hold no lone
# surrogate: upb refuses one; a NUL is refused by every reader).
texts = st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\x00"), max_size=12)
codes = st.from_regex(CODE_RE, fullmatch=True).filter(lambda s: len(s) <= 200)
# The same strings (CODE_RE, at most 200 characters) for the agents' many codes, drawn without
# from_regex, which spent most of these tests' time: sampled 1,000 of each, the same length and
# character mix (mean length 6.6 vs 7.0, median 5, each of _ . : / - in 6-10 %); from_regex's
# longest was 35, so its 200 filter never bit. The pattern test below keeps from_regex: the
# regex's own strings are what it is about.
AGENT_CODES = pattern_texts(ALNUM, IDENTIFIER_REST, 199)
numbers = st.floats(-MAX_ABS_NUMBER, MAX_ABS_NUMBER, allow_nan=False)


# Built once: building these on every draw spent most of the tests' time in Hypothesis's own
# strategy caching and validation (st.sampled_from of a list is a new object each time, and so
# is any strategy built around it).
ROLES = st.sampled_from(pb.Role.values())
STATUSES = st.sampled_from(pb.AgentStatus.values()[1:])
SENIORITIES = st.integers(0, 100)
LICENCE_COUNTS = st.integers(0, 3)
EXPIRIES = st.dates(date(1, 1, 1), date(9999, 12, 31))
JURISDICTIONS = st.sampled_from(["US-TX", " us-ny ", "GB-ENG-NW", "gb"])
BOOLEANS = st.booleans()
TERRITORY_LISTS = st.lists(AGENT_CODES, max_size=4)
TEAM_LISTS = st.lists(AGENT_CODES, max_size=3)
SKILL_NAME_LISTS = st.lists(AGENT_CODES, max_size=4, unique=True)
SKILL_LEVELS = st.integers(0, 10)
LANGUAGE_LISTS = st.lists(st.sampled_from(["en", "EN_gb", " es-MX ", "zh-hant", "fr"]), max_size=3)
CAPACITIES = st.integers(0, 10_000)
SECONDS = st.integers(fast.MIN_TIMESTAMP_SECONDS, fast.MAX_TIMESTAMP_SECONDS)
NANOS = st.sampled_from([0, 0, 1, 999, 1_000, 999_999_999])
ATTRIBUTE_KEY_LISTS = st.lists(pattern_texts(KEY_FIRST, KEY_REST, 8), max_size=4)
ATTRIBUTE_KINDS = st.sampled_from(["string", "number", "bool"])


@st.composite
def valid_agent_msgs(draw: st.DrawFn) -> pb.Agent:
    """A valid Agent message of any shape: every licence, skill, language and attribute kind."""
    msg = pb.Agent(
        agent_id=draw(AGENT_CODES),
        role=draw(ROLES),
        status=draw(STATUSES),
        seniority=draw(SENIORITIES),
    )
    for _ in range(draw(LICENCE_COUNTS)):
        expires = draw(EXPIRIES)
        msg.licences.add(
            type=draw(AGENT_CODES),
            jurisdiction=draw(JURISDICTIONS),
            expires_on=expires.isoformat(),  # the one shape a date has (R31a F6)
            multistate=draw(BOOLEANS),
        )
    msg.territories.extend(draw(TERRITORY_LISTS))
    msg.teams.extend(draw(TEAM_LISTS))
    for name in draw(SKILL_NAME_LISTS):
        msg.skills.add(name=name, level=draw(SKILL_LEVELS))
    msg.languages.extend(draw(LANGUAGE_LISTS))
    msg.capacity.max = draw(CAPACITIES)
    msg.capacity.active = draw(CAPACITIES)
    if draw(BOOLEANS):
        msg.last_assigned_at.seconds = draw(SECONDS)
        msg.last_assigned_at.nanos = draw(NANOS)
    for key in draw(ATTRIBUTE_KEY_LISTS):
        kind = draw(ATTRIBUTE_KINDS)
        if kind == "string":
            msg.attributes[key].string_value = draw(texts)
        elif kind == "number":
            msg.attributes[key].number_value = draw(numbers)
        else:
            msg.attributes[key].bool_value = draw(BOOLEANS)
    return msg


@settings(max_examples=400)
@given(st.lists(valid_agent_msgs(), min_size=1, max_size=3))
def test_one_pass_text_and_digest_are_the_canonical_ones_for_any_valid_agent(
    msgs: list[pb.Agent],
) -> None:
    """Unicode and escapes in attributes, any instant, every list shape: byte-equal texts."""
    expected = _three_steps(msgs, DEFAULT_LIMITS)
    assert expected is not None  # the generator makes only valid agents
    assert expected == fast.known_agents_from_proto(msgs, DEFAULT_LIMITS)


@given(
    st.one_of(
        codes,
        st.from_regex(JURISDICTION_RE, fullmatch=True),
        st.from_regex(LANGUAGE_RE, fullmatch=True),
    )
)
def test_pattern_checked_text_needs_no_json_escape(value: str) -> None:
    """Codes, jurisdictions and language tags are written quoted as they are: JSON agrees."""
    assert '"' + value + '"' == encode_basestring(value)


def test_an_agent_built_slot_by_slot_is_the_agent_its_constructor_builds() -> None:
    """Every field is set: equal to Agent(...) field by field, and as a whole."""
    msg = pb.Agent(
        agent_id="a-1",
        role=pb.ROLE_SENIOR,
        status=pb.AGENT_STATUS_AVAILABLE,
        seniority=4,
        territories=["US"],
    )
    msg.capacity.max = 3
    msg.licences.add(type="RN", jurisdiction="us-tx", expires_on="2027-01-01", multistate=True)
    msg.attributes["x"].bool_value = True
    agent = fast.known_agents_from_proto([msg], DEFAULT_LIMITS)[0][0]
    expected = Agent(
        "a-1",
        Role.SENIOR,
        AgentStatus.AVAILABLE,
        Capacity(3, 0),
        (Licence("RN", "US-TX", date(2027, 1, 1), multistate=True),),
        frozenset({"US"}),
        {},
        frozenset(),
        None,
        frozenset(),
        4,
        {"x": True},
    )
    assert [getattr(expected, f) for f in Agent.__slots__] == [
        getattr(agent, f) for f in Agent.__slots__
    ]
    assert expected == agent


@pytest.mark.parametrize(
    ("seconds", "nanos", "text"),
    [
        (0, 0, "1970-01-01T00:00:00Z"),
        (86_399, 0, "1970-01-01T23:59:59Z"),
        (1_795_249_858, 0, "2026-11-21T08:30:58Z"),
        (253_402_300_799, 0, "9999-12-31T23:59:59Z"),
        (0, 1_000, "1970-01-01T00:00:00.000001Z"),
        (-1, 0, "1969-12-31T23:59:59Z"),
        (-62_135_596_800, 0, "0001-01-01T00:00:00Z"),
    ],
    ids=["epoch", "end-of-day", "2026", "max", "micros", "before-1970", "min"],
)
def test_last_assigned_at_text_is_format_timestamp(seconds: int, nanos: int, text: str) -> None:
    """A whole second since 1970 is written from its day's text; others by isoformat."""
    msg = pb.Agent(agent_id="a", status=pb.AGENT_STATUS_AVAILABLE)
    msg.capacity.max = 1
    msg.last_assigned_at.seconds, msg.last_assigned_at.nanos = seconds, nanos
    agent, agent_text = fast.known_agents_from_proto([msg], DEFAULT_LIMITS)[0][:2]
    assert agent.last_assigned_at is not None
    assert text == format_timestamp(agent.last_assigned_at)
    assert f'"last_assigned_at":"{text}"' in agent_text


def _valid() -> pb.Agent:
    msg = pb.Agent(
        agent_id="a",
        status=pb.AGENT_STATUS_AVAILABLE,
        territories=["US"],
        teams=["t"],
        languages=["en"],
    )
    msg.capacity.max = 2
    msg.skills.add(name="s", level=3)
    msg.licences.add(type="RN", jurisdiction="US-TX", expires_on="2027-01-01")
    return msg


def _too_many(field: str) -> Any:
    def change(msg: pb.Agent) -> None:
        if field in {"licences", "skills"}:
            for i in range(4):
                getattr(msg, field).add(**({"name": f"s{i}"} if field == "skills" else {}))
        else:
            getattr(msg, field).extend(["a", "b", "c", "d"])

    return change


@pytest.mark.parametrize(
    "change",
    [
        _too_many("licences"),
        _too_many("skills"),
        _too_many("territories"),
        _too_many("languages"),
        _too_many("teams"),
        lambda m: m.ClearField("capacity"),
        lambda m: m.skills.add(name="s", level=1),
        lambda m: m.skills.add(name="t", level=11),
        lambda m: m.skills.add(name="bad name", level=1),
        lambda m: setattr(m.licences[0], "expires_on", "2027-01-01" + "x" * 60),
        lambda m: setattr(m.licences[0], "expires_on", "2027-13-01"),
        lambda m: setattr(m.licences[0], "expires_on", "20270101"),
        lambda m: setattr(m.licences[0], "type", "bad type"),
        lambda m: setattr(m.licences[0], "jurisdiction", "Texas"),
        lambda m: setattr(m.capacity, "max", 10_001),
        lambda m: setattr(m.capacity, "active", -1),
        lambda m: m.territories.append("bad code"),
        lambda m: m.languages.append("e"),
        lambda m: setattr(m, "status", 0),
        lambda m: setattr(m, "seniority", 101),
        lambda m: setattr(m.last_assigned_at, "nanos", -1),
    ],
    ids=[
        "licences",
        "skills",
        "territories",
        "languages",
        "teams",
        "no-capacity",
        "duplicate-skill",
        "skill-level",
        "skill-name",
        "long-expiry",
        "bad-expiry",
        "basic-format-expiry",
        "licence-type",
        "jurisdiction",
        "capacity-max",
        "capacity-active",
        "territory",
        "language",
        "status",
        "seniority",
        "instant",
    ],
)
def test_a_value_not_plainly_valid_is_doubted(change: Any) -> None:
    """Every check the one pass makes doubts as agents_from_proto does (strict path decides)."""
    msg = _valid()
    assert fast.known_agents_from_proto([msg], LIMITS)  # valid before the change
    change(msg)
    with pytest.raises(fast.Doubt):
        fast.agents_from_proto([msg], LIMITS)
    with pytest.raises(fast.Doubt):
        fast.known_agents_from_proto([msg], LIMITS)


def test_known_agents_keeps_what_was_found_and_converts_the_rest_in_order() -> None:
    """Kept triples stay in place (not converted again); only the missing are converted."""
    first, second, third = _valid(), _valid(), _valid()
    second.agent_id, third.agent_id = "b", "c"
    kept: KnownAgent = (Agent("kept", Role.AGENT, AgentStatus.AWAY, Capacity(1, 0)), "{}", b"k")
    [b, c] = fast.known_agents_from_proto([second, third], LIMITS)
    assert [kept, b, c] == fast.known_agents([first, second, third], [kept, None, None], LIMITS)
    assert [b, kept, c] == fast.known_agents([second, first, third], [None, kept, None], LIMITS)


def test_known_agents_of_all_new_agents_converts_them_all() -> None:
    """Nothing found: every agent converted, with its canonical text and digest."""
    msg = _valid()
    [(agent, text, digest)] = fast.known_agents([msg], [None], LIMITS)
    assert (agent_json(agent), hashlib.sha256(text.encode()).digest()) == (text, digest)
    assert fast.agents_from_proto([msg], LIMITS) == [agent]


def test_known_agents_of_nothing_is_nothing() -> None:
    """An empty roster has no agents to convert."""
    assert fast.known_agents([], [], LIMITS) == []


def test_agents_of_one_conversion_share_equal_immutable_parts() -> None:
    """Equal territory sets and capacities are one object per conversion (memory, not value)."""
    one, two = _valid(), _valid()
    two.agent_id = "b"
    [(a, *_), (b, *_)] = fast.known_agents_from_proto([one, two], LIMITS)
    assert (
        a.territories is b.territories,
        a.capacity is b.capacity,
        a.languages is b.languages,
    ) == (True, True, True)
    assert a.skills is not b.skills  # a dict: never shared
