"""Median and p99 latency of decide() by roster size, engine and explanation detail.

Usage: .venv/bin/python benchmarks/decide_latency.py [--repeats N]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from functools import partial

from caseroute.engine.case_rules import EngineKind
from caseroute.engine.decide import decide
from caseroute.engine.facts import build_case_fact
from caseroute.engine.signals import derive_signals
from caseroute.testing import NOW, reference_ruleset
from roster_gen import make_bench_case, make_bench_roster


def _time(fn: Callable[[], object], repeats: int) -> tuple[float, float]:
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    samples.sort()
    return statistics.median(samples) * 1e3, samples[int(len(samples) * 0.99) - 1] * 1e3


def main() -> None:
    """Print a markdown table of timings."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=300)
    args = parser.parse_args()
    rulesets = {kind: reference_ruleset(kind) for kind in EngineKind}
    case = make_bench_case()

    compiled = rulesets[EngineKind.DURABLE].compiled
    fact = build_case_fact(case, derive_signals(case, compiled.signals, NOW), compiled.attributes)
    print("| case-rule evaluation only (8 leaves) | median ms | p99 ms |")
    print("| --- | --- | --- |")
    for kind in EngineKind:
        med, p99 = _time(partial(rulesets[kind].evaluate, fact), args.repeats * 10)
        print(f"| {kind.value} | {med:.4f} | {p99:.4f} |")

    print()
    print("| roster | engine | agent detail | decide median ms | p99 ms |")
    print("| --- | --- | --- | --- | --- |")
    for size in (10, 100, 1000, 5000):
        roster = make_bench_roster(size)
        repeats = max(20, args.repeats // max(1, size // 100))
        for kind in EngineKind:
            for detail in (True, False):
                run = partial(decide, case, roster, rulesets[kind], NOW, agent_detail=detail)
                med, p99 = _time(run, repeats)
                print(
                    f"| {size} | {kind.value} | {'on' if detail else 'off'} | {med:.3f} | "
                    f"{p99:.3f} |"
                )


if __name__ == "__main__":
    main()
