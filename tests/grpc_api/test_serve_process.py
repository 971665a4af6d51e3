"""`caseroute serve` as a real multi-worker process: SIGTERM drains calls; SIGKILL loses none.

No test here waits a fixed time for something to happen: readiness, "in flight" and "draining"
are read from the server's own log lines (stderr), and the drain test holds its batch in the
worker with a FIFO the test opens only after SIGTERM has reached both workers.
"""

import os
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import grpc
import pytest

from caseroute.engine.case_rules import EngineKind
from caseroute.service import RulesetRegistry
from caseroute.testing import (
    NOW,
    audited_core,
    make_agent,
    make_case,
    make_roster,
    reference_ruleset,
)
from caseroute.v1 import routing_pb2 as pb
from caseroute.v1 import routing_pb2_grpc
from caseroute.wire import convert
from tests.serve_process import CLI, Served, start_serve
from tests.serve_process import reap as _reap

T = TypeVar("T")

HOOKED_SERVE = '''\
"""`caseroute serve` with test hooks, also imported by each spawned worker (as __mp_main__).

- DecideBatch with request_id "drain" logs that it is in flight, then blocks until the FIFO
  named by CASEROUTE_TEST_RELEASE is opened for writing and closed.
- grpc's Server.stop logs once it has begun (new calls refused, in-flight calls draining).
"""
import os
import sys

import grpc._server

from caseroute.cli import main
from caseroute.grpc_api.servicer import RoutingServicer

_decide_batch = RoutingServicer.DecideBatch
_stop = grpc._server._Server.stop


def _held_decide_batch(self, request, context):
    if request.request_id == "drain":
        sys.stderr.write(f"test-hook: drain in flight in {os.getpid()}\\n")
        sys.stderr.flush()
        with open(os.environ["CASEROUTE_TEST_RELEASE"]) as release:
            release.read()
    return _decide_batch(self, request, context)


def _noted_stop(self, grace):
    stopping = _stop(self, grace)
    sys.stderr.write(f"test-hook: server stopping in {os.getpid()}\\n")
    sys.stderr.flush()
    return stopping


RoutingServicer.DecideBatch = _held_decide_batch
grpc._server._Server.stop = _noted_stop

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
'''


def _within(seconds: float, what: str, work: Callable[[], T]) -> T:
    """``work()``, failing the test (instead of hanging it) if it blocks past ``seconds``."""
    outcome: list[T] = []
    runner = threading.Thread(target=lambda: outcome.append(work()), daemon=True)
    runner.start()
    runner.join(seconds)
    assert outcome, f"{what} did not happen within {seconds} s"
    return outcome[0]


def _start(
    audit_db: Path, launcher: list[str] | None = None, env: dict[str, str] | None = None
) -> Served:
    """`caseroute serve` with two workers on a free port, in its own process group, SERVING."""
    return start_serve(audit_db, "--grace", "30", workers=2, launcher=launcher or CLI, env=env)


@pytest.fixture
def hooked(tmp_path: Path) -> Iterator[tuple[Served, Path]]:
    """`caseroute serve` (two workers) with the drain hook; yields it and the release FIFO."""
    release = tmp_path / "release"
    os.mkfifo(release)
    (tmp_path / "hooked_serve.py").write_text(HOOKED_SERVE)
    served = _start(
        tmp_path / "audit.db",
        [str(tmp_path / "hooked_serve.py")],
        {"CASEROUTE_TEST_RELEASE": str(release)},
    )
    yield served, release
    served.reap()


def test_sigterm_drains_in_flight_calls_then_exits_zero(
    hooked: tuple[Served, Path], tmp_path: Path
) -> None:
    """A batch in flight when SIGTERM arrives completes with its full answer; exit code 0."""
    served, release = hooked
    roster = make_roster(*(make_agent(f"a{i}") for i in range(3)))
    request = pb.DecideBatchRequest(
        request_id="drain",
        roster=convert.roster_to_proto(roster),
        cases=[convert.case_to_proto(make_case(case_id=f"D{i}")) for i in range(5)],
        now=convert.datetime_to_timestamp(NOW),
    )
    outcome: dict[str, object] = {}

    def call() -> None:
        with grpc.insecure_channel(served.address) as chan:
            try:
                reply = routing_pb2_grpc.RoutingServiceStub(chan).DecideBatch(request, timeout=120)
                outcome["decisions"] = [(d.decision_id, d.agent_id) for d in reply.decisions]
            except grpc.RpcError as exc:
                outcome["error"] = exc.code()

    caller = threading.Thread(target=call)
    caller.start()
    served.wait_for("test-hook: drain in flight")
    os.kill(served.proc.pid, signal.SIGTERM)
    served.wait_for("test-hook: server stopping", 2)  # both workers are draining
    assert caller.is_alive()  # held by the hook: still in flight while the server stops
    # Opening the FIFO for writing (and closing it) lets the held batch go on.
    _within(60, "the held worker opening the release FIFO", lambda: release.open("w").close())
    caller.join(120)
    assert served.proc.wait(60) == 0
    registry = RulesetRegistry()
    registry.add(reference_ruleset(EngineKind.PYTHON))
    local = audited_core(registry, tmp_path / "local")
    expected = local.decide(convert.batch_command(request)).decisions
    local.audit.close()
    assert outcome == {"decisions": [(d.decision_id, d.agent_id) for d in expected]}
    assert served.stderr().count("worker stopped") == 2


def test_sigkill_under_load_loses_no_acknowledged_decision(tmp_path: Path) -> None:
    """Kill -9 every server process mid-load; after restart, each answered decision is stored."""
    db = tmp_path / "audit.db"
    served = _start(db)
    acked: list[str] = []
    enough = threading.Event()
    stop = threading.Event()
    roster = convert.roster_to_proto(make_roster(*(make_agent(f"a{i}") for i in range(20))))

    def client(n: int) -> None:
        with grpc.insecure_channel(served.address) as chan:
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
                if len(acked) >= 200:
                    enough.set()

    try:
        clients = [threading.Thread(target=client, args=(n,)) for n in range(8)]
        for t in clients:
            t.start()
        assert enough.wait(120), "the server did not answer 200 calls"
        os.killpg(served.proc.pid, signal.SIGKILL)  # parent and both workers, mid-load
        stop.set()
        for t in clients:
            t.join(30)
    finally:
        _reap(served.proc)
    answered = list(acked)
    assert len(answered) >= 200

    restarted = _start(db)
    try:
        with grpc.insecure_channel(restarted.address) as chan:
            log = routing_pb2_grpc.DecisionLogStub(chan)
            stored = [
                log.GetDecision(pb.GetDecisionRequest(decision_id=d), timeout=10).decision
                for d in answered
            ]
        assert [d.decision_id for d in stored] == answered
    finally:
        restarted.proc.send_signal(signal.SIGTERM)
        restarted.proc.wait(60)
        _reap(restarted.proc)
    verify = subprocess.run(
        [sys.executable, "-m", "caseroute.cli", "audit", "verify", "--audit-db", str(db)],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert (verify.returncode, verify.stderr) == (0, "")
    # Each worker's startup load is a ruleset event in the same chain.
    verified = re.match(
        r"ok: (\d+) record\(s\)(?: \((\d+) of them ruleset event\(s\)\))?, every link and "
        r"blob verified; head ",
        verify.stdout,
    )
    assert verified is not None, verify.stdout
    decisions = int(verified.group(1)) - int(verified.group(2) or 0)
    assert decisions >= len(answered)  # calls cut off by the kill may be stored too
