"""tests/serve_process.py, the one way tests start `caseroute serve`, against stand-in servers.

A stand-in is a small script run as the launcher: it writes what a server would (or would
not) and then blocks until a signal ends it, so each helper path runs in milliseconds.
"""

import os
import signal
import sys
from pathlib import Path

import pytest

from caseroute.testing import TEST_AUDIT_KEY
from tests.serve_process import Served, serve_argv, serve_env, start_serve

LISTENING = "caseroute listening on 127.0.0.1:50123 (1 worker)"


def _stand_in(tmp_path: Path, body: str) -> list[str]:
    """A launcher running ``body`` (``os``, ``signal``, ``sys`` imported), then blocking."""
    script = tmp_path / "stand_in.py"
    script.write_text(f"import os, signal, sys\n{body}\nsignal.pause()\n")
    return [str(script)]


def _listening(*stderr: str) -> str:
    """A stand-in body writing ``stderr`` lines, then the address line on stdout."""
    lines = "".join(f"sys.stderr.write({line + chr(10)!r})\n" for line in stderr)
    return f"{lines}sys.stderr.flush()\nprint({LISTENING!r}, flush=True)"


def test_serve_env_adds_the_audit_key_and_removes_what_is_none(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """os.environ is kept (coverage's variable with it), the key added, a None value removed."""
    monkeypatch.setenv("COVERAGE_PROCESS_CONFIG", "{}")
    monkeypatch.setenv("CASEROUTE_TEST_HOLD", "/tmp/fifo")  # noqa: S108 - never opened
    env = serve_env({"CASEROUTE_TEST_HOLD": None, "CASEROUTE_METRICS_PORT": "0"})
    picked = {name: env.get(name) for name in ("COVERAGE_PROCESS_CONFIG", "CASEROUTE_TEST_HOLD")}
    assert (picked, env["CASEROUTE_AUDIT_KEY"], env["CASEROUTE_METRICS_PORT"]) == (
        {"COVERAGE_PROCESS_CONFIG": "{}", "CASEROUTE_TEST_HOLD": None},
        TEST_AUDIT_KEY,
        "0",
    )


def test_serve_argv_runs_this_python_and_the_launcher() -> None:
    """The default launcher is `-m caseroute.cli`; the arguments follow `serve`."""
    assert serve_argv("--workers", "2") == [
        sys.executable,
        "-m",
        "caseroute.cli",
        "serve",
        "--workers",
        "2",
    ]


def test_a_serve_that_exits_before_its_address_fails_with_its_code_and_stderr(
    tmp_path: Path,
) -> None:
    """An unknown flag: the start fails at once naming exit code 2 and argparse's message."""
    with pytest.raises(AssertionError) as failed:
        start_serve(tmp_path / "audit.db", "--no-such-flag")
    message = str(failed.value)
    assert (
        message.startswith("`caseroute serve` closed stdout (exit code 2)"),
        "--no-such-flag" in message,
    ) == (True, True), message


def test_the_address_and_port_come_from_the_first_stdout_line(tmp_path: Path) -> None:
    """ready=None: back once the address is printed; .address and .port parse it."""
    with start_serve(tmp_path, launcher=_stand_in(tmp_path, _listening()), ready=None) as served:
        assert (served.listening, served.address, served.port) == (
            LISTENING + "\n",
            "127.0.0.1:50123",
            50123,
        )


def test_a_ready_line_that_never_comes_before_exit_fails_naming_it(tmp_path: Path) -> None:
    """The stand-in exits after its address: waiting for SERVING fails with what it wrote."""
    body = _listening("starting") + "\nsys.exit(3)"
    with pytest.raises(AssertionError) as failed:
        start_serve(tmp_path, launcher=_stand_in(tmp_path, body))
    assert str(failed.value).splitlines() == ["no 1 x 'rulesets loaded: ' before exit:", "starting"]


def test_a_line_that_does_not_come_in_time_fails_instead_of_hanging(tmp_path: Path) -> None:
    """A server that blocks without writing: stdout_line's deadline fails the test."""
    launcher = _stand_in(tmp_path, _listening("one"))
    with (
        start_serve(tmp_path, launcher=launcher, ready=None) as served,
        pytest.raises(AssertionError) as failed,
    ):
        served.stdout_line(0.2)
    assert str(failed.value).startswith(
        "`caseroute serve` printing to stdout: nothing within 0.2 s"
    )


def test_reap_keeps_every_line_written_before_it(tmp_path: Path) -> None:
    """2 MB of stderr written before the kill, most of it not yet read: reap() keeps it all."""
    body = "sys.stderr.writelines(f'{i:099}\\n' for i in range(20_000))\n" + _listening("last")
    served = start_serve(tmp_path, launcher=_stand_in(tmp_path, body), ready=None)
    served.reap()
    lines = served.stderr().splitlines()
    assert (served.proc.returncode, len(lines), lines[-1]) == (-signal.SIGKILL, 20_001, "last")


def test_stop_sigterms_and_returns_the_exit_code(tmp_path: Path) -> None:
    """A server that exits on SIGTERM: stop() gives its code; a closed pipe is not reread."""
    served = start_serve(tmp_path, launcher=_stand_in(tmp_path, _listening()), ready=None)
    assert (served.stop(), served.proc.stdout is not None and served.proc.stdout.closed) == (
        -signal.SIGTERM,
        True,
    )


def test_stop_kills_the_group_of_a_server_that_ignores_sigterm(tmp_path: Path) -> None:
    """A server still running after the grace is SIGKILLed with its process group."""
    body = "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n" + _listening()
    served: Served = start_serve(tmp_path, launcher=_stand_in(tmp_path, body), ready=None)
    assert served.stop(grace=0.2) == -signal.SIGKILL
    with pytest.raises(ProcessLookupError):
        os.killpg(served.proc.pid, 0)  # nothing left of the group
