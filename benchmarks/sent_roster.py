"""CPU of a warm Decide that sends its roster, at several roster sizes, in one process (issue 13).

Usage: .venv/bin/python benchmarks/sent_roster.py [--agents 100,1000,5000] [--calls N] [--rounds 5]
       .venv/bin/python benchmarks/sent_roster.py --ab TREE_A TREE_B [--runs 3] [...]

What one server worker does per Decide whose request carries a roster it has seen before, minus
the network: the request bytes go through the server's own deserializer for Decide (the one
``build_server`` registers: ``request_deserializer`` where the tree has it, else
``lenient_deserializer``), ``RoutingServicer.Decide`` finds the roster, decides (durable_rules,
reference ruleset) and records the decision in a real SQLite decision log (fsync before the
reply), and the reply is serialised. Each call has a new request_id; the roster bytes are those
``grpc_bench.decide_body`` makes. CPU is ``time.process_time`` over a block of calls (every
thread: the handler and the decision log's writer) and ``time.thread_time`` of the calling
thread ("request"); medians over rounds, in microseconds per call.

``--cold``: instead, first sights (issue 13 target 3): each call sends a roster never seen
whose agents are all new (``grpc_bench.cold_body(size, n, "new")``, built before timing), CPU
per call and per agent.

``--front``: only the request's way in, which is what finding the roster changes: the
deserializer, ``RoutingServicer.Decide`` finding the roster and converting the request to a
command (its ``_decide`` is replaced by one that builds the command and returns an empty
reply: nothing is decided or recorded), 10x the calls.

``--grpc``: latency over gRPC instead (target 1's measure, ``grpc_bench``'s pieces): a
``caseroute serve`` of the tree (2 workers, fresh decision log), one client process; per
round and size the median of ``--calls`` (default 50) warm Decides sending the roster, of as
many health Checks (the empty call) and of as many 512-byte appends + fsync beside the log;
per size the medians over rounds of the Decide latency (ms) and of its ratio to empty + fsync.

``--ab TREE_A TREE_B``: each run is this script in a child process with ``PYTHONPATH`` at
``TREE/src``, runs alternating A, B, A, B, ...; per size and side the median over runs of each
run's median, the ratio B/A, and the load average before and after. Give both sides as
``git worktree``s at commits (the base and the change alone): ``.`` as a side also carries
whatever else is uncommitted in the shared tree (a changed decision log moved a whole warm
Decide's CPU by more than the change measured). The warm sent path's remaining cost per
roster byte is one in-place compare (``RosterCache.find_sent_at``: ~13 us per 548 kB, 5,000
agents) and, in this process, ``grpc_bench.with_request_id``'s copy of each body (standing for
the transport's own copy into a new bytes object, ~13 us too).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

BENCHMARKS = Path(__file__).resolve().parent


def _load_average() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def measure(
    sizes: list[int], calls: int | None, rounds: int, *, cold: bool = False, front: bool = False
) -> dict[str, dict[str, float]]:
    """Per size, the median CPU per call (process and request thread), in microseconds.

    Warm calls by default; ``cold``: each call's roster is new, all its agents too.
    """
    sys.path.insert(0, str(BENCHMARKS))
    from caseroute.engine.case_rules import EngineKind
    from caseroute.grpc_api import servicer as servicer_module
    from caseroute.registry import RulesetRegistry
    from caseroute.testing import audited_core, reference_ruleset
    from caseroute.v1 import routing_pb2 as pb
    from grpc_bench import cold_body, decide_body, describe_assign, with_request_id
    from profile_decide import StubContext

    chooser = getattr(servicer_module, "request_deserializer", None)
    parse = (chooser or servicer_module.lenient_deserializer)(pb.DecideRequest)
    context: Any = StubContext()
    registry = RulesetRegistry()
    registry.add(reference_ruleset(EngineKind.DURABLE))
    out: dict[str, dict[str, float]] = {}
    serial = 0
    with tempfile.TemporaryDirectory() as tmp:
        servicer = servicer_module.RoutingServicer(audited_core(registry, Path(tmp)))
        if front:

            def command_only(_context: Any, _level: int, command: Any, *rest: Any) -> Any:
                # (rosters, build) since f9dc0fc (the call's roster store), (build) before.
                command(*rest[:-1])
                return pb.DecideResponse()

        for size in sizes:
            body = decide_body(size)
            n = calls or max(30, 30_000 // size)

            def one(data: bytes) -> Any:
                nonlocal serial
                serial += 1
                reply = servicer.Decide(parse(with_request_id(data, f"s-{serial}")), context)
                reply.SerializeToString()
                return reply

            describe_assign(one(body), size)  # checks the reply; the roster is now cached
            for _ in range(max(10, n // 10)):
                one(body)
            if front:
                n *= 10
                servicer._decide = command_only  # type: ignore[method-assign,assignment]  # noqa: SLF001
            if cold:
                n = calls or max(3, 3_000 // size)
                bodies = [cold_body(size, serial + i, "new") for i in range(n * rounds)]
            process_us, request_us = [], []
            for r in range(rounds):
                sent = bodies[r * n : (r + 1) * n] if cold else [body] * n
                p, t = time.process_time(), time.thread_time()
                for data in sent:
                    one(data)
                request_us.append((time.thread_time() - t) / n * 1e6)
                process_us.append((time.process_time() - p) / n * 1e6)
            if front:
                del servicer._decide  # noqa: SLF001 - the class's own again
            out[str(size)] = {
                "process": statistics.median(process_us),
                "request": statistics.median(request_us),
            }
            if cold:
                out[str(size)]["process/agent"] = out[str(size)]["process"] / size
        servicer._core.audit.close()  # noqa: SLF001 - ends the writer thread
    registry.close()
    return out


def measure_grpc(sizes: list[int], calls: int | None, rounds: int) -> dict[str, dict[str, float]]:
    """Per size, median Decide latency (ms) and its ratio to (empty call + fsync), over gRPC."""
    sys.path.insert(0, str(BENCHMARKS))
    from grpc_health.v1 import health_pb2

    from grpc_bench import CHECK, DECIDE, Clients, decide_body, fsync_latencies, serve

    check = health_pb2.HealthCheckRequest().SerializeToString()
    n = calls or 50
    bodies = {size: decide_body(size) for size in sizes}
    samples: dict[int, dict[str, list[float]]] = {s: {"decide": [], "ratio": []} for s in sizes}
    with serve(2, "durable") as server:
        clients = Clients(server.address, 1)
        try:
            for body in bodies.values():
                clients.warm(DECIDE, body)
            for _ in range(rounds):
                for size, body in bodies.items():
                    fsync = statistics.median(fsync_latencies(server.audit_dir, n))
                    floor = statistics.median(clients.latencies(CHECK, check, n, unique=False))
                    decide = statistics.median(clients.latencies(DECIDE, body, n, unique=True))
                    samples[size]["decide"].append(decide * 1e3)
                    samples[size]["ratio"].append(decide / (floor + fsync))
        finally:
            clients.close()
    return {
        str(size): {key: statistics.median(values) for key, values in row.items()}
        for size, row in samples.items()
    }


def _child(tree: str, args: argparse.Namespace) -> dict[str, dict[str, float]]:
    env = dict(os.environ, PYTHONPATH=str(Path(tree).resolve() / "src"))
    cmd = [
        sys.executable,
        __file__,
        "--json",
        "--agents",
        args.agents,
        "--rounds",
        str(args.rounds),
    ]
    if args.calls:
        cmd += ["--calls", str(args.calls)]
    if args.cold:
        cmd.append("--cold")
    if args.front:
        cmd.append("--front")
    if args.grpc:
        cmd.append("--grpc")
    done = subprocess.run(cmd, env=env, check=True, capture_output=True, text=True)
    result: dict[str, dict[str, float]] = json.loads(done.stdout)
    return result


def _ab(args: argparse.Namespace) -> None:
    tree_a, tree_b = args.ab
    print(f"load before: {_load_average()}")
    runs: dict[str, list[dict[str, dict[str, float]]]] = {"A": [], "B": []}
    for i in range(args.runs):
        for side, tree in (("A", tree_a), ("B", tree_b)):
            runs[side].append(_child(tree, args))
            print(f"run {i + 1} {side}: {json.dumps(runs[side][-1])}  load {_load_average()}")
    print(f"load after: {_load_average()}")
    print(f"A = {tree_a}\nB = {tree_b}")
    for size in args.agents.split(","):
        columns = ("process", "request", *(["process/agent"] if args.cold else []))
        for column in ("decide", "ratio") if args.grpc else columns:
            a = statistics.median(r[size][column] for r in runs["A"])
            b = statistics.median(r[size][column] for r in runs["B"])
            unit = {"decide": "ms", "ratio": "x "}.get(column, "us")
            print(
                f"{size:>5} agents {column:>13}: A {a:8.2f} {unit}  B {b:8.2f} {unit}  "
                f"B/A {b / a:.2f}"
            )


def main() -> None:
    """Run the benchmark (or the A/B comparison) and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--agents", default="100,1000,5000", help="roster sizes, comma separated")
    parser.add_argument("--calls", type=int, help="calls per round (default 30,000 / agents)")
    parser.add_argument("--rounds", type=int, default=5, help="rounds per size")
    parser.add_argument("--ab", nargs=2, metavar="TREE", help="compare two source trees")
    parser.add_argument("--runs", type=int, default=3, help="--ab: runs per tree, alternating")
    parser.add_argument("--cold", action="store_true", help="first sights: all agents new")
    parser.add_argument("--front", action="store_true", help="the way in only: no decide")
    parser.add_argument("--grpc", action="store_true", help="latency over gRPC (target 1)")
    parser.add_argument("--json", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.ab:
        _ab(args)
        return
    sizes = [int(s) for s in args.agents.split(",")]
    if args.grpc:
        result = measure_grpc(sizes, args.calls, args.rounds)
    else:
        result = measure(sizes, args.calls, args.rounds, cold=args.cold, front=args.front)
    if args.json:
        print(json.dumps(result))
        return
    print(f"load {_load_average()}")
    units = {"decide": "ms", "ratio": "x"}
    for size, row in result.items():
        cells = "  ".join(
            f"{key} {value:8.2f} {units.get(key, 'us')}" for key, value in row.items()
        )
        print(f"{size:>5} agents: {cells}")


if __name__ == "__main__":
    main()
