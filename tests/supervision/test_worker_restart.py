"""A worker that dies is logged and restarted with back-off; health NOT_SERVING meanwhile."""

import os
import re
import signal
from pathlib import Path

from caseroute.grpc_api.supervisor import RestartBackoff
from tests.supervision.process import alive, health, poll, start
from tests.supervision.test_parent_death import _children, _cmdline


def test_killed_worker_is_restarted_and_health_is_not_serving_meanwhile(tmp_path: Path) -> None:
    """SIGKILL a worker: NOT_SERVING, a log line naming it, a new worker, SERVING again."""
    served = start(tmp_path, workers=2)
    try:
        poll(60, "health SERVING", lambda: health(served.address) == "SERVING")
        workers = [c for c in _children(served.proc.pid) if "spawn_main" in _cmdline(c)]
        os.kill(workers[0], signal.SIGKILL)
        poll(60, "health NOT_SERVING", lambda: health(served.address) == "NOT_SERVING")
        served.wait_for(f"(pid {workers[0]}) was killed by SIGKILL")
        served.wait_for("restarted as pid")
        poll(60, "health SERVING again", lambda: health(served.address) == "SERVING")
        now = [c for c in _children(served.proc.pid) if "spawn_main" in _cmdline(c)]
        assert (len(now), workers[0] in now, workers[1] in now) == (2, False, True)
        died = next(line for line in served.seen if "was killed by SIGKILL" in line)
        assert re.search(
            r"worker-\d \(pid \d+\) was killed by SIGKILL after [\d.]+ s; "
            r"restarting it in 0\.5 s \(health NOT_SERVING until it serves\)",
            died,
        )
        served.proc.send_signal(signal.SIGTERM)
        assert served.proc.wait(60) == 0
        assert not any(alive(c) for c in now)
    finally:
        served.reap()


def test_backoff_doubles_to_the_cap_and_resets_after_a_stable_run() -> None:
    """0.5, 1, 2 ... 30 s for quick deaths; back to 0.5 s after a 60 s run."""
    backoff = RestartBackoff()
    quick = [backoff.after_death(1.0) for _ in range(9)]
    assert quick == [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0, 30.0]
    assert backoff.after_death(60.0) == 0.5
    assert backoff.after_death(59.0) == 1.0
