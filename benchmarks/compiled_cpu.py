"""CPU of the hot paths as pure Python and compiled with mypyc, side by side (issue 13).

Usage: .venv/bin/python benchmarks/compiled_cpu.py [--quick] [--modules cold|brief|wide]
                                                    [--runs 5] [--agents 1000] [--calls 200]
       .venv/bin/python benchmarks/compiled_cpu.py --ab PURE_TREE COMPILED_TREE [...]

Issue 13's remaining targets sit on pure-Python work done per call (target 2) or per agent
(target 3), and ``docs/benchmarks.md`` said target 3 "needs compiled code". The code base is
``mypy --strict`` clean, which is what mypyc (part of mypy, a dev dependency) compiles. This
script answers, with figures, what compiling the hot modules buys.

It copies this checkout's ``src/`` (and ``pyproject.toml``, for mypy's settings) into a
temporary directory, compiles ``--modules`` there in place with ``python -m mypyc`` (timed),
and then runs three measurements in child processes, the pure tree (``src/`` of this checkout)
and the compiled copy ALTERNATING (pure, compiled, pure, ...), ``--runs`` each; ``--ab`` takes
two trees instead (the second already compiled, e.g. a kept copy). Each child reports:

- ``convert all-new``: thread CPU per agent of ``fast.known_agents_from_proto`` (conversion,
  canonical JSON and digest in one pass) on ``--agents`` agents never seen, median over 9
  fresh rosters;
- ``cold all-new``: process CPU per agent of a whole cold ``RoutingServicer.Decide`` of a
  roster whose agents are all new (``grpc_bench.cold_body``, as ``cold_roster.py``: the
  roster cache, the index, deciding, the record with fsync, the reply), median of 5 calls;
- ``warm request`` / ``warm process``: ``warm_cpu.measure`` (a warm 100-agent Decide, decision
  log on): the request thread's CPU and every thread's, median over 3 rounds of ``--calls``.

Each child also says how many of the ``--modules`` it imported as extension modules, so a
"compiled" run that silently fell back to ``.py`` is caught (the table's ``compiled`` row).
Each run is summarised per metric by its median sample and by its best (least CPU); the table
prints per side the median over runs of each (and their spread), the ratio compiled / pure,
the compile time and the load average before and after. CPU figures: on a shared machine only
the ratios within one run count.

Module sets (``--modules``): ``cold`` is the all-new agent path (``wire/fast``,
``domain/fingerprint``, ``domain/slots``, ``engine/roster_index``); ``brief`` adds the warm
path's ``engine/selection``, ``ranking``, ``matching``, ``wire/convert`` and
``audit/recorder`` (``engine/trace`` and ``audit/record`` do not compile unchanged: a weakly
referenced slotted dataclass, and ``__slots__`` read through the class); ``wide`` adds
every other module of the request path that compiles unchanged (codec, fast_dict,
decision_codec, masking, routing, the engine's decide, signals, continuity, relaxation,
licensing, facts, request_bytes).

What the first comparison found (2026-12-01, issue 13 third pass): mypyc compiles the sets
above unchanged, but buys at most ~1.15-1.25x on the compiled functions themselves and nothing
resolvable on a warm Decide's request thread, below the 1.3x that would justify shipping a
compiled build. Compiled code also behaves differently: it checks annotations at run time, so
values of another type (an ``int`` where ``bool`` is annotated, a ``float`` capacity, a masked
whole case that is a text where ``dict`` is annotated) raise ``TypeError`` where Python took
the general path (4 tests of ``tests/wire``, ``engine``, ``domain`` and ``audit`` fail on the
``brief`` set). The ``wide`` set fails 3 more: a 400-digit integer in a case field raises
``TypeError`` in ``domain/reader.py`` (``finite`` takes a float), an internal error where the
caller must get the field's error, and unpickling a ``Masker`` raises
``FrozenInstanceError``. ``TracePlan`` (a weakly referenced slotted dataclass) and
``audit/record.py`` (``__slots__`` read through the class) need source edits; compiling the
value types (``domain/roster``, ``case``) breaks ``domain.slots``, whose ``object.__new__``
refuses a native class.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

BENCHMARKS = Path(__file__).resolve().parent
ROOT = BENCHMARKS.parent

COLD = (
    "wire/fast",
    "domain/fingerprint",
    "domain/slots",
    "engine/roster_index",
)
BRIEF = (
    *COLD,
    "engine/selection",
    "engine/ranking",
    "engine/matching",
    "wire/convert",
    "audit/recorder",
)
WIDE = (
    *BRIEF,
    "engine/decide",
    "engine/continuity",
    "engine/licensing",
    "engine/relaxation",
    "engine/signals",
    "engine/facts",
    "domain/codec",
    "domain/fast_dict",
    "domain/decision_codec",
    "domain/field_reader",
    "domain/reader",
    "wire/request_bytes",
    "audit/masking",
    "service/routing",
)
MODULE_SETS = {"cold": COLD, "brief": BRIEF, "wide": WIDE, "quick": ("domain/slots",)}
"""``quick`` (the smoke run's): one small module, so the build takes seconds."""

METRICS = ("convert all-new", "cold all-new", "warm request", "warm process")
UNITS = {
    "convert all-new": "us/agent",
    "cold all-new": "us/agent",
    "warm request": "us/call",
    "warm process": "us/call",
}


def load_average() -> str:
    """The 1, 5 and 15 minute load averages."""
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def build(tree: Path, modules: tuple[str, ...], into: Path) -> float:
    """Copy ``tree``'s ``src`` and mypy settings into ``into`` and compile ``modules`` there.

    The copy's ``rulesets`` links to ``tree``'s (the reference ruleset the runs decide with).

    Returns:
        The compile's wall time in seconds.
    """
    shutil.copytree(
        tree / "src", into / "src", ignore=shutil.ignore_patterns("__pycache__", "*.so")
    )
    shutil.copy2(tree / "pyproject.toml", into / "pyproject.toml")
    # caseroute.testing finds the reference ruleset beside src/ (REPO_ROOT) in a checkout.
    (into / "rulesets").symlink_to(tree / "rulesets", target_is_directory=True)
    paths = [f"src/caseroute/{name}.py" for name in modules]
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "mypyc", *paths],
        cwd=into,
        capture_output=True,
        text=True,
        check=False,
    )
    took = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"mypyc failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    return took


