"""benchmarks/index_reuse.py at its smallest settings: output shape and workload, never timing."""

from caseroute.testing import REPO_ROOT
from tests.benchmarks.test_bench_smoke import load_lines, run_script, tables

COLUMNS = ["round", "index", "first decide", "warm decide", "fresh build"]


def test_index_reuse_times_each_new_snapshot_of_a_ranked_assign() -> None:
    """One tree: a ranked ASSIGN, one row per round plus the median, the four columns."""
    out = run_script("index_reuse.py", "--quick", "--rounds", "2")
    [(header, rows)] = tables(out).items()
    assert [x for x in out.splitlines() if x.startswith("check")] == ["check: ASSIGN agent-00072"]
    assert [cell.strip() for cell in header.strip().strip("|").split("|")] == COLUMNS
    assert [row[0] for row in rows] == ["1", "2", "median"]
    assert load_lines(out) == ["load average at start", "load average at end"]


def test_index_reuse_compares_two_trees_in_alternating_runs() -> None:
    """--ab: A and B runs alternate, both trees decide the same, one B/A row per column."""
    tree = str(REPO_ROOT)
    out = run_script("index_reuse.py", "--quick", "--ab", tree, tree, "--runs", "1")
    runs = [line.split(":")[0] for line in out.splitlines() if line.startswith("run ")]
    assert runs == ["run A1", "run B1"]
    assert [x for x in out.splitlines() if x.startswith("check")] == ["check: ASSIGN agent-00072"]
    rows = tables(out)["| us of CPU per snapshot | A median | A runs | B median | B runs | B/A |"]
    assert COLUMNS[1:] == [row[0] for row in rows]
    assert load_lines(out) == ["load average at start", "load average at end"]
