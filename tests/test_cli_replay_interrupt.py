"""Ctrl-C during a 2-worker `caseroute replay`: one line on stderr, exit 130, no traceback.

A terminal sends SIGINT to the whole foreground process group: the CLI, the forkserver that
multiprocessing starts for the pool, and the pool's workers. Only the CLI may answer it (review
R32b F9). The replay runs in its own process group, launched by a script with test hooks:
it prints ``test-hook: replayed DONE/TOTAL`` on stdout as chunks are folded (the progress bar
is drawn only on a terminal), and, when asked, the forkserver stops as it starts (a preload
module) until the test writes a line to stdin. Every wait is for a line or an exit, by deadline.
"""

import contextlib
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.replay.recorded import CANDIDATES, record_log
from tests.serve_process import EXIT_S, Served, serve_env

LINES = 2100
"""Export lines replayed: 10 chunks and more, so workers are still busy after the first."""

LAUNCHER = """\
import multiprocessing
import os
import signal
import sys
from contextlib import contextmanager

# Ctrl-C raises, as in a process a shell starts in the foreground: a test run in the
# background (a non-interactive shell's `&`) inherits SIGINT ignored, and so would all below.
signal.signal(signal.SIGINT, signal.default_int_handler)

import caseroute.cli.replay as cli_replay
from caseroute.cli import main


@contextmanager
def _progress(enabled):
    def update(done, total):
        sys.stdout.write(f"test-hook: replayed {done}/{total}\\n")
        sys.stdout.flush()

    yield update


cli_replay._progress = _progress
if os.environ.get("CASEROUTE_TEST_HELD_FORKSERVER"):
    multiprocessing.set_forkserver_preload(["held_forkserver"])
sys.exit(main(sys.argv[1:]))
"""
"""Run with ``-c``: the forkserver and workers then import no launcher of their own."""

HELD_FORKSERVER = """\
import sys

sys.stdout.write("test-hook: forkserver starting\\n")
sys.stdout.flush()
sys.stdin.readline()  # the forkserver still has the CLI's stdin while it preloads
"""
"""Imported by the forkserver before it sets SIGINT aside: where a Ctrl-C found it exposed."""

INTERRUPTED = "caseroute: interrupted; any output printed is incomplete\n"
TERMINATED = "caseroute: terminated (SIGTERM); any output printed is incomplete\n"


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A decision log, a candidate, and an export of LINES lines of the log's three records."""
    directory = tmp_path_factory.mktemp("interrupt")
    store = record_log(directory)
    lines = [json.dumps(record.as_dict()) + "\n" for record in store.records()]
    store.close()
    (directory / "export.jsonl").write_text("".join(lines * (LINES // len(lines))))
    (directory / "candidate.yaml").write_text(CANDIDATES["queue"])
    (directory / "held_forkserver.py").write_text(HELD_FORKSERVER)
    return directory


def _start(home: Path, *, hold_forkserver: bool) -> Served:
    argv = [
        *(sys.executable, "-c", LAUNCHER, "replay", "--workers", "2", "--engine", "python"),
        *("--audit-db", str(home / "audit.db"), "--input", str(home / "export.jsonl")),
        *("--candidate", str(home / "candidate.yaml"), "--format", "json"),
    ]
    env = {"CASEROUTE_TEST_HELD_FORKSERVER": "1" if hold_forkserver else None}
    if hold_forkserver:  # the forkserver imports its preload by its own sys.path (Python 3.11)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(home), os.environ.get("PYTHONPATH")]))
    proc = subprocess.Popen(
        argv,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=serve_env(env),
        start_new_session=True,  # its own process group, as a terminal's foreground job
    )
    return Served(proc)


def _interrupted(served: Served) -> tuple[int, str]:
    """SIGINT to the process group, as Ctrl-C; its exit code and all it wrote to stderr."""
    os.killpg(served.proc.pid, signal.SIGINT)
    assert served.proc.stdin is not None
    served.proc.stdin.write("released\n")  # a held forkserver goes on (if it is alive)
    served.proc.stdin.close()
    return served.proc.wait(EXIT_S), served.stderr()


def test_ctrl_c_while_workers_replay_exits_130_with_one_line(home: Path) -> None:
    """Ctrl-C once the first chunk is folded (both workers busy): 130, one line, no traceback."""
    with _start(home, hold_forkserver=False) as served:
        assert served.stdout_line() == f"test-hook: replayed 200/{LINES}\n"
        code, err = _interrupted(served)
    assert (code, err) == (130, INTERRUPTED), err


def test_ctrl_c_while_the_forkserver_starts_exits_130_with_one_line(home: Path) -> None:
    """Ctrl-C while the pool's forkserver is starting: it says nothing; the CLI says one line.

    The forkserver ignores SIGINT only once it is running; before that a Ctrl-C printed its
    KeyboardInterrupt traceback after the CLI's line (about 1 run in 9 of a real Ctrl-C).
    """
    with _start(home, hold_forkserver=True) as served:
        assert served.stdout_line() == "test-hook: forkserver starting\n"
        code, err = _interrupted(served)
    assert (code, err) == (130, INTERRUPTED), err


def test_sigterm_while_workers_replay_stops_them_and_exits_143(home: Path) -> None:
    """SIGTERM to the CLI alone (`kill PID`, a CI job's timeout): 143, one line, no orphan.

    SIGTERM killed the CLI at once and left the forkserver, its resource tracker and both
    workers waiting for work forever, holding the CLI's stdout and stderr open (a pipeline
    reading the report never ended). Stderr ends only once every process of the group is gone.
    """
    with _start(home, hold_forkserver=False) as served:
        try:
            assert served.stdout_line() == f"test-hook: replayed 200/{LINES}\n"
            served.proc.send_signal(signal.SIGTERM)
            assert served.proc.stdin is not None
            served.proc.stdin.close()
            code = served.proc.wait(EXIT_S)
            err = served.stderr(EXIT_S)
        finally:
            with contextlib.suppress(ProcessLookupError):  # what the CLI left, if it failed
                os.killpg(served.proc.pid, signal.SIGKILL)
    assert (code, err) == (143, TERMINATED), err


def test_sigterm_while_replaying_raises_once_then_the_handler_before_is_back() -> None:
    """In the replay, SIGTERM raises TerminatedError; the handler before serves a second one."""
    from caseroute.cli.entry import TerminatedError
    from caseroute.cli.replay import _sigterm_unwinds

    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(TerminatedError), _sigterm_unwinds():
        signal.raise_signal(signal.SIGTERM)
    assert signal.getsignal(signal.SIGTERM) == before


def test_a_terminated_replay_exits_143_with_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """TerminatedError out of a command: exit 143 and one line on stderr, no traceback."""
    from caseroute.cli import main
    from caseroute.cli import replay as cli_replay
    from caseroute.cli.entry import TerminatedError

    def terminated(_args: object) -> None:
        raise TerminatedError(signal.SIGTERM)

    monkeypatch.setattr(cli_replay, "_local_report", terminated)
    code = main(["replay", "--candidate", "x.yaml", "--input", "x.jsonl"])
    assert (code, capsys.readouterr().err) == (143, TERMINATED)
