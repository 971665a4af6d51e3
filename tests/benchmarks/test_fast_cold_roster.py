"""The cold-roster and input-conversion benchmarks, run with their smallest settings.

Never timing: what is pinned is that each runs, measures a ranked ASSIGN (cold_roster.py), and
prints the rows and columns docs/benchmarks.md quotes.
"""

import pytest

from tests.benchmarks.test_bench_smoke import ASSIGN_100, load_lines, run_script, tables

COLD_HEADER = "| cold CPU ms/call | warm CPU ms/call | ratio | cold CPU us/agent | extra us/agent |"
PARTS_HEADER = "| part of a cold call | CPU ms/call | us/agent | share |"


@pytest.mark.slow
def test_cold_roster_splits_a_first_sight_decide_of_a_ranked_assign() -> None:
    """cold_roster: the ASSIGN check, one cold/warm row, and the six parts of a cold call."""
    out = run_script("cold_roster.py", "--quick", "--cold", "2", "--warm", "2")
    found = tables(out)
    assert [line for line in out.splitlines() if line.startswith("check")] == [
        f"check: {ASSIGN_100}"
    ]
    assert (len(found[COLD_HEADER]), len(found[COLD_HEADER][0])) == (1, 5)
    assert [row[0] for row in found[PARTS_HEADER]] == [
        "decode",
        "conversion",
        "digests",
        "index",
        "blob",
        "rest",
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
