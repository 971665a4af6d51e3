"""Start a real `caseroute serve` for a test and read what it writes, as it arrives, by deadline.

One way for every test that runs the server as a subprocess (its own process group, so its
workers can be killed with it):

- ``start_serve(audit_db, *flags, workers=2)`` runs ``serve --port 0 --workers N --rulesets R
  --audit-db D *flags``, reads the address from the first stdout line and waits until each
  worker logged ``rulesets loaded:`` (SERVING); used as ``with start_serve(...) as served:``
  it is reaped however the block ends.
- ``Served`` has ``.address``/``.port``, ``.stdout_line()`` (e.g. the metrics URL),
  ``.wait_for(text, count)``, ``.lines()``, ``.stderr()``, ``.seen`` (stderr so far),
  ``.stop()`` (SIGTERM, drain) and ``.reap()`` (SIGKILL what is left).
- ``serve_argv`` and ``serve_env`` for a serve that must stop before serving (run to its exit).

Every wait is for an event (a line, end of file, process exit) with a deadline, never a sleep.
Coverage measures the children as before: ``serve_env`` starts from ``os.environ``, where
coverage's ``patch = ["subprocess"]`` left COVERAGE_PROCESS_CONFIG for them.
"""

import os
import queue
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import IO, Self

from caseroute.testing import REFERENCE_RULESET, TEST_AUDIT_KEY

CLI = ("-m", "caseroute.cli")
"""How a child runs caseroute unless a test gives a launcher script (its test hooks)."""

LOADED = "rulesets loaded: "
"""What each worker logs once it is SERVING (the ruleset names follow)."""

LINE_S = 120.0
"""The longest a test waits for one expected line (a start on a loaded CI machine)."""

EXIT_S = 30.0
"""The longest a killed server's process group may take to exit and close its pipes."""


def serve_argv(*args: str, launcher: Sequence[str] = CLI) -> list[str]:
    """The argv of `caseroute serve` with ``args``, run by this Python (and ``launcher``)."""
    return [sys.executable, *launcher, "serve", *args]


def serve_env(env: Mapping[str, str | None] | None = None) -> dict[str, str]:
    """This process's environment, the test audit key, then ``env`` (None removes a variable).

    Starting from ``os.environ`` is what keeps coverage measuring the server and its workers.
    """
    merged = {**os.environ, "CASEROUTE_AUDIT_KEY": TEST_AUDIT_KEY}
    for name, value in (env or {}).items():
        if value is None:
            merged.pop(name, None)
        else:
            merged[name] = value
    return merged


class _Pump:
    """A thread moving the lines of one pipe into a queue; None marks its end."""

    def __init__(self, stream: IO[str] | None) -> None:
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._thread = threading.Thread(target=self._run, args=(stream,), daemon=True)
        self._thread.start()

    def _run(self, stream: IO[str] | None) -> None:
        for line in stream or ():
            self._lines.put(line)
        self._lines.put(None)

    def next(self, seconds: float, what: str, seen: Sequence[str]) -> str | None:
        """The next line (None at end of file), failing the test if none comes in ``seconds``."""
        try:
            return self._lines.get(timeout=seconds)
        except queue.Empty:
            raise AssertionError(
                f"{what}: nothing within {seconds} s; stderr so far:\n{''.join(seen)}"
            ) from None

    def join(self, seconds: float) -> None:
        """Wait (bounded) until the pipe reached its end and every line is queued."""
        self._thread.join(seconds)


