"""benchmarks/append_cpu.py at its smallest setting: shape, never timing."""

import pytest

from tests.benchmarks.test_bench_smoke import BENCHMARKS, run_script

REPO_ROOT = BENCHMARKS.parent


@pytest.mark.slow
def test_both_trees_get_a_cpu_figure_per_run_and_their_ratio() -> None:
    """A/A on this checkout: each run's CPU per append per tree, then B/A and the load."""
    out = run_script(
        "append_cpu.py", "--ab", str(REPO_ROOT), str(REPO_ROOT), "--order", "AB", "--calls", "5"
    )
    lines = out.splitlines()
    assert [line.split()[0] for line in lines] == ["A=" + str(REPO_ROOT), "A:", "B:", "B/A"]
    assert "load after:" in lines[3]
    for line in lines[1:3]:
        run, median = line.split(";")
        assert float(run.split()[1]) > 0
        assert median.endswith("us CPU per append")


def test_one_run_prints_one_figure() -> None:
    """--run: a lone number, the median CPU per append in us."""
    assert float(run_script("append_cpu.py", "--run", "--calls", "3")) > 0
