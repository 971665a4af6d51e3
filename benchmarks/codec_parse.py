"""Input conversion's cost on a cold roster: N agents + the benchmark case, JSON and protobuf.

Usage: cd benchmarks && ../.venv/bin/python codec_parse.py [--agents 1000] [--calls 30]

Prints the median milliseconds of ``--calls`` conversions (after 3 warm-up ones) of a benchmark
roster and case, two ways: the JSON form through the strict parser (``parse_roster`` +
``parse_case``: the CLI's and ``decide --request``'s path), and the protobuf messages through
``wire.convert`` (``roster_from_proto`` + ``case_from_proto``: what a gRPC server does with a
roster it has not seen, the fast path first). To compare two trees, run it with
``PYTHONPATH=<tree>/src`` for each, alternating, in one session (docs/benchmarks.md).
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

from caseroute.domain.codec import parse_case, parse_roster
from caseroute.domain.fingerprint import case_to_dict, roster_to_dict
from caseroute.v1 import routing_pb2 as pb
from caseroute.wire import convert
from roster_gen import make_bench_case, make_bench_roster


def _median_ms(once: Callable[[], object], calls: int) -> float:
    """Median milliseconds of ``calls`` runs of ``once`` after 3 warm-up runs."""
    for _ in range(3):
        once()
    samples = []
    for _ in range(calls):
        started = time.perf_counter()
        once()
        samples.append(time.perf_counter() - started)
    return statistics.median(samples) * 1000


def main() -> None:
    """Convert, time, print the medians in milliseconds."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--agents", type=int, default=1000)
    parser.add_argument("--calls", type=int, default=30)
    args = parser.parse_args()
    roster, case = make_bench_roster(args.agents), make_bench_case()
    roster_json, case_json = roster_to_dict(roster), case_to_dict(case)
    # Decoded from bytes, as a server receives them (not the messages built here).
    roster_msg = pb.Roster.FromString(convert.roster_to_proto(roster).SerializeToString())
    case_msg = pb.Case.FromString(convert.case_to_proto(case).SerializeToString())

    def json_once() -> None:
        parse_roster(roster_json, "roster")
        parse_case(case_json, "case")

    def proto_once() -> None:
        convert.roster_from_proto(roster_msg)
        convert.case_from_proto(case_msg)

    for name, once in (("json", json_once), ("proto", proto_once)):
        median = _median_ms(once, args.calls)
        print(
            f"{name} agents {args.agents}: median {median:.2f} ms "
            f"({median * 1000 / args.agents:.1f} us/agent)"
        )
    case_us = _median_ms(lambda: convert.case_from_proto(case_msg), args.calls * 30) * 1000
    print(f"proto case alone: median {case_us:.1f} us")


if __name__ == "__main__":
    main()
