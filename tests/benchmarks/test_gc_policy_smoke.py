"""benchmarks/gc_policy.py at its smallest setting: shape, never timing."""

import pytest

from tests.benchmarks.test_bench_smoke import run_script, tables

VARIANTS = ["t700_10_1000", "off"]
"""Two variants: one of thresholds, and GC off (whose unreachable count the test pins)."""
WAYS = [
    "known/served",
    "known/in process",
    "new/served",
    "new/in process",
    "warm/served",
    "warm/in process",
]
CALLS = "| variant | case/way | cpu p50 | cpu mean | cpu p99 | wall p99 | gc mean |"
RUNS = "| variant | full collections per run | longest, ms | peak RSS MB | unreachable |"


@pytest.mark.slow
def test_gc_policy_prints_every_variant_case_and_way_and_leaves_out_a_failed_run() -> None:
    """Each variant: six case/way rows, then one run row; an unknown variant failed and absent."""
    out = run_script("gc_policy.py", "--quick", "--variants", ",".join([*VARIANTS, "bogus"]))
    found = tables(out)
    failed = [line for line in out.splitlines() if line.startswith("bogus: failed:")]
    assert (
        [row[:2] for row in found[CALLS]],
        [row[0] for row in found[RUNS]],
        [row[1] for row in found[RUNS] if row[0] == "off"],
        len(failed),
        "unknown variant part 'bogus'" in failed[0],
    ) == (
        [[variant, way] for variant in VARIANTS for way in WAYS],
        VARIANTS,
        ["0"],
        1,
        True,
    )
