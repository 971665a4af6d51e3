"""Where ONE served first-sight Decide's CPU and wall time go, beside the same pieces in process.

Usage: .venv/bin/python benchmarks/cold_served.py [--agents 1000] [--rounds 5] [--calls 4]
                                                   [--quick] [--ab TREE_A TREE_B]
                                                   [--sent-steps]

Issue 13 target 3 over gRPC: a roster the server has never seen, sent in the request, at 1,000
agents. This process builds the server as ``caseroute serve --workers 1`` does (``build_server``
+ ``load``, the reference rulesets, a real SQLite decision log with fsync, the call log as JSON
into /dev/null by its deferred writer) and one client process calls it on loopback, one call at
a time, as ``served_latency.py`` does (its stamps are reused: nothing in ``src/`` traces). Beside
it, the in-process path of ``cold_roster.py``: the server's deserializer and
``RoutingServicer.Decide`` called directly on a servicer of its own (``audited_core``), the reply
serialised. Both have first seen the warm roster (``decide_body``); each round makes, per case,
``--calls`` bodies with ``grpc_bench.cold_body`` (new bytes: a cache miss) and calls them served,
then in process, and the same for warm calls (the first roster again, new request_id).

Every stage stamps ``time.perf_counter_ns`` (wall) and ``time.thread_time_ns`` (the CPU of the
thread it ran on). Beyond ``served_latency.py``'s stages, the roster's way in is split:
``uncut`` (``servicer._uncut``: the sent bytes looked up; on a first sight, a tree with
``RosterCache.parse_sent`` reads the roster from them here, an older tree parses the whole
request again), ``case_out`` (the case converted), ``roster_in`` / ``keyed`` / ``agents_done`` /
``roster_out`` (where ``RosterCache.parse`` runs: entered; ``_convert`` entered, the roster
serialised, hashed and looked up; ``_convert`` returned, agents kept or converted, the roster and
its fingerprint; ``parse`` returned, the cache's entry, agents held, the sent form kept),
``index_in`` / ``index_out`` (``index_for`` of the new roster, inside ``decide()``) and
``blob_in`` / ``blob_out`` (``blobs_to_store``: the roster blob's JSON and hash, after the
records are built). A step's CPU is shown when the stage and the one before it ran on the same
thread; "-" when a thread boundary lies between them.

Below each case's table: the server process CPU per call (every thread, the driver's own
thread subtracted), the stamped threads' CPU (each thread that stamped a stage, from its first
stamp of the call to its last: the deserializer's, the handler's, a writer's), the rest (other
threads and gaps: gRPC's transport and polling, the call log), the cyclic GC's wall time inside
the call (``gc.callbacks``) and the CPU per agent, medians over all calls; the process CPU and GC
time as means too (``MEANS``). The load average at start and end. ``--ab`` runs this script
per tree, alternating rounds, and prints each tree's medians of the summary rows and of every
step's CPU.
"""

from __future__ import annotations

import argparse
import gc
import logging
import multiprocessing
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import served_latency as stamps
from grpc_bench import DECIDE, cold_body, decide_body, load_average, with_request_id
from served_latency import DECIDE_STAGES

CASES = ("known", "new", "warm")
"""The two first sights of ``grpc_bench.COLD_CASES`` and, for reference, a warm call."""

SENT_STAGES = (
    "sent_in",
    "laid_out",
    "agents_in",
    "agents_out",
    "fingerprinted",
    "store_in",
    "store_out",
)
"""With ``--sent-steps``, before ``uncut``: a first sight read from its bytes
(``RosterCache.parse_sent``) entered; its layout cut (``sent_layout``); the kept agents looked
up, the bytes parsed, checked deterministic and hashed; the agents converted with their JSON and
digests (``fast.known_agents``, or ``known_agents_from_proto`` for the new ones alone); the
roster built and its fingerprint; the cache's entry stored (``_store``); the rest of
``_uncut``."""

ROSTER_STAGES = (
    "uncut",
    "case_out",
    "roster_in",
    "keyed",
    "agents_done",
    "roster_out",
)
"""Stages of the roster's way in, between ``handler_in`` and ``converted``."""

