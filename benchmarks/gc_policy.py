"""What a policy for Python's cyclic garbage collector buys a served Decide, cold and warm.

Usage: .venv/bin/python benchmarks/gc_policy.py [--variants base,freeze,t50k] [--runs 4]
                                                 [--rounds 8] [--calls 8] [--agents 1000]
                                                 [--quick]

Each run is one child process running ``cold_served.py``'s measurement (the server built as
``caseroute serve --workers 1`` builds it, one client process on loopback, the same calls in
process beside it) under one variant of the collector's policy, applied in that process:

- ``base``: the interpreter's defaults (thresholds 700, 10, 10);
- ``freeze``: ``gc.collect()`` then ``gc.freeze()`` once the rulesets are loaded, before the
  first call (what ``--gc-freeze`` would do at a worker's start);
- ``tA_B_C``: ``gc.set_threshold(A, B, C)`` at the process's start (``t50000_20_100``);
- ``off``: ``gc.disable()`` (to count the cyclic garbage a run leaves: ``unreachable``);
- ``rosterfreeze``: ``gc.freeze()`` after every roster the cache parses (engineer A's probe:
  process-wide, library code, for comparison only);
- variants join with ``+`` (``freeze+t50000_20_100``).

Runs alternate the variants (A, B, C, A, B, C...). Per variant, for each case (``known`` and
``new``: first sights of a 1,000-agent roster; ``warm``: the first roster again) and way
(served, in process): the median over runs of each run's median, mean and p99 of the process
CPU per call, the p99 of the wall time per call, the mean GC wall per call, the count of full
collections and the most one took, the process's peak RSS (``ru_maxrss``) and the objects a
``gc.collect()`` finds unreachable after the last call, before the server stops (cyclic garbage
not yet collected; under ``off``, all the run made). Enough rosters
(``--rounds`` x ``--calls`` x 2 first-sight cases per way) fill the default roster cache
(100,000 agents) so eviction and the steady state's full collections are inside the run. The
machine is shared: compare variants within one run only.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from grpc_bench import load_average

FIGURES = ("cpu p50", "cpu mean", "cpu p99", "wall p99", "gc mean", "full gcs", "full gc max")
"""Per case and way, in us (``full gcs`` a count, ``full gc max`` in ms)."""


def _p99(values: list[float]) -> float:
    """The 99th percentile (nearest rank)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]


def _apply(variant: str) -> None:
    """Set the collector as the variant says (the start-up parts now, the rest by patching)."""
    from caseroute.grpc_api import roster_cache, server

    for part in variant.split("+"):
        if part.startswith("t"):
            gc.set_threshold(*(int(n) for n in part[1:].split("_")))
        elif part == "off":
            gc.disable()
        elif part == "freeze":
            load = server.RunningServer.load

            def load_then_freeze(self: Any, config: Any, _load: Any = load) -> None:
                _load(self, config)
                gc.collect()
                gc.freeze()

            server.RunningServer.load = load_then_freeze  # type: ignore[method-assign]
        elif part == "rosterfreeze":
            parse = roster_cache.RosterCache.parse

            def parse_then_freeze(self: Any, *args: Any, _parse: Any = parse, **kw: Any) -> Any:
                got = _parse(self, *args, **kw)
                gc.freeze()
                return got

            roster_cache.RosterCache.parse = parse_then_freeze  # type: ignore[method-assign]
        elif part != "base":
            sys.exit(f"unknown variant part {part!r}")


