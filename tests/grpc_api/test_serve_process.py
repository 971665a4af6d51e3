"""`caseroute serve` as a real multi-worker process: SIGTERM drains calls; SIGKILL loses none."""

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from caseroute.grpc_api import convert
from caseroute.grpc_api._generated import routing_pb2 as pb
from caseroute.grpc_api._generated import routing_pb2_grpc
from caseroute.testing import (
    NOW,
    REFERENCE_RULESET,
    TEST_AUDIT_KEY,
    make_agent,
    make_case,
    make_roster,
)


def _start(audit_db: Path) -> tuple[subprocess.Popen[str], str]:
    """`caseroute serve` with two workers on a free port, in its own process group."""
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
            "--audit-db",
            str(audit_db),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "CASEROUTE_AUDIT_KEY": TEST_AUDIT_KEY},
        start_new_session=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert line.startswith("caseroute listening on 127.0.0.1:"), line
    return proc, line.split()[3]


def _reap(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(30)
    for stream in (proc.stdout, proc.stderr):
        if stream is not None:
            stream.close()


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """`caseroute serve` with two workers on a free port; yields the process and address."""
    proc, address = _start(tmp_path / "audit.db")
    yield proc, address
    _reap(proc)


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


def test_sigkill_under_load_loses_no_acknowledged_decision(tmp_path: Path) -> None:
    """Kill -9 every server process mid-load; after restart, each answered decision is stored."""
    db = tmp_path / "audit.db"
    proc, address = _start(db)
    acked: list[str] = []
    stop = threading.Event()
    roster = convert.roster_to_proto(make_roster(*(make_agent(f"a{i}") for i in range(20))))

    def client(n: int) -> None:
        with grpc.insecure_channel(address) as chan:
            stub = routing_pb2_grpc.RoutingServiceStub(chan)
            for i in range(10_000):  # bounded; ends when the server dies
                if stop.is_set():
                    return
                request = pb.DecideRequest(
                    request_id=f"k{n}-{i}",
                    case=convert.case_to_proto(make_case(case_id=f"K{n}-{i}")),
                    roster=roster,
                    now=convert.datetime_to_timestamp(NOW),
                )
                try:
                    reply = stub.Decide(request, timeout=10)
                except grpc.RpcError:
                    return
                acked.append(reply.decision.decision_id)

    try:
        _wait_serving(address)
        clients = [threading.Thread(target=client, args=(n,)) for n in range(8)]
        for t in clients:
            t.start()
        deadline = time.monotonic() + 60
        while len(acked) < 200 and time.monotonic() < deadline:
            time.sleep(0.01)
        os.killpg(proc.pid, signal.SIGKILL)  # parent and both workers, mid-load
        stop.set()
        for t in clients:
            t.join(30)
    finally:
        _reap(proc)
    answered = list(acked)
    assert len(answered) >= 200

    restarted, address = _start(db)
    try:
        _wait_serving(address)
        with grpc.insecure_channel(address) as chan:
            log = routing_pb2_grpc.DecisionLogStub(chan)
            for decision_id in answered:
                got = log.GetDecision(pb.GetDecisionRequest(decision_id=decision_id), timeout=10)
                assert got.decision.decision_id == decision_id
    finally:
        restarted.send_signal(signal.SIGTERM)
        restarted.wait(60)
        _reap(restarted)
    verify = subprocess.run(
        [sys.executable, "-m", "caseroute.cli", "audit", "verify", "--audit-db", str(db)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert verify.stdout.startswith("ok: ")
