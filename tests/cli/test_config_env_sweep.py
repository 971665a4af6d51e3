"""Every CASEROUTE_* variable, set to a bad value, stops every command that reads it cleanly."""

import argparse
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from caseroute.cli.command import build_parser, main
from caseroute.cli.settings import SETTINGS, Setting, SettingsParser

SRC = Path(__file__).resolve().parents[2] / "src" / "caseroute"

# Just enough arguments for each command to parse; the bad variable must stop it first.
ARGV = {
    "decide": ["decide", "--case", "c.json", "--roster", "r.json"],
    "serve": ["serve"],
    "rules check": ["rules", "check", "x.yaml"],
    "rules test": ["rules", "test", "x"],
    "rules list": ["rules", "list", "--server", "127.0.0.1:1"],
    "rules get": ["rules", "get", "n", "--server", "127.0.0.1:1"],
    "rules validate": ["rules", "validate", "x.yaml", "--server", "127.0.0.1:1"],
    "rules activate": ["rules", "activate", "n", "v", "--server", "127.0.0.1:1"],
    "rules rollback": ["rules", "rollback", "n", "--server", "127.0.0.1:1"],
    "rules reload": ["rules", "reload", "--server", "127.0.0.1:1"],
    "rules shadow-report": ["rules", "shadow-report", "n"],
    "rules fmt": ["rules", "fmt", "x"],
    "audit show": ["audit", "show", "dec_x"],
    "audit export": ["audit", "export"],
    "audit verify": ["audit", "verify"],
    "audit events": ["audit", "events"],
    "audit rotate-key": ["audit", "rotate-key", "--new-key-file", "k", "--confirm"],
    "simulate": ["simulate", "--cases", "1", "--agents", "1", "--seed", "1"],
    "replay": ["replay", "--candidate", "x"],
    "report": ["report"],
    "config show": ["config", "show"],
}


def _commands(
    parser: argparse.ArgumentParser, path: tuple[str, ...] = ()
) -> Iterator[tuple[str, SettingsParser]]:
    """Every (sub)command parser that reads settings, by its command words."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _commands(sub, (*path, name))
    if isinstance(parser, SettingsParser) and parser.settings:
        yield " ".join(path), parser


READERS = {name: tuple(s.env for s in p.settings) for name, p in _commands(build_parser())}


def _bad_value(setting: Setting, tmp_path: Path) -> str:
    """A value of the wrong shape for ``setting``'s kind."""
    expected = setting.kind.expected
    for marker, bad in (
        ("whole number", "abc"),
        ("TCP port", "abc"),
        ("seconds", "soon"),
        ("one of", "nope"),
        ("host name", "not a host!"),
        ("ruleset name", "Not A Name"),
        ("not a directory", str(tmp_path)),
        ("existing file", str(tmp_path / "missing")),
        ("identities", "a b"),
        ("case field paths", "roster.x"),
        ("hex", "zz"),
    ):
        if marker in expected:
            return bad
    raise AssertionError(f"no bad value for {setting.env} ({expected}): add one to this test")


CASES = [
    (setting, command)
    for setting in SETTINGS
    for command, envs in READERS.items()
    if setting.env in envs
]


def test_every_command_that_reads_settings_is_swept() -> None:
    """The sweep knows how to call every command that reads a setting (no command escapes)."""
    assert sorted(READERS) == sorted(ARGV)


def test_every_variable_in_the_source_is_in_the_table() -> None:
    """Each CASEROUTE_* literal in src/ is a setting of the table (generated code aside)."""
    found = {
        name
        for path in SRC.rglob("*.py")
        if "v1" not in path.relative_to(SRC).parts
        for name in re.findall(r"CASEROUTE_[A-Z0-9_]*[A-Z0-9]\b", path.read_text("utf-8"))
    }
    assert sorted(found - {s.env for s in SETTINGS}) == []
    assert len(found) >= 20  # the scan itself works: today's code names most of them


def test_every_variable_is_read_by_some_command_besides_config_show() -> None:
    """No setting is only shown: each is read by serve or another command."""
    read = {env for command, envs in READERS.items() if command != "config show" for env in envs}
    assert sorted({s.env for s in SETTINGS} - read) == []


@pytest.mark.parametrize(
    ("setting", "command"), CASES, ids=[f"{s.env}-{c.replace(' ', '-')}" for s, c in CASES]
)
def test_a_bad_variable_stops_the_command_with_one_line_naming_it(
    setting: Setting,
    command: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Exit 2 and exactly one stderr line that names the variable; never a traceback."""
    import caseroute.grpc_api.processes as processes_module

    def no_start(*_args: object, **_kwargs: object) -> int:
        raise AssertionError("serve started despite a bad variable")

    monkeypatch.setattr(processes_module, "serve", no_start)
    for name in [n for n in __import__("os").environ if n.startswith("CASEROUTE_")]:
        monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv(setting.env, _bad_value(setting, tmp_path))
    try:
        code = main(ARGV[command])
    except SystemExit as stopped:
        code = int(str(stopped.code))
    err = capsys.readouterr().err
    lines = err.splitlines()
    assert (code, len(lines), setting.env in err, "Traceback" in err) == (2, 1, True, False), err


def test_a_bad_variable_leaves_commands_that_do_not_read_it_alone(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """CASEROUTE_ENGINE=nope and CASEROUTE_PORT=abc: `rules fields` still runs (exit 0)."""
    monkeypatch.setenv("CASEROUTE_ENGINE", "nope")  # used to stop every command at start
    monkeypatch.setenv("CASEROUTE_PORT", "abc")
    monkeypatch.setenv("CASEROUTE_WORKERS", "")
    code = main(["rules", "fields"])
    assert (code, capsys.readouterr().err) == (0, "")
