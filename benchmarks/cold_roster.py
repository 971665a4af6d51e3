"""Server CPU of a cold 1,000-agent Decide in one process, and where it goes (issue 13 target 3).

Usage: .venv/bin/python benchmarks/cold_roster.py [--quick] [--agents 1000] [--rounds 7]
[--cold 5] [--warm 50] [--roster-parts] [--sent-parts]

What one server worker does for a roster it has never seen, minus the network: the request
bytes are parsed with the server's deserializer and ``RoutingServicer.Decide`` converts,
decides (durable_rules, reference ruleset) and records the decision in a real SQLite decision
log (fsync before the reply), which also stores the new roster blob. Two cold cases, built by
``grpc_bench.cold_body`` (new bytes either way: a roster cache miss, the index and a new blob):
"new snapshot, known agents (2% changed)", the first roster re-sent under a new snapshot_id
with 2% of its agents changed (the roster cache keeps the agents it has seen, so only those
are converted and encoded), and "all agents new" (every agent's id and values never seen:
every agent is converted and encoded). Warm calls repeat the first roster with a new
request_id. CPU is ``time.process_time`` (every thread of the process, the decision log's
writer too).

Each round times ``--cold`` cold calls of each case and ``--warm`` warm calls, then the cold
path's parts one at a time on fresh copies: decoding the request bytes, the roster
(``RosterCache.parse_sent`` of the roster's bytes on a cache holding the first roster, as the
server reads a first sight; ``parse`` where it declines or in a tree without it: agent keys,
kept agents, conversion and digests of the others, the roster's JSON kept for its blob), the
index (``index_for``) and the roster blob (``blobs_to_store`` handed that JSON, as the server
calls it); "rest" is a cold call minus those parts (the case, deciding, the record, the
reply). Prints the medians over rounds, per call and per agent, and target 3 for each case.

``--roster-parts`` adds a table splitting the all-new roster parsed whole (``RosterCache.parse``,
the path of bytes ``parse_sent`` declines), each step on fresh copies: the agents' keys (the
message's deterministic bytes, their sha256, each agent's bytes cut out), the agents converted
with their canonical JSON and digests (the tree's ``RosterCache._known_agents`` with no agent
kept), the roster and its fingerprint from those, and the cache's own bookkeeping (the rest).
Beneath it, for reference: the steps one by one (``fast.agents_from_proto``, ``agent_json``,
``agent_digest``) and, where the tree has it, ``fast.known_agents_from_proto`` (all three in
one pass).

``--sent-parts`` adds a table splitting the all-new case's roster as the server reads a first
sight from its bytes (``RosterCache.parse_sent``, whole: the roster parsed once, more than 1
agent in 4 being new), each step on fresh copies: the layout cut and the kept agents looked up,
the parse with its deterministic check and the sha256 of the bytes, the agents converted with
their canonical JSON and digests (``fast.known_agents``), the roster and its fingerprint from
those, and the cache's own bookkeeping (the rest of a whole ``parse_sent``).
"""

from __future__ import annotations

import argparse
import hashlib
import inspect
import math
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

from caseroute.audit.recorder import blobs_to_store
from caseroute.domain.fingerprint import agent_digest, agent_json, fingerprint_agent_texts
from caseroute.domain.limits import DEFAULT_LIMITS
from caseroute.engine.case_rules import EngineKind
from caseroute.engine.roster_index import index_for
from caseroute.grpc_api import servicer as servicer_module
from caseroute.grpc_api.roster_cache import RosterCache, agent_message_bytes, sent_layout
from caseroute.grpc_api.servicer import RoutingServicer
from caseroute.registry import RulesetRegistry
from caseroute.testing import audited_core, reference_ruleset
from caseroute.v1 import routing_pb2 as pb
from caseroute.wire import fast
from grpc_bench import (
    COLD_CASES,
    COLD_RATIO_TARGET,
    COLD_US_PER_AGENT_TARGET,
    cold_body,
    decide_body,
    describe_assign,
    load_average,
    with_request_id,
)
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


PARTS = ("decode", "roster", "index", "blob")
KEEP_TEXTS = (
    {"keep_texts": True}
    if "keep_texts" in inspect.signature(fingerprint_agent_texts).parameters
    else {"keep_json": True}  # a tree from before the roster blob was stored in chunks
)


