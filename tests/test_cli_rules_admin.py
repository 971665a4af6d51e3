"""`caseroute rules list|get|validate|activate|rollback|reload --server` against a real server."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from caseroute.cli import main
from caseroute.grpc_api.server import RunningServer

from .grpc_api.test_admin import admin_server, ruleset_text
from .grpc_api.test_auth import ALICE, NEEDS_CREDENTIALS, token_file

INSTANT = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")


@pytest.fixture
def served(tmp_path: Path) -> Iterator[RunningServer]:
    """A server over routing 1 (active) and 2, accepting alice's admin token."""
    with admin_server(tmp_path) as server:
        yield server


@pytest.fixture
def token(tmp_path: Path) -> Path:
    """Alice's token file for the client: just the token, mode 0600."""
    return token_file(tmp_path / "alice.token", f"{ALICE}\n")


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _remote(server: RunningServer, token: Path) -> list[str]:
    return ["--server", f"127.0.0.1:{server.port}", "--token-file", str(token)]


def test_rules_list_prints_versions_active_and_paths(
    served: RunningServer, token: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`rules list`: one block per ruleset, each version with its sha256 prefix and path."""
    code, out, err = _run(capsys, "rules", "list", *_remote(served, token), "--format", "json")
    data = json.loads(out)
    (routing,) = data["rulesets"]
    sha = {v["version"]: v["sha256"] for v in routing["versions"]}
    assert (code, err) == (0, "")
    assert {k: v for k, v in routing.items() if k != "last_reload"} == {
        "name": "routing",
        "active_version": "1",
        "shadow_version": None,
        "previous_versions": [],
        "retired_versions": [],
        "versions": [
            {"version": "1", "sha256": sha["1"], "path": "routing/1/ruleset.yaml"},
            {"version": "2", "sha256": sha["2"], "path": "routing/2/ruleset.yaml"},
        ],
        "last_error": None,
    }
    assert INSTANT.match(routing["last_reload"])
    code, out, err = _run(capsys, "rules", "list", *_remote(served, token))
    assert (code, err) == (0, "")
    assert out == (
        "routing: active 1\n"
        f"  1  sha256 {sha['1'][:12]}  routing/1/ruleset.yaml  [active]\n"
        f"  2  sha256 {sha['2'][:12]}  routing/2/ruleset.yaml\n"
        f"  last reload: {routing['last_reload']}\n"
    )


def test_rules_activate_then_rollback_print_the_change(
    served: RunningServer, token: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`rules activate NAME VERSION` and `rules rollback NAME`: what changed, by whom (exit 0)."""
    code, out, err = _run(capsys, "rules", "activate", "routing", "2", *_remote(served, token))
    lines = out.splitlines()
    assert (code, err) == (0, "")
    assert re.fullmatch(r"activate by admin:alice at \S+Z", lines[0])
    assert re.fullmatch(
        r"  routing active: 1 \(sha256 [0-9a-f]{12}\) -> 2 \(sha256 [0-9a-f]{12}\)", lines[1]
    )
    assert len(lines) == 2
    code, out, err = _run(
        capsys, "rules", "rollback", "routing", *_remote(served, token), "--format", "json"
    )
    data = json.loads(out)
    assert (code, err) == (0, "")
    assert (data["action"], data["actor"], data["errors"]) == ("rollback", "admin:alice", [])
    assert [(c["role"], c["from_version"], c["to_version"]) for c in data["changes"]] == [
        ("active", "2", "1")
    ]


def test_rules_reload_reports_an_unloadable_source_and_exits_1(
    served: RunningServer, token: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """reload: nothing changed is said; a source that did not load is listed, exit 1."""
    code, out, err = _run(capsys, "rules", "reload", *_remote(served, token))
    assert (code, out.splitlines()[1:], err) == (
        0,
        ["  no active or shadow version changed"],
        "",
    )
    broken = tmp_path / "rulesets" / "routing" / "4" / "ruleset.yaml"
    broken.parent.mkdir()
    broken.write_text("ruleset: routing\nversion: [\n")
    code, out, err = _run(capsys, "rules", "reload", *_remote(served, token))
    lines = out.splitlines()
    assert (code, err, len(lines)) == (1, "", 4)
    assert lines[2].startswith("  not loaded: ")
    assert lines[3] == (
        "  (the last good version of each keeps serving; `caseroute rules list` shows the "
        "errors with file:line)"
    )


def test_rules_validate_prints_diagnostics_and_exits_1_on_errors(
    served: RunningServer, token: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`rules validate PATH`: a clean file exits 0; a broken one prints file:line lines, exit 1."""
    good = tmp_path / "good.yaml"
    good.write_text(ruleset_text("routing", "3"))
    bad = tmp_path / "bad.yaml"
    bad.write_text(ruleset_text("routing", "3").replace("ruleset: routing\n", "rulset: x\n"))
    server = f"127.0.0.1:{served.port}"
    code, out, err = _run(capsys, "rules", "validate", str(good), *_remote(served, token))
    assert (code, out.splitlines()[-1], err) == (0, f"{good}: ok (checked by {server})", "")
    assert [line.split(": warning ")[1].split(":")[0] for line in out.splitlines()[:-1]] == [
        "lint.no_consent",  # the test ruleset enforces no consent constraint: a warning only
        "lint.no_licence",  # nor a licence for prescription
    ]
    code, out, err = _run(capsys, "rules", "validate", str(bad), *_remote(served, token))
    lines = out.splitlines()
    assert (code, err, lines[-1]) == (1, "", f"{bad}: has errors (checked by {server})")
    # The caller's path, not only the name the server saw (review R37b 9).
    shown = re.escape(str(bad))
    assert all(
        re.match(rf"{shown}:\d+(:\d+)?: (error|warning) [a-z_.]+", line) for line in lines[:-1]
    )
    assert any(" error " in line for line in lines[:-1])


def test_rules_get_prints_the_active_source(
    served: RunningServer, token: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`rules get NAME`: the active version's YAML, as loaded."""
    assert _run(capsys, "rules", "get", "routing", *_remote(served, token)) == (
        0,
        ruleset_text("routing", "1"),
        "",
    )


def test_the_token_file_may_come_from_the_environment(
    served: RunningServer,
    token: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """$CASEROUTE_TOKEN_FILE stands in for --token-file."""
    monkeypatch.setenv("CASEROUTE_TOKEN_FILE", str(token))
    code, out, err = _run(capsys, "rules", "get", "routing", "--server", f"127.0.0.1:{served.port}")
    assert (code, out, err) == (0, ruleset_text("routing", "1"), "")


def test_without_a_token_the_server_refusal_is_printed_and_exits_1(
    served: RunningServer, capsys: pytest.CaptureFixture[str]
) -> None:
    """No credentials: the server's UNAUTHENTICATED message, exit 1 like other client commands.

    With how a CLI user sends a token (review R37b 8: the server's words name only the header).
    """
    assert _run(capsys, "rules", "list", "--server", f"127.0.0.1:{served.port}") == (
        1,
        "",
        (
            f"caseroute: server answered UNAUTHENTICATED: {NEEDS_CREDENTIALS} (no token was "
            "sent: pass --token-file FILE holding your admin token, or set "
            "$CASEROUTE_TOKEN_FILE)\n"
        ),
    )


def test_a_shared_or_malformed_token_file_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A token file others can read, or one with two words, stops before any call (exit 2)."""
    shared = token_file(tmp_path / "shared", f"{ALICE}\n", mode=0o644)
    two = token_file(tmp_path / "two", f"alice {ALICE}\n")
    assert _run(capsys, "rules", "reload", "--server", "x:1", "--token-file", str(shared)) == (
        2,
        "",
        (
            f"caseroute: --token-file: the token file {shared} is accessible to other users (mode "
            f"644); run `chmod 600 {shared}`\n"
        ),
    )
    assert _run(capsys, "rules", "reload", "--server", "x:1", "--token-file", str(two)) == (
        2,
        "",
        (
            f"caseroute: --token-file: {two} must hold just the token (one word, no identity); "
            "write only your admin token into it\n"
        ),
    )
