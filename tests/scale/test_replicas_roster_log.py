"""Rosters by hash across replicas: a replica loads a roster another stored in the shared log.

Two `caseroute serve` replicas share one decision log. The roster goes to replica A in full;
replica B is then sent only its ``roster_sha256`` by a plain gRPC stub (a caller that is not
the published client, which would resend the roster on ROSTER_NOT_CACHED). B finds the
snapshot A stored and decides exactly as A would, on PostgreSQL and on one SQLite file alike
(the workers of one ``serve`` share a SQLite log the same way).
"""

from pathlib import Path

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from caseroute.domain.fingerprint import roster_sha256
from caseroute.testing import NOW, make_agent, make_case, make_roster
from caseroute.v1 import routing_pb2 as pb
from caseroute.v1 import routing_pb2_grpc
from caseroute.wire import convert
from tests.serve_process import Served

from .conftest import start_replica

ROSTER = make_roster(*(make_agent(f"n{i}") for i in range(40)))
"""More agents than one chunk (``roster_blob.MAX_CHUNK`` is 64 at most; ~19 on average)."""


def _request(request_id: str, *, by_hash: bool) -> pb.DecideRequest:
    request = pb.DecideRequest(
        request_id=request_id,
        case=convert.case_to_proto(make_case(case_id="C-1")),
        now=convert.datetime_to_timestamp(NOW),
    )
    if by_hash:
        request.roster_sha256 = roster_sha256(ROSTER)
    else:
        request.roster.CopyFrom(convert.roster_to_proto(ROSTER))
    return request


def _decide(replica: Served, request: pb.DecideRequest) -> pb.DecideResponse:
    with grpc.insecure_channel(replica.address) as chan:
        reply: pb.DecideResponse = routing_pb2_grpc.RoutingServiceStub(chan).Decide(
            request, timeout=60
        )
        return reply


def test_a_replica_decides_by_hash_with_the_roster_another_replica_stored(
    tmp_path: Path, audit_db: str, rulesets: Path, replicas: list[Served]
) -> None:
    """B decides by hash as A did with the roster; its decision is the one A then replays."""
    replicas.append(start_replica(tmp_path, audit_db, rulesets))
    replicas.append(start_replica(tmp_path, audit_db, rulesets))
    a, b = replicas
    sent = _decide(a, _request("with-roster", by_hash=False))
    assert sent.decision.agent_id != ""
    named = _decide(b, _request("by-hash", by_hash=True))
    again = _decide(a, _request("by-hash", by_hash=False))  # the one B stored, replayed
    assert (again.replayed, again.decision) == (True, named.decision)
    assert (named.decision.outcome, named.decision.agent_id) == (
        sent.decision.outcome,
        sent.decision.agent_id,
    )


def test_a_roster_no_replica_stored_is_still_not_cached(
    tmp_path: Path, audit_db: str, rulesets: Path, replicas: list[Served]
) -> None:
    """A hash nobody decided with: FAILED_PRECONDITION ROSTER_NOT_CACHED (the caller resends)."""
    replicas.append(start_replica(tmp_path, audit_db, rulesets))
    with pytest.raises(grpc.RpcError) as raised:
        _decide(replicas[0], _request("by-hash", by_hash=True))
    error: grpc.Call = raised.value  # type: ignore[assignment]  # unary errors are Calls too
    status = rpc_status.from_call(error)
    assert status is not None
    info = error_details_pb2.ErrorInfo()
    assert status.details[0].Unpack(info)
    assert (error.code(), info.reason) == (grpc.StatusCode.FAILED_PRECONDITION, "ROSTER_NOT_CACHED")
