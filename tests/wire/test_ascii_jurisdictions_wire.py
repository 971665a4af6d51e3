"""On the protobuf paths too, a jurisdiction or language tag folds ASCII only (review L4).

The fast converter doubts ``us-tx`` spelt with a long s (it used to upper-case it to ``US-TX``),
and the strict one
refuses it with the strict reader's words at the field's path: every reader agrees.
"""

import pytest

from caseroute.domain.errors import RequestError
from caseroute.domain.limits import DEFAULT_LIMITS
from caseroute.testing import make_agent, make_case, make_roster
from caseroute.v1 import routing_pb2 as pb
from caseroute.wire import convert, fast

LONG_S = "u\u017f-tx"
"""'us-tx' with a long s (U+017F): str.upper() makes it 'US-TX'."""
WORDS = (
    "'u\u017f-tx' holds '\u017f' (U+017F), which is not ASCII; write the jurisdiction as an "
    "ISO 3166 code in ASCII letters and digits, such as US-TX or GB-ENG (letters outside ASCII "
    "are refused, never folded into ASCII ones)"
)


def _roster(jurisdiction: str = "US-TX", language: str = "en") -> pb.Roster:
    msg = convert.roster_to_proto(make_roster(make_agent("a1"), make_agent("a2")))
    msg.agents[1].licences[0].jurisdiction = jurisdiction
    msg.agents[1].languages[:] = [language]
    return msg


def test_a_case_located_in_a_folding_jurisdiction_is_refused_on_the_wire() -> None:
    """patient_location with a long s: the fast path doubts, the strict path names the field."""
    msg = convert.case_to_proto(make_case())
    msg.patient_location = LONG_S
    with pytest.raises(fast.Doubt):
        fast.case_from_proto(msg, DEFAULT_LIMITS)
    with pytest.raises(RequestError) as caught:
        convert.case_from_proto(msg)
    assert [(v.field, v.message) for v in caught.value.violations] == [
        ("case.patient_location", WORDS)
    ]


def test_a_licence_in_a_folding_jurisdiction_is_refused_on_every_roster_path() -> None:
    """A licence issued in 'us-tx' with a long s: doubted by both fast paths, refused by strict."""
    msg = _roster(LONG_S)
    with pytest.raises(fast.Doubt):
        fast.roster_from_proto(msg, DEFAULT_LIMITS)
    with pytest.raises(fast.Doubt):
        fast.known_agents_from_proto(msg.agents, DEFAULT_LIMITS)
    with pytest.raises(RequestError) as caught:
        convert.roster_from_proto(msg)
    assert [(v.field, v.message) for v in caught.value.violations] == [
        ("roster.agents[1].licences[0].jurisdiction", WORDS)
    ]


def test_a_language_tag_with_the_kelvin_sign_is_refused_on_the_wire() -> None:
    """An agent language '\u212ao' (lower() makes it 'ko'): doubted, then refused at its path."""
    msg = _roster(language="\u212ao")
    with pytest.raises(fast.Doubt):
        fast.known_agents_from_proto(msg.agents, DEFAULT_LIMITS)
    with pytest.raises(RequestError) as caught:
        convert.roster_from_proto(msg)
    assert [v.field for v in caught.value.violations] == ["roster.agents[1].languages[0]"]


def test_ascii_spellings_still_fold_on_the_fast_path() -> None:
    """' us-tx ' and 'EN_gb' still read as US-TX and en-gb without the strict path."""
    msg = _roster(" us-tx ", "EN_gb")
    agent = fast.known_agents_from_proto(msg.agents, DEFAULT_LIMITS)[1][0]
    assert ("US-TX", frozenset({"en-gb"})) == (agent.licences[0].jurisdiction, agent.languages)
