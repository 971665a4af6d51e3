"""benchmarks/convert_ab.py at its smallest setting: shape, never timing."""

import pytest

from tests.benchmarks.test_bench_smoke import BENCHMARKS, run_script

REPO_ROOT = BENCHMARKS.parent


@pytest.mark.slow
def test_both_trees_are_timed_per_agent_with_their_ratio() -> None:
    """A/A on this checkout: a figure per tree, then B/A, between two load lines."""
    out = run_script(
        "convert_ab.py",
        str(REPO_ROOT),
        str(REPO_ROOT),
        "--rosters",
        "2",
        "--rounds",
        "2",
        "--agents",
        "20",
    )
    lines = out.splitlines()
    assert [line.split()[0] for line in lines] == ["load", "A", "B", "B/A", "load"]
    assert all(float(line.split()[-4]) > 0 for line in lines[1:3])
    assert float(lines[3].split()[1]) > 0
