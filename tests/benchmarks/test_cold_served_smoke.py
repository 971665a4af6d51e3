"""benchmarks/cold_served.py at its smallest setting: shape, never timing."""

import sys

import pytest

from tests.benchmarks.test_bench_smoke import BENCHMARKS, run_script, tables

STAGES = [
    "send",
    "deser_in",
    "deser_out",
    "handler_in",
    "uncut",
    "case_out",
    "roster_in",
    "keyed",
    "agents_done",
    "roster_out",
    "converted",
    "engine_in",
    "index_in",
    "index_out",
    "engine_out",
    "decided",
    "reply_built",
    "blob_in",
    "blob_out",
    "append_in",
    "handed",
    "writer_took",
    "locked",
    "begun",
    "commit_in",
    "committed",
    "settled",
    "woken",
    "handler_out",
    "ser_in",
    "ser_out",
    "recv",
]
SUMMARY = [
    "process CPU",
    "stamped threads CPU",
    "other threads CPU",
    "GC wall",
    "CPU us/agent",
    "process CPU, mean",
    "GC wall, mean",
]
PARSE = ["roster_in", "keyed", "agents_done", "roster_out"]
"""RosterCache.parse's stages: a first sight read from its bytes in ``uncut`` passes none."""
HEADER = "| stage | served wall | served CPU | in process wall | in process CPU |"


@pytest.mark.slow
def test_cold_served_splits_each_case_served_and_in_process_stage_by_stage() -> None:
    """Known, new and warm: every stage in call order both ways, then the summary rows."""
    out = run_script("cold_served.py", "--quick")
    lines = out.splitlines()
    assert [x.split()[0] for x in lines if x.startswith("load")] == ["load", "load"]
    sections = out.split("### ")[1:]
    assert [s.splitlines()[0] for s in sections] == [
        f"{case}: 100 agents, 2 calls each way, medians in us" for case in ("known", "new", "warm")
    ]
    for section in sections:
        rows = {row[0]: row[1:] for row in tables(section)[HEADER]}
        assert list(rows) == STAGES + SUMMARY
        assert rows["send"] == ["-"] * 4
        assert [rows[stage] for stage in PARSE] == [["-"] * 4] * 4
        for stage in ("uncut", "engine_out", "committed"):
            assert [float(cell) > 0 for cell in rows[stage]] == [True] * 4
        for row in SUMMARY:
            assert (rows[row][0], rows[row][2], float(rows[row][1]) >= 0) == ("", "", True)


def test_steps_take_cpu_only_within_one_thread() -> None:
    """Wall steps between stamped stages; a CPU step only where both ran on the same thread."""
    sys.path.insert(0, str(BENCHMARKS))
    try:
        from cold_served import _steps
    finally:
        sys.path.remove(str(BENCHMARKS))
    calls = [
        (
            {"deser_in": 0, "deser_out": 4000, "handler_in": 9000, "uncut": 10_000},
            {"deser_in": (100, 1), "deser_out": (3100, 1), "handler_in": (0, 2), "uncut": (500, 2)},
        ),
        (
            {"deser_in": 0, "deser_out": 2000, "uncut": 3000},
            {"deser_in": (0, 1), "deser_out": (1000, 1), "uncut": (1500, 1)},
        ),
    ]
    assert _steps(calls) == {
        "deser_out": (3.0, 2.0),
        "handler_in": (5.0, None),
        "uncut": (1.0, 0.5),
    }
