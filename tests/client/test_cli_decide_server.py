"""`caseroute decide --server` goes through caseroute.client: the same call, the same decision."""

import json
from pathlib import Path

import pytest

from caseroute.cli import main
from caseroute.grpc_api.server import RunningServer

from .conftest import NOW_TEXT, case_dict, roster_dict


def _decide(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict[str, object]]:
    code = main(["decide", *argv, "--json"])
    return code, json.loads(capsys.readouterr().out)


def test_two_identical_calls_get_the_same_decision_id(
    server: RunningServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """README: decisions are deterministic, decision id included, also with --server."""
    case, roster = tmp_path / "case.json", tmp_path / "roster.json"
    case.write_text(json.dumps(case_dict("CLI-1")))
    roster.write_text(json.dumps(roster_dict()))
    argv = ("--case", str(case), "--roster", str(roster), "--now", NOW_TEXT)
    target = ("--server", f"127.0.0.1:{server.port}")
    first = _decide(capsys, *argv, *target)
    second = _decide(capsys, *argv, *target)
    assert (first[0], second[0]) == (0, 0)
    assert first[1] == second[1]
    decision_id = first[1]["decision_id"]
    record = server.core.audit.get(str(decision_id))
    assert record is not None
    assert record.request_id.startswith("auto-")


def test_a_batch_request_file_is_sent_as_one_decide_batch(
    server: RunningServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`decide --request` with a DecideBatchRequest and --server prints the server's batch."""
    from caseroute.testing import REPO_ROOT

    request = json.loads((REPO_ROOT / "examples/requests/decide-batch.json").read_text())
    request.pop("request_id")
    path = tmp_path / "batch.json"
    path.write_text(json.dumps(request))
    code, out = _decide(capsys, "--request", str(path), "--server", f"127.0.0.1:{server.port}")
    decisions = out["decisions"]
    assert isinstance(decisions, list)
    assert (code, len(decisions), out["now"]) == (0, len(request["cases"]), request["now"])
    stored = server.core.audit.get(decisions[0]["decision_id"])
    assert stored is not None
    assert [r.decision_id for r in server.core.audit.by_request(stored.request_id)] == [
        d["decision_id"] for d in decisions
    ]
