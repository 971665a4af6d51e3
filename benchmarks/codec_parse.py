"""Input conversion's cost on a cold roster: N agents + the benchmark case, JSON and protobuf.

Usage: cd benchmarks && ../.venv/bin/python codec_parse.py [--agents 1000] [--calls 30] [--cpu]
[--encode]

Prints the median milliseconds of ``--calls`` conversions (after 3 warm-up ones) of a benchmark
roster and case, two ways: the JSON form through the strict parser (``parse_roster`` +
``parse_case``: the CLI's and ``decide --request``'s path), and the protobuf messages through
``wire.convert`` (``roster_from_proto`` + ``case_from_proto``: the fast path first). With
``--encode``, "proto agents+json" too: what the server's roster cache does with agents it has
never seen, each agent message converted, its canonical JSON written and hashed
(``fast.known_agents_from_proto`` in one pass where the tree has it, else
``fast.agents_from_proto`` + ``agent_json`` + ``agent_digest``). ``--cpu`` times this thread's
CPU instead of the wall clock. To compare two trees, run it with ``PYTHONPATH=<tree>/src`` for each,
alternating, in one session (docs/benchmarks.md).
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

from caseroute.domain.codec import parse_case, parse_roster
from caseroute.domain.fingerprint import agent_digest, agent_json, case_to_dict, roster_to_dict
from caseroute.domain.limits import DEFAULT_LIMITS
from caseroute.v1 import routing_pb2 as pb
from caseroute.wire import convert, fast
from roster_gen import make_bench_case, make_bench_roster

CLOCK = time.perf_counter
"""Wall clock; ``--cpu`` makes it this thread's CPU clock (steadier on a loaded machine)."""


def _median_ms(once: Callable[[], object], calls: int) -> float:
    """Median milliseconds of ``calls`` runs of ``once`` after 3 warm-up runs."""
    for _ in range(3):
        once()
    samples = []
    for _ in range(calls):
        started = CLOCK()
        once()
        samples.append(CLOCK() - started)
    return statistics.median(samples) * 1000


def main() -> None:
    """Convert, time, print the medians in milliseconds."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--agents", type=int, default=1000)
    parser.add_argument("--calls", type=int, default=30)
    parser.add_argument("--cpu", action="store_true", help="time thread CPU instead of wall")
    parser.add_argument(
        "--encode", action="store_true", help="also time new agents + canonical JSON + digests"
    )
    args = parser.parse_args()
    if args.cpu:
        global CLOCK  # noqa: PLW0603 - one switch for the whole run
        CLOCK = time.thread_time
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

    def agents_once() -> None:
        known = getattr(fast, "known_agents_from_proto", None)
        if known is not None:
            known(roster_msg.agents, DEFAULT_LIMITS)
        else:  # a tree before the one-pass conversion
            for agent in fast.agents_from_proto(roster_msg.agents, DEFAULT_LIMITS):
                agent_digest(agent_json(agent))

    paths = [("json", json_once), ("proto", proto_once)]
    if args.encode:
        paths.append(("proto agents+json", agents_once))
    for name, once in paths:
        median = _median_ms(once, args.calls)
        print(
            f"{name} agents {args.agents}: median {median:.2f} ms "
            f"({median * 1000 / args.agents:.1f} us/agent)"
        )
    case_us = _median_ms(lambda: convert.case_from_proto(case_msg), args.calls * 30) * 1000
    print(f"proto case alone: median {case_us:.1f} us")


if __name__ == "__main__":
    main()