COLD_STAGES = [
    *DECIDE_STAGES[: DECIDE_STAGES.index("decided")],
    *ROSTER_STAGES,
    "converted",
    "engine_in",
    "index_in",
    "index_out",
    "engine_out",
    "decided",
    "reply_built",
    "blob_in",
    "blob_out",
    *DECIDE_STAGES[DECIDE_STAGES.index("append_in") :],
]
"""A first-sight Decide's stages in call order (a warm call skips the roster's and index's);
``--sent-steps`` puts ``SENT_STAGES`` in it."""

SUMMARY = ("process CPU", "stamped threads CPU", "other threads CPU", "GC wall", "CPU us/agent")
"""The rows below each table: medians (us per call; the last per agent)."""
MEANS = ("process CPU", "GC wall")
"""Rows also given as means (``<row>, mean``): a full collection of the cyclic GC lands in few
calls, which a median leaves out and ``grpc_bench.py``'s CPU over a block of calls counts."""

_CPUS: list[dict[str, tuple[int, int]]] = []
"""Per call, beside ``served_latency._MARKS``: each stage's (thread CPU ns, thread id)."""
_GC: list[int] = []
"""Per call, the cyclic GC's wall ns inside it."""
_gc_started = 0


def _mark(stage: str) -> None:
    """``served_latency._mark`` that also keeps the thread's CPU time (first stamp counts)."""
    if stamps._MARKS:  # noqa: SLF001 - the stamps of served_latency, shared
        stamps._MARKS[-1].setdefault(stage, time.perf_counter_ns())  # noqa: SLF001 - as above
        _CPUS[-1].setdefault(stage, (time.thread_time_ns(), threading.get_ident()))


def _open_call() -> None:
    """Start a new call's stamps at its deserializer."""
    stamps._MARKS.append({})  # noqa: SLF001 - the stamps of served_latency, shared
    _CPUS.append({})
    _GC.append(0)
    _mark("deser_in")


def _new_call_deserializer(function: Callable[[bytes], Any]) -> Callable[[bytes], Any]:
    """A deserializer opening a new call's stamps (wall and CPU)."""

    def deserialize(data: bytes) -> Any:
        _open_call()
        try:
            return function(data)
        finally:
            _mark("deser_out")

    return deserialize


def _on_gc(phase: str, _: dict[str, int]) -> None:
    """``gc.callbacks``: add each collection's wall time to the current call."""
    global _gc_started  # noqa: PLW0603 - one process-wide collector, one clock
    if phase == "start":
        _gc_started = time.perf_counter_ns()
    elif _GC:
        _GC[-1] += time.perf_counter_ns() - _gc_started


def _install(sent_steps: bool = False) -> None:
    """Route ``served_latency``'s stamps through ``_mark`` and stamp the roster's way in.

    Args:
        sent_steps: Also stamp ``SENT_STAGES`` (a first sight read from its bytes, step by step).
    """
    from caseroute.engine import matching, selection
    from caseroute.grpc_api import roster_cache, servicer
    from caseroute.service import routing
    from caseroute.wire import convert

    stamps._mark = _mark  # noqa: SLF001 - its wrappers look _mark up when called
    stamps._new_call_deserializer = _new_call_deserializer  # noqa: SLF001 - as above
    stamps._install_stamps()  # noqa: SLF001 - the decision log's stages
    stamps._wrap(servicer.RoutingServicer, "_uncut", None, "uncut")  # noqa: SLF001
    if sent_steps:
        _install_sent_steps()
    stamps._wrap_names(convert, {"case_from_proto": (None, "case_out")})  # noqa: SLF001
    stamps._wrap_names(convert, {"decide_command": (None, "converted")})  # noqa: SLF001
    stamps._wrap(roster_cache.RosterCache, "parse", "roster_in", "roster_out")  # noqa: SLF001
    stamps._wrap(roster_cache.RosterCache, "_convert", "keyed", "agents_done")  # noqa: SLF001
    stamps._wrap_names(routing, {"decide": ("engine_in", "engine_out")})  # noqa: SLF001
    stamps._wrap_names(routing, {"blobs_to_store": ("blob_in", "blob_out")})  # noqa: SLF001
    for module in (matching, selection):
        stamps._wrap_names(module, {"index_for": ("index_in", "index_out")})  # noqa: SLF001
    gc.callbacks.append(_on_gc)