def compiled_count(modules: tuple[str, ...]) -> int:
    """How many of ``modules`` this process imports as extension modules (not ``.py``)."""
    count = 0
    for name in modules:
        module = importlib.import_module("caseroute." + name.replace("/", "."))
        count += not str(module.__file__).endswith(".py")
    return count


def _convert(agents: int) -> list[float]:
    """Thread CPU us per agent of the one-pass converter, on each of 9 fresh all-new rosters."""
    from caseroute.domain.limits import DEFAULT_LIMITS
    from caseroute.v1 import routing_pb2 as pb
    from caseroute.wire import fast
    from grpc_bench import cold_body

    rosters = [pb.DecideRequest.FromString(cold_body(agents, n, "new")).roster for n in range(10)]
    fast.known_agents_from_proto(rosters[0].agents, DEFAULT_LIMITS)  # imports, caches
    times = []
    for roster in rosters[1:]:
        start = time.thread_time()
        fast.known_agents_from_proto(roster.agents, DEFAULT_LIMITS)
        times.append((time.thread_time() - start) * 1e6 / agents)
    return times


def _cold(agents: int) -> list[float]:
    """Process CPU us per agent of each of 5 whole cold Decides of all-new agents."""
    from caseroute.engine.case_rules import EngineKind
    from caseroute.grpc_api import servicer as servicer_module
    from caseroute.grpc_api.servicer import RoutingServicer
    from caseroute.registry import RulesetRegistry
    from caseroute.testing import audited_core, reference_ruleset
    from caseroute.v1 import routing_pb2 as pb
    from grpc_bench import cold_body, decide_body, with_request_id
    from profile_decide import StubContext

    parse = servicer_module.request_deserializer(pb.DecideRequest)
    context: Any = StubContext()
    registry = RulesetRegistry()
    registry.add(reference_ruleset(EngineKind.DURABLE))
    bodies = [cold_body(agents, n, "new") for n in range(1, 6)]
    times = []
    with tempfile.TemporaryDirectory() as tmp:
        servicer = RoutingServicer(audited_core(registry, Path(tmp)))
        for serial, body in enumerate([decide_body(agents), *bodies]):
            start = time.process_time()
            request: Any = parse(with_request_id(body, f"compiled-{serial}"))
            servicer.Decide(request, context).SerializeToString()
            times.append((time.process_time() - start) * 1e6 / agents)
        servicer._core.audit.close()  # noqa: SLF001 - ends the writer thread
    registry.close()
    return times[1:]  # the first call warms the server up


def child(args: argparse.Namespace) -> dict[str, Any]:
    """One run's figures in this process (PYTHONPATH at one tree's ``src``)."""
    sys.path.insert(0, str(BENCHMARKS))
    from warm_cpu import measure

    modules = MODULE_SETS[args.modules]
    warm = measure(args.calls, 5, hashed=False)
    rounds = warm["rounds"]
    return {
        "compiled": compiled_count(modules),
        "check": warm["check"],
        "convert all-new": _convert(args.agents),
        "cold all-new": _cold(args.agents),
        "warm request": [r["request"] for r in rounds],
        "warm process": [r["process"] for r in rounds],
    }


