"""The rules admin commands at their edges: formats, empty replies, bad files and refusals."""

from __future__ import annotations

import json
import re
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from caseroute.cli import main
from caseroute.grpc_api.server import RunningServer
from caseroute.lifecycle import LifecycleOutcome, RulesetChange, RulesetInfo
from caseroute.rules.compiler import MAX_RULESET_BYTES

from .grpc_api.test_admin import AT, FakeAdmin, admin_server, ruleset_text
from .grpc_api.test_auth import ALICE, token_file

INSTANT = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z")


class EmptyAdmin(FakeAdmin):
    """No rulesets; changes that set a first version (from none)."""

    def list_rulesets(self) -> list[RulesetInfo]:
        """Nothing loaded."""
        return []

    def _outcome(self, action: str, actor: str) -> LifecycleOutcome:
        self.actors.append(actor)
        change = RulesetChange("routing", "active", "", "", "1", "c" * 64)
        return LifecycleOutcome(action, actor, AT, (change,), ())


class TwoProblemsAdmin(FakeAdmin):
    """One ruleset whose last reload found two problems."""

    def list_rulesets(self) -> list[RulesetInfo]:
        """A last error of two lines, as a reload with two problems reports it."""
        error = "routing/serving.yaml:2:1: error a: one\nrouting/serving.yaml:3:1: error b: two"
        return [RulesetInfo("routing", None, None, (), (), None, error)]


@pytest.fixture
def token(tmp_path: Path) -> Path:
    """Alice's token file for the client: just the token, mode 0600."""
    return token_file(tmp_path / "alice.token", f"{ALICE}\n")


@pytest.fixture
def served(tmp_path: Path) -> Iterator[RunningServer]:
    """A real server over routing 1 (active) and 2."""
    with admin_server(tmp_path) as server:
        yield server


@pytest.fixture
def fake(tmp_path: Path) -> Iterator[RunningServer]:
    """A server whose lifecycle is FakeAdmin (one ruleset never reloaded, with a last error)."""
    with admin_server(tmp_path, admin=FakeAdmin()) as server:
        yield server