def _child(variant: str, args: argparse.Namespace) -> None:
    """Measure under one variant; print one JSON line of figures per case and way."""
    import cold_served

    _apply(variant)
    full: list[float] = []
    started = [0]

    def on_gc(phase: str, info: dict[str, int]) -> None:
        if info["generation"] != 2:  # the oldest generation: a full collection
            return
        if phase == "start":
            started[0] = time.perf_counter_ns()
        else:
            full.append((time.perf_counter_ns() - started[0]) / 1e6)

    gc.callbacks.append(on_gc)
    kept: dict[str, Any] = {}

    def report(paths: dict[tuple[str, str], Any], _agents: int) -> None:
        kept.update({f"{case}/{way}": path for (case, way), path in paths.items()})

    cold_served.report = report  # type: ignore[assignment]
    from caseroute.grpc_api import server

    stop = server.RunningServer.stop
    left: list[int] = []

    def count_then_stop(self: Any, *args: Any, _stop: Any = stop) -> bool:
        # Before the server's own objects turn to garbage: what the calls and start left.
        left.append(len(full))
        left.append(gc.collect())
        return bool(_stop(self, *args))

    server.RunningServer.stop = count_then_stop  # type: ignore[method-assign,assignment]
    measure = argparse.Namespace(agents=args.agents, rounds=args.rounds, calls=args.calls)
    measure.warm = args.warm
    with Path(os.devnull).open("w") as sink:
        stdout, sys.stdout = sys.stdout, sink
        try:
            cold_served._measure(measure)  # noqa: SLF001 - its run, our report
        finally:
            sys.stdout = stdout
    out: dict[str, Any] = {"rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
    for name, path in kept.items():
        cpu = path.rows["process CPU"]
        walls = [(marks["recv"] - marks["send"]) / 1e3 for marks, _ in path.calls]
        out[name] = {
            "cpu p50": statistics.median(cpu),
            "cpu mean": statistics.mean(cpu),
            "cpu p99": _p99(cpu),
            "wall p99": _p99(walls),
            "gc mean": statistics.mean(path.rows["GC wall"]),
        }
    out["full gcs"] = left[0]  # while calls were made (the count at stopping is not one)
    out["full gc max"] = max(full[: left[0]], default=0.0)
    out["unreachable"] = left[1]
    print(json.dumps(out))


def main() -> None:
    """Alternate the variants' runs; print each variant's medians over runs."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--variants", default="base,freeze,t50000_20_100")
    parser.add_argument("--runs", type=int, default=4, help="runs per variant, alternating")
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--calls", type=int, default=8, help="per case, way and round")
    parser.add_argument("--agents", type=int, default=1000)
    parser.add_argument("--warm", type=int, default=20)
    parser.add_argument("--quick", action="store_true", help="smoke: 100 agents, 1 x 2 calls")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.quick:
        args.runs, args.agents, args.rounds, args.calls, args.warm = 1, 100, 1, 2, 2
    if args.child:
        _child(args.child, args)
        return
    print("load", load_average(), flush=True)
    variants = args.variants.split(",")
    runs: dict[str, list[dict[str, Any]]] = {v: [] for v in variants}
    for _ in range(args.runs):
        for variant in variants:
            command = [sys.executable, __file__, *sys.argv[1:], "--child", variant]
            done = subprocess.run(command, capture_output=True, text=True, check=False)
            if done.returncode:  # a run that failed is left out, its error shown
                print(f"{variant}: failed: {done.stderr.strip()[-300:]}", flush=True)
                continue
            runs[variant].append(json.loads(done.stdout.splitlines()[-1]))
            print(f"{variant}: done, load {load_average()}", flush=True)
    print("load", load_average())
    print(f"medians over {args.runs} alternating runs per variant; us per call unless named")
    print()
    print("| variant | case/way | " + " | ".join(FIGURES[:5]) + " |")
    print("| --- | --- |" + " --- |" * 5)
    for variant, got in runs.items():
        if not got:
            continue
        for name in (k for k in got[0] if "/" in k):
            cells = (statistics.median(run[name][f] for run in got) for f in FIGURES[:5])
            print(f"| {variant} | {name} | " + " | ".join(f"{c:.0f}" for c in cells) + " |")
    print()
    print("| variant | full collections per run | longest, ms | peak RSS MB | unreachable |")
    print("| --- | --- | --- | --- | --- |")
    for variant, got in runs.items():
        if not got:
            continue
        count = statistics.median(run["full gcs"] for run in got)
        longest = statistics.median(run["full gc max"] for run in got)
        rss = statistics.median(run["rss_mb"] for run in got)
        left = statistics.median(run["unreachable"] for run in got)
        print(f"| {variant} | {count:.0f} | {longest:.1f} | {rss:.0f} | {left:.0f} |")


if __name__ == "__main__":
    main()
