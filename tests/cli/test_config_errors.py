"""A bad configuration file stops the command with exit 2 and one line: file:line, key, fix."""

from pathlib import Path

import pytest

from caseroute.cli.command import main

SERVER_KEYS = (
    "rulesets, host, port, workers, threads, max_message_mb, max_response_mb, grace, engine, "
    "default_ruleset"
)
TABLES = "[server], [roster_cache], [limits], [audit], [tls], [metrics], [reload], [access], [logs]"


def _fails(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    """Run ``argv``; the exit code and stderr (whether it returned or raised SystemExit)."""
    try:
        code = main(argv)
    except SystemExit as stopped:
        code = int(str(stopped.code))
    return code, capsys.readouterr().err


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            "[server]\nport = 50051\nhost = \n",
            (
                "{f}:3: not valid TOML: Invalid value (at line 3, column 8); fix the syntax "
                "(https://toml.io)"
            ),
        ),
        (
            "[server]\nprot = 6000\n",
            (
                "{f}:2: unknown key `prot` in [server] (did you mean `port`?); the keys of "
                f"[server] are {SERVER_KEYS}"
            ),
        ),
        (
            "[server]\nport = 1\n\n[serevr]\nport = 2\n",
            f"{{f}}:4: unknown table [serevr] (did you mean [server]?); the tables are {TABLES}",
        ),
        (
            "port = 6000\n",
            f"{{f}}:1: `port` is outside a table; settings go in tables: {TABLES}",
        ),
        (
            '[server]\nport = "6000"\n',
            "{f}:2: [server] port must be an integer, got '6000' (a string)",
        ),
        (
            "[server]\nport = 70000\n",
            "{f}:2: [server] port must be a TCP port 0-65535 (0 picks a free one), got 70000",
        ),
        (
            "[limits]\nmax_agents = 0\n",
            "{f}:2: [limits] max_agents must be a whole number of at least 1, got 0",
        ),
        (
            "[reload]\ninterval = -1\n",
            "{f}:2: [reload] interval must be a number of seconds of at least 0, got -1",
        ),
        (
            '[logs]\nlevel = "loud"\n',
            "{f}:2: [logs] level must be one of debug, info, warning, error, got 'loud'",
        ),
        (
            '[access]\nadmin_allow = "ops"\n',
            "{f}:2: [access] admin_allow must be an array of strings, got 'ops' (a string)",
        ),
        (
            "[server]\nengine = true\n",
            "{f}:2: [server] engine must be a string, got True (a boolean)",
        ),
        (
            '[audit]\nkey = "00112233445566778899aabbccddeeff"\n',
            (
                "{f}:2: [audit] key is a secret and cannot be in the file; set "
                "$CASEROUTE_AUDIT_KEY in the environment (or use [audit] key_file)"
            ),
        ),
    ],
    ids=[
        "syntax",
        "unknown-key",
        "unknown-table",
        "outside-a-table",
        "wrong-type",
        "port-out-of-range",
        "limit-out-of-range",
        "negative-seconds",
        "bad-choice",
        "list-expected",
        "boolean-for-string",
        "secret-in-file",
    ],
)
def test_a_bad_file_is_one_line_naming_file_line_and_key(
    body: str, message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Each kind of mistake: exit 2, the one line names the file and line; no traceback."""
    config = tmp_path / "caseroute.toml"
    config.write_text(body, encoding="utf-8")
    code, err = _fails(["serve", "--config", str(config)], capsys)
    assert (code, err) == (2, f"caseroute serve: error: {message.format(f=config)}\n")


def test_a_missing_file_names_the_flag_and_the_variable(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--config naming no file: exit 2, saying it must be an existing file."""
    missing = tmp_path / "nope.toml"
    code, err = _fails(["config", "show", "--config", str(missing)], capsys)
    assert (code, err.splitlines()[-1]) == (
        2,
        (
            f"caseroute config show: error: argument --config: must be an existing file, got "
            f"'{missing}' (no such file) (set by the flag or $CASEROUTE_CONFIG)"
        ),
    )


def test_a_value_that_only_fails_with_another_names_the_file_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An allow-list from the file without mutual TLS names `[access] admin_allow (file:line)`."""
    config = tmp_path / "caseroute.toml"
    config.write_text('[access]\nadmin_allow = ["ops"]\n', encoding="utf-8")
    code, err = _fails(["config", "show", "--config", str(config)], capsys)
    assert (code, err) == (
        2,
        (
            f"caseroute: [access] admin_allow ({config}:2) names client-certificate identities, "
            "which only mutual TLS provides: add --tls-cert, --tls-key and --tls-client-ca, or use "
            "a token file\n"
        ),
    )


def test_masked_fields_from_the_file_are_checked_naming_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A masked field path outside `case.` in the file: exit 2 naming `[audit] masked_fields`."""
    config = tmp_path / "caseroute.toml"
    config.write_text('[audit]\nmasked_fields = ["roster.x"]\n', encoding="utf-8")
    code, err = _fails(["serve", "--config", str(config)], capsys)
    assert (code, err.startswith(f"caseroute: [audit] masked_fields ({config}:2): invalid ")) == (
        2,
        True,
    ), err


def test_a_file_that_is_not_utf8_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Bytes that are not UTF-8: exit 2 naming the file and the byte offset."""
    config = tmp_path / "caseroute.toml"
    config.write_bytes(b'[server]\nhost = "\xff"\n')
    code, err = _fails(["serve", "--config", str(config)], capsys)
    assert (code, err) == (
        2,
        f"caseroute serve: error: {config}: not UTF-8 text (byte 17); save it as UTF-8\n",
    )
