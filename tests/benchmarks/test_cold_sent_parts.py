"""cold_roster.py --sent-parts and cold_served.py --sent-steps: a first sight read from its bytes.

Never timing: what is pinned is the rows each prints for the steps of
``RosterCache.parse_sent`` (issue 13 target 3), and that the served split stamps them on a
first sight and not on a warm call.
"""

import pytest

from tests.benchmarks.test_bench_smoke import run_script, tables
from tests.benchmarks.test_cold_served_smoke import HEADER, STAGES, SUMMARY

SENT_HEADER = "| roster read from its bytes, all agents new | CPU ms/call | us/agent | share |"
SENT_STAGES = [
    "sent_in",
    "laid_out",
    "agents_in",
    "agents_out",
    "fingerprinted",
    "store_in",
    "store_out",
]


@pytest.mark.slow
def test_sent_parts_split_the_all_new_roster_read_from_its_bytes() -> None:
    """--sent-parts: layout, parse, agents, roster, bookkeeping and the whole, 3 figures each."""
    out = run_script("cold_roster.py", "--quick", "--cold", "1", "--warm", "1", "--sent-parts")
    assert [(row[0], len(row)) for row in tables(out)[SENT_HEADER]] == [
        (part, 4)
        for part in (
            "layout + kept lookup",
            "parse + deterministic check + sha256",
            "agents converted, JSON, digests",
            "roster built, fingerprint",
            "cache bookkeeping (rest)",
            "parse_sent whole",
        )
    ]


@pytest.mark.slow
def test_sent_steps_stamp_a_first_sight_before_uncut_and_not_a_warm_call() -> None:
    """--sent-steps: its stages sit before uncut; figures both ways on first sights, none warm."""
    out = run_script("cold_served.py", "--quick", "--sent-steps")
    at = STAGES.index("uncut")
    for section in out.split("### ")[1:]:
        case = section.split(":")[0]
        rows = {row[0]: row[1:] for row in tables(section)[HEADER]}
        assert list(rows) == [*STAGES[:at], *SENT_STAGES, *STAGES[at:], *SUMMARY]
        stamped = [rows[stage][1] != "-" and rows[stage][3] != "-" for stage in SENT_STAGES[1:]]
        assert (case, stamped) == (case, [case != "warm"] * (len(SENT_STAGES) - 1))
