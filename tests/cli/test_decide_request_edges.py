"""`decide --request` edges: a file without explanation_level, text output, a blank --ruleset."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import grpc_testing
import pytest
from google.protobuf import json_format

from caseroute.cli import main
from caseroute.engine.case_rules import EngineKind
from caseroute.grpc_api.server import RunningServer
from caseroute.grpc_api.servicer import RoutingServicer
from caseroute.render import render_text
from caseroute.service import RoutingCore
from caseroute.testing import REFERENCE_RULESET, REPO_ROOT
from caseroute.v1 import routing_pb2 as pb
from caseroute.v1 import routing_pb2_grpc
from caseroute.wire.convert import decision_from_proto
from tests.grpc_api.conftest import serving_reference

REQUESTS = REPO_ROOT / "examples" / "requests"
SERVICE = pb.DESCRIPTOR.services_by_name["RoutingService"]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """A real server with the reference rulesets (python engine), for the module."""
    with serving_reference(tmp_path_factory.mktemp("audit"), engine=EngineKind.PYTHON) as running:
        yield running


def _request(tmp_path: Path, name: str, request_id: str, **changes: Any) -> Path:
    """examples/requests/<name>.json with another request_id and ``changes`` (None: removed)."""
    data = json.loads((REQUESTS / f"{name}.json").read_text())
    data["request_id"] = request_id
    for key, value in changes.items():
        if value is None:
            data.pop(key, None)
        else:
            data[key] = value
    path = tmp_path / f"{request_id}.json"
    path.write_text(json.dumps(data))
    return path


def _cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """`caseroute decide --engine python ARGV`: exit code, stdout, stderr."""
    code = main(["decide", "--ruleset", str(REFERENCE_RULESET), "--engine", "python", *argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _served(core: RoutingCore, path: Path) -> pb.DecideResponse:
    """The servicer's answer to the file parsed as protobuf JSON (what grpcurl sends)."""
    request = json_format.Parse(path.read_text(), pb.DecideRequest())
    server = grpc_testing.server_from_dictionary(
        {SERVICE: RoutingServicer(core)}, grpc_testing.strict_real_time()
    )
    rpc = server.invoke_unary_unary(SERVICE.methods_by_name["Decide"], (), request, None)
    response, _, code, details = rpc.termination()
    assert (code, details) == (grpc.StatusCode.OK, "")
    assert isinstance(response, pb.DecideResponse)
    return response


