"""A SIGTERM reaching a starting worker drains it after the start, never kills it mid-load."""

import os
import signal
from pathlib import Path

from tests.supervision.process import start
from tests.supervision.test_parent_death import _children, _cmdline

HELD_START = '''\
"""`caseroute serve` whose second worker start waits, after building its server, for a FIFO."""
import os
import sys

import caseroute.grpc_api.server as server
from caseroute.cli import main

_load = server.RunningServer.load


def _held_load(self, config):
    marker = os.environ["CASEROUTE_TEST_MARKER"]
    if os.path.exists(marker):  # the worker started after the first two
        sys.stderr.write(f"test-hook: starting {os.getpid()}\\n")
        sys.stderr.flush()
        with open(os.environ["CASEROUTE_TEST_RELEASE"]) as release:
            release.read()
    return _load(self, config)


server.RunningServer.load = _held_load

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
'''


def test_sigterm_during_a_worker_start_drains_it_cleanly(tmp_path: Path) -> None:
    """The restarted worker, SIGTERMed mid-start, finishes its start, drains and exits 0."""
    release, marker = tmp_path / "release", tmp_path / "marker"
    os.mkfifo(release)
    (tmp_path / "held.py").write_text(HELD_START)
    served = start(
        tmp_path,
        workers=2,
        launcher=[str(tmp_path / "held.py")],
        env={"CASEROUTE_TEST_RELEASE": str(release), "CASEROUTE_TEST_MARKER": str(marker)},
    )
    try:
        marker.touch()
        first = next(c for c in _children(served.proc.pid) if "spawn_main" in _cmdline(c))
        os.kill(first, signal.SIGKILL)  # its replacement starts with the hook armed
        served.wait_for("test-hook: starting")
        pid = int(next(line for line in served.seen if "test-hook: starting" in line).split()[-1])
        os.kill(pid, signal.SIGTERM)
        release.open("w").close()
        # Killed mid-load by SIGTERM's default action, it would be "killed by SIGTERM".
        served.wait_for(f"(pid {pid}) exited with code 0")
    finally:
        served.reap()
