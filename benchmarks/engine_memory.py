"""RSS over many decisions through durable_rules: sessions must not leak.

Usage: .venv/bin/python benchmarks/engine_memory.py [--decisions 100000] [--roster 10]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from caseroute.engine.case_rules import EngineKind
from caseroute.engine.decide import decide
from caseroute.testing import NOW, reference_ruleset
from roster_gen import make_bench_case, make_bench_roster


def rss_mb() -> float:
    """Resident set size of this process in MiB (Linux)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main() -> None:
    """Decide many cases, printing RSS every tenth of the run."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--decisions", type=int, default=100_000)
    parser.add_argument("--roster", type=int, default=10)
    args = parser.parse_args()
    ruleset = reference_ruleset(EngineKind.DURABLE)
    roster = make_bench_roster(args.roster)
    cases = [make_bench_case(n) for n in range(100)]
    step = max(1, args.decisions // 10)
    print("| decisions | RSS MiB | elapsed s |")
    print("| --- | --- | --- |")
    start = time.perf_counter()
    print(f"| 0 | {rss_mb():.1f} | 0 |")
    for i in range(1, args.decisions + 1):
        decide(cases[i % 100], roster, ruleset, NOW)
        if i % step == 0:
            print(f"| {i} | {rss_mb():.1f} | {time.perf_counter() - start:.1f} |", flush=True)


if __name__ == "__main__":
    main()