def _run(tree: Path, args: argparse.Namespace) -> dict[str, Any]:
    """One child run under ``tree/src``: per metric the median and the best of its samples."""
    env = dict(os.environ, PYTHONPATH=str(tree / "src"))
    argv = [sys.executable, __file__, "--child", "--modules", args.modules]
    argv += ["--agents", str(args.agents), "--calls", str(args.calls)]
    done = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        sys.exit(f"run under {tree} failed:\n{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(done.stdout)
    for metric in METRICS:
        samples = result.pop(metric)
        result[f"{metric} median"] = statistics.median(samples)
        result[f"{metric} best"] = min(samples)
    return result


ROWS = tuple(f"{metric} {kind}" for metric in METRICS for kind in ("median", "best"))
"""Each metric by its run's median sample, and by its best: CPU time taken from a run by other
processes (a shared machine's caches, its scheduler) only ever adds, so the best sample is the
steadier figure when the load is high; the ratios of both are printed."""


def compare(pure: Path, compiled: Path, args: argparse.Namespace) -> None:
    """Alternate runs of both trees and print the table."""
    runs: dict[str, list[dict[str, Any]]] = {"pure": [], "compiled": []}
    for _ in range(args.runs):
        for side, tree in (("pure", pure), ("compiled", compiled)):
            row = _run(tree, args)
            runs[side].append(row)
            print(
                f"run {side} {len(runs[side])}: "
                + ", ".join(f"{m} {row[m + ' median']:.1f}" for m in METRICS)
                + f" (load {load_average()})",
                flush=True,
            )
    checks = {row["check"] for rows in runs.values() for row in rows}
    if len(checks) != 1:
        sys.exit(f"the trees decide differently: {sorted(checks)}")
    print(f"check: {checks.pop()}")
    modules = MODULE_SETS[args.modules]
    print()
    print("| CPU (median of runs) | unit | pure | pure runs | compiled | compiled runs | ratio |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for name in ROWS:
        cells, medians = [], []
        for side in ("pure", "compiled"):
            values = [row[name] for row in runs[side]]
            medians.append(statistics.median(values))
            cells += [f"{medians[-1]:.1f}", f"{min(values):.1f}-{max(values):.1f}"]
        unit = UNITS[name.rsplit(" ", 1)[0]]
        ratio = medians[1] / medians[0]
        print(f"| {name} | {unit} | " + " | ".join(cells) + f" | {ratio:.3f} |")
    counts = [
        "/".join(str(c) for c in sorted({row["compiled"] for row in runs[side]}))
        for side in ("pure", "compiled")
    ]
    print(f"| compiled modules | of {len(modules)} | {counts[0]} | - | {counts[1]} | - | - |")


def main(argv: list[str] | None = None) -> None:
    """Build a compiled copy (or take two trees) and print the alternating A/B table."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="smoke run: tiny build and runs")
    parser.add_argument("--modules", choices=sorted(MODULE_SETS), help="default brief")
    parser.add_argument("--runs", type=int, help="runs per side, alternating (default 9)")
    parser.add_argument("--agents", type=int, help="all-new roster size (default 1000)")
    parser.add_argument("--calls", type=int, help="warm calls per round (default 200)")
    parser.add_argument("--ab", nargs=2, metavar="TREE", help="pure tree, compiled tree")
    parser.add_argument("--keep", metavar="DIR", help="build the compiled copy in DIR, keep it")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.modules = args.modules or ("quick" if args.quick else "brief")
    args.runs = args.runs or (1 if args.quick else 9)
    args.agents = args.agents or (100 if args.quick else 1000)
    args.calls = args.calls or (5 if args.quick else 200)
    if args.child:
        print(json.dumps(child(args)))
        return
    print(f"load average at start: {load_average()}")
    modules = MODULE_SETS[args.modules]
    print(f"modules ({args.modules}): {' '.join(modules)}")
    if args.ab:
        compare(Path(args.ab[0]), Path(args.ab[1]), args)
    else:
        with tempfile.TemporaryDirectory() as scratch:
            into = Path(args.keep) if args.keep else Path(scratch)
            took = build(ROOT, modules, into)
            print(f"compile: {took:.1f} s wall (python -m mypyc, {len(modules)} modules)")
            compare(ROOT, into, args)
    print()
    print(f"load average at end: {load_average()} ({os.cpu_count()} cores)")


if __name__ == "__main__":
    main()