@pytest.fixture
def empty(tmp_path: Path) -> Iterator[RunningServer]:
    """A server whose lifecycle holds no ruleset."""
    with admin_server(tmp_path, admin=EmptyAdmin()) as server:
        yield server


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _remote(server: RunningServer, token: Path) -> list[str]:
    return ["--server", f"127.0.0.1:{server.port}", "--token-file", str(token)]


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def test_rules_list_says_when_a_server_holds_no_rulesets(
    empty: RunningServer, token: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`rules list` against a server with nothing loaded says so and exits 0."""
    assert _run(capsys, "rules", "list", *_remote(empty, token)) == (
        0,
        f"127.0.0.1:{empty.port}: no rulesets\n",
        "",
    )


def test_rules_list_shows_a_last_error_and_no_reload_in_text_and_json(
    fake: RunningServer, token: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A ruleset never reloaded, with a last error: `(none)` active, the error, JSON nulls."""
    text = _run(capsys, "rules", "list", *_remote(fake, token))
    code, out, err = _run(capsys, "rules", "list", *_remote(fake, token), "--format", "json")
    assert text == (
        0,
        "routing: active (none)\n  last error: routing/1/ruleset.yaml:3: x\n",
        "",
    )
    assert (code, json.loads(out), err) == (
        0,
        {
            "rulesets": [
                {
                    "name": "routing",
                    "active_version": None,
                    "shadow_version": None,
                    "previous_versions": [],
                    "retired_versions": [],
                    "versions": [],
                    "last_reload": None,
                    "last_error": "routing/1/ruleset.yaml:3: x",
                }
            ]
        },
        "",
    )


def test_rules_list_marks_the_shadow_and_lists_previously_active_versions(
    served: RunningServer, token: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """serving.yaml with a shadow and a previous version: both shown after a reload."""
    serving = tmp_path / "rulesets" / "routing" / "serving.yaml"
    serving.write_text("active: '2'\nshadow: '1'\nprevious: ['1']\n")
    reloaded = _run(capsys, "rules", "reload", *_remote(served, token), "--format", "json")
    code, out, err = _run(capsys, "rules", "list", *_remote(served, token))
    lines = out.splitlines()
    shas = {line.split()[0]: line.split()[2] for line in lines[1:3]}
    changes = json.loads(reloaded[1])["changes"]
    assert (reloaded[0], [(c["role"], c["from_version"], c["to_version"]) for c in changes]) == (
        0,
        [("active", "1", "2"), ("shadow", None, "1")],
    )
    assert (code, err) == (0, "")
    assert lines[:4] == [
        "routing: active 2, shadow 1",
        f"  1  sha256 {shas['1']}  routing/1/ruleset.yaml  [shadow]",
        f"  2  sha256 {shas['2']}  routing/2/ruleset.yaml  [active]",
        "  previously active: 1",
    ]
    assert re.fullmatch(f"  last reload: {INSTANT.pattern}", lines[4])


def test_rules_list_shows_retired_versions_in_text_and_json(
    served: RunningServer, token: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """serving.yaml's `retired` list reaches `rules list`: a rollback never returns to them."""
    serving = tmp_path / "rulesets" / "routing" / "serving.yaml"
    serving.write_text("active: '2'\nretired: ['1']\n")
    assert _run(capsys, "rules", "reload", *_remote(served, token))[0] == 0
    code, out, err = _run(capsys, "rules", "list", *_remote(served, token))
    assert (code, err) == (0, "")
    assert "  retired (a rollback never returns to them): 1" in out.splitlines()
    code, out, err = _run(capsys, "rules", "list", *_remote(served, token), "--format", "json")
    (status,) = json.loads(out)["rulesets"]
    assert (code, status["previous_versions"], status["retired_versions"]) == (0, [], ["1"])


def test_rules_get_json_carries_name_version_sha256_and_text(
    served: RunningServer, token: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`rules get NAME VERSION --format json`: the pinned version's source and sha256."""
    code, out, err = _run(
        capsys, "rules", "get", "routing", "2", *_remote(served, token), "--format", "json"
    )
    data = json.loads(out)
    assert (code, err, len(data["sha256"])) == (0, "", 64)
    assert data == {
        "name": "routing",
        "version": "2",
        "sha256": data["sha256"],
        "text": ruleset_text("routing", "2"),
    }


def test_rules_validate_prints_warnings_in_text_and_json(
    fake: RunningServer, token: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A source with only a warning: file:line:col, severity, code and rule; valid, exit 0."""
    path = tmp_path / "r.yaml"
    path.write_text("x: 1\n")
    server = f"127.0.0.1:{fake.port}"
    text = _run(capsys, "rules", "validate", str(path), *_remote(fake, token))
    code, out, err = _run(
        capsys, "rules", "validate", str(path), *_remote(fake, token), "--format", "json"
    )
    assert text == (
        0,
        f"{path}:2:3: warning lint.x [rule r1]: consider y\n{path}: ok (checked by {server})\n",
        "",
    )
    assert (code, json.loads(out), err) == (
        0,
        {
            "file": str(path),
            "valid": True,
            "problems": [
                {
                    "code": "lint.x",
                    "severity": "warning",
                    "file": str(path),
                    "line": 2,
                    "column": 3,
                    "rule_id": "r1",
                    "message": "consider y",
                }
            ],
        },
        "",
    )


def test_rules_validate_refuses_a_missing_oversized_or_non_utf8_file_before_calling(
    tmp_path: Path, token: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Each file problem is a usage error (exit 2) naming the file and what to do; no call made."""
    missing = tmp_path / "missing.yaml"
    big = tmp_path / "big.yaml"
    big.write_text("#" * (MAX_RULESET_BYTES + 1))
    latin = tmp_path / "latin.yaml"
    latin.write_bytes(b"description: caf\xe9\n")
    remote = ["--server", f"127.0.0.1:{_closed_port()}", "--token-file", str(token)]
    results = [
        _run(capsys, "rules", "validate", str(path), *remote) for path in (missing, big, latin)
    ]
    assert results == [
        (2, "", f"caseroute: cannot read ruleset file {missing}: No such file or directory\n"),
        (
            2,
            "",
            (
                f"caseroute: {big} is over {MAX_RULESET_BYTES} bytes, the largest ruleset file "
                "the server reads; split the ruleset or shorten it\n"
            ),
        ),
        (2, "", f"caseroute: {latin} is not UTF-8 text; save it as UTF-8\n"),
    ]


def test_rules_activate_prints_a_first_version_as_none_and_json_field_by_field(
    empty: RunningServer, token: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An activation from no version prints `(none) -> 1 (sha256 …)`; JSON has null for it."""
    text = _run(capsys, "rules", "activate", "routing", "1", *_remote(empty, token))
    code, out, err = _run(
        capsys, "rules", "activate", "routing", "1", *_remote(empty, token), "--format", "json"
    )
    assert text == (
        0,
        (
            "activate by admin:alice at 2026-11-30T09:00:00Z\n"
            f"  routing active: (none) -> 1 (sha256 {'c' * 12})\n"
        ),
        "",
    )
    assert (code, json.loads(out), err) == (
        0,
        {
            "action": "activate",
            "actor": "admin:alice",
            "at": "2026-11-30T09:00:00Z",
            "changes": [
                {
                    "ruleset_name": "routing",
                    "role": "active",
                    "from_version": None,
                    "from_sha256": None,
                    "to_version": "1",
                    "to_sha256": "c" * 64,
                }
            ],
            "errors": [],
        },
        "",
    )


def test_refusals_print_the_status_and_each_field_violation_and_exit_1(
    served: RunningServer, token: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """INVALID_ARGUMENT lists each field; FAILED_PRECONDITION gives the server's advice; exit 1."""
    invalid = _run(capsys, "rules", "activate", "routing", "", *_remote(served, token))
    precondition = _run(capsys, "rules", "rollback", "routing", *_remote(served, token))
    assert [invalid, precondition] == [
        (
            1,
            "",
            (
                "caseroute: server answered INVALID_ARGUMENT: invalid request:\n"
                "  - version: is required\n"
            ),
        ),
        (
            1,
            "",
            (
                "caseroute: server answered FAILED_PRECONDITION: ruleset routing has no "
                "previously active version to roll back to (its serving.yaml lists none under "
                "`previous`); activate a version by name\n"
            ),
        ),
    ]


def test_an_unreadable_token_file_is_a_usage_error_saying_what_to_pass(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--token-file naming no file: exit 2, the path, the reason and what to pass instead."""
    missing = tmp_path / "nope.token"
    assert _run(capsys, "rules", "list", "--server", "x:1", "--token-file", str(missing)) == (
        2,
        "",
        (
            f"caseroute: --token-file: cannot read {missing}: No such file or directory; point "
            "it at the file holding your admin token (or set $CASEROUTE_TOKEN_FILE)\n"
        ),
    )


def test_a_token_file_from_the_variable_is_named_as_the_variable_and_by_whose_token(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The message names where the path came from, and whose token it is.

    Review R37b 8: `decide` said `--token-file ... your admin token` for a caller token set
    by $CASEROUTE_TOKEN_FILE.
    """
    missing = tmp_path / "nope.token"
    monkeypatch.setenv("CASEROUTE_TOKEN_FILE", str(missing))
    code, out, err = _run(
        capsys, "decide", "--server", "x:1", "--request", "examples/requests/decide-batch.json"
    )
    assert (code, out) == (2, "")
    assert err == (
        f"caseroute: $CASEROUTE_TOKEN_FILE: cannot read {missing}: No such file or directory; "
        "point it at the file holding your caller token (or pass --token-file)\n"
    )


@pytest.mark.parametrize(
    "argv",
    [
        ["rules", "list", "--timeout", "5"],
        ["rules", "reload", "--timeout", "5"],
        ["health", "--timeout", "5"],
    ],
)
def test_a_server_that_is_down_is_unavailable_and_exit_1(
    argv: list[str], token: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """No server listening: the admin commands and `health` say UNAVAILABLE and exit 1."""
    port = _closed_port()
    credentials = ["--token-file", str(token)] if argv[0] == "rules" else []
    code, out, err = _run(capsys, *argv, "--server", f"127.0.0.1:{port}", *credentials)
    said = f"caseroute: no answer from 127.0.0.1:{port} (UNAVAILABLE: "
    assert (code, out, err.startswith(said)) == (1, "", True)


def test_rules_list_prints_each_problem_of_a_last_error_on_its_own_line(
    tmp_path: Path, token: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Review R34b F4 (aside): two problems were printed joined by a backslash-n."""
    with admin_server(tmp_path, admin=TwoProblemsAdmin()) as server:
        assert _run(capsys, "rules", "list", *_remote(server, token)) == (
            0,
            (
                "routing: active (none)\n"
                "  last error: routing/serving.yaml:2:1: error a: one\n"
                "              routing/serving.yaml:3:1: error b: two\n"
            ),
            "",
        )
