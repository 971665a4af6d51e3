"""A call abandoned past the grace is logged as CANCELLED, never as OK."""

import logging
import threading
from pathlib import Path

import grpc
import pytest

from caseroute.grpc_api.server import ServerConfig, build_server
from caseroute.service import RulesetRegistry
from caseroute.testing import audit_config, audited_core
from caseroute.v1 import routing_pb2_grpc
from tests.grpc_api.conftest import decide_request
from tests.supervision.test_stop_in_flight import _Counted


def test_the_call_line_of_an_abandoned_call_says_cancelled(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The caller saw UNAVAILABLE; the handler returned later: its line says CANCELLED."""
    ruleset = _Counted()
    registry = RulesetRegistry()
    registry.add(ruleset)
    core = audited_core(registry, tmp_path)
    config = ServerConfig(port=0, audit=audit_config(tmp_path), audit_probe_s=0)
    running = build_server(config, reuse_port=False, core=core)
    codes: list[grpc.StatusCode] = []

    def call() -> None:
        with grpc.insecure_channel(f"127.0.0.1:{running.port}") as chan:
            try:
                routing_pb2_grpc.RoutingServiceStub(chan).Decide(decide_request("late"), timeout=60)
            except grpc.RpcError as exc:
                codes.append(exc.code())

    caplog.set_level(logging.INFO, logger="caseroute.rpc")
    caller = threading.Thread(target=call)
    caller.start()
    assert ruleset.gate.entered.wait(60)
    running.stop(0.2, bound_s=0.3)
    caller.join(60)
    ruleset.gate.release.set()
    assert running.pool is not None
    assert running.pool.wait_idle(60)
    lines = [r for r in caplog.records if getattr(r, "method", "") == "Decide"]
    assert (codes, [getattr(r, "code", None) for r in lines]) == (
        [grpc.StatusCode.UNAVAILABLE],
        ["CANCELLED"],
    )
    registry.close()
    core.audit.close()
