"""Two trees' conversion of new agents, in one process, alternating (issue 13 target 3).

Usage: .venv/bin/python benchmarks/convert_ab.py TREE_A TREE_B [--rosters 20] [--rounds 15]
[--agents 1000]

``wire/fast.py`` of each tree is loaded as its own module (the rest of ``caseroute`` is this
checkout's), and ``known_agents_from_proto`` of each converts the same rosters of all-new
agents (``grpc_bench.cold_body(..., "new")``: every agent's id and ``last_assigned_at`` never
seen) alternately, A then B on even rounds and B then A on odd ones. Thread CPU per roster;
prints the median per agent of each and B/A. A change to that one file is measured without
the 1.5-2x swings between separate processes on a shared host (``cold_roster.py --ab`` runs
whole processes); pass the same tree twice for an A/A check of the harness.
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

BENCHMARKS = Path(__file__).resolve().parent


def _converter(name: str, tree: Path) -> Callable[..., Any]:
    """``known_agents_from_proto`` of ``tree``'s ``wire/fast.py``, loaded as module ``name``."""
    path = tree / "src" / "caseroute" / "wire" / "fast.py"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise SystemExit(f"cannot load {path}: pass a caseroute checkout")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    converter: Callable[..., Any] = module.known_agents_from_proto
    return converter


def main() -> None:
    """Time both converters on the same rosters, alternating, and print the medians."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("trees", type=Path, nargs=2, metavar="TREE")
    parser.add_argument("--rosters", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--agents", type=int, default=1000)
    args = parser.parse_args()
    sys.path.insert(0, str(BENCHMARKS))
    from caseroute.domain.limits import InputLimits
    from caseroute.v1 import routing_pb2 as pb
    from grpc_bench import cold_body

    load = " ".join(Path("/proc/loadavg").read_text().split()[:3])
    a, b = _converter("fast_a", args.trees[0]), _converter("fast_b", args.trees[1])
    limits = InputLimits()
    rosters = [
        pb.DecideRequest.FromString(cold_body(args.agents, n, "new")).roster.agents
        for n in range(1, args.rosters + 1)
    ]
    times: dict[str, list[int]] = {"A": [], "B": []}
    for round_number in range(args.rounds):
        pair = (("A", a), ("B", b)) if round_number % 2 == 0 else (("B", b), ("A", a))
        for agents in rosters:
            for label, convert in pair:
                started = time.thread_time_ns()
                convert(agents, limits)
                times[label].append(time.thread_time_ns() - started)
    per_agent = {k: statistics.median(v) / 1000 / args.agents for k, v in times.items()}
    print(f"load {load}")
    print(f"A {args.trees[0]}: {per_agent['A']:.2f} us per agent")
    print(f"B {args.trees[1]}: {per_agent['B']:.2f} us per agent")
    print(f"B/A {per_agent['B'] / per_agent['A']:.3f}")
    print("load " + " ".join(Path("/proc/loadavg").read_text().split()[:3]))


if __name__ == "__main__":
    main()
