"""Over real gRPC, a request holding field numbers caseroute.v1 does not define is refused.

Review M6: a client built from newer or other protos sends field 99 on an agent's licence, a
case or the request; protobuf keeps it unknown, and the server used to decide as if it were
absent. Now INVALID_ARGUMENT names the message's field path, also when the roster's other
agents are already held by the server's roster cache.
"""

from typing import Any

import grpc

from caseroute.domain.safeguarding_notice import SAFEGUARDING_NOTICE
from caseroute.grpc_api.server import RunningServer
from caseroute.testing import make_agent, make_roster
from caseroute.v1 import routing_pb2 as pb
from caseroute.v1 import routing_pb2_grpc
from caseroute.wire import convert

from .conftest import decide_request, served_refusal

FIELD_99 = bytes([0x98, 0x06, 0x01])
"""Field 99, varint 1: a field no caseroute.v1 message defines."""


def _call(server: RunningServer, request: Any, method: str = "Decide") -> Any:
    with grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        stub = routing_pb2_grpc.RoutingServiceStub(channel)
        return getattr(stub, method)(request, timeout=30)


def _refusal(
    server: RunningServer, request: Any, method: str = "Decide"
) -> tuple[grpc.StatusCode, list[tuple[str, str]], str]:
    """The status code, BadRequest violations and details text the server refuses with."""
    return served_refusal(server.port, request, method)


def test_a_licence_with_an_unknown_field_is_refused_naming_it(python_server: RunningServer) -> None:
    """Field 99 on roster.agents[0].licences[0]: INVALID_ARGUMENT there, nothing decided."""
    request = decide_request("unknown-licence-1")
    request.roster.agents[0].licences[0].MergeFromString(FIELD_99)
    code, violations, details = _refusal(python_server, request)
    assert (
        code,
        [field for field, _ in violations],
    ) == (grpc.StatusCode.INVALID_ARGUMENT, ["roster.agents[0].licences[0]"])
    assert "has field number 99, which caseroute.v1.Licence does not define" in violations[0][1]
    assert "caseroute.v1 protos" in violations[0][1]
    assert details.startswith(
        "invalid request: 1 problem(s); first: roster.agents[0].licences[0]: has field number "
        "99, which caseroute.v1.Licence does not define; "
    )


def test_an_unknown_field_on_a_known_rosters_new_agent_is_refused(
    python_server: RunningServer,
) -> None:
    """The roster decided once (its agents cached), then again with field 99 on one agent."""
    first = decide_request("unknown-cached-1")
    first.roster.CopyFrom(
        convert.roster_to_proto(make_roster(*(make_agent(f"k{i}") for i in range(8))))
    )
    assert _call(python_server, first).decision.decision_id
    again = decide_request("unknown-cached-2")
    again.roster.CopyFrom(first.roster)
    again.roster.agents[5].MergeFromString(FIELD_99)
    code, violations, _ = _refusal(python_server, again)
    assert (
        code,
        [field for field, _ in violations],
    ) == (grpc.StatusCode.INVALID_ARGUMENT, ["roster.agents[5]"])


def test_a_safeguarding_case_with_an_unknown_field_is_refused_notice_first(
    python_server: RunningServer,
) -> None:
    """Field 99 on a case carrying safeguarding: the notice first, then the case's violation."""
    request = decide_request("unknown-safeguarding-1", flags=frozenset({"safeguarding"}))
    request.case.MergeFromString(FIELD_99)
    code, violations, _ = _refusal(python_server, request)
    assert (
        code,
        [field for field, _ in violations],
    ) == (grpc.StatusCode.INVALID_ARGUMENT, ["case.flags", "case"])
    assert violations[0][1] == SAFEGUARDING_NOTICE


def test_a_batch_request_with_an_unknown_field_is_refused_at_request(
    python_server: RunningServer,
) -> None:
    """Field 99 on the DecideBatchRequest itself: INVALID_ARGUMENT at `request`."""
    single = decide_request("unknown-batch-1")
    request = pb.DecideBatchRequest(
        request_id="unknown-batch-1", cases=[single.case], roster=single.roster, now=single.now
    )
    request.MergeFromString(FIELD_99)
    code, violations, _ = _refusal(python_server, request, "DecideBatch")
    assert (
        code,
        [field for field, _ in violations],
    ) == (grpc.StatusCode.INVALID_ARGUMENT, ["request"])
    assert "caseroute.v1.DecideBatchRequest does not define" in violations[0][1]