def test_a_dry_run_of_a_file_without_a_level_decides_at_summary_as_grpc_does(
    core: RoutingCore, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """explanation_level unset means SUMMARY: the dry run prints what the servicer returns."""
    path = _request(tmp_path, "decide-clinical-tx", "edge-dry-1", explanation_level=None)
    code, out, err = _cli(capsys, "--request", str(path), "--json")
    printed = json_format.Parse(out, pb.Decision(), ignore_unknown_fields=False)
    assert (code, err) == (0, "")
    assert printed == _served(core, path).decision
    assert (len(printed.explanation.matching.agents), printed.explanation.matching.considered) == (
        0,
        10,
    )


def test_a_file_without_a_level_sent_by_grpcurl_and_the_cli_is_one_request(
    server: RunningServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Same file, no explanation_level: the CLI's call replays grpcurl's (no ALREADY_EXISTS)."""
    path = _request(tmp_path, "decide-clinical-tx", "edge-server-1", explanation_level=None)
    with grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        stub = routing_pb2_grpc.RoutingServiceStub(channel)
        first = stub.Decide(json_format.Parse(path.read_text(), pb.DecideRequest()))
    target = f"127.0.0.1:{server.port}"
    code = main(["decide", "--request", str(path), "--server", target, "--json"])
    captured = capsys.readouterr()
    assert (code, captured.err) == (0, "")
    assert json_format.Parse(captured.out, pb.Decision()) == first.decision


def test_no_agent_detail_lowers_a_full_file_to_summary(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--no-agent-detail with a file asking FULL: no per-agent verdicts, counts kept."""
    path = _request(tmp_path, "decide-clinical-tx", "edge-dry-2")
    full = _cli(capsys, "--request", str(path), "--json")
    lowered = _cli(capsys, "--request", str(path), "--json", "--no-agent-detail")
    matching = [json.loads(run[1])["explanation"]["matching"] for run in (full, lowered)]
    assert [
        (run[0], len(m.get("agents", []))) for run, m in zip((full, lowered), matching, strict=True)
    ] == [
        (0, 10),
        (0, 0),
    ]
    assert matching[0]["considered"] == matching[1]["considered"]


def test_without_json_a_dry_run_prints_the_decisions_as_text(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A batch file without --json: each decision rendered as text, a blank line between."""
    path = _request(tmp_path, "decide-batch", "edge-dry-3")
    code, out, _ = _cli(capsys, "--request", str(path), "--json")
    batch = json_format.Parse(out, pb.DecideBatchResponse())
    expected = "\n\n".join(render_text(decision_from_proto(d)) for d in batch.decisions) + "\n"
    assert (code, len(batch.decisions)) == (0, 4)
    assert _cli(capsys, "--request", str(path)) == (0, expected, "")


def test_without_json_a_server_decision_is_printed_as_text(
    server: RunningServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--server without --json: the server's decision (the same one, replayed) as text."""
    path = _request(tmp_path, "decide-clinical-tx", "edge-server-2")
    target = f"127.0.0.1:{server.port}"
    assert main(["decide", "--request", str(path), "--server", target, "--json"]) == 0
    decision = decision_from_proto(json_format.Parse(capsys.readouterr().out, pb.Decision()))
    code = main(["decide", "--request", str(path), "--server", target])
    assert (code, capsys.readouterr().out) == (0, render_text(decision) + "\n")


def test_a_blank_ruleset_path_is_refused_naming_the_flag(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """--ruleset "": exit 2, one error naming the flag and its variable (no default used)."""
    with pytest.raises(SystemExit) as exited:
        main(["decide", "--ruleset", "", "--request", str(REQUESTS / "decide-batch.json")])
    err = capsys.readouterr().err
    assert (exited.value.code, err.splitlines()[-1]) == (
        2,
        (
            "caseroute decide: error: argument --ruleset: must be an existing file or "
            "directory, got '' (set by the flag or $CASEROUTE_RULESET)"
        ),
    )


@pytest.mark.parametrize(
    ("edit", "field"),
    [
        (('"score": -0.1', '"score": NaN'), "case.sentiment[0].score"),
        (('"flags": [', '"flags": ["safeguarding"], "flags": ['), "case.flags"),
        (('"request_id": "', '"request_id": "x", "request_id": "'), "request_id"),
    ],
)
def test_a_request_file_s_json_problems_are_named_as_grpc_names_them(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, edit: tuple[str, str], field: str
) -> None:
    """NaN and duplicate keys were `request.case...`, every other problem `case...` (R34a F7)."""
    text = (REQUESTS / "decide-clinical-tx.json").read_text()
    assert edit[0] in text
    path = tmp_path / "edited.json"
    path.write_text(text.replace(edit[0], edit[1], 1))
    code, _, err = _cli(capsys, "--request", str(path))
    assert code == 2
    assert f"\n  - {field}: " in err
    assert "request." not in err


def test_a_dry_run_refuses_what_a_server_refuses(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], server: RunningServer
) -> None:
    """Review R36a L2: a batch file naming one case twice was decided twice without a server.

    The server refuses it at cases[1].case_id; the dry run now says the same, exit 2, and
    decides nothing. A file without request_id still dry-runs (nothing is recorded).
    """
    cases = json.loads((REQUESTS / "decide-batch.json").read_text())["cases"]
    cases[1]["case_id"] = cases[0]["case_id"].lower()
    path = _request(tmp_path, "decide-batch", "dup-dry", cases=cases)
    code, out, err = _cli(capsys, "--request", str(path))
    assert (code, out) == (2, "")
    assert "cases[1].case_id: duplicate case_id 'case-1001' (first at cases[0] as" in err
    # Without --ruleset: the server decides with its own (a --ruleset flag is refused there).
    served = main(["decide", "--request", str(path), "--server", f"127.0.0.1:{server.port}"])
    assert served == 1  # the server refused it (INVALID_ARGUMENT)
    assert "cases[1].case_id: duplicate case_id 'case-1001'" in capsys.readouterr().err
    unnamed = json.loads((REQUESTS / "decide-batch.json").read_text())
    del unnamed["request_id"]
    (tmp_path / "unnamed.json").write_text(json.dumps(unnamed))
    code, out, _ = _cli(capsys, "--request", str(tmp_path / "unnamed.json"))
    assert (code, out.count("ASSIGN") > 0) == (0, True)
