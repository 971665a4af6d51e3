"""The rpc line's level: a roster named by hash that a worker lacks is no warning."""

from __future__ import annotations

import logging

import grpc
import pytest

from caseroute.grpc_api.rpc_calls import FinishedCall
from caseroute.grpc_api.rpc_log import RpcLogListener
from caseroute.v1 import routing_pb2 as pb

SHA = "ab" * 32


def _level(code: grpc.StatusCode, request: object, caplog: pytest.LogCaptureFixture) -> str:
    caplog.clear()
    with caplog.at_level(logging.DEBUG, logger="caseroute.rpc"):
        RpcLogListener().call_finished(
            FinishedCall(
                "caseroute.v1.RoutingService", "Decide", code, 0.001, request, None, "", "p"
            )
        )
    (record,) = caplog.records
    return record.levelname


def test_a_roster_by_hash_the_worker_lacks_is_logged_at_info(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """FAILED_PRECONDITION for a Decide or a batch by hash alone: INFO (the client resends).

    It was a WARNING for every resend: after each restart or eviction, one per roster and
    worker, in normal operation. Any other refusal stays a WARNING.
    """
    by_hash = pb.DecideRequest(request_id="r", roster_sha256=SHA)
    batch = pb.DecideBatchRequest(request_id="r", roster_sha256=SHA)
    with_roster = pb.DecideRequest(request_id="r", roster_sha256=SHA, roster=pb.Roster())
    failed = grpc.StatusCode.FAILED_PRECONDITION
    assert [
        _level(failed, by_hash, caplog),
        _level(failed, batch, caplog),
        _level(failed, with_roster, caplog),  # not the by-hash refusal: another precondition
        _level(failed, pb.DecideRequest(request_id="r"), caplog),
        _level(grpc.StatusCode.INVALID_ARGUMENT, by_hash, caplog),
        _level(grpc.StatusCode.UNAVAILABLE, by_hash, caplog),
        _level(grpc.StatusCode.OK, by_hash, caplog),
    ] == ["INFO", "INFO", "WARNING", "WARNING", "WARNING", "ERROR", "INFO"]
