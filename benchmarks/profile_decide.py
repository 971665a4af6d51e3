"""cProfile of the warm 100-agent Decide path in one process: where a call's time goes (issue 13).

Usage: .venv/bin/python benchmarks/profile_decide.py [--quick] [--calls 2000] [--top 20]

What one server worker does per Decide, minus the network: the request bytes are parsed with
the server's deserializer, ``RoutingServicer.Decide`` converts them, decides through
``RoutingCore`` (durable_rules engine of record, reference ruleset) and records the decision in
a real SQLite decision log in a temporary directory (committed with an fsync before the reply),
and the reply is serialised. A stub stands in for grpc's ServicerContext (no deadline, no peer
identity). The benchmark case against the warm 100-agent ranked roster (a ranked ASSIGN,
checked first), EXPLANATION_LEVEL_SUMMARY, a new request_id per call. Missing: grpc's own
per-call work (HTTP/2, the interceptors, the call log line), which the gRPC benchmark's empty
call measures.

Prints the median time per call without the profiler, then the top functions by cumulative
and by own time, in microseconds per Decide call.
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import re
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from caseroute.engine.case_rules import EngineKind
from caseroute.grpc_api import servicer as servicer_module
from caseroute.grpc_api.servicer import RoutingServicer
from caseroute.registry import RulesetRegistry
from caseroute.testing import audited_core, reference_ruleset
from caseroute.v1 import routing_pb2 as pb
from grpc_bench import decide_body, describe_assign, load_average, with_request_id

AGENTS = 100
THREAD_PROFILES: list[cProfile.Profile] = []
"""Profilers of threads started while ``_profile_new_thread`` was installed."""


class StubContext:
    """The parts of grpc.ServicerContext the Decide handler reads; a failure stops the run."""

    def time_remaining(self) -> float | None:
        """No deadline."""
        return None

    def is_active(self) -> bool:
        """The caller waits for the reply."""
        return True

    def peer_identities(self) -> None:
        """No TLS client certificate."""

    def invocation_metadata(self) -> tuple[()]:
        """No metadata."""
        return ()

    def set_trailing_metadata(self, _: Any) -> None:
        """Ignored: only failures set it, and they stop the run."""

    def set_code(self, code: Any) -> None:
        """A failed call ends the profile: the figures would be of an error path."""
        sys.exit(f"Decide failed in-process: {code}")

    def set_details(self, _: str) -> None:
        """Never reached: ``set_code`` comes first."""


def _profile_new_thread(*_: object) -> None:
    """``threading.setprofile`` hook: the new thread's first event hands it its own profiler.

    cProfile profiles only the thread that enables it; the decision log's writer thread (which
    seals, inserts and fsyncs each record while the handler waits) needs its own.
    """
    profiler = cProfile.Profile()
    THREAD_PROFILES.append(profiler)
    profiler.enable()  # replaces this hook for the rest of the thread's life


def _root(path: str) -> str:
    """A function's file, from the package or library root (site-packages paths are long)."""
    for marker in ("/site-packages/", "/src/", "/benchmarks/"):
        if marker in path:
            return path.split(marker, 1)[1]
    return re.sub(r"^.*/lib/python3\.\d+/", "", path)


def _table(stats: pstats.Stats, key: int, top: int, calls: int) -> None:
    """Print the ``top`` functions by ``key`` (2: own time, 3: cumulative) per Decide call."""
    raw: dict[Any, Any] = stats.stats  # type: ignore[attr-defined]  # pstats keeps it untyped
    rows = sorted(raw.items(), key=lambda item: item[1][key], reverse=True)[:top]
    print("| function | calls per Decide | own us per Decide | cumulative us per Decide |")
    print("| --- | --- | --- | --- |")
    for (path, line, name), (_, ncalls, own, cumulative, _) in rows:
        where = f"{_root(path)}:{line}({name})" if line else name
        print(
            f"| `{where}` | {ncalls / calls:.1f} | {own / calls * 1e6:.1f} "
            f"| {cumulative / calls * 1e6:.1f} |"
        )
    print()


def main() -> None:
    """Print the unprofiled median and two markdown tables of the profile."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="smoke run: 20 calls")
    parser.add_argument("--calls", type=int, help="profiled calls (default 2000; quick 20)")
    parser.add_argument("--top", type=int, default=20)
    parser.add_argument("--engine", choices=[k.value for k in EngineKind], default="durable")
    args = parser.parse_args()
    calls = args.calls or (20 if args.quick else 2000)
    print(f"load average at start: {load_average()}")
    # The server's deserializer for Decide, as build_server registers it (a tree from before
    # request_deserializer used the lenient one); warm_cpu.py --ab imports this module.
    chooser = getattr(servicer_module, "request_deserializer", None)
    parse = (chooser or servicer_module.lenient_deserializer)(pb.DecideRequest)
    body = decide_body(AGENTS)
    context: Any = StubContext()
    registry = RulesetRegistry()
    registry.add(reference_ruleset(EngineKind(args.engine)))
    serial = 0

    def one_call(servicer: RoutingServicer) -> bytes:
        nonlocal serial
        serial += 1
        request: Any = parse(with_request_id(body, f"profile-{serial}"))
        reply: pb.DecideResponse = servicer.Decide(request, context)
        return reply.SerializeToString()

    with tempfile.TemporaryDirectory() as tmp:
        # Two servicers over one registry, each with its own decision log: the timed one's
        # writer thread runs unprofiled; the profiled one's writer gets its own profiler.
        timed = RoutingServicer(audited_core(registry, Path(tmp) / "timed"))
        check = pb.DecideResponse.FromString(one_call(timed))  # also warms the roster cache
        print(f"check: {describe_assign(check, AGENTS)}")
        for _ in range(20):
            one_call(timed)
        samples = []
        for _ in range(calls):
            start = time.perf_counter()
            one_call(timed)
            samples.append(time.perf_counter() - start)
        threading.setprofile(_profile_new_thread)  # the next store's writer thread
        try:
            profiled = RoutingServicer(audited_core(registry, Path(tmp) / "profiled"))
        finally:
            threading.setprofile(None)  # None removes it
        profiler = cProfile.Profile()
        profiler.enable()
        for _ in range(calls):
            one_call(profiled)
        profiler.disable()
        for servicer in (timed, profiled):
            servicer._core.audit.close()  # noqa: SLF001 - ends the writer thread
    registry.close()
    stats = pstats.Stats(profiler)
    print(
        f"engine {args.engine}, {AGENTS} agents warm, SUMMARY, decision log on; "
        f"{calls} calls: median {statistics.median(samples) * 1e3:.3f} ms per call without the "
        f"profiler, {stats.total_tt / calls * 1e3:.3f} ms with it"  # type: ignore[attr-defined]
    )
    print()
    print(f"### Top {args.top} by cumulative time")
    print()
    _table(stats, 3, args.top, calls)
    print(f"### Top {args.top} by own time")
    print()
    _table(stats, 2, args.top, calls)
    if len(THREAD_PROFILES) == 1:
        print(f"### Decision log writer thread: top {args.top} by own time")
        print()
        print("Per Decide call; the writer's wait for work (a queue get) is included.")
        print()
        _table(pstats.Stats(THREAD_PROFILES[0]), 2, args.top, calls)
    print(f"load average at end: {load_average()} ({os.cpu_count()} cores)")


if __name__ == "__main__":
    main()
