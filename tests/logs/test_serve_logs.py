"""`caseroute serve --log-format json`: one JSON line per call and per ruleset load, no PHI.

A real two-worker server on a free port; the test waits for the log lines it expects (read
from stderr as they arrive), never for a fixed time.
"""

import json
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from caseroute.testing import (
    NOW,
    make_agent,
    make_case,
    make_roster,
)
from caseroute.v1 import routing_pb2 as pb
from caseroute.v1 import routing_pb2_grpc
from caseroute.wire import convert
from tests.serve_process import Served, start_serve

TOKEN = "0123456789abcdef0123456789abcdef"  # noqa: S105 - a test token
NOTES = "ZQXNOTES fell at home, daughter Ximena Quarrel worried"
NAME = "Zebedee Quarrelsome"
PATIENT_ID = "PID-88413377"
LOCATION = "US-ZQ"
LANGUAGE = "qxz-Phiq"
PHI = (NOTES, "ZQXNOTES", "Ximena", NAME, "Quarrelsome", PATIENT_ID, "88413377", LOCATION, LANGUAGE)


def _phi_case(case_id: str, **overrides: Any) -> pb.Case:
    case = make_case(
        case_id=case_id,
        attributes={
            "notes": NOTES,
            "patient_name": NAME,
            "patient_id": PATIENT_ID,
        },
        **overrides,
    )
    return convert.case_to_proto(case)


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    """`caseroute serve` with two workers, JSON logs and a caller token file."""
    tokens = tmp_path / "caller.tokens"
    tokens.write_text(f"triage-desk {TOKEN}\n")
    tokens.chmod(0o600)
    with start_serve(
        tmp_path / "audit.db",
        *("--caller-token-file", str(tokens), "--log-format", "json"),
        workers=2,
    ) as running:
        yield running


def _call_lines(served: Served) -> list[dict[str, Any]]:
    """Stop the server; every stderr line parsed as JSON, the ``rpc`` lines returned."""
    served.proc.send_signal(signal.SIGTERM)
    served.proc.wait(60)
    lines = [line for line in served.stderr().splitlines() if line.strip()]
    parsed = [json.loads(line) for line in lines]  # every line, from every process, is JSON
    return [p for p in parsed if p["event"] == "rpc"]