def _install_sent_steps() -> None:
    """Stamp ``SENT_STAGES`` and put them in ``COLD_STAGES``, before ``uncut``."""
    from caseroute.grpc_api import roster_cache
    from caseroute.wire import fast

    at = COLD_STAGES.index("uncut")
    COLD_STAGES[at:at] = SENT_STAGES
    # The first stamp of a stage counts: known_agents_from_proto called inside known_agents
    # stamps nothing more.
    stamps._wrap(roster_cache.RosterCache, "parse_sent", "sent_in", None)  # noqa: SLF001
    stamps._wrap_names(roster_cache, {"sent_layout": (None, "laid_out")})  # noqa: SLF001
    for name in ("known_agents", "known_agents_from_proto"):
        stamps._wrap_names(fast, {name: ("agents_in", "agents_out")})  # noqa: SLF001
    stamps._wrap_names(roster_cache, {"fingerprint_agent_texts": (None, "fingerprinted")})  # noqa: SLF001
    stamps._wrap(roster_cache.RosterCache, "_store", "store_in", "store_out")  # noqa: SLF001


def _steps(
    calls: list[tuple[dict[str, int], dict[str, tuple[int, int]]]],
) -> dict[str, tuple[float, float | None]]:
    """Per stage: median wall step and median CPU step (same-thread steps only) in us."""
    walls: dict[str, list[int]] = {}
    cpus: dict[str, list[int]] = {}
    for marks, cpu in calls:
        previous = None
        for stage in COLD_STAGES:
            if stage not in marks:
                continue
            if previous is not None:
                walls.setdefault(stage, []).append(marks[stage] - marks[previous])
                if stage in cpu and previous in cpu and cpu[stage][1] == cpu[previous][1]:
                    cpus.setdefault(stage, []).append(cpu[stage][0] - cpu[previous][0])
            previous = stage
    return {
        stage: (
            statistics.median(walls[stage]) / 1e3,
            statistics.median(cpus[stage]) / 1e3 if stage in cpus else None,
        )
        for stage in COLD_STAGES
        if stage in walls
    }


class _Path:
    """One way of calling (served or in process): its calls' stamps and summary figures."""

    def __init__(self) -> None:
        self.calls: list[tuple[dict[str, int], dict[str, tuple[int, int]]]] = []
        self.rows: dict[str, list[float]] = {row: [] for row in SUMMARY}

    def add(self, process_ns: int, gc_ns: int, agents: int) -> None:
        """Keep the call just made (the last stamps) and its CPU."""
        marks, cpu = stamps._MARKS[-1], _CPUS[-1]  # noqa: SLF001 - as above
        self.calls.append((marks, cpu))
        spans: dict[int, list[int]] = {}
        for ns, thread in cpu.values():
            spans.setdefault(thread, []).append(ns)
        # Each stamped thread's CPU from its first stamp of the call to its last.
        handler = sum(max(span) - min(span) for span in spans.values())
        self.rows["process CPU"].append(process_ns / 1e3)
        self.rows["stamped threads CPU"].append(handler / 1e3)
        self.rows["other threads CPU"].append((process_ns - handler) / 1e3)
        self.rows["GC wall"].append(gc_ns / 1e3)
        self.rows["CPU us/agent"].append(process_ns / 1e3 / agents)


def _served_call(conn: Any, body: bytes) -> tuple[int, int]:
    """One call over gRPC: server process CPU (the driver thread's own excluded), GC ns."""
    stamps._MARKS.clear()  # noqa: SLF001 - as above
    _CPUS.clear()
    _GC.clear()
    process, own = time.process_time_ns(), time.thread_time_ns()
    conn.send((DECIDE, body, 1, False))
    (send, recv), *_ = conn.recv()
    spent = time.process_time_ns() - process - (time.thread_time_ns() - own)
    if len(stamps._MARKS) != 1:  # noqa: SLF001 - as above
        sys.exit(f"{len(stamps._MARKS)} calls seen by the server for 1 made")  # noqa: SLF001
    stamps._MARKS[-1].update(send=send, recv=recv)  # noqa: SLF001 - as above
    return spent, _GC[-1]


