"""What idling between calls costs the same in-process work on this host (issue 13, target 1).

Usage: .venv/bin/python benchmarks/idle_penalty.py [--rounds 6] [--calls 150]

A served Decide with one client runs after its thread waited: for the client's next request
(~0.8 ms of round trip) and, inside the call, for the decision log's fsync. This script times
the same warm work after each kind of wait, in interleaved rounds (every mode once per round, in
turn), and prints per mode the median wall and thread CPU of a call and its ratio to ``none``:

- ``none``: back to back;
- ``sleep 0.2 ms``, ``sleep 1 ms``, ``sleep 5 ms``: ``time.sleep`` first (the thread idles; on
  a VM the vCPU may halt);
- ``busy 1 ms``: a 1 ms loop on ``perf_counter`` first (the thread stays on the CPU but runs
  other, tiny code).

Two pieces of work: ``decide`` (``engine.decide`` alone on the 100-agent benchmark case,
``decide_stages.stage_calls``) and ``Decide`` (the servicer's whole in-process Decide with its
SQLite decision log, as ``profile_decide.py`` calls it: parse, decide, record, commit, reply).

The host's idle settings are printed with the figures: the cpuidle driver and governor, and
``guest_halt_poll_ns`` when the haltpoll driver is in use (0: a vCPU halts as soon as it idles).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

BENCHMARKS = Path(__file__).resolve().parent

MODES: dict[str, Callable[[], None]] = {}
"""Mode name -> what runs before each timed call (filled below)."""


def _busy(seconds: float) -> None:
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


MODES["none"] = lambda: None
MODES["sleep 0.2 ms"] = lambda: time.sleep(0.0002)
MODES["sleep 1 ms"] = lambda: time.sleep(0.001)
MODES["sleep 5 ms"] = lambda: time.sleep(0.005)
MODES["busy 1 ms"] = lambda: _busy(0.001)


def _read(path: str) -> str:
    try:
        return Path(path).read_text().strip()
    except OSError:
        return "-"


def host_idle() -> str:
    """The cpuidle driver, governor and halt-poll window, as the kernel reports them."""
    driver = _read("/sys/devices/system/cpu/cpuidle/current_driver")
    governor = _read("/sys/devices/system/cpu/cpuidle/current_governor_ro")
    poll = _read("/sys/module/haltpoll/parameters/guest_halt_poll_ns")
    return f"cpuidle driver {driver}, governor {governor}, guest_halt_poll_ns {poll}"


def _load() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def _served_decide(tmp: Path) -> tuple[Callable[[], object], Callable[[], None]]:
    """The servicer's in-process Decide on the warm 100-agent case, and its closer."""
    sys.path.insert(0, str(BENCHMARKS))
    from caseroute.engine.case_rules import EngineKind
    from caseroute.grpc_api.servicer import RoutingServicer, request_deserializer
    from caseroute.registry import RulesetRegistry
    from caseroute.testing import audited_core, reference_ruleset
    from caseroute.v1 import routing_pb2 as pb
    from grpc_bench import decide_body, with_request_id
    from profile_decide import StubContext

    parse = request_deserializer(pb.DecideRequest)
    body = decide_body(100)
    context: Any = StubContext()
    registry = RulesetRegistry()
    registry.add(reference_ruleset(EngineKind.DURABLE))
    servicer = RoutingServicer(audited_core(registry, tmp))
    serial = 0

    def call() -> object:
        nonlocal serial
        serial += 1
        return servicer.Decide(parse(with_request_id(body, f"idle-{serial}")), context)

    def close() -> None:
        servicer._core.audit.close()  # noqa: SLF001 - ends the writer thread
        registry.close()

    return call, close


def measure(work: Callable[[], object], rounds: int, calls: int) -> dict[str, tuple[float, float]]:
    """Per mode: median wall and thread CPU of one call (us), over interleaved rounds."""
    for _ in range(50):
        work()
    timed: dict[str, list[tuple[int, int]]] = {mode: [] for mode in MODES}
    for _ in range(rounds):
        for mode, before in MODES.items():
            for _ in range(calls):
                before()
                wall, cpu = time.perf_counter_ns(), time.thread_time_ns()
                work()
                timed[mode].append((time.perf_counter_ns() - wall, time.thread_time_ns() - cpu))
    return {
        mode: (
            statistics.median(w for w, _ in pairs) / 1000,
            statistics.median(c for _, c in pairs) / 1000,
        )
        for mode, pairs in timed.items()
    }


def report(name: str, figures: dict[str, tuple[float, float]]) -> None:
    """One markdown table: per mode the medians and their ratio to back-to-back calls."""
    base_wall, base_cpu = figures["none"]
    print(f"\n### {name}\n")
    print("| before each call | wall us | thread CPU us | wall / none | CPU / none |")
    print("| --- | --- | --- | --- | --- |")
    for mode, (wall, cpu) in figures.items():
        print(
            f"| {mode} | {wall:,.0f} | {cpu:,.0f} | {wall / base_wall:.2f} | {cpu / base_cpu:.2f} |"
        )


def main() -> None:
    """Measure both pieces of work in every mode and print the tables."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--calls", type=int, default=150, help="calls per mode and round")
    args = parser.parse_args()
    sys.path.insert(0, str(BENCHMARKS))
    from decide_stages import stage_calls

    print(f"load {_load()}; {host_idle()}")
    engine = stage_calls(args.rounds * args.calls * len(MODES) + 100)["decide"]
    report("engine.decide alone (100 agents, SUMMARY)", measure(engine, args.rounds, args.calls))
    with tempfile.TemporaryDirectory() as tmp:
        served, close = _served_decide(Path(tmp))
        try:
            figures = measure(served, args.rounds, args.calls)
        finally:
            close()
    report("the servicer's whole Decide in process, SQLite log on", figures)
    print(f"\nload {_load()}")


if __name__ == "__main__":
    main()
