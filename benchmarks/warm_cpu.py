"""CPU of one warm 100-agent Decide in one process, every thread counted (issue 13 target 2).

Usage: .venv/bin/python benchmarks/warm_cpu.py [--quick] [--calls 300] [--rounds 5] [--by-hash]
                                                 [--phi]
       .venv/bin/python benchmarks/warm_cpu.py --ab TREE_A TREE_B [--runs 3] [...]

What one server worker does per Decide, minus the network (as ``profile_decide.py``): the
request bytes are parsed with the server's deserializer, ``RoutingServicer.Decide`` converts
them, decides through ``RoutingCore`` (durable_rules, reference ruleset) and records the
decision in a real SQLite decision log (fsync before the reply), and the reply is serialised.
The benchmark case against the warm 100-agent ranked roster (a ranked ASSIGN, checked first),
SUMMARY, a new request_id per call; ``--by-hash`` sends the roster's ``roster_sha256`` instead.
``--phi`` gives each call's case a patient name, MRN and date of birth never sent before (what
real enquiries carry, and the decision log masks): masking work the bare case never shows.

Throughput at 8 clients is bounded by the server's CPU per call, not its latency: while one
call waits for its fsync another runs. So the figure here is CPU, not wall time: per round,
``time.process_time()`` over ``--calls`` calls (every thread: the handler, the decision log's
writer and any other thread of the store) divided by the calls, and its split by thread (each
thread's own CPU clock, ``time.pthread_getcpuclockid``). Medians over rounds.

``--ab TREE_A TREE_B`` compares two source trees (e.g. a ``git worktree`` of the commit before
a change, and the change): each run is this script in a child process with ``PYTHONPATH`` at
``TREE/src``, runs alternating A, B, A, B, ...; per side the median over runs of each run's
median, the ratio B/A, and the load average before and after.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

AGENTS = 100
BENCHMARKS = Path(__file__).resolve().parent


def _load_average() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def _thread_clocks() -> dict[str, int]:
    """Every other live thread's CPU clock id, by thread name (the caller's own excluded)."""
    me = threading.get_ident()
    clocks = {}
    for thread in threading.enumerate():
        if thread.ident is None or thread.ident == me or not thread.is_alive():
            continue
        try:
            clocks[thread.name] = time.pthread_getcpuclockid(thread.ident)
        except (OSError, ProcessLookupError):  # ended between enumerate and the call
            continue
    return clocks


def _read(clocks: dict[str, int]) -> dict[str, float]:
    out = {}
    for name, clock in clocks.items():
        try:
            out[name] = time.clock_gettime(clock)
        except OSError:  # the thread ended
            out[name] = float("nan")
    return out


def _phi_bodies(body: bytes, count: int) -> list[bytes]:
    """``body`` with ``count`` cases, each carrying PHI attributes of its own (``--phi``)."""
    from dataclasses import replace

    from caseroute.v1 import routing_pb2 as pb
    from caseroute.wire import convert
    from roster_gen import make_bench_case

    request = pb.DecideRequest.FromString(body)
    bodies = []
    for n in range(count):
        case = replace(
            make_bench_case(),
            attributes={
                "patient_name": f"Patient {n} Quarrelsome",
                "mrn": f"MRN-{n:07d}",
                "date_of_birth": f"19{50 + n % 50}-0{1 + n % 9}-1{n % 10}",
            },
        )
        request.case.CopyFrom(convert.case_to_proto(case))
        bodies.append(request.SerializeToString())
    return bodies


def measure(calls: int, rounds: int, *, hashed: bool, phi: bool = False) -> dict[str, Any]:
    """Per round, CPU per call of the process and of each thread (microseconds).

    Args:
        calls: Calls per round.
        rounds: Rounds.
        hashed: Send the roster's roster_sha256 instead of the roster.
        phi: Give each call's case PHI attributes never sent before.

    Returns:
        ``{"check": ..., "rounds": [{"process": us, "request": us, "<thread>": us, ...}]}``.
    """
    sys.path.insert(0, str(BENCHMARKS))
    from caseroute.engine.case_rules import EngineKind
    from caseroute.grpc_api import servicer as servicer_module
    from caseroute.grpc_api.servicer import RoutingServicer
    from caseroute.registry import RulesetRegistry
    from caseroute.testing import audited_core, reference_ruleset
    from caseroute.v1 import routing_pb2 as pb
    from grpc_bench import by_hash, decide_body, describe_assign, with_request_id
    from profile_decide import StubContext

    # The server's deserializer for Decide; a tree from before it existed used the lenient one.
    chooser = getattr(servicer_module, "request_deserializer", None)
    parse = (chooser or servicer_module.lenient_deserializer)(pb.DecideRequest)
    body = decide_body(AGENTS)
    context: Any = StubContext()
    registry = RulesetRegistry()
    registry.add(reference_ruleset(EngineKind.DURABLE))
    serial = 0
    out: dict[str, Any] = {"rounds": []}
    with tempfile.TemporaryDirectory() as tmp:
        servicer = RoutingServicer(audited_core(registry, Path(tmp)))

        def one(data: bytes) -> pb.DecideResponse:
            nonlocal serial
            serial += 1
            request: Any = parse(with_request_id(data, f"cpu-{serial}"))
            reply: pb.DecideResponse = servicer.Decide(request, context)
            reply.SerializeToString()
            return reply

        out["check"] = describe_assign(one(body), AGENTS)  # the roster is now cached
        if hashed:
            body = by_hash(body)
            out["check"] = describe_assign(one(body), AGENTS)
        warm = max(20, calls // 10)
        # One body per call; with --phi each carries values never sent before.
        bodies = _phi_bodies(body, warm + rounds * calls) if phi else [body]
        if phi:
            out["check"] = describe_assign(one(bodies[0]), AGENTS)
        sent = iter(bodies) if phi else itertools.repeat(body)
        for _ in range(warm):
            one(next(sent))
        for _ in range(rounds):
            todo = [next(sent) for _ in range(calls)]
            clocks = _thread_clocks()
            before = _read(clocks)
            process, thread = time.process_time(), time.thread_time()
            for data in todo:
                one(data)
            thread, process = time.thread_time() - thread, time.process_time() - process
            after = _read(clocks)
            row = {"process": process, "request": thread}
            for name in clocks:
                row[name] = after[name] - before[name]
            out["rounds"].append({k: v / calls * 1e6 for k, v in row.items()})
        servicer._core.audit.close()  # noqa: SLF001 - ends the writer thread
    registry.close()
    return out


def _columns(rows: list[dict[str, float]]) -> list[str]:
    names = ["process", "request"]
    for row in rows:
        names += [k for k in row if k not in names]
    return names


def _median(rows: list[dict[str, float]], column: str) -> float:
    values = [r[column] for r in rows if column in r and r[column] == r[column]]
    return statistics.median(values) if values else float("nan")


def _print_single(result: dict[str, Any], args: argparse.Namespace) -> None:
    rows = result["rounds"]
    names = _columns(rows)
    print(f"check: {result['check']}")
    shape = "roster by hash" if args.by_hash else "roster sent"
    shape += ", PHI attributes new per call" if args.phi else ""
    print(
        f"{AGENTS} agents warm, SUMMARY, {shape}, decision log on; {args.rounds} rounds x "
        f"{args.calls} calls; CPU us per Decide (process = every thread)"
    )
    print()
    print("| round | " + " | ".join(names) + " |")
    print("| --- |" + " --- |" * len(names))
    for i, row in enumerate(rows, 1):
        print(f"| {i} | " + " | ".join(f"{row.get(n, float('nan')):.1f}" for n in names) + " |")
    print("| median | " + " | ".join(f"{_median(rows, n):.1f}" for n in names) + " |")
    print()


def _child(tree: str, args: argparse.Namespace) -> dict[str, float]:
    """One run of this script under ``tree/src``: each column's median over its rounds."""
    env = dict(os.environ, PYTHONPATH=str(Path(tree) / "src"))
    argv = [sys.executable, __file__, "--json", "--calls", str(args.calls)]
    argv += ["--rounds", str(args.rounds)] + (["--by-hash"] if args.by_hash else [])
    argv += ["--phi"] if args.phi else []
    done = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        sys.exit(f"run under {tree} failed:\n{done.stderr}")
    result = json.loads(done.stdout)
    if result["check"] != _CHECKS.setdefault("check", result["check"]):
        sys.exit(f"the two trees decide differently: {_CHECKS['check']} vs {result['check']}")
    rows = result["rounds"]
    return {name: _median(rows, name) for name in _columns(rows)}