def _in_process_call(servicer: Any, parse: Callable[[bytes], Any], body: bytes) -> tuple[int, int]:
    """One call as ``cold_roster.py`` makes it: process CPU and GC ns."""
    from profile_decide import StubContext

    stamps._MARKS.clear()  # noqa: SLF001 - as above
    _CPUS.clear()
    _GC.clear()
    process = time.process_time_ns()
    send = time.perf_counter_ns()
    _open_call()
    request = parse(body)
    _mark("deser_out")
    _mark("handler_in")
    reply = servicer.Decide(request, StubContext())
    _mark("handler_out")
    _mark("ser_in")
    reply.SerializeToString()
    _mark("ser_out")
    stamps._MARKS[-1].update(send=send, recv=time.perf_counter_ns())  # noqa: SLF001
    return time.process_time_ns() - process, _GC[-1]


def _cell(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def report(paths: dict[tuple[str, str], _Path], agents: int) -> None:
    """Per case a table: each stage's served and in-process wall and CPU steps, the summary."""
    for case in CASES:
        served, local = paths[(case, "served")], paths[(case, "in process")]
        s, p = _steps(served.calls), _steps(local.calls)
        print()
        print(f"### {case}: {agents} agents, {len(served.calls)} calls each way, medians in us")
        print()
        print("| stage | served wall | served CPU | in process wall | in process CPU |")
        print("| --- | --- | --- | --- | --- |")
        for stage in COLD_STAGES:  # "-": no step (the first stage, or a stage not passed)
            sw, sc = s.get(stage, (None, None))
            pw, pc = p.get(stage, (None, None))
            print(f"| {stage} | {_cell(sw)} | {_cell(sc)} | {_cell(pw)} | {_cell(pc)} |")
        for row in SUMMARY:
            a, b = statistics.median(served.rows[row]), statistics.median(local.rows[row])
            print(f"| {row} | | {a:.1f} | | {b:.1f} |")
        for row in MEANS:
            a, b = statistics.mean(served.rows[row]), statistics.mean(local.rows[row])
            print(f"| {row}, mean | | {a:.1f} | | {b:.1f} |")


def _measure(args: argparse.Namespace) -> None:
    """Serve, call each case both ways per round, print the tables."""
    from caseroute.engine.case_rules import EngineKind
    from caseroute.grpc_api import server as served
    from caseroute.grpc_api.servicer import RoutingServicer, request_deserializer
    from caseroute.logs.setup import configure_logging
    from caseroute.registry import RulesetRegistry
    from caseroute.testing import REFERENCE_RULESETS, audit_config, audited_core, reference_ruleset
    from caseroute.v1 import routing_pb2 as pb

    print("load", load_average(), flush=True)
    # gc_policy.py calls this with its own Namespace, which has no sent_steps.
    _install(getattr(args, "sent_steps", False))
    agents = args.agents
    warm_body = decide_body(agents)
    paths = {(case, way): _Path() for case in CASES for way in ("served", "in process")}
    serial, snapshot = 0, 0

    def fresh(body: bytes) -> bytes:
        nonlocal serial
        serial += 1
        return with_request_id(body, f"cold-served-{serial}")

    registry = RulesetRegistry()
    registry.add(reference_ruleset(EngineKind.DURABLE))
    parse = request_deserializer(pb.DecideRequest)
    with Path(os.devnull).open("w") as sink, tempfile.TemporaryDirectory() as tmp:
        configure_logging("json", "info", sink, deferred=True)  # as `serve` does
        config = served.ServerConfig(
            rulesets=REFERENCE_RULESETS, port=0, audit=audit_config(Path(tmp) / "served")
        )
        with stamps._stamping_handlers():  # noqa: SLF001 - the gRPC stages
            running = served.build_server(config, reuse_port=False)
        running.load(config)
        local = RoutingServicer(audited_core(registry, Path(tmp) / "local"))
        ctx = multiprocessing.get_context("spawn")
        ours, theirs = ctx.Pipe()
        client = ctx.Process(target=stamps._client, args=(theirs, f"127.0.0.1:{running.port}"))  # noqa: SLF001
        client.start()
        theirs.close()  # ours alone: a client that dies ends our recv() (EOFError), no hang
        for _ in range(args.warm):  # both have seen the warm roster and its agents
            _served_call(ours, fresh(warm_body))
            _in_process_call(local, parse, fresh(warm_body))
        for _ in range(args.rounds):
            for case in CASES:
                bodies = []
                for _ in range(2 * args.calls):
                    snapshot += 1
                    body = warm_body if case == "warm" else cold_body(agents, snapshot, case)
                    bodies.append(fresh(body))
                for body in bodies[: args.calls]:
                    paths[(case, "served")].add(*_served_call(ours, body), agents)
                for body in bodies[args.calls :]:
                    paths[(case, "in process")].add(*_in_process_call(local, parse, body), agents)
        ours.send(None)
        client.join(30)
        running.stop(1.0)
        local._core.audit.close()  # noqa: SLF001 - ends the writer thread
        logging.shutdown()
    registry.close()
    report(paths, agents)
    print()
    print("load", load_average())


def _ab(trees: list[str], args: argparse.Namespace) -> None:
    """Alternate whole runs against two trees; per tree the medians of every CPU cell."""
    print("load", load_average(), flush=True)
    cells: dict[tuple[str, str, str, str], list[float]] = {}
    for run in range(args.rounds):
        # Each round's two runs share a hash seed (a process's seed and layout move a run by
        # up to ~15%, A against A), and which tree runs first alternates.
        for tree in trees if run % 2 == 0 else trees[::-1]:
            env = {**os.environ, "PYTHONPATH": str(Path(tree).resolve() / "src")}
            env["PYTHONHASHSEED"] = str(run + 1)
            command = [sys.executable, __file__, "--rounds", "1", "--calls", str(args.calls)]
            command += ["--agents", str(args.agents), "--warm", str(args.warm)]
            command += ["--sent-steps"] if args.sent_steps else []
            out = subprocess.run(command, capture_output=True, text=True, check=True, env=env)
            case = ""
            for line in out.stdout.splitlines():
                if line.startswith("### "):
                    case = line.split()[1].rstrip(":")
                elif line.startswith("| ") and not line.startswith(("| stage", "| ---")):
                    name, _, served_cpu, _, local_cpu = (c.strip() for c in line[2:-2].split("|"))
                    for way, value in (("served", served_cpu), ("in process", local_cpu)):
                        if value != "-":
                            cells.setdefault((tree, case, way, name), []).append(float(value))
            print(f"{tree}: done, load {load_average()}", flush=True)
    print("load", load_average())
    print(f"CPU medians over {args.rounds} alternating runs of {args.calls} calls per case, us")
    print()
    print("| case | way | stage | A | B | B/A |")
    print("| --- | --- | --- | --- | --- | --- |")
    for (tree, case, way, name), values in cells.items():
        if tree != trees[0]:
            continue
        mine = statistics.median(values)
        other = statistics.median(cells.get((trees[1], case, way, name), [float("nan")]))
        ratio = f"{other / mine:.2f}x" if mine else "-"
        print(f"| {case} | {way} | {name} | {mine:.1f} | {other:.1f} | {ratio} |")


def main() -> None:
    """Parse the arguments; measure, or alternate two trees."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--agents", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--calls", type=int, default=4, help="per case, way and round")
    parser.add_argument("--warm", type=int, default=20, help="warm calls each way first")
    parser.add_argument("--quick", action="store_true", help="smoke: 100 agents, 1 x 2 calls")
    parser.add_argument("--ab", nargs=2, metavar="TREE", help="alternate runs against two trees")
    parser.add_argument(
        "--sent-steps", action="store_true", help="split a first sight read from its bytes"
    )
    args = parser.parse_args()
    if args.quick:
        args.agents, args.rounds, args.calls, args.warm = 100, 1, 2, 2
    if args.ab:
        _ab(args.ab, args)
        return
    _measure(args)


if __name__ == "__main__":
    main()
