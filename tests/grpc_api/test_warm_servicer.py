"""The Decide converters read explanation_level as the servicer's agent_detail does."""

import pytest

from caseroute.grpc_api.servicer import agent_detail
from caseroute.testing import NOW, make_agent, make_case, make_roster
from caseroute.v1 import routing_pb2 as pb
from caseroute.wire import convert

LEVELS = [pb.EXPLANATION_LEVEL_UNSPECIFIED, pb.EXPLANATION_LEVEL_SUMMARY, pb.EXPLANATION_LEVEL_FULL]


@pytest.mark.parametrize("level", LEVELS, ids=["unspecified", "summary", "full"])
def test_decide_command_detail_equals_agent_detail(level: int) -> None:
    """Each defined level: the command's agent_detail is agent_detail(level), used as built."""
    msg = pb.DecideRequest(
        request_id="r1",
        case=convert.case_to_proto(make_case()),
        roster=convert.roster_to_proto(make_roster(make_agent("a1"))),
        now=convert.datetime_to_timestamp(NOW),
        explanation_level=level,  # type: ignore[arg-type]
    )
    batch = pb.DecideBatchRequest(
        request_id="r1",
        cases=[msg.case],
        roster=msg.roster,
        now=msg.now,
        explanation_level=level,  # type: ignore[arg-type]
    )
    expected = agent_detail(level)
    assert [expected, expected] == [
        convert.decide_command(msg).agent_detail,
        convert.batch_command(batch).agent_detail,
    ]
    assert (level == pb.EXPLANATION_LEVEL_FULL) is expected
