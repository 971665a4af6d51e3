"""`caseroute serve --log-format/--log-level` and their environment variables."""

import pytest

from caseroute.cli.command import build_parser, main
from caseroute.cli.serve import server_config


def test_the_flags_reach_the_server_settings_in_any_case() -> None:
    """``--log-format JSON --log-level Warning`` become ``json`` and ``warning``."""
    args = build_parser().parse_args(["serve", "--log-format", "JSON", "--log-level", "Warning"])
    config = server_config(args)
    assert (config.log_format, config.log_level) == ("json", "warning")


def test_the_environment_sets_them_and_the_defaults_are_auto_and_info(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """$CASEROUTE_LOG_FORMAT/$CASEROUTE_LOG_LEVEL are the defaults; unset or empty: auto, info."""
    monkeypatch.setenv("CASEROUTE_LOG_FORMAT", "")  # empty counts as unset
    plain = server_config(build_parser().parse_args(["serve"]))
    monkeypatch.setenv("CASEROUTE_LOG_FORMAT", "console")
    monkeypatch.setenv("CASEROUTE_LOG_LEVEL", "debug")
    from_env = server_config(build_parser().parse_args(["serve"]))
    assert [(plain.log_format, plain.log_level), (from_env.log_format, from_env.log_level)] == [
        ("auto", "info"),
        ("console", "debug"),
    ]


@pytest.mark.parametrize(
    ("argv", "env", "message"),
    [
        (
            ["--log-level", "loud"],
            {},
            (
                "argument --log-level: must be one of debug, info, warning, error, got 'loud' "
                "(set by the flag or $CASEROUTE_LOG_LEVEL)"
            ),
        ),
        (
            ["--log-format", "xml"],
            {},
            (
                "argument --log-format: must be one of auto, json, console, got 'xml' "
                "(set by the flag or $CASEROUTE_LOG_FORMAT)"
            ),
        ),
        (
            [],
            {"CASEROUTE_LOG_LEVEL": "verbose"},
            (
                "argument --log-level: must be one of debug, info, warning, error, got 'verbose' "
                "(set by the flag or $CASEROUTE_LOG_LEVEL)"
            ),
        ),
    ],
)
def test_a_bad_value_is_a_usage_error_naming_flag_variable_and_choices(
    argv: list[str],
    env: dict[str, str],
    message: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A bad flag or environment value exits 2 with one line that says what to write."""
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(SystemExit) as stopped:
        main(["serve", *argv])
    err = capsys.readouterr().err
    assert (stopped.value.code, err.splitlines()[-1], "Traceback" in err) == (
        2,
        f"caseroute serve: error: {message}",
        False,
    )
