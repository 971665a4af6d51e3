"""A real server on port 0: health, reflection, concurrency, deadlines."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from concurrent import futures
from dataclasses import replace
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf import descriptor_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from caseroute.engine.case_rules import EngineKind
from caseroute.grpc_api.server import ROUTING_SERVICE, RunningServer, ServerConfig, build_server
from caseroute.grpc_api.servicer import RoutingServicer
from caseroute.service import RoutingCore
from caseroute.testing import REFERENCE_RULESET, audit_config, make_agent, make_case, make_roster
from caseroute.v1 import routing_pb2 as pb
from caseroute.v1 import routing_pb2_grpc
from caseroute.wire import convert

from .conftest import decide_request, serving_reference


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """An in-process server on a free port with the reference ruleset loaded."""
    audit_dir = tmp_path_factory.mktemp("audit")
    with serving_reference(audit_dir, engine=EngineKind.DURABLE, threads=16) as server:
        yield server


def _health(channel: grpc.Channel, service: str = "") -> int:
    stub: Any = health_pb2_grpc.HealthStub(channel)  # typeshed stub lacks Check
    status: int = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=5).status
    return status


def test_health_goes_serving_only_after_rulesets_load(tmp_path: Path) -> None:
    """NOT_SERVING before a ruleset loads, SERVING after; NOT_SERVING again on shutdown."""
    config = ServerConfig(
        rulesets=tmp_path, port=0, engine=EngineKind.PYTHON, audit=audit_config(tmp_path)
    )
    server = build_server(config, reuse_port=False)
    with grpc.insecure_channel(f"127.0.0.1:{server.port}") as chan:
        assert _health(chan) == health_pb2.HealthCheckResponse.NOT_SERVING
        server.load(config)  # empty directory: still nothing to serve
        assert _health(chan, ROUTING_SERVICE) == health_pb2.HealthCheckResponse.NOT_SERVING
        with pytest.raises(grpc.RpcError) as exc:
            routing_pb2_grpc.RoutingServiceStub(chan).Decide(decide_request(), timeout=5)
        assert exc.value.code() is grpc.StatusCode.UNAVAILABLE
        server.load(replace(config, rulesets=REFERENCE_RULESET.parent))
        assert _health(chan) == health_pb2.HealthCheckResponse.SERVING
        assert _health(chan, ROUTING_SERVICE) == health_pb2.HealthCheckResponse.SERVING
        server.health.enter_graceful_shutdown()
        assert _health(chan) == health_pb2.HealthCheckResponse.NOT_SERVING
    server.stop(1)


def test_reflection_lists_the_services(channel: grpc.Channel) -> None:
    """Generic clients (grpcurl, Postman) can discover the API without the .proto files."""
    stub: Any = reflection_pb2_grpc.ServerReflectionStub(channel)  # stub methods untyped
    request = reflection_pb2.ServerReflectionRequest(list_services="")
    (response,) = list(stub.ServerReflectionInfo(iter([request]), timeout=5))
    names = sorted(s.name for s in response.list_services_response.service)
    assert names == [
        "caseroute.v1.DecisionLog",
        "caseroute.v1.RoutingService",
        "caseroute.v1.RulesetAdmin",
        "grpc.health.v1.Health",
        "grpc.reflection.v1.ServerReflection",
        "grpc.reflection.v1alpha.ServerReflection",
    ]
    file_request = reflection_pb2.ServerReflectionRequest(
        file_containing_symbol="caseroute.v1.RoutingService"
    )
    (found,) = list(stub.ServerReflectionInfo(iter([file_request]), timeout=5))
    files = [
        descriptor_pb2.FileDescriptorProto.FromString(raw)
        for raw in found.file_descriptor_response.file_descriptor_proto
    ]
    routing = next(f for f in files if f.name == pb.DESCRIPTOR.name)
    assert [s.name for s in routing.service] == ["RoutingService", "DecisionLog"]


def test_sixteen_concurrent_clients_get_their_own_decisions(running: RunningServer) -> None:
    """Each of 16 threads, with its own channel and case, gets the decision for its case."""
    results: dict[int, list[str]] = {}
    errors: list[str] = []

    def client(n: int) -> None:
        # Client n's case fits exactly one agent: agent-n speaks language n's code.
        def code(k: int) -> str:
            return chr(97 + k) * 2  # "aa", "bb", ...: valid, distinct language tags

        language = code(n)
        agents = [make_agent(f"agent-{k}", languages=frozenset({code(k)})) for k in range(16)]
        roster = convert.roster_to_proto(make_roster(*agents))
        got = []
        with grpc.insecure_channel(f"127.0.0.1:{running.port}") as chan:
            stub = routing_pb2_grpc.RoutingServiceStub(chan)
            for i in range(10):
                request = pb.DecideRequest(
                    request_id=f"c{n}-{i}",
                    roster=roster,
                    case=convert.case_to_proto(
                        make_case(case_id=f"C{n}-{i}", preferred_language=language)
                    ),
                )
                try:
                    decision = stub.Decide(request, timeout=30).decision
                except grpc.RpcError as exc:
                    errors.append(f"{n}: {exc}")
                    return
                got.append(f"{decision.case_id}:{decision.agent_id}")
        results[n] = got

    threads = [threading.Thread(target=client, args=(n,)) for n in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert results == {n: [f"C{n}-{i}:agent-{n}" for i in range(10)] for n in range(16)}


def test_concurrent_retries_over_grpc_store_one_decision(running: RunningServer) -> None:
    """Sixteen clients retrying one request_id at once: one record, one answer for all."""
    request = decide_request("retry-storm")
    request.ClearField("now")  # server-chosen now: a second evaluation would differ
    answers: list[pb.DecideResponse] = []
    barrier = threading.Barrier(16)

    def client() -> None:
        with grpc.insecure_channel(f"127.0.0.1:{running.port}") as chan:
            stub = routing_pb2_grpc.RoutingServiceStub(chan)
            barrier.wait()
            answers.append(stub.Decide(request, timeout=30))

    threads = [threading.Thread(target=client) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(answers) == 16
    assert sum(not a.replayed for a in answers) == 1  # evaluated once; the rest were replays
    assert {
        (a.decision.SerializeToString(deterministic=True), a.now.ToJsonString()) for a in answers
    } == {
        (answers[0].decision.SerializeToString(deterministic=True), answers[0].now.ToJsonString())
    }
    assert len(running.core.audit.by_request("retry-storm")) == 1


class _HoldUntilDeadline(grpc.ServerInterceptor):
    """Holds each unary call until its deadline has passed, then runs the servicer.

    Records the status the servicer itself set, which the caller never sees (the call is
    already over for it), so a test can tell the servicer's deadline check ran.
    """

    def __init__(self) -> None:
        self.statuses: list[tuple[grpc.StatusCode | None, bytes | None]] = []
        self.done = threading.Event()

    def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], grpc.RpcMethodHandler[Any, Any] | None],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        handler = continuation(handler_call_details)
        if handler is None or handler.unary_unary is None:
            return handler
        inner = handler.unary_unary

        def held(request: Any, context: grpc.ServicerContext) -> Any:
            ended = threading.Event()
            if not context.add_callback(ended.set):  # the call already ended
                ended.set()
            ended.wait(30)  # gRPC ends the call when its deadline passes
            never = threading.Event()
            while (remaining := context.time_remaining()) is not None and remaining > 0:
                never.wait(remaining)  # clocks may disagree by a hair: wait out the rest
            response = inner(request, context)
            code: Any = context.code()  # type: ignore[attr-defined]  # typeshed lacks code()
            details: Any = context.details()  # type: ignore[attr-defined]
            self.statuses.append((code, details))
            self.done.set()
            return response

        return grpc.unary_unary_rpc_method_handler(
            held,
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )


def test_a_call_past_its_deadline_is_refused_by_the_servicer(core: RoutingCore) -> None:
    """A call whose deadline passed before the servicer ran is not decided nor recorded."""
    hold = _HoldUntilDeadline()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2), interceptors=[hold])
    routing_pb2_grpc.add_RoutingServiceServicer_to_server(RoutingServicer(core), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as chan:
            stub = routing_pb2_grpc.RoutingServiceStub(chan)
            with pytest.raises(grpc.RpcError) as exc:
                stub.Decide(decide_request("late"), timeout=0.2)
        assert hold.done.wait(30), "the servicer never ran"
    finally:
        server.stop(None).wait()
    assert exc.value.code() is grpc.StatusCode.DEADLINE_EXCEEDED
    assert hold.statuses == [
        (grpc.StatusCode.DEADLINE_EXCEEDED, b"deadline passed before the request was decoded")
    ]
    assert core.audit.head()[0] == 0


def test_the_server_keeps_serving_after_a_caller_gives_up(channel: grpc.Channel) -> None:
    """A caller abandoning a slow call (client-side deadline) does not disturb the next call."""
    agents = [make_agent(f"a{i:05}") for i in range(5000)]
    big = pb.DecideRequest(
        request_id="slow",
        case=convert.case_to_proto(make_case()),
        roster=convert.roster_to_proto(make_roster(*agents)),
    )
    stub = routing_pb2_grpc.RoutingServiceStub(channel)
    with pytest.raises(grpc.RpcError) as exc:
        stub.Decide(big, timeout=0.001)
    assert exc.value.code() is grpc.StatusCode.DEADLINE_EXCEEDED
    assert stub.Decide(decide_request(), timeout=30).decision.agent_id == "a1"


def test_a_5000_agent_roster_fits_the_default_message_size(channel: grpc.Channel) -> None:
    """A full explanation for 5,000 agents travels within the default limits."""
    agents = [make_agent(f"a{i:05}") for i in range(5000)]
    request = pb.DecideRequest(
        request_id="big",
        case=convert.case_to_proto(make_case()),
        roster=convert.roster_to_proto(make_roster(*agents)),
        explanation_level=pb.EXPLANATION_LEVEL_FULL,
    )
    response = routing_pb2_grpc.RoutingServiceStub(channel).Decide(request, timeout=60)
    assert len(response.decision.explanation.matching.agents) == 5000
    assert response.decision.agent_id == "a00000"


OUTSIDER_CLIENT = """
import sys
import grpc
from google.protobuf.timestamp_pb2 import Timestamp
import routing_pb2 as pb
import routing_pb2_grpc

