"""The strict JSON parser's cost on a cold roster: parse_roster (N agents) + parse_case.

Usage: cd benchmarks && ../.venv/bin/python codec_parse.py [--agents 1000] [--calls 30]

Prints the median milliseconds of ``--calls`` parses (after 3 warm-up parses) of the JSON form
of a benchmark roster and case: the work every transport does on a roster the server has not
seen (gRPC converts the message to this JSON form first). To compare two trees, run it with
``PYTHONPATH=<tree>/src`` for each, alternating, in one session (docs/benchmarks.md).
"""

from __future__ import annotations

import argparse
import statistics
import time

from caseroute.domain.codec import parse_case, parse_roster
from caseroute.domain.fingerprint import case_to_dict, roster_to_dict
from roster_gen import make_bench_case, make_bench_roster


def main() -> None:
    """Parse, time, print the median in milliseconds."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--agents", type=int, default=1000)
    parser.add_argument("--calls", type=int, default=30)
    args = parser.parse_args()
    roster = roster_to_dict(make_bench_roster(args.agents))
    case = case_to_dict(make_bench_case())

    def once() -> float:
        started = time.perf_counter()
        parse_roster(roster, "roster")
        parse_case(case, "case")
        return time.perf_counter() - started

    for _ in range(3):
        once()
    median = statistics.median(once() for _ in range(args.calls))
    print(
        f"agents {args.agents}: median {median * 1000:.2f} ms "
        f"({median * 1e6 / args.agents:.1f} us/agent)"
    )


if __name__ == "__main__":
    main()
