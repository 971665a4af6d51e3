"""``--max-now-skew`` on a served Decide (review R36a M2; the core's rules: tests/service)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc

from caseroute.v1 import routing_pb2_grpc

from .conftest import decide_request, served_refusal, serving_reference


def test_a_served_decide_with_a_stale_now_is_invalid_argument_at_now(tmp_path: Path) -> None:
    """Through gRPC, with the server's real clock, ``--max-now-skew 300`` is enforced.

    The fixed test instant (days ago) is refused at ``now`` (google.rpc.BadRequest); the
    same request without ``now`` decides.
    """
    request = decide_request("stale-wire")
    with serving_reference(tmp_path, max_now_skew_s=300) as server:
        code, violations, _ = served_refusal(server.port, request)
        ((field, description),) = violations
        assert (code, field) == (grpc.StatusCode.INVALID_ARGUMENT, "now")
        assert "behind this server's clock" in description
        assert "at most 5 min (--max-now-skew)" in description
        request.ClearField("now")
        request.case.created_at.FromDatetime(datetime.now(UTC) - timedelta(minutes=1))
        with grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
            stub = routing_pb2_grpc.RoutingServiceStub(channel)
            assert stub.Decide(request, timeout=30).decision.decision_id
