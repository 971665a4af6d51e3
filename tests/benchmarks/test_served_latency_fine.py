"""benchmarks/served_latency.py --fine: handler -> decided split into its sub-stages."""

import pytest

from tests.benchmarks.test_bench_smoke import run_script

FINE = [
    "handler_in",
    "caller",
    "case_in",
    "case_out",
    "converted",
    "canonical",
    "req_hashed",
    "keyed",
    "engine_in",
    "signals",
    "fact",
    "matched",
    "rules",
    "selected",
    "engine_out",
    "masked",
    "decided",
]


@pytest.mark.slow
def test_fine_map_stamps_every_sub_stage_of_every_decide_in_call_order() -> None:
    """--fine lists conversion, canonical forms, hashes, decide()'s parts and masking in order."""
    out = run_script("served_latency.py", "--quick", "--fine")
    lines = out.splitlines()
    decide_at = next(i for i, x in enumerate(lines) if x.startswith("decide: 10 calls"))
    rows = [x.split() for x in lines[decide_at + 1 :] if x.startswith("  ") and "(" not in x]
    stages = [row[0] for row in rows]
    at = stages.index("handler_in")
    assert stages[at : at + len(FINE)] == FINE
    assert [row[0] for row in rows if "stamped" in " ".join(row) and row[0] in FINE] == []


def test_decide_stages_put_the_fine_ones_between_handler_and_decided() -> None:
    """Without --fine the table is the coarse one; with it the sub-stages sit in between."""
    import sys

    from tests.benchmarks.test_bench_smoke import BENCHMARKS

    sys.path.insert(0, str(BENCHMARKS))
    import served_latency

    coarse = served_latency.decide_stages(fine=False)
    fine = served_latency.decide_stages(fine=True)
    assert coarse == served_latency.DECIDE_STAGES
    assert len(coarse) + len(served_latency.FINE_STAGES) == len(fine)
    assert list(fine[fine.index("handler_in") : fine.index("decided") + 1]) == FINE


@pytest.mark.slow
def test_agents_and_by_hash_size_the_roster_and_name_it_by_hash() -> None:
    """--agents sizes the Decide's roster; --by-hash sends its roster_sha256 instead of it."""
    whole = run_script("served_latency.py", "--quick", "--agents", "10")
    hashed = run_script("served_latency.py", "--quick", "--agents", "10", "--by-hash")
    sent = [
        int(line.split("(")[1].split()[0])
        for out in (whole, hashed)
        for line in out.splitlines()
        if line.startswith("roster: 10 agents")
    ]
    assert "sent whole" in whole
    assert "named by its roster_sha256" in hashed
    assert len(sent) == 2
    assert sent[1] < sent[0]  # the hash replaces the 10 agents
    assert "decide: 10 calls" in hashed
