"""configure_logging: one renderer for stdlib and structlog lines, JSON or console, a level."""

import io
import json
import logging
import os
import re

import pytest
import structlog

from caseroute.logs import configure_logging, host_configured, resolve_format

ANSI = re.compile(r"\x1b\[[0-9;]*m")


class _Terminal(io.StringIO):
    """A text stream that says it is a terminal."""

    def isatty(self) -> bool:
        return True


def _fixed(line: dict[str, object]) -> dict[str, object]:
    """A parsed line without the fields that vary per run (time, process)."""
    return {k: v for k, v in line.items() if k not in {"timestamp", "pid"}}


def test_stdlib_and_structlog_lines_render_as_one_json_object_each() -> None:
    """A stdlib call (with extra fields) and a structlog event both become one JSON line."""
    stream = io.StringIO()
    assert configure_logging("json", "info", stream) == "json"
    logging.getLogger("caseroute.audit").warning(
        "decision log refused %d write(s)", 2, extra={"ruleset": "r"}
    )
    structlog.stdlib.get_logger("caseroute.rpc").info("rpc", method="Decide", code="OK")
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [_fixed(line) for line in lines] == [
        {
            "event": "decision log refused 2 write(s)",
            "logger": "caseroute.audit",
            "level": "warning",
            "ruleset": "r",
        },
        {
            "event": "rpc",
            "logger": "caseroute.rpc",
            "level": "info",
            "method": "Decide",
            "code": "OK",
        },
    ]
    assert [line["pid"] for line in lines] == [os.getpid(), os.getpid()]
    assert all(line["timestamp"].endswith("Z") for line in lines)


def test_a_traceback_stays_inside_its_json_line() -> None:
    """logging.exception in JSON mode writes one line whose ``exception`` field holds the frames."""
    stream = io.StringIO()
    configure_logging("json", "info", stream)
    empty: dict[str, int] = {}
    try:
        empty["k"]
    except KeyError:
        logging.getLogger("caseroute.lifecycle").exception("reload failed")
    (line,) = stream.getvalue().splitlines()
    parsed = json.loads(line)
    assert (parsed["event"], parsed["exception"].splitlines()[-1]) == (
        "reload failed",
        "KeyError: 'k'",
    )


def test_the_level_drops_lower_lines_from_both_paths() -> None:
    """At ``warning``, info lines from stdlib and structlog are not written; warnings are."""
    stream = io.StringIO()
    configure_logging("json", "warning", stream)
    logging.getLogger("caseroute.server").info("worker listening")
    structlog.stdlib.get_logger("caseroute.rpc").info("rpc", code="OK")
    structlog.stdlib.get_logger("caseroute.rpc").warning("rpc", code="UNAUTHENTICATED")
    events = [json.loads(line)["code"] for line in stream.getvalue().splitlines()]
    assert events == ["UNAUTHENTICATED"]


def test_auto_is_console_on_a_real_pty() -> None:
    """On a pseudo-terminal, ``auto`` renders coloured human-readable lines, not JSON."""
    master, slave = os.openpty()
    with os.fdopen(slave, "w") as stream:
        assert configure_logging("auto", "info", stream) == "console"
        logging.getLogger("caseroute.server").info("rulesets loaded: %s", "patient-enquiries")
        stream.flush()
        raw = os.read(master, 65536).decode()
    os.close(master)
    plain = ANSI.sub("", raw)
    assert raw != plain  # coloured: it is a terminal
    assert re.fullmatch(
        r"\d{4}-\d\d-\d\dT[\d:.]+Z \[info\s+\] rulesets loaded: patient-enquiries\s+"
        rf"\[caseroute\.server\] pid={os.getpid()}\r?\n",
        plain,
    ), plain


def test_console_format_forced_off_a_terminal_has_no_colour_codes() -> None:
    """``console`` on a pipe renders readable lines without escape codes."""
    stream = io.StringIO()
    assert configure_logging("console", "info", stream) == "console"
    structlog.stdlib.get_logger("caseroute.rpc").info("rpc", method="Decide")
    text = stream.getvalue()
    assert (ANSI.search(text), "method=Decide" in text, text.startswith("{")) == (
        None,
        True,
        False,
    )


def test_auto_means_json_off_a_terminal_and_console_on_one() -> None:
    """``auto`` asks the stream; ``json`` and ``console`` do not."""
    assert [
        resolve_format("auto", io.StringIO()),
        resolve_format("auto", _Terminal()),
        resolve_format("json", _Terminal()),
        resolve_format("console", io.StringIO()),
    ] == ["json", "console", "json", "console"]


def test_configuring_twice_leaves_one_handler() -> None:
    """A second configure_logging replaces the first's handler: no line is written twice."""
    first, second = io.StringIO(), io.StringIO()
    configure_logging("json", "info", first)
    configure_logging("json", "info", second)
    logging.getLogger("caseroute.server").info("once")
    assert (first.getvalue(), len(second.getvalue().splitlines())) == ("", 1)


@pytest.mark.parametrize(
    ("log_format", "level", "message"),
    [
        ("xml", "info", "log format 'xml': use one of auto, json, console"),
        ("json", "loud", "log level 'loud': use one of debug, info, warning, error"),
    ],
)
def test_a_bad_format_or_level_is_refused_with_the_choices(
    log_format: str, level: str, message: str
) -> None:
    """An unknown format or level raises ValueError listing what is accepted."""
    with pytest.raises(ValueError, match=re.escape(message)):
        configure_logging(log_format, level, io.StringIO())


def test_a_host_that_set_up_logging_keeps_it() -> None:
    """Only handlers other than configure_logging's own count as the host's setup."""
    root = logging.getLogger()
    saved = root.handlers[:]
    root.handlers = []
    try:
        seen = [host_configured()]
        configure_logging("json", "info", io.StringIO())
        seen.append(host_configured())
        root.addHandler(logging.NullHandler())
        seen.append(host_configured())
    finally:
        root.handlers = saved
    assert seen == [False, False, True]


@pytest.mark.parametrize("stream", [io.StringIO(), _Terminal()], ids=["plain", "terminal"])
def test_a_console_traceback_shows_frames_but_never_their_locals(stream: io.StringIO) -> None:
    """R31b F3: the console format printed rich's traceback with every frame's locals.

    A logged exception in a frame holding a decoded request printed its patient's name.
    """
    configure_logging("console", "info", stream)

    def handler(patient_name: str) -> None:
        request = {"patient_name": patient_name}
        raise OSError(f"failed for {len(request)} field(s)")

    parts = ("Zel", "da Quixote-PHI")
    patient = "".join(parts)  # on no source line a traceback quotes
    try:
        handler(patient)
    except OSError:
        logging.getLogger("caseroute.grpc").exception("call listener failed")
    text = ANSI.sub("", stream.getvalue())
    assert "call listener failed" in text
    assert "in handler" in text  # the frames are there
    assert "OSError: failed for 1 field(s)" in text
    assert "Zelda" not in text
