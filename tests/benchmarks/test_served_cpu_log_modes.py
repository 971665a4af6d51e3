"""benchmarks/served_cpu.py's call log modes at their smallest settings: shape, never timing."""

import re

import pytest

from tests.benchmarks.test_bench_smoke import run_script

FIGURES = re.compile(r"(\w+)=(\d+)")


@pytest.mark.slow
def test_logab_names_each_phase_for_its_log_mode_with_a_median_latency() -> None:
    """``logab`` alternates deferred and sync lines in one server; ``--p50`` adds the latency."""
    out = run_script(
        "served_cpu.py",
        *("--variants", "logab,synclog+arg:http2.bdp_probe=0", "--rounds", "1"),
        *("--calls", "5", "--blocks", "1", "--p50", "--split-log"),
    )
    medians = out.split("medians over 1 rounds")[1].splitlines()[1:]
    assert [line.split()[:2] for line in medians] == [
        ["check:deferred", "logab"],
        ["check:sync", "logab"],
        ["check", "synclog+arg:http2.bdp_probe=0"],
        ["decide:deferred", "logab"],
        ["decide:sync", "logab"],
        ["decide", "synclog+arg:http2.bdp_probe=0"],
    ]
    known = {"rpc", "serve", "auditwriter", "logwriter", "C", "MainThread", "total", "rate", "p50"}
    keys = [set(dict(FIGURES.findall(line.split(None, 2)[2]))) for line in medians]
    assert [k - known for k in keys] == [set()] * 6
    assert [{"total", "rate", "p50"} <= k for k in keys] == [True] * 6
