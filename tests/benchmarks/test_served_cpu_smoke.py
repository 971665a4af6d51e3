"""benchmarks/served_cpu.py and cold_cache.py at their smallest settings: shape, never timing."""

import re

import pytest

from tests.benchmarks.test_bench_smoke import run_script

FIGURES = re.compile(r"(\w+)=(\d+)")


@pytest.mark.slow
def test_served_cpu_splits_check_and_decide_by_thread_group_per_variant() -> None:
    """One median line per phase and variant: known thread groups only, a total and a rate."""
    out = run_script("served_cpu.py", "--variants", "base,nolog", "--rounds", "1", "--calls", "5")
    medians = out.split("medians over 1 rounds")[1].splitlines()[1:]
    assert [line.split()[:2] for line in medians] == [
        ["check", "base"],
        ["check", "nolog"],
        ["decide", "base"],
        ["decide", "nolog"],
    ]
    # 5 calls may spend no whole clock tick in a group: a group with none is left out.
    known = {"rpc", "serve", "auditwriter", "C", "MainThread", "total", "rate"}
    keys = [set(dict(FIGURES.findall(line))) for line in medians]
    assert [k - known for k in keys] == [set(), set(), set(), set()]
    assert [{"total", "rate"} <= k for k in keys] == [True, True, True, True]
    assert [x.split()[0] for x in out.splitlines() if x.startswith("load")] == ["load", "load"]


def test_cold_cache_reports_each_mode_against_the_hot_loop() -> None:
    """Three modes in order, hot at 1.00x itself, with one figure per round."""
    out = run_script("cold_cache.py", "--calls", "2", "--rounds", "2", "--sweep-kib", "16")
    modes = [line for line in out.splitlines() if line.split(":")[0] in {"hot", "sweep", "sleep"}]
    assert [m.split(":")[0] for m in modes] == ["hot", "sweep", "sleep"]
    assert "(1.00x hot)" in modes[0]
    assert [len(m.split("rounds ")[1].split(", ")) for m in modes] == [2, 2, 2]
    assert [x.split(":")[0] for x in out.splitlines() if x.startswith("load")] == [
        "load average at start",
        "load average at end",
    ]
