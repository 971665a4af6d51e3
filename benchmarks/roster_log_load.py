"""What a worker pays to load a roster sent by hash from its decision log, against a resend.

Usage: .venv/bin/python benchmarks/roster_log_load.py [--sizes 100,1000] [--rounds 7]

A roster is decided with once through a real SQLite decision log (``audited_core``: its
snapshot stored in chunks, as a sibling worker would store it). Then, per round and size,
interleaved: ``log`` is ``RosterLog.load`` into an empty roster cache (the bounded read,
``json.loads``, ``parse_roster`` and ``RosterCache.keep_loaded``: what a worker lacking the
roster does before it can decide); ``sent`` is the cache's ``parse`` of the Roster message a
caller would resend (what the same worker does on the resend the ROSTER_NOT_CACHED asks for,
the caller's second round trip not counted). Medians in ms, and the ratio log / sent.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from caseroute.domain.limits import InputLimits
from caseroute.engine.case_rules import EngineKind
from caseroute.grpc_api import servicer as servicer_module
from caseroute.grpc_api.roster_cache import RosterCache
from caseroute.grpc_api.roster_log import RosterLog
from caseroute.grpc_api.servicer import RoutingServicer
from caseroute.registry import RulesetRegistry
from caseroute.testing import audited_core, reference_ruleset
from caseroute.v1 import routing_pb2 as pb
from grpc_bench import decide_body, load_average, with_request_id
from profile_decide import StubContext


def main() -> None:
    """Print a markdown table: per size, log and sent medians (ms) and their ratio."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="100,1000")
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    sizes = [int(n) for n in args.sizes.split(",")]
    print(f"load average at start: {load_average()}")
    registry = RulesetRegistry()
    registry.add(reference_ruleset(EngineKind.DURABLE))
    limits = InputLimits()
    with tempfile.TemporaryDirectory() as tmp:
        core = audited_core(registry, Path(tmp) / "log")
        servicer = RoutingServicer(core)
        parse = servicer_module.request_deserializer(pb.DecideRequest)
        context: Any = StubContext()
        messages = {}
        for size in sizes:  # decided with once: its snapshot stored, as a sibling worker would
            body = with_request_id(decide_body(size), f"store-{size}")
            servicer.Decide(parse(body), context)
            messages[size] = pb.DecideRequest.FromString(body).roster
        store: Any = core.audit
        times: dict[tuple[int, str], list[float]] = {}
        for _ in range(args.rounds):
            for size, message in messages.items():
                sha = RosterCache().parse(message, limits=limits).fingerprint.sha256
                start = time.perf_counter()
                loaded = RosterLog(store, RosterCache(), max_bytes=64 << 20).load(sha, limits, None)
                times.setdefault((size, "log"), []).append(time.perf_counter() - start)
                if loaded is None:
                    raise SystemExit("the roster was not loaded from the log")
                start = time.perf_counter()
                RosterCache().parse(message, limits=limits)
                times.setdefault((size, "sent"), []).append(time.perf_counter() - start)
        store.close()
    registry.close()
    print()
    print("| agents | loaded from the log, ms | parsed as sent, ms | log / sent |")
    print("| --- | --- | --- | --- |")
    for size in sizes:
        log_ms = statistics.median(times[(size, "log")]) * 1e3
        sent_ms = statistics.median(times[(size, "sent")]) * 1e3
        print(f"| {size:,} | {log_ms:.2f} | {sent_ms:.2f} | {log_ms / sent_ms:.2f}x |")
    print()
    print(f"load average at end: {load_average()}")


if __name__ == "__main__":
    main()
