"""benchmarks/warm_cpu.py at its smallest settings: output shape and workload, never timing."""

from caseroute.testing import REPO_ROOT
from tests.benchmarks.test_bench_smoke import ASSIGN_100, load_lines, run_script, tables

HEADER_AB = "| CPU us per Decide | A median | A runs | B median | B runs | B/A |"


def test_warm_cpu_splits_a_ranked_assign_by_thread() -> None:
    """One tree: a ranked ASSIGN, one row per round plus the median, process and request first."""
    out = run_script("warm_cpu.py", "--quick", "--calls", "3", "--rounds", "2")
    [(header, rows)] = tables(out).items()
    assert [f"check: {ASSIGN_100}"] == [x for x in out.splitlines() if x.startswith("check")]
    columns = [cell.strip() for cell in header.strip().strip("|").split("|")]
    assert columns[:3] == ["round", "process", "request"]
    assert "audit-writer" in columns  # the decision log's writer thread, counted on its own
    assert [row[0] for row in rows] == ["1", "2", "median"]
    assert load_lines(out) == ["load average at start", "load average at end"]


def test_warm_cpu_compares_two_trees_in_alternating_runs() -> None:
    """--ab: A and B runs alternate, both trees decide the same, one B/A row per column."""
    tree = str(REPO_ROOT)
    out = run_script(
        "warm_cpu.py", "--ab", tree, tree, "--runs", "1", "--calls", "3", "--rounds", "1"
    )
    runs = [line.split(":")[0] for line in out.splitlines() if line.startswith("run ")]
    assert runs == ["run A1", "run B1"]
    assert [f"check: {ASSIGN_100}"] == [x for x in out.splitlines() if x.startswith("check")]
    rows = tables(out)[HEADER_AB]
    assert [row[0] for row in rows[:2]] == ["process", "request"]
    assert load_lines(out) == ["load average at start", "load average at end"]
