"""`caseroute config show`: every setting's effective value and source, secrets redacted."""

import json
from pathlib import Path

import pytest

from caseroute.cli.command import main
from caseroute.cli.settings import SETTINGS

KEY = "5ec2e75ec2e75ec2e75ec2e75ec2e75e"


@pytest.fixture
def layered(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A file setting host and workers, the port and audit key from the environment."""
    for name in [n for n in __import__("os").environ if n.startswith("CASEROUTE_")]:
        monkeypatch.delenv(name)
    config = tmp_path / "caseroute.toml"
    config.write_text('[server]\nhost = "0.0.0.0"\nworkers = 3\n', encoding="utf-8")
    tokens = tmp_path / "admin.tokens"
    tokens.write_text("alice TOKEN-CONTENT-NEVER-SHOWN\n", encoding="utf-8")
    monkeypatch.setenv("CASEROUTE_PORT", "6001")
    monkeypatch.setenv("CASEROUTE_AUDIT_KEY", KEY)
    monkeypatch.setenv("CASEROUTE_ADMIN_TOKEN_FILE", str(tokens))
    return config


def _show(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    assert main(["config", "show", *argv]) == 0
    captured = capsys.readouterr()
    assert captured.err == ""
    return captured.out


def test_text_lists_each_setting_with_its_source(
    layered: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Flag, env, file:line and default sources; the key redacted, a token file's path only."""
    out = _show(capsys, "--config", str(layered), "--workers", "2")
    rows = {line.split()[0]: line.split(None, 1)[1] for line in out.splitlines()[1:]}
    width = max(len(s.name) for s in SETTINGS)
    assert out.splitlines()[0].startswith("setting".ljust(width) + "  source")
    tokens = layered.parent / "admin.tokens"
    picked = {
        k: " ".join(rows[k].split())
        for k in ("config", "server.host", "server.port", "server.workers", "server.threads",
                  "audit.key", "access.admin_token_file", "server.default_ruleset")
    }  # fmt: skip
    assert picked == {
        "config": f"flag --config {layered}",
        "server.host": f"file {layered}:2 0.0.0.0",
        "server.port": "env CASEROUTE_PORT 6001",
        "server.workers": "flag --workers 2",
        "server.threads": "default 16",
        "audit.key": "env CASEROUTE_AUDIT_KEY <redacted>",
        "access.admin_token_file": f"env CASEROUTE_ADMIN_TOKEN_FILE {tokens}",
        "server.default_ruleset": "default (not set)",
    }
    assert (KEY in out, "TOKEN-CONTENT" in out, len(rows)) == (False, False, len(SETTINGS))


def test_json_holds_every_setting_with_value_source_env_and_flag(
    layered: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--format json: one object per setting, in table order; the key never appears."""
    out = _show(capsys, "--config", str(layered), "--format", "json")
    rows = json.loads(out)["settings"]
    by_name = {r["setting"]: r for r in rows}
    assert [r["setting"] for r in rows] == [s.name if s.table else s.dest for s in SETTINGS]
    assert [by_name["server.port"], by_name["audit.key"], by_name["access.caller_allow"]] == [
        {"setting": "server.port", "value": 6001, "source": "env CASEROUTE_PORT",
         "env": "CASEROUTE_PORT", "flag": "--port"},
        {"setting": "audit.key", "value": "<redacted>", "source": "env CASEROUTE_AUDIT_KEY",
         "env": "CASEROUTE_AUDIT_KEY", "flag": None},
        {"setting": "access.caller_allow", "value": [], "source": "default",
         "env": "CASEROUTE_CALLER_ALLOW", "flag": "--caller-allow"},
    ]  # fmt: skip
    assert KEY not in out


def test_an_unset_key_shows_as_not_set(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Without CASEROUTE_AUDIT_KEY the key is null in JSON (not `<redacted>`): nothing is set."""
    monkeypatch.delenv("CASEROUTE_AUDIT_KEY", raising=False)
    rows = json.loads(_show(capsys, "--format", "json"))["settings"]
    assert [r for r in rows if r["setting"] == "audit.key"] == [
        {"setting": "audit.key", "value": None, "source": "default",
         "env": "CASEROUTE_AUDIT_KEY", "flag": None}
    ]  # fmt: skip


def test_show_refuses_what_serve_would_refuse(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A TLS key without its certificate: config show exits 2 with serve's message."""
    monkeypatch.setenv("CASEROUTE_TLS_KEY", "server.key")
    assert main(["config", "show"]) == 2
    assert capsys.readouterr().err == (
        "caseroute: --tls-cert and --tls-key go together: give both or neither (only "
        "$CASEROUTE_TLS_KEY is set)\n"
    )


def test_an_unknown_variable_is_warned_about_with_the_close_name(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """CASEROUTE_PROT=6000 (a typo) is named on stderr with CASEROUTE_PORT suggested; exit 0."""
    for name in [n for n in __import__("os").environ if n.startswith("CASEROUTE_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("CASEROUTE_PROT", "6000")
    monkeypatch.setenv("CASEROUTE_ZZZ", "1")
    assert main(["config", "show"]) == 0
    assert capsys.readouterr().err == (
        "caseroute: warning: CASEROUTE_PROT is set but is not a caseroute setting (did you "
        "mean CASEROUTE_PORT?); it is ignored\n"
        "caseroute: warning: CASEROUTE_ZZZ is set but is not a caseroute setting; it is ignored\n"
    )
