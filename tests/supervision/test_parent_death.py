"""Workers never outlive their parent; SIGHUP reloads (parent or worker), it never ends one."""

import os
import signal
from pathlib import Path

from tests.supervision.process import alive, health, poll, start


def _children(pid: int) -> list[int]:
    """The direct children of ``pid`` (workers, multiprocessing's resource tracker)."""
    text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    return [int(child) for child in text.split()]


def test_parent_killed_the_workers_exit(tmp_path: Path) -> None:
    """SIGKILL to the parent: each worker notices, drains and exits (bounded wait)."""
    served = start(tmp_path, workers=2)
    try:
        children = _children(served.proc.pid)
        assert len(children) >= 2
        os.kill(served.proc.pid, signal.SIGKILL)
        poll(60, "every worker exiting", lambda: not any(alive(c) for c in children))
        assert health(served.address) == "UNAVAILABLE"
    finally:
        for child in _children_alive(children):
            os.kill(child, signal.SIGKILL)
        served.reap()
    served.wait_for("parent process", 2)  # each worker said why it left


def _children_alive(children: list[int]) -> list[int]:
    return [c for c in children if alive(c)]


def test_sighup_reloads_and_ends_neither_parent_nor_worker(tmp_path: Path) -> None:
    """SIGHUP to the parent reaches both workers; SIGHUP to a worker reloads it alone."""
    served = start(tmp_path, workers=2)
    try:
        workers = [c for c in _children(served.proc.pid) if "spawn_main" in _cmdline(c)]
        assert len(workers) == 2
        # SERVING from either worker means both have set their flag: the parent forwards.
        poll(60, "health SERVING", lambda: health(served.address) == "SERVING")
        os.kill(served.proc.pid, signal.SIGHUP)
        served.wait_for("reload on SIGHUP", 2)
        os.kill(workers[0], signal.SIGHUP)
        served.wait_for("reload on SIGHUP", 3)
        assert served.proc.poll() is None
        assert all(alive(w) for w in workers)
        poll(60, "health SERVING after the reloads", lambda: health(served.address) == "SERVING")
        served.proc.send_signal(signal.SIGTERM)
        assert served.proc.wait(60) == 0
    finally:
        served.reap()


def _cmdline(pid: int) -> str:
    return Path(f"/proc/{pid}/cmdline").read_text()