def _split(body: bytes, first: pb.Roster, ruleset: Any) -> dict[str, float]:
    """CPU seconds of each named part of a cold call of ``body``, on fresh objects."""
    sink: Any = _EmptySink()
    split = {"decode": _cpu(partial(pb.DecideRequest.FromString, body))}
    msg = pb.DecideRequest.FromString(body).roster
    sent = msg.SerializeToString()  # the roster field's bytes as the request carries them
    cache = RosterCache()
    cache.parse(first)  # as the server's cache: it has seen the first roster
    known: list[Any] = []
    # As the server reads a first sight: from its bytes (RosterCache.parse_sent), or, in a
    # tree without it or for bytes it declines, parsed (the request's parse is "decode").
    read = getattr(cache, "parse_sent", None)
    split["roster"] = _cpu(lambda: known.append((read(sent) if read else None) or cache.parse(msg)))
    roster, fingerprint = known[0].roster, known[0].fingerprint
    split["index"] = _cpu(partial(index_for, roster))
    if hasattr(fingerprint, "take_texts"):  # the roster stored as a manifest and chunks
        blob = partial(blobs_to_store, fingerprint=fingerprint)
    else:  # a tree from before: the roster's whole text, handed over
        blob = partial(  # type: ignore[call-arg]
            blobs_to_store,
            snapshot_sha256=fingerprint.sha256,
            roster_text=fingerprint.take_json(),
        )
    split["blob"] = _cpu(partial(blob, sink, ruleset, roster))
    return split


ROSTER_PARTS = ("agent keys", "agents + JSON + digests", "roster + fingerprint")
STEPS = ("conversion alone", "agent JSON alone", "digests alone", "one pass (known_agents)")


def _roster_split(body: bytes, first: pb.Roster) -> dict[str, float]:
    """CPU seconds of each step of converting a roster of new agents, on fresh copies.

    The steps of ``RosterCache.parse`` (the path of bytes ``parse_sent`` declines); "parse
    whole" is that whole ``parse`` on a cache that has seen ``first``.
    """
    msg = pb.DecideRequest.FromString(body).roster
    whole = RosterCache()
    whole.parse(first)
    parse_whole = _cpu(partial(whole.parse, pb.DecideRequest.FromString(body).roster))
    wire = msg.SerializeToString(deterministic=True)

    def keys() -> None:
        hashlib.sha256(msg.SerializeToString(deterministic=True)).digest()
        agent_message_bytes(wire)

    made: list[Any] = []
    split = {"agent keys": _cpu(keys), "parse whole": parse_whole}
    agent_msgs, cache = msg.agents, RosterCache()
    nothing_kept: list[Any] = [None] * len(agent_msgs)
    split["agents + JSON + digests"] = _cpu(
        lambda: made.append(cache._known_agents(agent_msgs, nothing_kept, DEFAULT_LIMITS))  # noqa: SLF001 - the step itself
    )
    values, texts, digests = zip(*made[0], strict=True)

    def roster() -> None:
        built = fast.roster_with_agents(msg, values, DEFAULT_LIMITS)
        fingerprint_agent_texts(built, texts, digests, **KEEP_TEXTS)

    split["roster + fingerprint"] = _cpu(roster)
    agents: list[Any] = []
    fresh = pb.DecideRequest.FromString(body).roster
    split["conversion alone"] = _cpu(
        lambda: agents.extend(fast.agents_from_proto(fresh.agents, DEFAULT_LIMITS))
    )
    split["agent JSON alone"] = _cpu(lambda: [agent_json(a) for a in agents])
    split["digests alone"] = _cpu(lambda: [agent_digest(t) for t in texts])
    one_pass = getattr(fast, "known_agents_from_proto", None)
    if one_pass is not None:  # a tree before it has none: nan
        again = pb.DecideRequest.FromString(body).roster
        split["one pass (known_agents)"] = _cpu(partial(one_pass, again.agents, DEFAULT_LIMITS))
    else:
        split["one pass (known_agents)"] = math.nan
    return split


SENT_PARTS = (
    "layout + kept lookup",
    "parse + deterministic check + sha256",
    "agents converted, JSON, digests",
    "roster built, fingerprint",
)