class Served:
    """A `caseroute serve` process and what it wrote, read as it arrives.

    Attributes:
        proc: The server process, leader of its own process group (its workers are in it).
        listening: Its first stdout line (``caseroute listening on HOST:PORT (N workers)``).
        address: ``HOST:PORT`` from that line.
        seen: The stderr lines read so far (``wait_for``, ``lines`` and ``stderr`` read more).
    """

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.proc = proc
        self.listening = ""
        self.address = ""
        self.seen: list[str] = []
        self._stdout = _Pump(proc.stdout)
        self._stderr = _Pump(proc.stderr)

    @property
    def port(self) -> int:
        """The gRPC port the server listens on."""
        return int(self.address.rsplit(":", 1)[1])

    def stdout_line(self, seconds: float = LINE_S) -> str:
        """The next stdout line, failing the test if none comes or stdout ends first."""
        line = self._stdout.next(seconds, "`caseroute serve` printing to stdout", self.seen)
        if line is None:
            code = self.proc.wait(EXIT_S)
            raise AssertionError(
                f"`caseroute serve` closed stdout (exit code {code}); stderr:\n{self.stderr()}"
            )
        return line

    def lines(self, seconds: float = LINE_S) -> Iterator[str]:
        """Each further stderr line (also kept in ``seen``) until the process group closes it.

        Args:
            seconds: The longest to wait for each line.
        """
        while (
            line := self._stderr.next(seconds, "`caseroute serve` stderr", self.seen)
        ) is not None:
            self.seen.append(line)
            yield line

    def wait_for(self, text: str, count: int = 1, seconds: float = LINE_S) -> None:
        """Block until ``count`` stderr lines so far contain ``text`` (each within ``seconds``)."""
        found = sum(text in line for line in self.seen)
        lines = self.lines(seconds)
        while found < count:
            line = next(lines, None)
            assert line is not None, f"no {count} x {text!r} before exit:\n{''.join(self.seen)}"
            found += text in line

    def stderr(self, seconds: float = 60.0) -> str:
        """Everything the process group wrote to stderr (call once it is stopping or stopped)."""
        for _ in self.lines(seconds):
            pass
        return "".join(self.seen)

    def stop(self, grace: float = 60.0) -> int:
        """SIGTERM the server (it drains), SIGKILL its group if it outlives ``grace``; reap it.

        Returns:
            Its exit code (negative: the signal that ended it).
        """
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(grace)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
        self.reap()
        return self.proc.returncode

    def reap(self) -> None:
        """SIGKILL what is left of the process group; once its pipes end, close them.

        Every line written before is kept: ``wait_for`` and ``stderr`` still read it after.
        """
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(EXIT_S)
        # Workers may outlive the parent a moment: their pipes end when the last one exits.
        self._stdout.join(EXIT_S)
        self._stderr.join(EXIT_S)
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.reap()


def reap(proc: subprocess.Popen[str]) -> None:
    """SIGKILL what is left of the process group of ``proc``, wait for it, close its pipes.

    For a caller that holds only the process; ``Served.reap`` also keeps every line written.
    """
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(EXIT_S)
    for stream in (proc.stdout, proc.stderr):
        if stream is not None:
            stream.close()


def start_serve(
    audit_db: Path | str,
    *flags: str,
    workers: int = 1,
    rulesets: Path = REFERENCE_RULESET.parent,
    launcher: Sequence[str] = CLI,
    env: Mapping[str, str | None] | None = None,
    ready: str | None = LOADED,
    host: str = "127.0.0.1",
) -> Served:
    """`caseroute serve` on a free port (of loopback by default), returned once it is ready.

    Args:
        audit_db: Its ``--audit-db`` (a SQLite path or a PostgreSQL URL).
        *flags: More `caseroute serve` arguments, after the ones below.
        workers: Its ``--workers``; also how many ``ready`` lines to wait for.
        rulesets: Its ``--rulesets`` directory (the reference ruleset's by default).
        launcher: What runs caseroute (a script with test hooks, or ``-m caseroute.cli``).
        env: Variables over ``serve_env``'s (None removes one).
        ready: The stderr text each worker logs when ready (None: the address is enough).
        host: Its ``--host``.

    Returns:
        The server, in its own process group; killed if it does not get ready in time.
    """
    argv = serve_argv(
        *("--port", "0", "--workers", str(workers), "--rulesets", str(rulesets)),
        *("--audit-db", str(audit_db), "--host", host, *flags),
        launcher=launcher,
    )
    proc = subprocess.Popen(
        argv,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=serve_env(env),
        start_new_session=True,
    )
    served = Served(proc)
    try:
        served.listening = served.stdout_line()
        # serve's first stdout line: the address, then the worker count
        assert served.listening.startswith(f"caseroute listening on {host}:"), served.listening
        served.address = served.listening.split()[3]
        if ready is not None:
            served.wait_for(ready, workers)
    except BaseException:
        served.reap()
        raise
    return served
