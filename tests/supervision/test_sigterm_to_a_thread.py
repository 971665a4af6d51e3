"""A signal the kernel hands to a thread other than the main one still reaches the server.

kill(2) to a process delivers to any thread that does not block the signal. CPython's C
handler then runs on that thread and only flags the signal; the Python handler (which sets
the stop event) runs when the main thread next executes bytecode. A main thread blocked in
``stop.wait()`` (a lock acquire with no timeout) is woken only by a signal delivered to it,
so the stop was never seen: found by this session's serve loop (1 SIGTERM in 40-90 to a
one-worker `caseroute serve` after a Decide was never acted on; faulthandler showed the main
thread in processes.py ``_wait_for_stop`` -> ``stop.wait()`` and no "received SIGTERM" line).
The main threads now wait on Python's signal wakeup fd (``supervisor.signal_wakeups``), which
the C handler writes on whichever thread takes the signal. Each case runs in its own process.
"""

import subprocess
import sys

import pytest

from tests.serve_process import serve_env

OTHER_THREAD = """\
import logging, signal, sys, threading, time
from pathlib import Path

from caseroute.grpc_api import processes, supervisor

logging.basicConfig(level=logging.INFO, format="%(message)s")
main = threading.main_thread()
installed = threading.Event()
WAITER = {waiter}


def where() -> tuple[object, ...]:
    # Where the main thread is: its frames (code, instruction) and whether it sleeps.
    frame, chain = sys._current_frames().get(main.ident), []
    while frame is not None:
        chain.append((frame.f_code, frame.f_lasti))
        frame = frame.f_back
    stat = Path(f"/proc/self/task/{{main.native_id}}/stat").read_text()
    return (stat.split(") ")[1][0], *chain)


def parked() -> bool:
    # Asleep inside WAITER at one instruction for 50 ms: waiting, not queued for the GIL
    # (this thread sleeps between looks, so a runnable main thread would move on).
    before = where()
    time.sleep(0.05)  # a stability window, not a wait for an event
    return before[0] == "S" and where() == before and WAITER.__code__ in {{
        code for code, _ in before[1:]
    }}


def signal_this_thread(*signums: int) -> None:
    installed.wait()
    for signum in signums:
        while not parked():
            pass
        signal.pthread_kill(threading.get_ident(), signum)  # this thread, not main


def on_installed() -> None:
    threading.Thread(target=signal_this_thread, args={signals}, daemon=True).start()
    installed.set()


{call}
print("stopped", flush=True)
"""

WORKER_WAIT = """\
processes._wait_for_stop(lambda: print("hangup", flush=True), on_installed=on_installed)
"""

PARENT_LOOP = """\
stop = threading.Event()
with supervisor.signal_wakeups() as wake:
    processes._stop_on_signals(stop)
    on_installed()
    processes._supervise([], [], lambda slot: None, None, stop, wake)
"""


def _run(waiter: str, call: str, signals: str) -> subprocess.CompletedProcess[str]:
    script = OTHER_THREAD.format(waiter=waiter, call=call, signals=signals)
    return subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        env=serve_env(),
        timeout=10,
        check=False,
    )


@pytest.mark.parametrize(
    ("waiter", "call"),
    [("processes._wait_for_stop", WORKER_WAIT), ("processes._supervise", PARENT_LOOP)],
    ids=["worker-or-lone-server", "supervising-parent"],
)
def test_a_sigterm_taken_by_another_thread_ends_the_wait(waiter: str, call: str) -> None:
    """SIGTERM delivered to a non-main thread: the wait returns and the process goes on."""
    done = _run(waiter, call, "(signal.SIGTERM,)")
    assert (done.returncode, done.stdout) == (0, "stopped\n"), done.stderr
    assert "received SIGTERM: draining" in done.stderr


def test_a_sighup_taken_by_another_thread_reloads_and_the_wait_goes_on() -> None:
    """SIGHUP to a non-main thread runs the reload hand-off; the wait sleeps again until SIGTERM.

    The helper thread sends SIGTERM only once the main thread is asleep again in the wait: a
    wakeup byte left unread would keep it spinning, never asleep, and the run would time out.
    """
    done = _run("processes._wait_for_stop", WORKER_WAIT, "(signal.SIGHUP, signal.SIGTERM)")
    assert (done.returncode, done.stdout) == (0, "hangup\nstopped\n"), done.stderr
