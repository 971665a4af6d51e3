"""The ruleset lifecycle on a live server under load: activation, rollback, broken file, shadow."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any, Self

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from caseroute.cli.command import main
from caseroute.grpc_api.server import RunningServer
from caseroute.testing import ruleset_with_rules
from caseroute.v1 import admin_pb2 as apb
from caseroute.v1 import admin_pb2_grpc, routing_pb2_grpc

from .conftest import decide_request
from .test_admin import admin_server
from .test_auth import ALICE, bearer

THREADS = 4
SWITCHES = 6
PER_SWITCH = 10  # decisions between two switches (per all threads together)
WAIT_S = 60.0  # an upper bound for an event that should come at once; never a sleep


def _admin(server: RunningServer, method: str, request: Any) -> Any:
    with grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        stub = admin_pb2_grpc.RulesetAdminStub(channel)
        return getattr(stub, method)(request, timeout=60, metadata=bearer(ALICE))


class _Load:
    """THREADS clients deciding until told to stop; every version seen, every failure kept."""

    def __init__(self, server: RunningServer) -> None:
        self.server = server
        self.done = threading.Condition()
        self.count = 0
        self.versions: list[str] = []
        self.failures: list[BaseException] = []
        self.stop = False
        self.threads = [threading.Thread(target=self._run, args=(n,)) for n in range(THREADS)]

    def _run(self, n: int) -> None:
        with grpc.insecure_channel(f"127.0.0.1:{self.server.port}") as channel:
            stub = routing_pb2_grpc.RoutingServiceStub(channel)
            i = 0
            while True:
                with self.done:
                    if self.stop:
                        return
                i += 1
                try:
                    reply = stub.Decide(decide_request(f"t{n}-{i}"), timeout=60)
                    version = reply.decision.ruleset.version
                except BaseException as exc:  # noqa: BLE001 - asserted empty by the test
                    with self.done:
                        self.failures.append(exc)
                        self.done.notify_all()
                    return
                with self.done:
                    self.versions.append(version)
                    self.count += 1
                    self.done.notify_all()

    def wait_for(self, count: int) -> None:
        with self.done:
            assert self.done.wait_for(lambda: self.count >= count or bool(self.failures), WAIT_S)

    def __enter__(self) -> Self:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        with self.done:
            self.stop = True
        for thread in self.threads:
            thread.join(WAIT_S)


def test_activation_and_rollback_under_load_fail_no_call_and_are_verified(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """6 switches between 1 and 2 under 4 clients: no failed call; chain records each switch."""
    with admin_server(tmp_path) as server, _Load(server) as load:
        for k in range(SWITCHES):
            load.wait_for((k + 1) * PER_SWITCH)
            if k % 2 == 0:
                _admin(
                    server,
                    "ActivateRuleset",
                    apb.ActivateRulesetRequest(name="routing", version="2"),
                )
            else:
                _admin(server, "Rollback", apb.RollbackRequest(name="routing"))
        load.wait_for((SWITCHES + 1) * PER_SWITCH)
    assert (load.failures, set(load.versions)) == ([], {"1", "2"})
    db = str(tmp_path / "audit" / "audit.db")
    capsys.readouterr()
    assert main(["audit", "events", "--audit-db", db, "--format", "json"]) == 0
    events = json.loads(capsys.readouterr().out)["events"]
    assert [(e["action"], e["actor"], e["from_version"], e["to_version"]) for e in events] == [
        ("load", "startup", "", "1"),
        *[
            ("activate", "admin:alice", "1", "2")
            if k % 2 == 0
            else ("rollback", "admin:alice", "2", "1")
            for k in range(SWITCHES)
        ],
    ]
    assert main(["audit", "export", "--audit-db", db]) == 0
    decided = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    # Each decision was made by the version active when it started: the one the last event
    # before it in the chain switched to, or (started just before that switch) the one before.
    switches = [(e["seq"], e["from_version"], e["to_version"]) for e in events]
    for record in decided:  # caseroute.v1.AuditedDecision JSON: int64 seq is a string
        seq = int(record["seq"])
        _, before, after = max(s for s in switches if s[0] < seq)
        assert record["decision"]["ruleset"]["version"] in {before, after}, seq
    assert main(["audit", "verify", "--audit-db", db]) == 0
    assert capsys.readouterr().out.startswith(
        f"ok: {len(load.versions) + len(events)} record(s) ({len(events)} of them ruleset event(s))"
    )


def _broken(root: Path) -> Path:
    path = root / "routing" / "3" / "ruleset.yaml"
    path.parent.mkdir(parents=True)
    path.write_text("ruleset: routing\nversion: '3'\nrules: [\n")  # half-written
    return path


def test_a_broken_file_dropped_in_under_load_keeps_the_last_good_version_serving(
    tmp_path: Path,
) -> None:
    """A half-written version mid-load: no failed call, SERVING, the error in ListRulesets."""
    with admin_server(tmp_path) as server, _Load(server) as load:
        load.wait_for(PER_SWITCH)
        _broken(tmp_path / "rulesets")
        outcome = _admin(server, "Reload", apb.ReloadRequest())
        load.wait_for(3 * PER_SWITCH)
        (status,) = _admin(server, "ListRulesets", apb.ListRulesetsRequest()).rulesets
        with grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
            stub: Any = health_pb2_grpc.HealthStub(channel)  # typeshed's stub lacks Check
            health = stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=10)
    assert (load.failures, set(load.versions)) == ([], {"1"})
    assert len(outcome.errors) == 1
    assert status.last_error.startswith("routing/3/ruleset.yaml:4")
    assert (status.active_version, health.status) == ("1", health_pb2.HealthCheckResponse.SERVING)


ESCALATE_ALL = """\
  - id: everything
    when: true
    then: {escalate: {queue: supervisors, reason: review}}
"""


def test_a_shadow_version_named_in_serving_yaml_is_compared_on_a_live_server(
    tmp_path: Path,
) -> None:
    """serving.yaml gains `shadow: '2'` (2 escalates everything): each live call is compared."""
    with admin_server(tmp_path) as server:
        root = tmp_path / "rulesets" / "routing"
        (root / "2" / "ruleset.yaml").write_text(
            ruleset_with_rules(ESCALATE_ALL)
            .replace("ruleset: test\n", "ruleset: routing\n")
            .replace('version: "1"\n', 'version: "2"\n')
        )
        (root / "serving.yaml").write_text("active: '1'\nshadow: '2'\n")
        _admin(server, "Reload", apb.ReloadRequest())
        with grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
            reply = routing_pb2_grpc.RoutingServiceStub(channel).Decide(
                decide_request("shadowed"), timeout=60
            )
        assert server.core.shadow is not None
        assert server.core.shadow.wait_idle(WAIT_S)
        (result,) = server.core.audit.shadow_results("routing")
    live = reply.decision
    assert (result.decision_id, result.live_version, result.shadow_version) == (
        live.decision_id,
        "1",
        "2",
    )
    assert (result.shadow["outcome"], "outcome" in result.differences) == ("ESCALATE", True)
