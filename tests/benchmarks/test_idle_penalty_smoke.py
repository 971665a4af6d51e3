"""benchmarks/idle_penalty.py at its smallest setting: shape, never timing."""

import pytest

from tests.benchmarks.test_bench_smoke import run_script


@pytest.mark.slow
def test_both_pieces_of_work_are_timed_in_every_mode_with_ratios_to_back_to_back() -> None:
    """Host idle settings first, then per piece of work one row per mode; `none` is 1.00."""
    out = run_script("idle_penalty.py", "--rounds", "1", "--calls", "3")
    lines = out.splitlines()
    assert lines[0].startswith("load ")
    assert "cpuidle driver" in lines[0]
    assert [x for x in lines if x.startswith("### ")] == [
        "### engine.decide alone (100 agents, SUMMARY)",
        "### the servicer's whole Decide in process, SQLite log on",
    ]
    rows = [
        [cell.strip() for cell in x.split("|")[1:-1]]
        for x in lines
        if x.startswith("| ") and "---" not in x and not x.startswith("| before")
    ]
    modes = ["none", "sleep 0.2 ms", "sleep 1 ms", "sleep 5 ms", "busy 1 ms"]
    assert [row[0] for row in rows] == modes * 2
    assert all(float(row[1].replace(",", "")) > 0 for row in rows)
    assert [row[3:] for row in rows if row[0] == "none"] == [["1.00", "1.00"]] * 2
    assert lines[-1].startswith("load ")
