"""cold_roster.py --roster-parts: the all-new roster part split, run with its smallest settings.

Never timing: what is pinned is the table's rows (the steps the roster cache takes with agents
it has never seen, then the reference rows), each with its three figures.
"""

import pytest

from tests.benchmarks.test_bench_smoke import run_script, tables

HEADER = "| roster part, all agents new | CPU ms/call | us/agent | share of roster part |"


@pytest.mark.slow
def test_roster_parts_split_the_all_new_roster_part() -> None:
    """--roster-parts prints keys, conversion, fingerprint and bookkeeping, then the references."""
    out = run_script("cold_roster.py", "--quick", "--cold", "1", "--warm", "1", "--roster-parts")
    assert [(row[0], len(row)) for row in tables(out)[HEADER]] == [
        (part, 4)
        for part in (
            "agent keys",
            "agents + JSON + digests",
            "roster + fingerprint",
            "cache bookkeeping (rest)",
            "conversion alone",
            "agent JSON alone",
            "digests alone",
            "one pass (known_agents)",
        )
    ]