_CHECKS: dict[str, str] = {}


def _ab(args: argparse.Namespace) -> None:
    trees = {"A": args.ab[0], "B": args.ab[1]}
    runs: dict[str, list[dict[str, float]]] = {"A": [], "B": []}
    print(f"load average at start: {_load_average()}")
    for tree, path in trees.items():
        print(f"{tree}: {path}")
    for _ in range(args.runs):
        for side in ("A", "B"):
            runs[side].append(_child(trees[side], args))
            row = runs[side][-1]
            print(
                f"run {side}{len(runs[side])}: process {row['process']:.1f} us, request "
                f"{row['request']:.1f} us per call (load {_load_average()})",
                flush=True,
            )
    print(f"check: {_CHECKS['check']}")
    names = _columns(runs["A"] + runs["B"])
    print()
    print("| CPU us per Decide | A median | A runs | B median | B runs | B/A |")
    print("| --- | --- | --- | --- | --- | --- |")
    for name in names:
        a, b = _median(runs["A"], name), _median(runs["B"], name)
        spread = {
            side: "-".join(
                f"{v:.0f}"
                for v in (min(r.get(name, 0) for r in rs), max(r.get(name, 0) for r in rs))
            )
            for side, rs in runs.items()
        }
        ratio = b / a if a else float("nan")
        print(f"| {name} | {a:.1f} | {spread['A']} | {b:.1f} | {spread['B']} | {ratio:.3f} |")
    print()
    print(f"load average at end: {_load_average()} ({os.cpu_count()} cores)")


def main(argv: list[str] | None = None, run: Callable[..., dict[str, Any]] = measure) -> None:
    """Print the per-thread CPU table of one tree, or the A/B table of two."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="smoke run: 20 calls, 1 round")
    parser.add_argument("--calls", type=int, help="calls per round (default 300; quick 20)")
    parser.add_argument("--rounds", type=int, help="rounds per run (default 5; quick 1)")
    parser.add_argument("--by-hash", action="store_true", help="send roster_sha256, not roster")
    parser.add_argument("--phi", action="store_true", help="PHI attributes new on every call")
    parser.add_argument("--ab", nargs=2, metavar="TREE", help="compare two source trees")
    parser.add_argument("--runs", type=int, default=3, help="--ab: runs per tree, alternating")
    parser.add_argument("--json", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.calls = args.calls or (20 if args.quick else 300)
    args.rounds = args.rounds or (1 if args.quick else 5)
    if args.ab:
        _ab(args)
        return
    if args.json:
        print(json.dumps(run(args.calls, args.rounds, hashed=args.by_hash, phi=args.phi)))
        return
    print(f"load average at start: {_load_average()}")
    _print_single(run(args.calls, args.rounds, hashed=args.by_hash, phi=args.phi), args)
    print(f"load average at end: {_load_average()} ({os.cpu_count()} cores)")


if __name__ == "__main__":
    main()