def ts(text):
    t = Timestamp()
    t.FromJsonString(text)
    return t

case = pb.Case(case_id="OUT-1", created_at=ts("2026-11-21T09:55:00Z"),
               channel=pb.CHANNEL_PHONE, intent=pb.INTENT_CLINICAL, urgency=pb.URGENCY_ROUTINE,
               patient_location="US-TX", region="US-TX")
nurse = pb.Agent(agent_id="rn-1", status=pb.AGENT_STATUS_AVAILABLE,
                 licences=[pb.Licence(type="RN", jurisdiction="US-TX", expires_on="2030-01-01")],
                 territories=["US-TX"], capacity=pb.Capacity(max=3, active=0))
clerk = pb.Agent(agent_id="clerk-1", status=pb.AGENT_STATUS_AVAILABLE, territories=["US-TX"],
                 capacity=pb.Capacity(max=3, active=0))
request = pb.DecideRequest(request_id="outsider-1", case=case, now=ts("2026-11-21T10:00:00Z"),
                           roster=pb.Roster(snapshot_id="s", taken_at=ts("2026-11-21T09:59:00Z"),
                                            agents=[clerk, nurse]),
                           explanation_level=pb.EXPLANATION_LEVEL_FULL)
with grpc.insecure_channel(sys.argv[1]) as channel:
    reply = routing_pb2_grpc.RoutingServiceStub(channel).Decide(request, timeout=30)
