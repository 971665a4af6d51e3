"""benchmarks/pg_append.py at its smallest settings: it runs and prints its rows, never timing."""

import os
import subprocess
import sys

from caseroute.testing import REPO_ROOT
from tests.pg import PG_URL_ENV, pg_server

__all__ = ["pg_server"]


def test_pg_append_prints_a_row_per_sink_and_the_load(pg_server: str) -> None:
    """One SQLite and one PostgreSQL row, each with a rate and latencies; load before and after."""
    done = subprocess.run(
        [
            sys.executable,
            str(REPO_ROOT / "benchmarks" / "pg_append.py"),
            "--threads",
            "2",
            "--replicas",
            "2",
            "--seconds",
            "0.2",
            "--rounds",
            "1",
        ],
        capture_output=True,
        text=True,
        check=False,
        cwd=REPO_ROOT,
        timeout=120,
        env={**os.environ, PG_URL_ENV: pg_server},
    )
    assert (done.returncode, done.stderr) == (0, "")
    lines = done.stdout.splitlines()
    assert [line.split(":")[0] for line in (lines[0], lines[1])] == ["load before", "load after"]
    assert lines[2].split() == [
        "sink",
        "x",
        "threads",
        "records/s",
        "p50",
        "ms",
        "p90",
        "ms",
        "(medians)",
    ]
    rows = [line.split()[:4] for line in lines[3:]]
    assert rows == [["sqlite", "1", "x", "2"], ["postgresql", "2", "x", "2"]]
    assert all(float(line.split()[6]) > 0 for line in lines[3:])
