"""SIGTERM while a call outlasts the grace: cancelled with UNAVAILABLE, nothing closed under it."""

import signal
import threading
from pathlib import Path

import grpc
import pytest

from caseroute.engine.case_rules import LoadedRuleset
from caseroute.grpc_api.server import STOP_BOUND_S, ServerConfig, build_server
from caseroute.service import RulesetRegistry
from caseroute.testing import (
    GatedMatcher,
    audit_config,
    audited_core,
    reference_compiled,
)
from caseroute.v1 import routing_pb2_grpc
from tests.grpc_api.conftest import decide_request
from tests.supervision.process import start


class _Counted(LoadedRuleset):
    """The reference ruleset held by a gate, counting its ``close`` calls."""

    def __init__(self) -> None:
        compiled = reference_compiled()
        self.gate = GatedMatcher(compiled.leaves, wait_s=60)
        super().__init__(compiled, self.gate)
        self.closed = 0

    def close(self) -> None:
        """Count the close."""
        self.closed += 1
        super().close()


def test_call_past_the_grace_is_cancelled_and_nothing_is_closed_under_it(tmp_path: Path) -> None:
    """UNAVAILABLE to the caller, nothing recorded; stop says False; nothing closed under it."""
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
                routing_pb2_grpc.RoutingServiceStub(chan).Decide(decide_request("held"), timeout=60)
            except grpc.RpcError as exc:
                codes.append(exc.code())

    caller = threading.Thread(target=call)
    caller.start()
    assert ruleset.gate.entered.wait(60)
    stopped = running.stop(0.2, bound_s=0.3)
    caller.join(60)
    assert (stopped, codes, ruleset.closed) == (False, [grpc.StatusCode.UNAVAILABLE], 0)
    ruleset.gate.release.set()  # the abandoned call ends with everything it needs still open
    assert running.pool is not None
    assert running.pool.wait_idle(60)
    # The call was cancelled before its record: nothing is stored that the caller, told
    # UNAVAILABLE, never received (review R31c); the log is still open and writable.
    assert (core.audit.by_request("held"), core.probe_audit()) == ([], True)
    registry.close()
    core.audit.close()
    assert ruleset.closed == 1


def test_call_within_the_grace_finishes_and_stop_closes_everything(tmp_path: Path) -> None:
    """A held call released during the grace answers OK; stop then closes and says True."""
    ruleset = _Counted()
    registry = RulesetRegistry()
    registry.add(ruleset)
    core = audited_core(registry, tmp_path)
    config = ServerConfig(port=0, audit=audit_config(tmp_path), audit_probe_s=0)
    running = build_server(config, reuse_port=False, core=core)
    outcome: list[str] = []

    def call() -> None:
        with grpc.insecure_channel(f"127.0.0.1:{running.port}") as chan:
            reply = routing_pb2_grpc.RoutingServiceStub(chan).Decide(
                decide_request("held"), timeout=60
            )
            outcome.append(reply.decision.decision_id)

    caller = threading.Thread(target=call)
    caller.start()
    assert ruleset.gate.entered.wait(60)
    stopping = threading.Thread(target=lambda: outcome.append(str(running.stop(60))))
    stopping.start()
    ruleset.gate.release.set()
    caller.join(60)
    stopping.join(60)
    [record] = core.audit.by_request("held")
    assert [record.decision_id, "True"] == outcome
    assert ruleset.closed == 1


STUCK_SERVE = '''\
"""`caseroute serve` whose Decide with request_id "stuck" never returns (also each worker)."""
import os
import sys
import threading

from caseroute.cli import main
from caseroute.grpc_api.servicer import RoutingServicer

_decide = RoutingServicer.Decide


def _stuck_decide(self, request, context):
    if request.request_id == "stuck":
        sys.stderr.write(f"test-hook: stuck in flight in {os.getpid()}\\n")
        sys.stderr.flush()
        threading.Event().wait()
    return _decide(self, request, context)


RoutingServicer.Decide = _stuck_decide

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
'''


@pytest.mark.parametrize("workers", [1, 2])
def test_sigterm_with_a_call_that_never_ends_exits_within_grace_and_bound(
    tmp_path: Path, workers: int
) -> None:
    """1 or 2 workers: the stuck call gets UNAVAILABLE and the server exits 1 in time."""
    (tmp_path / "stuck_serve.py").write_text(STUCK_SERVE)
    served = start(
        tmp_path,
        workers=workers,
        launcher=[str(tmp_path / "stuck_serve.py")],
        extra=["--grace", "1"],
    )
    codes: list[grpc.StatusCode] = []

    def call() -> None:
        with grpc.insecure_channel(served.address) as chan:
            try:
                routing_pb2_grpc.RoutingServiceStub(chan).Decide(
                    decide_request("stuck"), timeout=60
                )
            except grpc.RpcError as exc:
                codes.append(exc.code())

    caller = threading.Thread(target=call)
    try:
        caller.start()
        served.wait_for("test-hook: stuck in flight")
        served.proc.send_signal(signal.SIGTERM)
        code = served.proc.wait(1 + STOP_BOUND_S + 10)
        caller.join(60)
        log = served.stderr()
        assert (code, codes) == (1, [grpc.StatusCode.UNAVAILABLE])
        assert log.count("1 call(s) still running") == 1
        assert "did not drain in time" not in log
    finally:
        served.reap()
