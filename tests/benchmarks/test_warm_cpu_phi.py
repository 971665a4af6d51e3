"""benchmarks/warm_cpu.py --phi: cases with PHI new on every call still decide the ranked ASSIGN."""

from tests.benchmarks.test_bench_smoke import ASSIGN_100, run_script, tables


def test_phi_calls_decide_the_same_assign_and_say_so() -> None:
    """--phi: the same ASSIGN, the shape line names the PHI, one row per round plus the median."""
    out = run_script("warm_cpu.py", "--quick", "--calls", "3", "--rounds", "2", "--phi")
    assert [x for x in out.splitlines() if x.startswith("check")] == [f"check: {ASSIGN_100}"]
    assert [x for x in out.splitlines() if "PHI attributes new per call" in x] != []
    [(_, rows)] = tables(out).items()
    assert [row[0] for row in rows] == ["1", "2", "median"]
