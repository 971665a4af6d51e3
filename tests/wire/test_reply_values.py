"""Ranking criteria values are written into the reply in place: the bytes a built message has."""

from typing import Any

import pytest

from caseroute.domain.decision import MatchingTrace, RankedCandidate
from caseroute.v1 import routing_pb2 as pb
from caseroute.wire import convert

VALUES: list[Any] = [None, True, False, "", "gold", 0, 3, -2, 0.0, 0.25, -1e15, 1e15]


@pytest.mark.parametrize("value", VALUES, ids=repr)
def test_a_criterion_value_is_the_message_the_constructor_builds(value: Any) -> None:
    """Each kind of value (and each default: False, "", 0, None as an empty message)."""
    trace = MatchingTrace(
        requirements=(),
        considered=1,
        eligible=1,
        exclusion_counts=(),
        agents=(),
        ranking_criteria=("c",),
        ranking=(RankedCandidate(1, "a1", (("c", value),)),),
    )
    msg = pb.MatchingTrace()
    convert._matching_into(msg, trace)
    if value is None:
        built = pb.AttributeValue()
    elif isinstance(value, bool):
        built = pb.AttributeValue(bool_value=value)
    elif isinstance(value, str):
        built = pb.AttributeValue(string_value=value)
    else:
        built = pb.AttributeValue(number_value=float(value))
    expected = pb.RankedCandidate(rank=1, agent_id="a1")
    expected.criteria.add(name="c", value=built)
    assert [expected.SerializeToString()] == [r.SerializeToString() for r in msg.ranking]
    assert msg.ranking[0].criteria[0].HasField("value")