def _sent_split(body: bytes, first: pb.Roster) -> dict[str, float]:
    """CPU seconds of each step of reading a roster of new agents from its bytes, fresh copies.

    The steps of ``RosterCache.parse_sent`` for a roster whose agents are all new (more than
    1 in ``MANY_NEW_AGENTS``: the whole roster parsed once), on a cache that has seen
    ``first``; the cache's bookkeeping is what the whole ``parse_sent`` takes beyond them.
    """
    sent = pb.DecideRequest.FromString(body).roster.SerializeToString()
    cache = RosterCache()
    cache.parse(first)
    found: list[Any] = []

    def layout() -> None:
        laid_out = sent_layout(sent)
        assert laid_out is not None  # noqa: S101 - the benchmark's bytes are laid out so
        kept = cache._kept.get(DEFAULT_LIMITS, {})  # noqa: SLF001 - the step itself
        found.extend(kept.get(k) for k in laid_out[1])

    split = {"layout + kept lookup": _cpu(layout)}
    parsed: list[pb.Roster] = []

    def parse() -> None:
        msg = pb.Roster.FromString(sent)
        assert msg.SerializeToString(deterministic=True) == sent  # noqa: S101 - as parse_sent
        hashlib.sha256(sent).digest()
        parsed.append(msg)

    split["parse + deterministic check + sha256"] = _cpu(parse)
    msg = parsed[0]
    made: list[Any] = []
    split["agents converted, JSON, digests"] = _cpu(
        lambda: made.append(fast.known_agents(msg.agents, found, DEFAULT_LIMITS))
    )
    values, texts, digests = zip(*made[0], strict=True)

    def roster() -> None:
        built = fast.roster_with_agents(msg, values, DEFAULT_LIMITS)
        fingerprint_agent_texts(built, texts, digests, **KEEP_TEXTS)

    split["roster built, fingerprint"] = _cpu(roster)
    whole = RosterCache()
    whole.parse(first)
    split["parse_sent whole"] = _cpu(partial(whole.parse_sent, sent))
    return split


