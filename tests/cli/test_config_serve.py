"""A real `caseroute serve --config FILE` honours the file: a limit it sets refuses a call."""

import signal
from pathlib import Path

import grpc
import pytest

from caseroute.v1 import routing_pb2_grpc
from tests.grpc_api.conftest import decide_request
from tests.supervision.process import start


@pytest.mark.slow
def test_serve_honours_the_config_file_end_to_end(tmp_path: Path) -> None:
    """[limits] max_agents = 2 from the file: a 3-agent roster is INVALID_ARGUMENT naming it."""
    config = tmp_path / "caseroute.toml"
    config.write_text('[limits]\nmax_agents = 2\n\n[logs]\nformat = "json"\n', encoding="utf-8")
    served = start(tmp_path, workers=1, extra=["--config", str(config)])
    try:
        with grpc.insecure_channel(served.address) as channel:
            stub = routing_pb2_grpc.RoutingServiceStub(channel)
            with pytest.raises(grpc.RpcError) as refused:
                stub.Decide(decide_request("config-e2e"), timeout=30)
        served.proc.send_signal(signal.SIGTERM)
        served.proc.wait(60)
    finally:
        served.reap()
    error: grpc.Call = refused.value  # type: ignore[assignment]
    assert (error.code(), error.details()) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        (
            "invalid request: 1 problem(s); first: roster.agents: has 3 agents; the limit is 2 "
            "(configurable: --max-agents): split the roster by team or territory (every problem is "
            "in the google.rpc.BadRequest details)"
        ),
    )
