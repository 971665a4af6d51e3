"""The served Decide's handler -> decided work, stage by stage, in process: medians per call.

Usage: .venv/bin/python benchmarks/decide_stages.py [--calls 2000] [--rounds 5] [--cold-kib 0]
       .venv/bin/python benchmarks/decide_stages.py --ab TREE_A TREE_B [--runs 6] [...]

The warm 100-agent benchmark case (``grpc_bench.decide_body``), the reference ruleset with
durable_rules as the engine of record, and each piece of what ``served_latency.py --fine``
stamps between the handler and ``decided``, called on its own: ``case`` (``case_from_proto``
of a freshly parsed request's case message, as served), ``canonical`` (``routing._canonical``
of a command with a fresh case), ``hashes`` (the
request hash, keyed, and the input hash), ``decide`` (``engine.decide``, SUMMARY),
``evaluate`` (``LoadedRuleset.evaluate``: durable_rules and the Python cross-check, part of
``decide``) and ``mask`` (``mask_decision``). Every call is timed alone with
``perf_counter_ns``; a stage's figure is the median over its calls (a call the host
interrupted lands in the tail, not the median), then the median over rounds.

``--cold-kib N`` writes N KiB of other memory before each timed call (what the rest of a
served call does to the CPU caches between two decisions: ``cold_cache.py``).

``--ab TREE_A TREE_B`` runs this script once per tree per run, alternating (A, B, A, B...),
each a child with ``PYTHONPATH`` at that tree's ``src``, and prints per stage the median over
runs and B/A, and the lowest run of each (the shared host slows whole runs by 1.5-2x at times:
the lowest runs are the ones it left alone), with the load average before and after.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

BENCHMARKS = Path(__file__).resolve().parent

STAGES = ("case", "canonical", "hashes", "decide", "evaluate", "mask")
"""The pieces timed, in the order a served Decide runs them (``evaluate`` is inside decide)."""


def _load() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def stage_calls(fresh_count: int) -> dict[str, Callable[[], object]]:
    """One zero-argument call per stage, on the benchmark case, warm.

    Args:
        fresh_count: Calls the case and canonical stages must each find a fresh message for.
    """
    sys.path.insert(0, str(BENCHMARKS))
    from caseroute.audit.masking import Masker, mask_decision
    from caseroute.domain.fingerprint import input_sha256_of
    from caseroute.engine.case_rules import EngineKind
    from caseroute.engine.decide import decide
    from caseroute.engine.facts import build_case_fact
    from caseroute.engine.signals import derive_signals
    from caseroute.service import routing
    from caseroute.testing import reference_ruleset
    from caseroute.v1 import routing_pb2 as pb
    from caseroute.wire import convert
    from grpc_bench import decide_body

    ruleset = reference_ruleset(EngineKind.DURABLE)
    request = pb.DecideRequest.FromString(decide_body(100))
    request.request_id = "stages"
    cmd = convert.decide_command(request)
    case, roster, now = cmd.cases[0], cmd.roster, cmd.now
    assert now is not None  # noqa: S101 - the benchmark request carries now
    canonical = routing._canonical(cmd)  # noqa: SLF001 - the served path's own step
    masker = Masker(b"stages-benchmark-key-0123456789ab")
    compiled = ruleset.compiled
    fact = build_case_fact(case, derive_signals(case, compiled.signals, now), compiled.attributes)

    def engine() -> Any:
        return decide(
            case, roster, ruleset, now, agent_detail=False, decision_id="d", input_hash="h"
        )

    decision = engine()

    def hashes() -> object:
        keyed = masker.keyed_hash(routing._request_sha256(cmd, canonical))  # noqa: SLF001
        return keyed, input_sha256_of(canonical.texts[0], canonical.roster)

    # Served, every request is parsed anew: its case message's fields are read for the first
    # time (upb builds each sub-message's Python object on first access). So the case stage
    # converts a freshly parsed message per call, and the canonical stage takes fresh cases.
    body = request.case.SerializeToString()
    fresh = iter([pb.Case.FromString(body) for _ in range(fresh_count)])
    commands = iter(
        [
            replace(cmd, cases=(convert.case_from_proto(pb.Case.FromString(body)),))
            for _ in range(fresh_count)
        ]
    )

    def case_stage() -> object:
        return convert.case_from_proto(next(fresh))

    def canonical_stage() -> object:
        return routing._canonical(next(commands))  # noqa: SLF001 - as above

    return {
        "case": case_stage,
        "canonical": canonical_stage,
        "hashes": hashes,
        "decide": engine,
        "evaluate": lambda: ruleset.evaluate(fact),
        "mask": lambda: mask_decision(decision, canonical.cases[0], masker),
    }


def measure(calls: int, rounds: int, cold_kib: int) -> dict[str, float]:
    """Per stage, the median over rounds of the median call (us)."""
    todo = stage_calls(rounds * (calls + max(20, calls // 10)))
    other = bytearray(cold_kib * 1024)
    now = time.perf_counter_ns
    per_round: dict[str, list[float]] = {name: [] for name in todo}
    for _ in range(rounds):
        for name, call in todo.items():
            for _ in range(max(20, calls // 10)):
                call()
            times = []
            for i in range(calls):
                if cold_kib:
                    other[i % 64 :: 64] = b"\x01" * len(other[i % 64 :: 64])
                start = now()
                call()
                times.append(now() - start)
            per_round[name].append(statistics.median(times) / 1e3)
    return {name: statistics.median(values) for name, values in per_round.items()}


def _ab(args: argparse.Namespace) -> None:
    trees = [str(Path(t).resolve()) for t in args.ab]
    print("load", _load(), flush=True)
    # By position: the same tree may be given twice (an A/A run shows the noise).
    results: list[list[dict[str, float]]] = [[], []]
    for run in range(args.runs):
        for side, tree in enumerate(trees):
            env = {**os.environ, "PYTHONPATH": str(Path(tree) / "src")}
            argv = [sys.executable, __file__, "--json", "--calls", str(args.calls)]
            argv += ["--rounds", str(args.rounds), "--cold-kib", str(args.cold_kib)]
            out = subprocess.run(argv, capture_output=True, text=True, check=True, env=env)
            results[side].append(json.loads(out.stdout))
            row = " ".join(f"{k} {v:.1f}" for k, v in results[side][-1].items())
            print(f"run {run + 1} {'AB'[side]}: {row}", flush=True)
    print("load", _load())
    print(f"medians over {args.runs} alternating runs, us per call (cold {args.cold_kib} KiB)")
    print("| stage | A median | B median | B/A | A lowest run | B lowest run | B/A |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for name in STAGES:
        a = [r[name] for r in results[0]]
        b = [r[name] for r in results[1]]
        mid_a, mid_b, low_a, low_b = statistics.median(a), statistics.median(b), min(a), min(b)
        print(
            f"| {name} | {mid_a:.1f} | {mid_b:.1f} | {mid_b / mid_a:.3f} | {low_a:.1f} | "
            f"{low_b:.1f} | {low_b / low_a:.3f} |"
        )


def main() -> None:
    """Measure here, or alternate two trees."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=2000, help="timed calls per stage per round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--cold-kib", type=int, default=0, help="memory written before a call")
    parser.add_argument("--runs", type=int, default=6, help="--ab: runs per tree")
    parser.add_argument("--ab", nargs=2, metavar="TREE", help="alternate runs of two trees")
    parser.add_argument("--quick", action="store_true", help="smoke run: 20 calls, 1 round")
    parser.add_argument("--json", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.quick:
        args.calls, args.rounds, args.runs = 20, 1, 1
    if args.ab:
        _ab(args)
        return
    result = measure(args.calls, args.rounds, args.cold_kib)
    if args.json:
        print(json.dumps(result))
        return
    print("load", _load())
    for name in STAGES:
        print(f"{name:10s} {result[name]:8.1f} us")


if __name__ == "__main__":
    main()
