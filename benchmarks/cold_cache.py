"""CPU of one warm 100-agent Decide when the CPU caches hold other work, as in a served process.

Usage: .venv/bin/python benchmarks/cold_cache.py [--calls 300] [--rounds 6] [--sweep-kib 1536]

``warm_cpu.py`` runs Decide back to back on one thread, so the call's code and data stay in the
CPU's caches. A served Decide never runs like that: between two calls the client process,
grpcio's event loop, gRPC core's threads, the decision log's writer and other processes run on
the same two cores. This measures the same call (``warm_cpu.py``'s: the server's deserializer,
``RoutingServicer.Decide``, a real SQLite decision log, the reply serialised, a new request_id
per call) on the request thread's own CPU clock, around the call only, in three modes that
alternate round by round:

- ``hot``: back to back (what ``warm_cpu.py`` measures);
- ``sweep``: before each call, this thread reads ``--sweep-kib`` of Python ints (not counted),
  evicting the call's working set from L1/L2 as other work would;
- ``sleep``: before each call, 1 ms asleep (not counted): the machine's other work runs.

Medians over rounds, microseconds of request-thread CPU per Decide.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

BENCHMARKS = Path(__file__).resolve().parent
MODES = ("hot", "sweep", "sleep")
INT_BYTES = 32
"""Roughly what one small int costs in the sweep's list (the object and its slot)."""


def measure(calls: int, rounds: int, sweep_kib: int) -> dict[str, list[float]]:
    """Per mode, each round's request-thread CPU per Decide (microseconds)."""
    sys.path.insert(0, str(BENCHMARKS))
    from caseroute.engine.case_rules import EngineKind
    from caseroute.grpc_api import servicer as servicer_module
    from caseroute.grpc_api.servicer import RoutingServicer
    from caseroute.registry import RulesetRegistry
    from caseroute.testing import audited_core, reference_ruleset
    from caseroute.v1 import routing_pb2 as pb
    from grpc_bench import decide_body, with_request_id
    from profile_decide import StubContext

    parse = servicer_module.request_deserializer(pb.DecideRequest)
    body = decide_body(100)
    context: Any = StubContext()
    registry = RulesetRegistry()
    registry.add(reference_ruleset(EngineKind.DURABLE))
    other_work = list(range(sweep_kib * 1024 // INT_BYTES))
    serial = 0
    out: dict[str, list[float]] = {mode: [] for mode in MODES}
    with tempfile.TemporaryDirectory() as tmp:
        servicer = RoutingServicer(audited_core(registry, Path(tmp)))

        def one() -> None:
            nonlocal serial
            serial += 1
            request: Any = parse(with_request_id(body, f"cold-{serial}"))
            servicer.Decide(request, context).SerializeToString()

        for _ in range(max(20, calls // 10)):
            one()
        for _ in range(rounds):
            for mode in MODES:
                spent = 0.0
                for _ in range(calls):
                    if mode == "sweep":
                        total = 0
                        for value in other_work:
                            total += value
                    elif mode == "sleep":
                        time.sleep(0.001)  # other processes' turn: the point of this mode
                    start = time.thread_time()
                    one()
                    spent += time.thread_time() - start
                out[mode].append(spent / calls * 1e6)
        servicer._core.audit.close()  # noqa: SLF001 - ends the writer thread
    registry.close()
    return out


def main() -> None:
    """Print each mode's rounds and median, and the load average before and after."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=300, help="calls per mode per round")
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--sweep-kib", type=int, default=1536, help="read before each call")
    args = parser.parse_args()
    print("load average at start:", " ".join(f"{x:.2f}" for x in os.getloadavg()))
    out = measure(args.calls, args.rounds, args.sweep_kib)
    print(f"request-thread CPU us per warm 100-agent Decide, {args.rounds} rounds x {args.calls}")
    hot = statistics.median(out["hot"])
    for mode in MODES:
        median = statistics.median(out[mode])
        rounds = ", ".join(f"{x:.0f}" for x in out[mode])
        print(f"{mode}: median {median:.0f} ({median / hot:.2f}x hot); rounds {rounds}")
    print("load average at end:", " ".join(f"{x:.2f}" for x in os.getloadavg()))


if __name__ == "__main__":
    main()
