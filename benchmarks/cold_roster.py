"""Server CPU of a cold 1,000-agent Decide in one process, and where it goes (issue 13 target 3).

Usage: .venv/bin/python benchmarks/cold_roster.py [--quick] [--agents 1000] [--rounds 7]
[--cold 5] [--warm 50]

What one server worker does for a roster it has never seen, minus the network: the request
bytes are parsed with the server's deserializer and ``RoutingServicer.Decide`` converts,
decides (durable_rules, reference ruleset) and records the decision in a real SQLite decision
log (fsync before the reply), which also stores the new roster blob. Every cold call sends the
same agents under a new snapshot_id (new bytes: a roster cache miss, a full conversion, agent
digests, the index and a new blob); warm calls repeat the last roster with a new request_id.
CPU is ``time.process_time`` (every thread of the process, the decision log's writer too).

Each round times ``--cold`` cold calls and ``--warm`` warm calls, then the cold path's parts
one at a time on fresh copies of the roster: decoding the request bytes, converting the roster
message to domain objects, the agent digests with the roster's JSON kept for its blob
(``fingerprint_roster(keep_json=True)``), the index (``index_for``) and the roster blob
(``blobs_to_store`` handed that JSON, as the server calls it); "rest" is a cold call minus
those parts (the case, deciding, the record, the reply). Prints the medians over rounds, per
call and per agent.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

from caseroute.audit.recorder import blobs_to_store
from caseroute.domain.fingerprint import fingerprint_roster
from caseroute.engine.case_rules import EngineKind
from caseroute.engine.roster_index import index_for
from caseroute.grpc_api.servicer import RoutingServicer, lenient_deserializer
from caseroute.registry import RulesetRegistry
from caseroute.testing import audited_core, reference_ruleset
from caseroute.v1 import routing_pb2 as pb
from caseroute.wire import convert
from grpc_bench import decide_body, describe_assign, load_average, with_request_id
from profile_decide import StubContext


class _EmptySink:
    """A decision log holding no blob: ``blobs_to_store`` builds the roster blob."""

    def has_blob(self, _: str) -> bool:
        """Never held."""
        return False


def _cpu(work: Callable[[], object]) -> float:
    """CPU seconds (all threads) of one call of ``work``."""
    start = time.process_time()
    work()
    return time.process_time() - start


def main() -> None:
    """Time cold and warm calls and the cold parts; print two markdown tables."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="smoke run: 100 agents, 1 round")
    parser.add_argument("--agents", type=int, help="roster size (default 1000; quick 100)")
    parser.add_argument("--rounds", type=int, help="rounds (default 7; quick 1)")
    parser.add_argument("--cold", type=int, default=5, help="cold calls per round")
    parser.add_argument("--warm", type=int, default=50, help="warm calls per round")
    args = parser.parse_args()
    agents = args.agents or (100 if args.quick else 1000)
    rounds = args.rounds or (1 if args.quick else 7)
    print(f"load average at start: {load_average()}")
    parse = lenient_deserializer(pb.DecideRequest)
    registry = RulesetRegistry()
    ruleset = reference_ruleset(EngineKind.DURABLE)
    registry.add(ruleset)
    context: Any = StubContext()
    serial = 0

    def body(snapshot: int) -> bytes:
        return decide_body(agents, snapshot_id=f"cold-{snapshot}")

    def call(servicer: RoutingServicer, request_body: bytes) -> pb.DecideResponse:
        nonlocal serial
        serial += 1
        request: Any = parse(with_request_id(request_body, f"cold-{serial}"))
        reply: pb.DecideResponse = servicer.Decide(request, context)
        reply.SerializeToString()
        return reply

    parts: dict[str, list[float]] = {
        k: [] for k in ("cold", "warm", "decode", "conversion", "digests", "index", "blob")
    }
    snapshot = 0
    with tempfile.TemporaryDirectory() as tmp:
        servicer = RoutingServicer(audited_core(registry, Path(tmp) / "log"))
        print(f"check: {describe_assign(call(servicer, body(snapshot)), agents)}")
        for _ in range(rounds):
            bodies = []
            for _ in range(args.cold):
                snapshot += 1
                bodies.append(body(snapshot))  # built outside the timed calls
            cold = [_cpu(partial(call, servicer, b)) for b in bodies]
            warm = [_cpu(partial(call, servicer, bodies[-1])) for _ in range(args.warm)]
            parts["cold"].append(statistics.median(cold))
            parts["warm"].append(statistics.median(warm))
            split: dict[str, list[float]] = {k: [] for k in ("decode", "conversion")}
            split |= {"digests": [], "index": [], "blob": []}
            sink: Any = _EmptySink()
            for b in bodies:
                split["decode"].append(_cpu(partial(pb.DecideRequest.FromString, b)))
                msg = pb.DecideRequest.FromString(b).roster
                roster = convert.roster_from_proto(msg)
                split["conversion"].append(_cpu(partial(convert.roster_from_proto, msg)))
                # As the server does on a first sight: the fingerprint keeps the roster's JSON
                # (built from the agent texts it hashed) for the record's blob.
                fingerprint = fingerprint_roster(roster, keep_json=True)
                split["digests"].append(_cpu(partial(fingerprint_roster, roster, keep_json=True)))
                split["index"].append(_cpu(partial(index_for, roster)))
                blob = partial(
                    blobs_to_store,
                    snapshot_sha256=fingerprint.sha256,
                    roster_text=fingerprint.take_json(),
                )
                split["blob"].append(_cpu(partial(blob, sink, ruleset.compiled, roster)))
            for key, values in split.items():
                parts[key].append(statistics.median(values))
        servicer._core.audit.close()  # noqa: SLF001 - ends the writer thread
    registry.close()
    med = {key: statistics.median(values) for key, values in parts.items()}
    named = ("decode", "conversion", "digests", "index", "blob")
    med["rest"] = med["cold"] - sum(med[k] for k in named)
    print(
        f"{agents} agents, {rounds} round(s) of {args.cold} cold + {args.warm} warm calls; "
        "medians over rounds of each round's median, CPU of the whole process"
    )
    print()
    print("| cold CPU ms/call | warm CPU ms/call | ratio | cold CPU us/agent | extra us/agent |")
    print("| --- | --- | --- | --- | --- |")
    print(
        f"| {med['cold'] * 1e3:.3f} | {med['warm'] * 1e3:.3f} | "
        f"{med['cold'] / med['warm']:.1f}x | {med['cold'] * 1e6 / agents:.1f} | "
        f"{(med['cold'] - med['warm']) * 1e6 / agents:.1f} |"
    )
    print()
    print("| part of a cold call | CPU ms/call | us/agent | share |")
    print("| --- | --- | --- | --- |")
    for key in (*named, "rest"):
        print(
            f"| {key} | {med[key] * 1e3:.3f} | {med[key] * 1e6 / agents:.1f} | "
            f"{med[key] / med['cold']:.0%} |"
        )
    print()
    print(f"load average at end: {load_average()} ({os.cpu_count()} cores)")


if __name__ == "__main__":
    main()
