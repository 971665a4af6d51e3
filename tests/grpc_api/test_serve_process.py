"""`caseroute serve` as a real multi-worker process: readiness, and SIGTERM drains calls."""

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from caseroute.grpc_api import convert
from caseroute.grpc_api._generated import routing_pb2 as pb
from caseroute.grpc_api._generated import routing_pb2_grpc
from caseroute.testing import NOW, REFERENCE_RULESET, make_agent, make_case, make_roster


@pytest.fixture
def served() -> Iterator[tuple[subprocess.Popen[str], str]]:
    """`caseroute serve` with two workers on a free port; yields the process and address."""
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "caseroute.cli",
            "serve",
            "--port",
            "0",
            "--workers",
            "2",
            "--rulesets",
            str(REFERENCE_RULESET.parent),
            "--grace",
            "30",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert line.startswith("caseroute listening on 127.0.0.1:"), line
    address = line.split()[3]
    yield proc, address
    if proc.poll() is None:
        proc.kill()
    proc.wait(30)
    proc.stdout.close()
    if proc.stderr is not None:
        proc.stderr.close()


def _wait_serving(address: str) -> None:
    deadline = time.monotonic() + 60
    serving = 0
    while serving < 6:  # several fresh connections, so every worker has been reached
        assert time.monotonic() < deadline, "server never became SERVING"
        with grpc.insecure_channel(address) as chan:
            try:
                stub: Any = health_pb2_grpc.HealthStub(chan)  # typeshed stub lacks Check
                status = stub.Check(health_pb2.HealthCheckRequest(), timeout=5).status
            except grpc.RpcError:
                status = None
        serving = serving + 1 if status == health_pb2.HealthCheckResponse.SERVING else 0
        time.sleep(0.05)


def test_sigterm_drains_in_flight_calls_then_exits_zero(
    served: tuple[subprocess.Popen[str], str],
) -> None:
    """A batch in flight when SIGTERM arrives completes; the server then exits 0."""
    proc, address = served
    _wait_serving(address)
    agents = [make_agent(f"a{i:04}") for i in range(2000)]
    request = pb.DecideBatchRequest(
        request_id="drain",
        roster=convert.roster_to_proto(make_roster(*agents)),
        cases=[convert.case_to_proto(make_case(case_id=f"D{i}")) for i in range(150)],
        now=convert.datetime_to_timestamp(NOW),
    )
    outcome: dict[str, object] = {}

    def call() -> None:
        # A full explanation of this batch is ~20 MB: above gRPC's default 4 MB receive limit.
        options = [("grpc.max_receive_message_length", 64 * 1024 * 1024)]
        with grpc.insecure_channel(address, options=options) as chan:
            try:
                reply = routing_pb2_grpc.RoutingServiceStub(chan).DecideBatch(request, timeout=120)
                outcome["agents"] = [d.agent_id for d in reply.decisions]
            except grpc.RpcError as exc:
                outcome["error"] = exc.code()

    caller = threading.Thread(target=call)
    caller.start()
    # A full explanation of 150 cases x 2000 agents takes the server several seconds, so 1.5 s
    # after sending, the call is certainly in flight (received, not yet answered).
    time.sleep(1.5)
    assert caller.is_alive(), "the batch finished before SIGTERM; make it longer"
    os.kill(proc.pid, signal.SIGTERM)
    caller.join(120)
    assert proc.wait(60) == 0
    # lowest utilisation first: each agent takes one case before any takes a second
    assert outcome == {"agents": [f"a{i:04}" for i in range(150)]}
    assert proc.stderr is not None
    assert proc.stderr.read().count("worker stopped") == 2
