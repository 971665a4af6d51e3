"""Replies fit what gRPC clients receive by default (4 MiB), or are refused before recording."""

import re
from collections.abc import Iterator

import grpc
import pytest

from caseroute.engine.case_rules import EngineKind
from caseroute.grpc_api.server import RunningServer
from caseroute.testing import make_agent, make_roster
from caseroute.v1 import routing_pb2 as pb
from caseroute.v1 import routing_pb2_grpc
from caseroute.wire import convert

from .conftest import decide_request, serving_reference

CLIENT_DEFAULT_BYTES = 4 * 1024 * 1024
"""gRPC's default receive limit of a client channel."""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """A server with the default settings (max_response_mb 4), python engine."""
    with serving_reference(
        tmp_path_factory.mktemp("reply-size"), engine=EngineKind.PYTHON, threads=2
    ) as running:
        yield running


def _batch(request_id: str, level: "pb.ExplanationLevel.ValueType") -> pb.DecideBatchRequest:
    """1,000 cases against 50 agents, as issue 11 measured it (7.4 MB at FULL)."""
    single = decide_request()
    roster = convert.roster_to_proto(make_roster(*[make_agent(f"a{i:02}") for i in range(50)]))
    request = pb.DecideBatchRequest(
        request_id=request_id,
        cases=[single.case] * 1000,
        roster=roster,
        now=single.now,
        explanation_level=level,
    )
    for i, case in enumerate(request.cases):
        case.case_id = f"C{i:04}"
    return request


@pytest.mark.slow
def test_a_full_batch_over_4_mib_is_refused_and_the_summary_fits(server: RunningServer) -> None:
    """FULL: RESOURCE_EXHAUSTED saying how to ask, nothing recorded; SUMMARY: under 4 MiB."""
    with grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:  # default 4 MiB limit
        stub = routing_pb2_grpc.RoutingServiceStub(channel)
        with pytest.raises(grpc.RpcError) as caught:
            stub.DecideBatch(_batch("big-1", pb.EXPLANATION_LEVEL_FULL), timeout=120)
        error: grpc.Call = caught.value  # type: ignore[assignment]
        assert server.core.audit.by_request("big-1") == []
        reply = stub.DecideBatch(_batch("big-1", pb.EXPLANATION_LEVEL_SUMMARY), timeout=120)
    size = re.fullmatch(
        r"the reply would be (\d+) bytes, over this server's limit of 4194304 bytes "
        r"\(--max-response-mb\); nothing was recorded: ask for EXPLANATION_LEVEL_SUMMARY \(the "
        r"same request_id may be reused\), split the batch, or raise your client's receive "
        r"limit and ask the operators to raise --max-response-mb",
        str(error.details()),
    )
    assert (error.code(), size is not None) == (grpc.StatusCode.RESOURCE_EXHAUSTED, True)
    assert size is not None
    assert int(size.group(1)) > CLIENT_DEFAULT_BYTES
    assert (len(reply.decisions), reply.ByteSize() < CLIENT_DEFAULT_BYTES) == (1000, True)
    assert len(server.core.audit.by_request("big-1")) == 1000
