"""request_id and the log's read ids hold no control or invisible characters (review R32c F2, F3).

Before: only a request_id's length was checked. A NUL in it was decided, then refused by
PostgreSQL's writer, which answered UNAVAILABLE ("retry later") and turned the worker
NOT_SERVING; a blank id (a template rendered as spaces) made unrelated requests share one
idempotency key; control and bidi characters were recorded and shown to auditors. GetDecision
and ListDecisions passed such ids to the store's query (UNAVAILABLE on PostgreSQL).
"""

from collections.abc import Iterator
from typing import Any

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from caseroute.engine.case_rules import EngineKind
from caseroute.grpc_api.server import RunningServer
from caseroute.v1 import routing_pb2 as pb
from caseroute.v1 import routing_pb2_grpc

from .conftest import decide_request, serving_reference

BAD_IDS = {
    "nul": "bad\x00id",
    "newline": "x\n2b673d",
    "escape": "\x1b[31m2b673d",
    "bidi override": "\u202e2b673d",
    "zero width": "\u200b2b673d",
    "blank": "   \t   ",
}


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """One real server (python engine) for the module."""
    with serving_reference(
        tmp_path_factory.mktemp("request-id-audit"), engine=EngineKind.PYTHON, threads=4
    ) as server:
        yield server


def _violations(error: grpc.RpcError) -> list[tuple[str, str]]:
    """The BadRequest field violations an INVALID_ARGUMENT carries."""
    call: Any = error  # an RpcError from a unary call is also its Call
    assert call.code() == grpc.StatusCode.INVALID_ARGUMENT, call.details()
    status = rpc_status.from_call(call)
    assert status is not None
    bad = error_details_pb2.BadRequest()
    assert status.details[0].Unpack(bad)
    return [(v.field, v.description) for v in bad.field_violations]


@pytest.mark.parametrize("name", sorted(BAD_IDS))
def test_decide_refuses_the_request_id_and_records_nothing(
    channel: grpc.Channel, name: str
) -> None:
    """INVALID_ARGUMENT at request_id for Decide and DecideBatch; the log gains no record."""
    stub = routing_pb2_grpc.RoutingServiceStub(channel)
    log = routing_pb2_grpc.DecisionLogStub(channel)
    case_id = f"RID-{name.replace(' ', '-')}"
    single = decide_request(BAD_IDS[name], case_id=case_id)
    batch = pb.DecideBatchRequest(
        request_id=BAD_IDS[name], cases=[single.case], roster=single.roster, now=single.now
    )
    expected = "must not be blank" if name == "blank" else "must not contain control"
    with pytest.raises(grpc.RpcError) as one:
        stub.Decide(single, timeout=10)
    with pytest.raises(grpc.RpcError) as many:
        stub.DecideBatch(batch, timeout=10)
    for caught in (one, many):
        ((field, words),) = _violations(caught.value)
        assert (field, words.startswith(expected)) == ("request_id", True), words
    listed = log.ListDecisions(pb.ListDecisionsRequest(case_id=case_id), timeout=10)
    assert list(listed.decisions) == []


def test_an_ordinary_request_id_still_decides(channel: grpc.Channel) -> None:
    """Spaces inside an id and non-ASCII letters are ordinary characters: decided."""
    stub = routing_pb2_grpc.RoutingServiceStub(channel)
    reply = stub.Decide(decide_request("order 42 · Zoë", case_id="RID-ok"), timeout=10)
    assert reply.decision.case_id == "RID-ok"


def test_log_reads_refuse_ids_no_record_can_hold(channel: grpc.Channel) -> None:
    """GetDecision / ListDecisions with a control character: INVALID_ARGUMENT naming the field."""
    log = routing_pb2_grpc.DecisionLogStub(channel)
    with pytest.raises(grpc.RpcError) as got:
        log.GetDecision(pb.GetDecisionRequest(decision_id="dec_\x00"), timeout=10)
    with pytest.raises(grpc.RpcError) as listed:
        log.ListDecisions(pb.ListDecisionsRequest(case_id="C\x00"), timeout=10)
    assert [f for f, _ in _violations(got.value)] == ["decision_id"]
    assert [f for f, _ in _violations(listed.value)] == ["case_id"]
    with pytest.raises(grpc.RpcError) as missing:
        log.GetDecision(pb.GetDecisionRequest(decision_id="dec_nope"), timeout=10)
    call: Any = missing.value
    assert call.code() == grpc.StatusCode.NOT_FOUND
