"""Unset explanation_level is SUMMARY over gRPC; the audit record still names agents' checks."""

from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from caseroute.cli import main
from caseroute.domain.roster import AgentStatus
from caseroute.engine.case_rules import EngineKind
from caseroute.grpc_api.server import RunningServer
from caseroute.testing import make_agent, make_roster
from caseroute.v1 import routing_pb2 as pb
from caseroute.v1 import routing_pb2_grpc
from caseroute.wire import convert

from .conftest import decide_request, serving_reference

ROSTER = make_roster(
    make_agent("a1"),
    make_agent("off", status=AgentStatus.OFFLINE),
    make_agent("ca", territories=frozenset({"US-CA"})),
)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """A server (python engine) with its decision log in a module directory."""
    with serving_reference(
        tmp_path_factory.mktemp("summary"), engine=EngineKind.PYTHON, threads=2
    ) as running:
        yield running


def _decide(server: RunningServer, request: pb.DecideRequest) -> pb.DecideResponse:
    request.roster.CopyFrom(convert.roster_to_proto(ROSTER))
    with grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        reply: pb.DecideResponse = routing_pb2_grpc.RoutingServiceStub(channel).Decide(
            request, timeout=30
        )
    return reply


def test_unset_level_answers_a_summary_and_full_is_given_on_request(server: RunningServer) -> None:
    """No explanation_level: no per-agent verdicts, checks counted; FULL: a verdict per agent."""
    summary = _decide(server, decide_request("sum-1")).decision.explanation.matching
    full_request = decide_request("full-1")
    full_request.explanation_level = pb.EXPLANATION_LEVEL_FULL
    full = _decide(server, full_request).decision.explanation.matching
    assert (len(summary.agents), [(c.check, c.agents) for c in summary.exclusion_counts]) == (
        0,
        [("status", 1), ("territory", 1)],
    )
    assert [(v.agent_id, v.eligible) for v in full.agents] == [
        ("a1", True),
        ("off", False),
        ("ca", False),
    ]


def test_audit_show_names_each_agents_failed_checks_of_a_summary_decision(
    server: RunningServer, capsys: pytest.CaptureFixture[str]
) -> None:
    """A decision sent as SUMMARY: `audit show` still lists every excluded agent's checks."""
    decision_id = _decide(server, decide_request("sum-2")).decision.decision_id
    db = Path(str(server.core.audit.path))  # type: ignore[attr-defined]
    assert main(["audit", "show", decision_id, "--audit-db", str(db)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line for line in lines if line.startswith("  x ")] == [
        "  x off: failed status",
        "  x ca: failed territory",
    ]


def test_an_unknown_level_is_invalid_argument_naming_the_field(server: RunningServer) -> None:
    """explanation_level 7 (not in the enum): INVALID_ARGUMENT at explanation_level, no decision."""
    request = decide_request("level-7")
    request.explanation_level = 7  # type: ignore[assignment]
    with pytest.raises(grpc.RpcError) as caught:
        _decide(server, request)
    error: grpc.Call = caught.value  # type: ignore[assignment]
    assert (error.code(), error.details()) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        (
            "invalid request: 1 problem(s); first: explanation_level: 7 is not an "
            "ExplanationLevel; send EXPLANATION_LEVEL_SUMMARY (the default) or "
            "EXPLANATION_LEVEL_FULL (every problem is in the google.rpc.BadRequest details)"
        ),
    )
    assert server.core.audit.by_request("level-7") == []