def main() -> None:
    """Time both cold cases, warm calls and the cold parts; print three markdown tables."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="smoke run: 100 agents, 1 round")
    parser.add_argument("--agents", type=int, help="roster size (default 1000; quick 100)")
    parser.add_argument("--rounds", type=int, help="rounds (default 7; quick 1)")
    parser.add_argument("--cold", type=int, default=5, help="cold calls per case and round")
    parser.add_argument("--warm", type=int, default=50, help="warm calls per round")
    parser.add_argument(
        "--roster-parts", action="store_true", help="split the all-new roster parsed whole too"
    )
    parser.add_argument(
        "--sent-parts", action="store_true", help="split the all-new roster read from its bytes"
    )
    args = parser.parse_args()
    agents = args.agents or (100 if args.quick else 1000)
    rounds = args.rounds or (1 if args.quick else 7)
    print(f"load average at start: {load_average()}")
    # The server's deserializer for Decide, as build_server registers it (a tree from before
    # request_deserializer used the lenient one).
    chooser = getattr(servicer_module, "request_deserializer", None)
    parse = (chooser or servicer_module.lenient_deserializer)(pb.DecideRequest)
    registry = RulesetRegistry()
    ruleset = reference_ruleset(EngineKind.DURABLE)
    registry.add(ruleset)
    context: Any = StubContext()
    serial = 0
    first_body = decide_body(agents)
    first = pb.DecideRequest.FromString(first_body).roster

    def call(servicer: RoutingServicer, request_body: bytes) -> pb.DecideResponse:
        nonlocal serial
        serial += 1
        request: Any = parse(with_request_id(request_body, f"cold-{serial}"))
        reply: pb.DecideResponse = servicer.Decide(request, context)
        reply.SerializeToString()
        return reply

    parts: dict[str, list[float]] = {"warm": []}
    parts |= {f"{case} {key}": [] for case in COLD_CASES for key in ("cold", *PARTS)}
    parts |= (
        {key: [] for key in (*ROSTER_PARTS, "parse whole", *STEPS)} if args.roster_parts else {}
    )
    parts |= {key: [] for key in (*SENT_PARTS, "parse_sent whole")} if args.sent_parts else {}
    snapshot = 0
    with tempfile.TemporaryDirectory() as tmp:
        servicer = RoutingServicer(audited_core(registry, Path(tmp) / "log"))
        print(f"check: {describe_assign(call(servicer, first_body), agents)}")
        for _ in range(rounds):
            bodies: dict[str, list[bytes]] = {}
            for case in COLD_CASES:
                bodies[case] = []
                for _ in range(args.cold):
                    snapshot += 1
                    bodies[case].append(cold_body(agents, snapshot, case))  # outside the timing
                cold = [_cpu(partial(call, servicer, b)) for b in bodies[case]]
                parts[f"{case} cold"].append(statistics.median(cold))
            warm = [_cpu(partial(call, servicer, first_body)) for _ in range(args.warm)]
            parts["warm"].append(statistics.median(warm))
            for case, case_bodies in bodies.items():
                splits = [_split(b, first, ruleset.compiled) for b in case_bodies]
                for key in PARTS:
                    parts[f"{case} {key}"].append(statistics.median(s[key] for s in splits))
            if args.roster_parts:
                roster_splits = [_roster_split(b, first) for b in bodies["new"]]
                for key in (*ROSTER_PARTS, "parse whole", *STEPS):
                    parts[key].append(statistics.median(s[key] for s in roster_splits))
            if args.sent_parts:
                sent_splits = [_sent_split(b, first) for b in bodies["new"]]
                for key in (*SENT_PARTS, "parse_sent whole"):
                    parts[key].append(statistics.median(s[key] for s in sent_splits))
        servicer._core.audit.close()  # noqa: SLF001 - ends the writer thread
    registry.close()
    med = {key: statistics.median(values) for key, values in parts.items()}
    for case in COLD_CASES:
        med[f"{case} rest"] = med[f"{case} cold"] - sum(med[f"{case} {k}"] for k in PARTS)
    print(
        f"{agents} agents, {rounds} round(s) of {args.cold} cold calls per case + {args.warm} "
        "warm calls; medians over rounds of each round's median, CPU of the whole process"
    )
    print()
    print(
        "| cold case | cold CPU ms/call | warm CPU ms/call | ratio | cold CPU us/agent "
        "| extra us/agent |"
    )
    print("| --- | --- | --- | --- | --- | --- |")
    warm_cpu = med["warm"]
    for case, label in COLD_CASES.items():
        cold_cpu = med[f"{case} cold"]
        print(
            f"| {label} | {cold_cpu * 1e3:.3f} | {warm_cpu * 1e3:.3f} | "
            f"{cold_cpu / warm_cpu:.1f}x | {cold_cpu * 1e6 / agents:.1f} | "
            f"{(cold_cpu - warm_cpu) * 1e6 / agents:.1f} |"
        )
    print()
    labels = [COLD_CASES[case] for case in COLD_CASES]
    print(
        "| part of a cold call | "
        + " | ".join(f"{label}: CPU ms/call | us/agent | share" for label in labels)
        + " |"
    )
    print("| --- |" + " --- | --- | --- |" * len(labels))
    for key in (*PARTS, "rest"):
        cells = []
        for case in COLD_CASES:
            value, cold_cpu = med[f"{case} {key}"], med[f"{case} cold"]
            cells.append(f"{value * 1e3:.3f} | {value * 1e6 / agents:.1f} | {value / cold_cpu:.0%}")
        print(f"| {key} | " + " | ".join(cells) + " |")
    if args.roster_parts:
        _print_roster_parts(med, agents)
    if args.sent_parts:
        _print_sent_parts(med, agents)
    print()
    print("| target (in process) | measured | met |")
    print("| --- | --- | --- |")
    for case, label in COLD_CASES.items():
        cold_cpu = med[f"{case} cold"]
        per_agent = cold_cpu * 1e6 / agents
        met = {True: "met", False: "**not met**"}
        print(
            f"| {label}: <= {COLD_US_PER_AGENT_TARGET:g} us CPU per agent | {per_agent:.1f} us "
            f"| {met[per_agent <= COLD_US_PER_AGENT_TARGET]} |"
        )
        ratio = cold_cpu / warm_cpu
        print(
            f"| {label}: <= {COLD_RATIO_TARGET:g}x a warm call (CPU) | {ratio:.1f}x "
            f"| {met[ratio <= COLD_RATIO_TARGET]} |"
        )
    print()
    print(f"load average at end: {load_average()} ({os.cpu_count()} cores)")


def _print_roster_parts(med: dict[str, float], agents: int) -> None:
    """The all-new roster parsed whole (``RosterCache.parse``), split (``--roster-parts``)."""
    roster = med["parse whole"]
    rows = {key: med[key] for key in ROSTER_PARTS}
    rows["cache bookkeeping (rest)"] = roster - sum(rows.values())
    print()
    print(f"| roster part, {COLD_CASES['new']} | CPU ms/call | us/agent | share of roster part |")
    print("| --- | --- | --- | --- |")
    for key, value in (*rows.items(), *((key, med[key]) for key in STEPS)):
        share = f"{value / roster:.0%}" if key not in STEPS else "(reference)"
        print(f"| {key} | {value * 1e3:.3f} | {value * 1e6 / agents:.1f} | {share} |")


def _print_sent_parts(med: dict[str, float], agents: int) -> None:
    """The all-new case's roster read from its bytes, split (``--sent-parts``)."""
    roster = med["parse_sent whole"]
    rows = {key: med[key] for key in SENT_PARTS}
    rows["cache bookkeeping (rest)"] = roster - sum(rows.values())
    print()
    print(f"| roster read from its bytes, {COLD_CASES['new']} | CPU ms/call | us/agent | share |")
    print("| --- | --- | --- | --- |")
    for key, value in (*rows.items(), ("parse_sent whole", roster)):
        print(f"| {key} | {value * 1e3:.3f} | {value * 1e6 / agents:.1f} | {value / roster:.0%} |")


if __name__ == "__main__":
    main()
