"""benchmarks/decide_stages.py at its smallest setting: shape, never timing."""

import pytest

from tests.benchmarks.test_bench_smoke import BENCHMARKS, run_script

REPO_ROOT = BENCHMARKS.parent


@pytest.mark.slow
def test_every_stage_is_timed_once_in_call_order() -> None:
    """The six stages, each with a figure in us, after the load average."""
    lines = run_script("decide_stages.py", "--quick").splitlines()
    assert lines[0].startswith("load ")
    assert [x.split()[0] for x in lines[1:]] == [
        "case",
        "canonical",
        "hashes",
        "decide",
        "evaluate",
        "mask",
    ]
    assert all(x.split()[2] == "us" and float(x.split()[1]) > 0 for x in lines[1:])


@pytest.mark.slow
def test_ab_alternates_the_trees_and_tabulates_every_stage() -> None:
    """--ab with one run per tree: A then B, then one row per stage with both columns."""
    out = run_script("decide_stages.py", "--quick", "--ab", str(REPO_ROOT), str(REPO_ROOT))
    lines = out.splitlines()
    assert [x.split()[:2] for x in lines if x.startswith("run ")] == [["run", "1"], ["run", "1"]]
    assert [x.split()[2] for x in lines if x.startswith("run ")] == ["A:", "B:"]
    rows = [x.split("|")[1].strip() for x in lines if x.startswith("| ") and "---" not in x]
    assert rows == ["stage", "case", "canonical", "hashes", "decide", "evaluate", "mask"]
