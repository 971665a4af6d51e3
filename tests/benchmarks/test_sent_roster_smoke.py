"""benchmarks/sent_roster.py at its smallest settings: output shape and workload, never timing."""

from caseroute.testing import REPO_ROOT
from tests.benchmarks.test_bench_smoke import run_script


def test_sent_roster_prints_a_row_per_size() -> None:
    """One tree: each size's CPU per warm call (process, request), after the reply check."""
    out = run_script("sent_roster.py", "--agents", "100,1000", "--calls", "2", "--rounds", "1")
    rows = [line.split(":")[0].strip() for line in out.splitlines()[1:]]
    assert (out.splitlines()[0].split(" ")[0], rows) == ("load", ["100 agents", "1000 agents"])
    assert [line.split()[2::3] for line in out.splitlines()[1:]] == [["process", "request"]] * 2


def test_sent_roster_compares_two_trees_cold_and_front() -> None:
    """--ab --cold, then --front: A and B runs alternate; a B/A row per column and size."""
    tree = str(REPO_ROOT)
    common = ("--ab", tree, tree, "--runs", "1", "--calls", "2", "--rounds", "1", "--agents", "100")
    cold = run_script("sent_roster.py", *common, "--cold")
    front = run_script("sent_roster.py", *common, "--front")
    for out, columns in (
        (cold, ["process", "request", "process/agent"]),
        (front, ["process", "request"]),
    ):
        runs = [line.split(":")[0] for line in out.splitlines() if line.startswith("run ")]
        ratios = [line.split(":")[0].split()[-1] for line in out.splitlines() if "B/A" in line]
        assert (runs, ratios) == (["run 1 A", "run 1 B"], columns)


def test_sent_roster_over_grpc_gives_latency_and_ratio_per_size() -> None:
    """--grpc: a real server of the tree; per size the Decide latency and its target-1 ratio."""
    out = run_script("sent_roster.py", "--grpc", "--agents", "100", "--calls", "2", "--rounds", "1")
    [row] = out.splitlines()[1:]
    assert (row.split(":")[0].strip(), row.split()[2::3]) == ("100 agents", ["decide", "ratio"])
