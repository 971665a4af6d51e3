"""The cold-roster and input-conversion benchmarks, run with their smallest settings.

Never timing: what is pinned is that each runs, measures a ranked ASSIGN (cold_roster.py), and
prints the rows and columns docs/benchmarks.md quotes.
"""

import pytest

from tests.benchmarks.test_bench_smoke import ASSIGN_100, load_lines, run_script, tables

COLD_HEADER = (
    "| cold case | cold CPU ms/call | warm CPU ms/call | ratio | cold CPU us/agent "
    "| extra us/agent |"
)
KNOWN, NEW = "new snapshot, known agents (2% changed)", "all agents new"
PARTS_HEADER = (
    f"| part of a cold call | {KNOWN}: CPU ms/call | us/agent | share "
    f"| {NEW}: CPU ms/call | us/agent | share |"
)


@pytest.mark.slow
def test_cold_roster_splits_a_first_sight_decide_of_a_ranked_assign() -> None:
    """cold_roster: the ASSIGN check, a row per cold case, five parts of each, both targets."""
    out = run_script("cold_roster.py", "--quick", "--cold", "2", "--warm", "2")
    found = tables(out)
    assert [line for line in out.splitlines() if line.startswith("check")] == [
        f"check: {ASSIGN_100}"
    ]
    assert [(row[0], len(row)) for row in found[COLD_HEADER]] == [(KNOWN, 6), (NEW, 6)]
    assert [(row[0], len(row)) for row in found[PARTS_HEADER]] == [
        (part, 7) for part in ("decode", "roster", "index", "blob", "rest")
    ]
    assert [row[0] for row in found["| target (in process) | measured | met |"]] == [
        f"{case}: {target}"
        for case in (KNOWN, NEW)
        for target in ("<= 10 us CPU per agent", "<= 10x a warm call (CPU)")
    ]
    assert load_lines(out) == ["load average at start", "load average at end"]


def test_codec_parse_times_the_json_and_protobuf_paths() -> None:
    """codec_parse: one line per path (JSON strict parser, protobuf conversion) and the case."""
    out = run_script("codec_parse.py", "--agents", "20", "--calls", "2")
    assert [line.split(":")[0] for line in out.splitlines()] == [
        "json agents 20",
        "proto agents 20",
        "proto case alone",
    ]
