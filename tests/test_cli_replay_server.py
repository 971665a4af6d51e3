"""`caseroute replay --server`: the server's replay printed exactly as a local replay of its log."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from caseroute.cli import main
from caseroute.grpc_api.server import RunningServer
from tests.grpc_api.test_admin_replay import replay_home, start_server
from tests.replay.recorded import CANDIDATES


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, RunningServer]]:
    """A recorded log, rulesets and tokens, and a server replaying from them."""
    base = replay_home(tmp_path_factory.mktemp("cli-replay-server"))
    (base / "queue.yaml").write_text(CANDIDATES["queue"])
    server = start_server(base)
    try:
        yield base, server
    finally:
        server.stop(1)


def _local(base: Path, *args: str) -> list[str]:
    return [
        "replay",
        "--audit-db",
        str(base / "audit" / "audit.db"),
        "--rulesets",
        str(base / "rulesets"),
        "--engine",
        "python",
        "--workers",
        "1",
        *args,
    ]


def _remote(base: Path, server: RunningServer, *args: str) -> list[str]:
    return [
        "replay",
        "--server",
        f"127.0.0.1:{server.port}",
        "--token-file",
        str(base / "admin.tokens.alice"),
        *args,
    ]


@pytest.fixture(scope="module")
def alice_token(home: tuple[Path, RunningServer]) -> None:
    """Alice's token alone in a file, as the CLI reads it."""
    from tests.grpc_api.test_auth import ALICE, token_file

    token_file(home[0] / "admin.tokens.alice", ALICE + "\n")


@pytest.mark.usefixtures("alice_token")
@pytest.mark.parametrize("fmt", ["json", "markdown"])
@pytest.mark.parametrize("candidate", ["test@2", "test@1", "queue.yaml"])
def test_remote_output_is_the_local_output_byte_for_byte(
    home: tuple[Path, RunningServer],
    capsys: pytest.CaptureFixture[str],
    fmt: str,
    candidate: str,
) -> None:
    """For the same log, --server prints exactly what a local replay prints (json, markdown)."""
    base, server = home
    spec = str(base / candidate) if candidate.endswith(".yaml") else candidate
    local_code = main(_local(base, "--candidate", spec, "--format", fmt))
    local = capsys.readouterr()
    remote_code = main(_remote(base, server, "--candidate", spec, "--format", fmt))
    remote = capsys.readouterr()
    assert (remote_code, remote.out, remote.err) == (local_code, local.out, local.err)
    assert local.out.count("\n") > 5


@pytest.mark.usefixtures("alice_token")
def test_remote_fail_on_gate_and_filters(
    home: tuple[Path, RunningServer], capsys: pytest.CaptureFixture[str]
) -> None:
    """--fail-on, --case-id and --limit act remotely as locally: exit 1 and the gate's line."""
    base, server = home
    args = ("--candidate", "test@2", "--case-id", "C3", "--fail-on", "changed=50%", "--limit", "3")
    code = main(_remote(base, server, *args, "--format", "json"))
    out = capsys.readouterr()
    assert (code, out.err) == (
        1,
        "caseroute: replay gate failed: changed: 1 of 1 = 100.0000% exceeds 50.0000%\n",
    )


@pytest.mark.usefixtures("alice_token")
def test_remote_refuses_local_log_options(
    home: tuple[Path, RunningServer], capsys: pytest.CaptureFixture[str]
) -> None:
    """--server with --audit-db is a usage error (exit 2): the server replays its own log."""
    base, server = home
    code = main([*_remote(base, server, "--candidate", "test@2"), "--audit-db", "x.db"])
    assert (code, capsys.readouterr().err) == (
        2,
        (
            "caseroute: --server replays the server's own decision log: drop --input, "
            "--audit-db and --workers\n"
        ),
    )


def test_remote_without_token_reports_the_refusal(
    home: tuple[Path, RunningServer],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Without credentials the server's UNAUTHENTICATED is reported and the exit code is 1."""
    monkeypatch.delenv("CASEROUTE_TOKEN_FILE", raising=False)
    _, server = home
    code = main(["replay", "--server", f"127.0.0.1:{server.port}", "--candidate", "test@2"])
    err = capsys.readouterr().err
    assert (code, err) == (
        1,
        (
            "caseroute: server answered UNAUTHENTICATED: this call needs credentials: send "
            "`authorization: Bearer <token>` or a client certificate on the allow-list (no "
            "token was sent: pass --token-file FILE holding your admin token, or set "
            "$CASEROUTE_TOKEN_FILE)\n"
        ),
    )


@pytest.mark.usefixtures("alice_token")
def test_remote_warns_when_the_server_maximum_cut_the_replay_short(
    home: tuple[Path, RunningServer],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Without --limit, a reply stopped at the server's maximum says so on stderr."""
    monkeypatch.setattr("caseroute.replay_admin.MAX_REPLAY_RECORDS", 2)
    base, server = home
    code = main(_remote(base, server, "--candidate", "test@2", "--format", "json"))
    out = capsys.readouterr()
    assert (code, json.loads(out.out)["total"], out.err) == (
        0,
        2,
        (
            "caseroute: replay stopped at the limit (2 records); the log may hold more: "
            "narrow --since/--until\n"
        ),
    )
