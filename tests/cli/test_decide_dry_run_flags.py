"""`decide --case --roster`: the remote flags mean the same in a dry run, or are refused.

The README's promise is "drop `--server` to decide in-process as a dry run": the pinned
`--ruleset-name`/`--ruleset-version` and `--request-id` used to be ignored without a server
(the dry run decided with the active version, under another decision id), and `--ruleset PATH`
was ignored with one (the server decided with its active version whatever PATH named).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from caseroute.cli import main
from caseroute.engine.case_rules import EngineKind
from caseroute.grpc_api.server import RunningServer
from caseroute.testing import REPO_ROOT
from tests.grpc_api.conftest import serving_reference

CASE = str(REPO_ROOT / "examples" / "cases" / "clinical-tx.json")
ROSTER = str(REPO_ROOT / "examples" / "roster.json")
HOME = REPO_ROOT / "rulesets" / "patient-enquiries"
NOW = "2026-11-21T10:00:00Z"
DECIDE = ["decide", "--case", CASE, "--roster", ROSTER, "--now", NOW, "--engine", "python"]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """A real server with the reference rulesets (python engine), for the module."""
    with serving_reference(tmp_path_factory.mktemp("audit"), engine=EngineKind.PYTHON) as running:
        yield running


def _decided(capsys: pytest.CaptureFixture[str], *flags: str) -> dict[str, object]:
    """The `--json` decision `caseroute decide` prints with ``flags`` (exit 0 asserted)."""
    code = main([*DECIDE, "--json", *flags])
    out = capsys.readouterr().out
    assert code == 0
    decision: dict[str, object] = json.loads(out)
    return decision


def test_a_pinned_version_is_the_version_the_dry_run_decides_with(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """--ruleset-version 2026.11.1 without --server decides with 2026.11.1, not the active one."""
    pinned = _decided(capsys, "--ruleset-version", "2026.11.1")
    by_path = _decided(capsys, "--ruleset", str(HOME / "2026.11.1"))
    active = _decided(capsys)
    assert (pinned["ruleset"], pinned["ruleset"] != active["ruleset"]) == (
        by_path["ruleset"],
        True,
    )


def test_a_pin_the_local_ruleset_cannot_serve_is_refused(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A version or name --ruleset does not hold: exit 2 naming both, never another version."""
    missing = main([*DECIDE, "--ruleset-version", "2026.99.1"])
    err_version = capsys.readouterr().err
    other = main([*DECIDE, "--ruleset-name", "billing-only"])
    err_name = capsys.readouterr().err
    assert (missing, other) == (2, 2)
    assert "ask for ruleset patient-enquiries@2026.99.1" in err_version
    assert "ask for ruleset billing-only@" in err_name


def test_the_dry_run_prints_the_decision_id_the_server_gives_a_request_id(
    server: RunningServer, capsys: pytest.CaptureFixture[str]
) -> None:
    """--request-id X without --server: the id a server records for X (as `decide --request`)."""
    dry = _decided(capsys, "--request-id", "dry-run-flags-1")
    real = _decided(
        capsys, "--request-id", "dry-run-flags-1", "--server", f"127.0.0.1:{server.port}"
    )
    assert (dry["decision_id"], dry["agent_id"]) == (real["decision_id"], real["agent_id"])


def test_a_blank_request_id_is_refused_in_a_dry_run_as_by_a_server(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """--request-id '  ' is no idempotency key: exit 2 at request_id, nothing decided."""
    code = main([*DECIDE, "--request-id", "  "])
    captured = capsys.readouterr()
    assert (code, captured.out) == (2, "")
    assert "request_id: must not be blank" in captured.err


def test_a_local_ruleset_path_with_server_is_refused_before_sending(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """--ruleset PATH --server: exit 2 saying to pin with --ruleset-name/--ruleset-version."""
    code = main([*DECIDE, "--ruleset", str(HOME / "2026.11.1"), "--server", "127.0.0.1:1"])
    captured = capsys.readouterr()
    assert (code, captured.out) == (2, "")
    assert captured.err.startswith(f"caseroute: --ruleset {HOME / '2026.11.1'} is the ruleset")
    assert "--ruleset-name NAME --ruleset-version VERSION" in captured.err


def test_the_ruleset_variable_still_goes_with_server(
    server: RunningServer, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """$CASEROUTE_RULESET (a standing dry-run setting) does not stop a call with --server."""
    monkeypatch.setenv("CASEROUTE_RULESET", str(HOME / "2026.11.1"))
    decision = _decided(capsys, "--server", f"127.0.0.1:{server.port}")
    assert decision["outcome"] == "OUTCOME_ASSIGN"


def test_a_pin_of_a_retired_version_is_refused_as_a_server_refuses_it(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """A version serving.yaml retires: exit 2 naming it, not a decision a server never gives."""
    home = tmp_path / "patient-enquiries"
    shutil.copytree(HOME, home)
    (home / "serving.yaml").write_text(
        'active: "2026.12.1"\nprevious: []\nretired: ["2026.11.1"]\n', encoding="utf-8"
    )
    flags = ["--ruleset", str(home), "--ruleset-version", "2026.11.1"]
    assert main([*DECIDE, *flags]) == 2
    err = capsys.readouterr().err
    assert "version 2026.11.1, which" in err
    assert "lists as retired: a server refuses it" in err


@pytest.mark.parametrize("version", ["..", ".", "/etc", "2026.12.1/../2026.11.1"])
def test_a_pinned_version_that_is_a_path_is_refused_as_a_version_the_home_lacks(
    version: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """`--ruleset-version ..` opened the home's parent (then a file-not-found ruleset error).

    A version names a directory in the home, never a path: any other text is a version the
    home does not hold, refused naming the pin and what the home holds, as a server would.
    """
    code = main([*DECIDE, "--ruleset", str(HOME), "--ruleset-version", version])
    err = capsys.readouterr().err
    assert (code, f"ask for ruleset patient-enquiries@{version};" in err) == (2, True)
    assert "source.unreadable" not in err
