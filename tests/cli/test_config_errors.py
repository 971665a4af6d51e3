"""A bad configuration file stops the command with exit 2 and one line: file:line, key, fix."""

from pathlib import Path

import pytest

from caseroute.cli.command import main

SERVER_KEYS = (
    "rulesets, host, port, workers, threads, max_message_mb, max_response_mb, grace, "
    "max_now_skew, engine, default_ruleset, gc_threshold"
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


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("[server]\nhost = [1]\n", "[server] host must be a string, got [1] (an array)"),
        ("[server]\nhost = { a = 1 }\n", "[server] host must be a string, got {'a': 1} (a table)"),
        (
            "[server]\nhost = 2026-12-01\n",
            "[server] host must be a string, got datetime.date(2026, 12, 1) (a date or time)",
        ),
        ("[server]\nport = 1.5\n", "[server] port must be an integer, got 1.5 (a number)"),
    ],
    ids=["array", "table", "date", "float-for-integer"],
)
def test_each_toml_type_is_named_when_it_is_the_wrong_one(
    body: str, message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A wrong TOML type says which type it found: array, table, date or number."""
    config = tmp_path / "c.toml"
    config.write_text(body, encoding="utf-8")
    code, err = _fails(["serve", "--config", str(config)], capsys)
    assert (code, err) == (2, f"caseroute serve: error: {config}:2: {message}\n")


@pytest.mark.parametrize(
    ("env", "message"),
    [
        (
            {"CASEROUTE_AUDIT_KEY": "aabb"},
            (
                "$CASEROUTE_AUDIT_KEY: must be hex of at least 16 bytes (e.g. from `openssl rand "
                "-hex 32`), got 2 bytes; the value is not shown (a secret)"
            ),
        ),
        (
            {"CASEROUTE_AUDIT_KEY": "not-hex-secret"},
            (
                "$CASEROUTE_AUDIT_KEY: must be hex of at least 16 bytes (e.g. from `openssl rand "
                "-hex 32`); the value is not shown (a secret)"
            ),
        ),
        (
            {"CASEROUTE_CALLER_ALLOW": "flow.example, bad name"},
            (
                "argument --caller-allow: must be identities (DNS names or common names, no "
                "spaces), got 'bad name' (set by the flag or $CASEROUTE_CALLER_ALLOW)"
            ),
        ),
    ],
    ids=["short-key", "key-not-hex", "identity-with-space"],
)
def test_a_bad_variable_is_named_and_a_secret_never_quoted(
    env: dict[str, str],
    message: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The key's errors say what is wrong but never echo the value; others quote it."""
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    code, err = _fails(["serve"], capsys)
    assert (code, err) == (2, f"caseroute serve: error: {message}\n")


def test_an_allow_flag_takes_one_identity(capsys: pytest.CaptureFixture[str]) -> None:
    """--admin-allow a,b is refused: the flag is repeated per identity (the variable has commas)."""
    code, err = _fails(["serve", "--admin-allow", "a.example,b.example"], capsys)
    assert (code, err.splitlines()[-1]) == (
        2,
        (
            "caseroute serve: error: argument --admin-allow: must be an identity (a DNS name or "
            "common name, no spaces or commas), got 'a.example,b.example' (set by the flag or "
            "$CASEROUTE_ADMIN_ALLOW)"
        ),
    )


def test_cross_setting_errors_name_variables_and_file_lines(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The metrics port equal to the gRPC port, a client CA without TLS: each origin named."""
    config = tmp_path / "c.toml"
    config.write_text("[server]\nport = 6000\n", "utf-8")
    monkeypatch.setenv("CASEROUTE_METRICS_PORT", "6000")
    ports = _fails(["config", "show", "--config", str(config)], capsys)
    monkeypatch.delenv("CASEROUTE_METRICS_PORT")
    with config.open("a", encoding="utf-8") as more:
        more.write('\n[tls]\nclient_ca = "ca.pem"\n')
    tls = _fails(["config", "show", "--config", str(config)], capsys)
    assert [ports, tls] == [
        (
            2,
            (
                f"caseroute: $CASEROUTE_METRICS_PORT is also [server] port ({config}:2) (gRPC); "
                "give metrics a port of their own (both are 6000)\n"
            ),
        ),
        (
            2,
            (
                f"caseroute: [tls] client_ca ({config}:5) needs --tls-cert and --tls-key (TLS "
                "itself)\n"
            ),
        ),
    ]


def test_load_config_refuses_a_missing_or_oversized_file(tmp_path: Path) -> None:
    """A file gone before it is read, or over 1 MiB: a SettingError naming it."""
    from caseroute.cli.settings import SettingError, load_config

    big = tmp_path / "big.toml"
    big.write_bytes(b"#" * (1024 * 1024 + 1))
    messages = []
    for path in (tmp_path / "gone.toml", big):
        with pytest.raises(SettingError) as refused:
            load_config(path)
        messages.append(str(refused.value))
    assert messages == [
        (
            f"cannot read the configuration file {tmp_path / 'gone.toml'}: No such file or "
            "directory; pass --config (or $CASEROUTE_CONFIG) naming a readable TOML file"
        ),
        f"{big}: the configuration file is over 1024 KiB; is it the right file?",
    ]


def test_a_key_the_line_scan_cannot_place_names_just_the_file(tmp_path: Path) -> None:
    """An inline table (`server = { port = 7 }`) still works; its source is the file alone."""
    from caseroute.cli.command import build_parser

    config = tmp_path / "c.toml"
    config.write_text("server = { port = 7 }\n", encoding="utf-8")
    args = build_parser().parse_args(["serve", "--config", str(config)])
    assert (args.port, str(args.setting_sources["port"])) == (7, f"file {config}")


def test_a_kubernetes_service_link_in_caseroute_port_says_where_it_came_from(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`CASEROUTE_PORT=tcp://...`, injected beside a Service named caseroute, is explained.

    The refusal names Kubernetes' service links and the pod setting that turns them off.
    """
    monkeypatch.setenv("CASEROUTE_PORT", "tcp://10.0.0.7:50051")
    code, err = _fails(["serve"], capsys)
    assert (code, err) == (
        2,
        (
            "caseroute serve: error: argument --port: must be a TCP port 0-65535 (0 picks a "
            "free one), got 'tcp://10.0.0.7:50051': a value of the form tcp://HOST:PORT is what "
            "Kubernetes sets in <SERVICE>_PORT for a Service of that name (service links); set "
            "enableServiceLinks: false in the pod spec, as deploy/kubernetes does (set by the "
            "flag or $CASEROUTE_PORT)\n"
        ),
    )
    monkeypatch.setenv("CASEROUTE_PORT", "tcp")  # any other text: the plain refusal
    code, err = _fails(["serve"], capsys)
    assert (code, err.endswith("got 'tcp' (set by the flag or $CASEROUTE_PORT)\n")) == (2, True)