def test_one_json_line_per_call_with_ids_results_and_caller(served: Served) -> None:
    """A Decide, a refused Decide, a batch and a health check each write one rpc line."""
    auth = (("authorization", f"Bearer {TOKEN}"),)
    roster = convert.roster_to_proto(make_roster(make_agent("a1"), make_agent("a2")))
    now = convert.datetime_to_timestamp(NOW)
    with grpc.insecure_channel(served.address) as channel:
        stub = routing_pb2_grpc.RoutingServiceStub(channel)
        one = stub.Decide(
            pb.DecideRequest(request_id="req-1", case=_phi_case("CASE-L1"), roster=roster, now=now),
            metadata=auth,
        )
        with pytest.raises(grpc.RpcError) as refused:
            stub.Decide(
                pb.DecideRequest(
                    request_id="req-2", case=_phi_case("CASE-L2"), roster=roster, now=now
                )
            )
        batch = stub.DecideBatch(
            pb.DecideBatchRequest(
                request_id="req-3",
                cases=[
                    _phi_case("CASE-B1"),
                    _phi_case("CASE-B2", patient_location=LOCATION, region=LOCATION),
                    _phi_case("CASE-B3", preferred_language=LANGUAGE),
                ],
                roster=roster,
                now=now,
            ),
            metadata=auth,
        )
        checker: Any = health_pb2_grpc.HealthStub(channel)  # typeshed stub lacks Check
        health = checker.Check(health_pb2.HealthCheckRequest(service="caseroute.v1.RoutingService"))
    assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
    served.wait_for('"event": "rpc"', 4)
    lines = {line.get("request_id", line["method"]): line for line in _call_lines(served)}
    assert sorted(lines) == ["Check", "req-1", "req-2", "req-3"]
    decided = one.decision
    version = decided.ruleset.version
    common = {"event", "level", "logger", "timestamp", "pid", "latency_ms", "peer"}
    assert {
        "service": "caseroute.v1.RoutingService",
        "method": "Decide",
        "code": "OK",
        "caller": "triage-desk",
        "request_id": "req-1",
        "decision_id": decided.decision_id,
        "case_id": "CASE-L1",
        "outcome": "ASSIGN",
        "rule_id": decided.rule_id,
        "agent_id": decided.agent_id,
        "ruleset": "patient-enquiries",
        "ruleset_version": version,
        "replayed": False,
    } == {k: v for k, v in lines["req-1"].items() if k not in common}
    assert (lines["req-1"]["level"], lines["req-1"]["logger"]) == ("info", "caseroute.rpc")
    assert {k: v for k, v in lines["req-2"].items() if k not in common} == {
        "service": "caseroute.v1.RoutingService",
        "method": "Decide",
        "code": "UNAUTHENTICATED",
        "caller": "",
        "request_id": "req-2",
    }
    assert lines["req-2"]["level"] == "warning"
    assert {
        "service": "caseroute.v1.RoutingService",
        "method": "DecideBatch",
        "code": "OK",
        "caller": "triage-desk",
        "request_id": "req-3",
        "cases": 3,
        "decision_ids": [d.decision_id for d in batch.decisions],
        "case_ids": ["CASE-B1", "CASE-B2", "CASE-B3"],
        "outcomes": ["ASSIGN", "QUEUE", "QUEUE"],
        "rule_ids": [d.rule_id for d in batch.decisions],
        "ruleset": "patient-enquiries",
        "ruleset_version": version,
        "replayed": False,
    } == {k: v for k, v in lines["req-3"].items() if k not in common}
    assert {k: v for k, v in lines["Check"].items() if k not in common} == {
        "service": "grpc.health.v1.Health",
        "method": "Check",
        "code": "OK",
        "caller": "",
        "health_service": "caseroute.v1.RoutingService",
        # The answer given (a worker may still wait for its sibling to serve).
        "health": health_pb2.HealthCheckResponse.ServingStatus.Name(health.status),
    }
    assert all(line["latency_ms"] >= 0 for line in lines.values())


def test_no_case_field_value_reaches_any_log_line(served: Served) -> None:
    """Cases full of PHI-like values, decided and refused: none of the values is ever logged."""
    auth = (("authorization", f"Bearer {TOKEN}"),)
    roster = convert.roster_to_proto(make_roster(make_agent("a1")))
    now = convert.datetime_to_timestamp(NOW)
    bad = _phi_case("CASE-P3")
    bad.ClearField("created_at")  # INVALID_ARGUMENT: the refusal names the field only
    with grpc.insecure_channel(served.address) as channel:
        stub = routing_pb2_grpc.RoutingServiceStub(channel)
        stub.Decide(
            pb.DecideRequest(request_id="p-1", case=_phi_case("CASE-P1"), roster=roster, now=now),
            metadata=auth,
        )
        stub.DecideBatch(
            pb.DecideBatchRequest(
                request_id="p-2",
                cases=[
                    _phi_case("CASE-P2", patient_location=LOCATION, region=LOCATION),
                    _phi_case("CASE-P4", preferred_language=LANGUAGE),
                ],
                roster=roster,
                now=now,
            ),
            metadata=auth,
        )
        with pytest.raises(grpc.RpcError) as refused:
            stub.Decide(
                pb.DecideRequest(request_id="p-3", case=bad, roster=roster, now=now),
                metadata=auth,
            )
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    served.wait_for('"event": "rpc"', 3)
    _call_lines(served)
    everything = "".join(served.seen)
    assert [marker for marker in PHI if marker in everything] == []
    assert everything.count('"event": "rpc"') == 3