d = reply.decision
excluded = [v.agent_id + ":" + ",".join(f.check for f in v.failures)
            for v in d.explanation.matching.agents if not v.eligible]
print(pb.Outcome.Name(d.outcome), d.agent_id, d.rule_id, d.ruleset.name, " ".join(excluded))
"""


def test_a_client_built_from_the_proto_alone(running: RunningServer, tmp_path: Path) -> None:
    """Code generated from routing.proto, with no caseroute helpers, decides a case."""
    import subprocess
    import sys

    from caseroute.testing import REPO_ROOT

    proto_dir = REPO_ROOT / "protos" / "caseroute" / "v1"
    generated = subprocess.run(
        [
            sys.executable,
            "-m",
            "grpc_tools.protoc",
            f"-I{proto_dir}",
            f"--python_out={tmp_path}",
            f"--grpc_python_out={tmp_path}",
            str(proto_dir / "routing.proto"),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert generated.returncode == 0, generated.stderr
    (tmp_path / "client.py").write_text(OUTSIDER_CLIENT)
    done = subprocess.run(
        [sys.executable, "client.py", f"127.0.0.1:{running.port}"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout.split() == [
        "OUTCOME_ASSIGN",
        "rn-1",
        "clinical",
        "patient-enquiries",
        "clerk-1:licence",
    ]


def test_cli_decides_on_the_server_and_checks_health(
    running: RunningServer, capsys: pytest.CaptureFixture[str]
) -> None:
    """`caseroute decide --server` prints the same explanation as local mode; health is 0."""
    from caseroute.cli import main
    from caseroute.testing import REPO_ROOT

    address = f"127.0.0.1:{running.port}"
    files = [
        "--case",
        str(REPO_ROOT / "examples/cases/clinical-tx.json"),
        "--roster",
        str(REPO_ROOT / "examples/roster.json"),
        "--now",
        "2026-11-21T10:00:00Z",
    ]
    assert main(["decide", "--server", address, *files]) == 0
    remote = capsys.readouterr().out
    assert main(["decide", "--ruleset", str(REFERENCE_RULESET), *files]) == 0
    local = capsys.readouterr().out
    assert (
        remote.splitlines()[0]
        == "CASE-1001: ASSIGN to nurse-tx-02 (queue clinical), priority normal"
    )
    assert remote.split("Provenance:")[0] == local.split("Provenance:")[0]
    assert main(["health", "--server", address]) == 0
    assert capsys.readouterr().out == f"{address}: SERVING\n"
    assert main(["decide", "--server", address, "--ruleset-version", "0.9", *files]) == 1
    assert (
        "server answered NOT_FOUND: ruleset 'patient-enquiries' has no version '0.9'"
        in capsys.readouterr().err
    )
