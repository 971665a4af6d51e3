"""benchmarks/roster_by_hash.py at its smallest: both request shapes decide the ranked ASSIGN."""

import subprocess
import sys

from caseroute.testing import REPO_ROOT


def test_the_roster_by_hash_benchmark_runs_both_shapes_on_a_ranked_assign() -> None:
    """--quick at 100 agents: the checks, one table row per shape, and the load average."""
    script = str(REPO_ROOT / "benchmarks" / "roster_by_hash.py")
    done = subprocess.run(
        [sys.executable, script, "--quick", "--sizes", "100"],
        capture_output=True,
        text=True,
        check=False,
        cwd=REPO_ROOT,
        timeout=300,
    )
    assert (done.returncode, done.stderr) == (0, "")
    lines = done.stdout.splitlines()
    assert [line for line in lines if line.startswith("check")] == [
        "check (roster): 100 agents: ASSIGN agent-00072 by rule clinical, 3 eligible, 3 ranked",
        "check (hash): 100 agents: ASSIGN agent-00072 by rule clinical, 3 eligible, 3 ranked",
    ]
    rows = [line.split(" | ")[:2] for line in lines if line.startswith("| 100 |")]
    assert rows == [["| 100", "roster"], ["| 100", "roster_sha256 only"]]
    assert [line.split(":")[0] for line in lines if line.startswith("load average")] == [
        "load average at start",
        "load average at end",
    ]
