"""Warm Decide with the roster vs with only its roster_sha256, in one process (issue 13).

Usage: .venv/bin/python benchmarks/roster_by_hash.py [--quick] [--sizes 100 1000]
                                                       [--calls 200] [--rounds 3]

What one server worker does per Decide, minus the network (as ``profile_decide.py``): the
request bytes are parsed with the server's deserializer, ``RoutingServicer.Decide`` converts
them, decides through ``RoutingCore`` (durable_rules, reference ruleset) and records the
decision in a real SQLite decision log (fsync before the reply). The benchmark case against a
warm ranked roster (a ranked ASSIGN, checked), SUMMARY, a new request_id per call. Two request
shapes alternate round by round: the roster sent (found in the roster cache by its bytes) and
only its ``roster_sha256`` (found by hash: no roster to decode, serialise or hash). Prints, per
roster size and shape, the median wall time per call and the median process CPU per call (all
threads: the handler and the log's writer), the medians over rounds, and the load average.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from caseroute.domain.fingerprint import roster_sha256
from caseroute.engine.case_rules import EngineKind
from caseroute.grpc_api.servicer import RoutingServicer, lenient_deserializer
from caseroute.registry import RulesetRegistry
from caseroute.testing import audited_core, reference_ruleset
from caseroute.v1 import routing_pb2 as pb
from caseroute.wire import convert
from grpc_bench import decide_body, describe_assign, load_average, with_request_id
from profile_decide import StubContext

SHAPES = ("roster", "hash")


def by_hash(body: bytes) -> bytes:
    """``body`` (a DecideRequest) with its roster replaced by the roster's roster_sha256."""
    msg = pb.DecideRequest.FromString(body)
    sha = roster_sha256(convert.roster_from_proto(msg.roster))
    msg.ClearField("roster")
    msg.roster_sha256 = sha
    return msg.SerializeToString()


def main() -> None:
    """Print a markdown table: per size and shape, wall and CPU medians per Decide."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="smoke run: 5 calls, 1 round")
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 1000])
    parser.add_argument("--calls", type=int, help="timed calls per round (default 200)")
    parser.add_argument("--rounds", type=int, help="rounds per shape, alternating (default 3)")
    args = parser.parse_args()
    calls = args.calls or (5 if args.quick else 200)
    rounds = args.rounds or (1 if args.quick else 3)
    print(f"load average at start: {load_average()}")
    parse = lenient_deserializer(pb.DecideRequest)
    registry = RulesetRegistry()
    registry.add(reference_ruleset(EngineKind.DURABLE))
    context: Any = StubContext()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        servicer = RoutingServicer(audited_core(registry, Path(tmp)))
        serial = 0

        def one(body: bytes) -> pb.DecideResponse:
            nonlocal serial
            serial += 1
            request: Any = parse(with_request_id(body, f"hash-{serial}"))
            reply: pb.DecideResponse = servicer.Decide(request, context)
            return reply

        for size in args.sizes:
            bodies = {"roster": decide_body(size)}
            bodies["hash"] = by_hash(bodies["roster"])
            for shape in SHAPES:  # the roster first: the hash is then known; both checked
                print(f"check ({shape}): {describe_assign(one(bodies[shape]), size)}")
            wall: dict[str, list[float]] = {shape: [] for shape in SHAPES}
            cpu: dict[str, list[float]] = {shape: [] for shape in SHAPES}
            for _ in range(rounds):
                for shape in SHAPES:
                    walls, cpus = [], []
                    for _ in range(calls):
                        start, start_cpu = time.perf_counter(), time.process_time()
                        one(bodies[shape])
                        walls.append(time.perf_counter() - start)
                        cpus.append(time.process_time() - start_cpu)
                    wall[shape].append(statistics.median(walls))
                    cpu[shape].append(statistics.median(cpus))
            rows += [
                (size, shape, statistics.median(wall[shape]), statistics.median(cpu[shape]))
                for shape in SHAPES
            ]
        servicer._core.audit.close()  # noqa: SLF001 - ends the writer thread
    registry.close()
    print()
    print(f"{rounds} round(s) of {calls} calls per shape, alternating; medians of round medians")
    print()
    print("| agents | request carries | wall ms per Decide | process CPU ms per Decide |")
    print("| --- | --- | --- | --- |")
    for size, shape, wall_s, cpu_s in rows:
        what = "roster" if shape == "roster" else "roster_sha256 only"
        print(f"| {size} | {what} | {wall_s * 1e3:.3f} | {cpu_s * 1e3:.3f} |")
    print()
    print(f"load average at end: {load_average()} ({os.cpu_count()} cores)")


if __name__ == "__main__":
    main()
