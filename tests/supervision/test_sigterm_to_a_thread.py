"""A SIGTERM the kernel hands to a thread other than the main one still stops the server.

kill(2) to a process delivers to any thread that does not block the signal. CPython's C
handler then runs on that thread and only flags the signal; the Python handler (which sets
the stop event) runs when the main thread next executes bytecode. A main thread blocked in
``stop.wait()`` (a lock acquire with no timeout) is woken only by a signal delivered to it,
so the stop is never seen: found by this session's serve loop (1 SIGTERM in 40-90 to a
one-worker `caseroute serve` after a Decide was never acted on; faulthandler showed the main
thread in server.py ``_wait_for_stop`` -> ``stop.wait()`` and no "received SIGTERM" line).
"""

import subprocess
import sys

import pytest

from tests.serve_process import serve_env

OTHER_THREAD = """\
import signal, sys, threading, time
from pathlib import Path

from caseroute.grpc_api import server

main = threading.main_thread()
installed = threading.Event()


def where() -> tuple[object, ...]:
    # Where the main thread is: its frames (code, instruction) and whether it sleeps.
    frame, chain = sys._current_frames().get(main.ident), []
    while frame is not None:
        chain.append((frame.f_code, frame.f_lasti))
        frame = frame.f_back
    stat = Path(f"/proc/self/task/{main.native_id}/stat").read_text()
    return (stat.split(") ")[1][0], *chain)


def parked() -> bool:
    # Asleep inside _wait_for_stop at one instruction for 50 ms: waiting, not queued for the
    # GIL (this thread sleeps between looks, so a runnable main thread would move on).
    before = where()
    time.sleep(0.05)  # a stability window, not a wait for an event
    return before[0] == "S" and where() == before and server._wait_for_stop.__code__ in {
        code for code, _ in before[1:]
    }


def signal_this_thread() -> None:
    installed.wait()
    while not parked():
        pass
    signal.pthread_kill(threading.get_ident(), signal.SIGTERM)  # this thread, not main


def on_installed() -> None:
    threading.Thread(target=signal_this_thread, daemon=True).start()
    installed.set()


server._wait_for_stop(on_installed=on_installed)
print("stopped", flush=True)
"""


@pytest.mark.xfail(
    strict=True,
    raises=subprocess.TimeoutExpired,
    reason="defect reported, not fixed here (src/ is not this change's): _wait_for_stop blocks "
    "in stop.wait() with no timeout, so a signal taken by another thread is never handled",
)
def test_a_sigterm_taken_by_another_thread_ends_the_wait() -> None:
    """SIGTERM delivered to a non-main thread: _wait_for_stop returns; the stop is logged."""
    done = subprocess.run(
        [sys.executable, "-c", OTHER_THREAD],
        capture_output=True,
        text=True,
        env=serve_env(),
        timeout=3,
        check=False,
    )
    assert (done.returncode, done.stdout) == (0, "stopped\n"), done.stderr
