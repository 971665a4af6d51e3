"""Smoke test of benchmarks/replicas_bench.py: output shape only, never timing."""

import re
import subprocess
import sys

from caseroute.testing import REPO_ROOT


def test_quick_run_prints_one_row_per_replica_count_and_the_latency() -> None:
    """--quick --logs sqlite: rows for 1 and 2 replicas and one replica's median latency."""
    done = subprocess.run(
        [sys.executable, "benchmarks/replicas_bench.py", "--quick", "--logs", "sqlite"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    assert (done.returncode, done.stderr) == (0, "")
    rows = re.findall(
        r"^sqlite +(\d) +\d+\.\d +\d+\.\d\d +\d+\.\d\d +\d+\.\d-\d+\.\d$", done.stdout, re.MULTILINE
    )
    assert rows == ["1", "2"]
    assert re.search(r"^sqlite +\d+\.\d\d ms  \(rounds: \d+\.\d\d\)$", done.stdout, re.MULTILINE)
