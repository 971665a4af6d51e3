"""benchmarks/compiled_cpu.py at its smallest settings: output shape and workload, never timing."""

import os
import subprocess
import sys

import pytest

from caseroute.testing import REPO_ROOT
from tests.benchmarks.test_bench_smoke import ASSIGN_100, BENCHMARKS, load_lines, run_script, tables

HEADER = "| CPU (median of runs) | unit | pure | pure runs | compiled | compiled runs | ratio |"
ROWS = [
    "convert all-new median",
    "convert all-new best",
    "cold all-new median",
    "cold all-new best",
    "warm request median",
    "warm request best",
    "warm process median",
    "warm process best",
    "compiled modules",
]


def test_compiled_cpu_compares_two_trees_in_alternating_runs() -> None:
    """--ab: pure and compiled runs alternate, one row per metric, modules counted per side."""
    tree = str(REPO_ROOT)
    out = run_script(
        "compiled_cpu.py",
        *("--ab", tree, tree, "--modules", "quick", "--runs", "2", "--calls", "3"),
        *("--agents", "100"),
    )
    runs = [line.split(":")[0] for line in out.splitlines() if line.startswith("run ")]
    assert runs == ["run pure 1", "run compiled 1", "run pure 2", "run compiled 2"]
    assert [f"check: {ASSIGN_100}"] == [x for x in out.splitlines() if x.startswith("check")]
    rows = tables(out)[HEADER]
    assert [row[0] for row in rows] == ROWS
    # The same pure tree on both sides: none of the one module is an extension module.
    assert rows[-1] == ["compiled modules", "of 1", "0", "-", "0", "-", "-"]
    assert load_lines(out) == ["load average at start", "load average at end"]


@pytest.mark.slow
def test_compiled_cpu_quick_builds_and_runs_a_compiled_copy() -> None:
    """--quick compiles one module with mypyc into a copy, whose runs import it compiled."""
    # Coverage stays off in this run: the compiled copy's .py modules live in a temporary
    # directory that no coverage report could read back.
    env = {k: v for k, v in os.environ.items() if not k.startswith("COVERAGE_PROCESS_")}
    done = subprocess.run(
        [sys.executable, str(BENCHMARKS / "compiled_cpu.py"), "--quick"],
        capture_output=True,
        text=True,
        check=False,
        cwd=REPO_ROOT,
        env=env,
        timeout=600,
    )
    assert (done.returncode, done.stderr) == (0, "")
    lines = done.stdout.splitlines()
    assert [x.split(":")[0] for x in lines if x.startswith(("modules", "compile"))] == [
        "modules (quick)",
        "compile",
    ]
    rows = tables(done.stdout)[HEADER]
    assert [row[0] for row in rows] == ROWS
    assert rows[-1] == ["compiled modules", "of 1", "0", "-", "1", "-", "-"]
