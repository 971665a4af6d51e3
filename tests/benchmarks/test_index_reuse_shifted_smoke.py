"""benchmarks/index_reuse.py --scenario shifted at its smallest settings: shape, never timing."""

from tests.benchmarks.test_bench_smoke import load_lines, run_script, tables

COLUMNS = ["round", "index", "first decide", "warm decide", "fresh build"]


def test_index_reuse_times_snapshots_with_an_agent_added_and_one_removed() -> None:
    """One tree, agents logging in and out: a ranked ASSIGN, one row per round plus median."""
    out = run_script("index_reuse.py", "--quick", "--rounds", "2", "--scenario", "shifted")
    [(header, rows)] = tables(out).items()
    assert [x for x in out.splitlines() if x.startswith("check")] == ["check: ASSIGN agent-00028"]
    assert [cell.strip() for cell in header.strip().strip("|").split("|")] == COLUMNS
    assert [row[0] for row in rows] == ["1", "2", "median"]
    assert load_lines(out) == ["load average at start", "load average at end"]
