"""Where a served warm Decide's WALL time goes, stage by stage, beside the empty call's.

Usage: .venv/bin/python benchmarks/served_latency.py [--calls 600] [--rounds 3] [--quick]
                                                      [--ab TREE_A TREE_B] [--fine]
                                                      [--agents 100] [--by-hash]

This process builds the server as ``caseroute serve --workers 1`` does (``build_server`` +
``load``, the reference rulesets, a real SQLite decision log with fsync, the call log rendered
as JSON into /dev/null by its deferred writer thread, as ``benchmarks/served_cpu.py`` does) and
one client process calls it on loopback, sequentially: the health ``Check`` (the empty call),
then the warm 100-agent SUMMARY ``Decide`` with a new request_id per call. Rounds alternate the
two phases.

Every stage is stamped with ``time.perf_counter_ns`` (CLOCK_MONOTONIC on Linux: one clock for
the client and server processes) by wrapping functions from here; nothing in ``src/`` traces:

- client: ``send`` (before the call), ``recv`` (after it returned);
- gRPC: the method handler's deserializer (``deser_in``/``deser_out``), the servicer method
  (``handler_in``/``handler_out``, inside the interceptors) and the serializer
  (``ser_in``/``ser_out``), wrapped while ``build_server`` registers them;
- with ``--fine``, handler -> decided split: ``servicer.caller_identity`` return (``caller``: the
  deadline check, the level read, the caller's identity), ``convert.case_from_proto`` entry and exit
  (``case_in``, ``case_out``: the case's conversion) and ``convert.decide_command`` return
  (``converted``: the roster found, ``now``, the command built); ``routing._canonical`` return
  (``canonical``: the case's dict, text and instants); ``routing._request_sha256`` return
  (``req_hashed``) and ``Masker.keyed_hash`` return (``keyed``); ``routing.decide`` entry
  (``engine_in``: the ruleset acquired, the input hash) and return (``engine_out``); inside
  ``decide()``: ``derive_signals`` (``signals``), ``build_case_fact`` (``fact``),
  ``LoadedRuleset.evaluate`` (``matched``: durable_rules and the Python cross-check),
  ``evaluate_rules`` (``rules``), ``select_agent`` (``selected``: the rules' traces rendered, then
  matching and ranking; where ``decide()`` calls ``choose_and_explain`` instead, ``rules``
  includes the traces and ``selected`` is matching and ranking alone), then the explanation and
  decision built to ``engine_out``; ``routing.mask_decision`` return (``masked``);
- Decide: ``SizedReply.check`` entry (``decided``: decide() done) and exit (``reply_built``),
  ``QueuedAppends.append`` (``append_in``: records built) and ``_enqueue`` (``handed``: records
  encoded, handed to the writer, or committed in the caller's thread when it is alone: the
  store's own ``_enqueue`` is stamped too); the writer thread's ``_next_batch`` return
  (``writer_took``), ``_commit`` entry (``locked``: the flock held), ``BEGIN IMMEDIATE``
  returned (``begun``),
  ``COMMIT`` issued (``commit_in``) and returned (``committed``), ``_settle`` returned
  (``settled``: the caller's lock released); ``Outcome.result`` returned (``woken``);
- off the path: the call log's writer thread writing (``log_in``/``log_out``).

One client calls sequentially, so the stamps of one call are the ones between its ``send``
and the next call's. The table gives, per stage, the median offset from ``send`` and the median
step from the previous stage the call passed (us); a stage some calls never pass says how many
did (``writer_took`` when a lone call commits its own record in its own thread). The wrappers
themselves cost ~0.3 us each. The load average is printed at the start and the end: the machine
is shared, so compare the two phases within one run, never with another run's figures.

``--agents N`` sizes the Decide's roster (``grpc_bench.decide_body(N)``, default 100);
``--by-hash`` sends it whole once (the server caches it), then names it by its
``roster_sha256`` in every measured call, as the published client does.

``--ab TREE_A TREE_B`` runs this script ``--rounds`` times per tree, alternating (A, B, A,
B...), each a child with ``PYTHONPATH`` at that tree's ``src``, and prints per tree the medians
over rounds of each phase's p50 and of each stage's step.
"""

from __future__ import annotations

import argparse
import functools
import logging
import multiprocessing
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import grpc

from grpc_bench import CHECK, DECIDE, by_hash, decide_body, load_average, with_request_id

DECIDE_STAGES = (
    "send",
    "deser_in",
    "deser_out",
    "handler_in",
    "decided",
    "reply_built",
    "append_in",
    "handed",
    "writer_took",
    "locked",
    "begun",
    "commit_in",
    "committed",
    "settled",
    "woken",
    "handler_out",
    "ser_in",
    "ser_out",
    "recv",
)
"""A served Decide's stages in the order one call passes them."""

FINE_STAGES = (
    "caller",
    "case_in",
    "case_out",
    "converted",
    "canonical",
    "req_hashed",
    "keyed",
    "engine_in",
    "signals",
    "fact",
    "matched",
    "rules",
    "selected",
    "engine_out",
    "masked",
)
"""``--fine``: the stages of handler -> decided, in call order, between those two."""


def decide_stages(*, fine: bool) -> tuple[str, ...]:
    """The Decide table's stages; with ``fine``, handler -> decided split (``FINE_STAGES``)."""
    if not fine:
        return DECIDE_STAGES
    at = DECIDE_STAGES.index("decided")
    return DECIDE_STAGES[:at] + FINE_STAGES + DECIDE_STAGES[at:]


CHECK_STAGES = (
    "send",
    "deser_in",
    "deser_out",
    "handler_in",
    "handler_out",
    "ser_in",
    "ser_out",
    "recv",
)
"""The empty call's stages: the same gRPC ones, nothing between handler entry and return."""

OFF_PATH = ("log_in", "log_out")
"""Stamps of the call log's writer thread: not on the call's path, shown for overlap."""

_MARKS: list[dict[str, int]] = []
"""One dict of stamps per call the server saw, in order (a call starts at its deserializer)."""

_now = time.perf_counter_ns


def _mark(stage: str) -> None:
    """Stamp ``stage`` on the current call (the first stamp of a stage counts)."""
    if _MARKS:
        _MARKS[-1].setdefault(stage, _now())


def _stamped(function: Callable[..., Any], before: str | None, after: str | None) -> Any:
    """``function`` stamping ``before`` on entry and ``after`` on return."""

    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if before:
            _mark(before)
        try:
            return function(*args, **kwargs)
        finally:
            if after:
                _mark(after)

    return wrapper


def _new_call_deserializer(function: Callable[[bytes], Any]) -> Callable[[bytes], Any]:
    """A deserializer opening a new call's stamps."""

    def deserialize(data: bytes) -> Any:
        _MARKS.append({"deser_in": _now()})
        try:
            return function(data)
        finally:
            _mark("deser_out")

    return deserialize


class _StampedConnection:
    """The writer's SQLite connection, stamping ``BEGIN IMMEDIATE`` and ``COMMIT``."""

    def __init__(self, conn: Any) -> None:
        self._conn = conn

    def execute(self, sql: str, *args: Any) -> Any:
        if sql == "COMMIT":
            _mark("commit_in")
        result = self._conn.execute(sql, *args)
        if sql == "BEGIN IMMEDIATE":
            _mark("begun")
        elif sql == "COMMIT":
            _mark("committed")
        return result

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)


@contextmanager
def _stamping_handlers() -> Iterator[None]:
    """While building the server: every unary handler registered is wrapped with stamps."""
    real = grpc.unary_unary_rpc_method_handler

    def handler(
        behavior: Any, request_deserializer: Any = None, response_serializer: Any = None
    ) -> Any:
        return real(
            _stamped(behavior, "handler_in", "handler_out"),
            request_deserializer=_new_call_deserializer(request_deserializer),
            response_serializer=_stamped(response_serializer, "ser_in", "ser_out"),
        )

    setattr(grpc, "unary_unary_rpc_method_handler", handler)  # noqa: B010 - mypy: a function
    try:
        yield
    finally:
        setattr(grpc, "unary_unary_rpc_method_handler", real)  # noqa: B010 - as above


def _wrap(owner: type, name: str, before: str | None, after: str | None) -> None:
    """Replace ``owner.name`` with itself stamping ``before`` and ``after``."""
    setattr(owner, name, _stamped(getattr(owner, name), before, after))


def _wrap_names(module: Any, names: dict[str, tuple[str | None, str | None]]) -> None:
    """Replace module-level functions (as the module's own code looks them up) with stamps.

    A name the module does not have is skipped: a tree from before or after a change (``--ab``)
    may call another function for the same stage.
    """
    for name, (before, after) in names.items():
        if hasattr(module, name):
            setattr(module, name, _stamped(getattr(module, name), before, after))


def _install_fine_stamps() -> None:
    """Wrap the stages of handler -> decided (``FINE_STAGES``; this process only)."""
    from caseroute.audit import masking
    from caseroute.engine import case_rules
    from caseroute.engine import decide as engine
    from caseroute.grpc_api import servicer
    from caseroute.service import routing
    from caseroute.wire import convert

    _wrap_names(servicer, {"caller_identity": (None, "caller")})
    _wrap_names(convert, {"case_from_proto": ("case_in", "case_out")})
    _wrap_names(convert, {"decide_command": (None, "converted")})
    _wrap_names(routing, {"_canonical": (None, "canonical")})
    _wrap_names(routing, {"_request_sha256": (None, "req_hashed")})
    _wrap(masking.Masker, "keyed_hash", None, "keyed")
    _wrap_names(routing, {"decide": ("engine_in", "engine_out")})
    _wrap_names(routing, {"mask_decision": (None, "masked")})
    _wrap_names(
        engine,
        {
            "derive_signals": (None, "signals"),
            "build_case_fact": (None, "fact"),
            "evaluate_rules": (None, "rules"),
            "choose_and_explain": (None, "rules"),
            "select_agent": (None, "selected"),
        },
    )
    _wrap(case_rules.LoadedRuleset, "evaluate", None, "matched")


def _install_stamps() -> None:
    """Wrap the core's and the decision log's stages (this process only)."""
    from caseroute.audit import sql_appends, store
    from caseroute.grpc_api import servicer
    from caseroute.logs import deferred

    _wrap(servicer.SizedReply, "check", "decided", "reply_built")
    _wrap(sql_appends.QueuedAppends, "append", "append_in", None)
    _wrap(sql_appends.QueuedAppends, "_enqueue", "handed", None)
    if "_enqueue" in vars(store.SqliteAuditStore):  # its own since a lone call commits itself
        _wrap(store.SqliteAuditStore, "_enqueue", "handed", None)
    _wrap(sql_appends.QueuedAppends, "_next_batch", None, "writer_took")
    _wrap(sql_appends.QueuedAppends, "_settle", None, "settled")
    _wrap(sql_appends.Outcome, "result", None, "woken")
    _wrap(store.SqliteAuditStore, "_commit", "locked", None)
    _wrap(deferred.DeferredHandler, "_write_now", "log_in", "log_out")
    connect = getattr(store.SqliteAuditStore, "_connect")  # noqa: B009 - a private member
    setattr(  # noqa: B010 - a private member
        store.SqliteAuditStore, "_connect", lambda self: _StampedConnection(connect(self))
    )


def _client(conn: Connection, address: str) -> None:
    """The client process: per command, ``calls`` calls; sends back (send, recv) stamps."""
    prefix = f"{os.getpid()}-{time.monotonic_ns() % 10**9}"
    counter = 0
    with grpc.insecure_channel(address) as channel:
        while (command := conn.recv()) is not None:
            method, body, calls, unique = command
            call: Any = channel.unary_unary(method)
            stamps = []
            for _ in range(calls):
                counter += 1
                payload = with_request_id(body, f"{prefix}-{counter}") if unique else body
                send = _now()
                call(payload, timeout=60)
                stamps.append((send, _now()))
            conn.send(stamps)


def _phase(
    conn: Connection, method: str, body: bytes, calls: int, *, unique: bool
) -> list[dict[str, int]]:
    """``calls`` calls' stamps, each call's server stamps merged with its client's."""
    _MARKS.clear()
    conn.send((method, body, calls, unique))
    client = conn.recv()
    server = list(_MARKS)
    if len(server) != len(client):
        sys.exit(f"{len(client)} calls made, {len(server)} seen by the server")
    return [
        {**marks, "send": send, "recv": recv}
        for marks, (send, recv) in zip(server, client, strict=True)
    ]


def table(calls: list[dict[str, int]], stages: tuple[str, ...]) -> list[tuple[str, float, float]]:
    """Per stage: its median offset from ``send`` and median step from the stage before (us).

    A stage no call stamped is left out; a step is taken from the nearest earlier stage the
    call has.
    """
    rows = []
    previous: str | None = None
    for stage in stages:
        stamped = [c for c in calls if stage in c]
        if not stamped:
            continue
        offset = statistics.median(c[stage] - c["send"] for c in stamped) / 1e3
        step = (
            statistics.median(c[stage] - c[previous] for c in stamped if previous in c) / 1e3
            if previous is not None and any(previous in c for c in stamped)
            else 0.0
        )
        rows.append((stage, offset, step))
        previous = stage
    return rows


def _print_table(name: str, calls: list[dict[str, int]], stages: tuple[str, ...]) -> None:
    print(
        f"{name}: {len(calls)} calls, medians in us (offset from send, step from the stage above)"
    )
    rows = {stage: (offset, step) for stage, offset, step in table(calls, stages)}
    for stage in stages:
        count = sum(stage in c for c in calls)
        share = "" if count == len(calls) else f"  [stamped by {count} of {len(calls)} calls]"
        if stage in rows:
            print(f"  {stage:12s} {rows[stage][0]:9.1f} {rows[stage][1]:9.1f}{share}")
        else:  # e.g. writer_took when every call committed its own record
            print(f"  {stage:12s} {'-':>9s} {'-':>9s}{share}")
    off = [c for c in calls if "log_in" in c]
    if off:
        print(
            f"  (call log writer: {len(off)} of {len(calls)} calls; "
            + ", ".join(
                f"{s} {statistics.median(c[s] - c['send'] for c in off if s in c) / 1e3:.1f}"
                for s in OFF_PATH
                if any(s in c for c in off)  # a line still being written has no log_out
            )
            + ")"
        )


def _ab(trees: list[str], args: argparse.Namespace) -> None:
    """Alternate whole runs of this script against two trees; medians per tree."""
    print("load", load_average(), flush=True)
    steps: dict[tuple[str, str, str], list[float]] = {}
    for _ in range(args.rounds):
        for tree in trees:
            env = {**os.environ, "PYTHONPATH": str(Path(tree).resolve() / "src")}
            command = [sys.executable, __file__, "--calls", str(args.calls), "--rounds", "1"]
            command += ["--fine"] if args.fine else []
            command += ["--agents", str(args.agents)] + (["--by-hash"] if args.by_hash else [])
            out = subprocess.run(command, capture_output=True, text=True, check=True, env=env)
            phase = ""
            for line in out.stdout.splitlines():
                if line.startswith(("check:", "decide:")):
                    phase = line.split(":")[0]
                elif line.startswith("  ") and not line.lstrip().startswith("("):
                    stage, _, step = line.split()[:3]
                    if step != "-":
                        steps.setdefault((tree, phase, stage), []).append(float(step))
                elif line.startswith("p50"):
                    found = re.findall(r"(check|decide) ([\d.]+) us", line)
                    for name, value in found:
                        steps.setdefault((tree, "p50", name), []).append(float(value))
                        print(f"{tree} p50 {name} {value}", flush=True)
    print("load", load_average())
    print(f"medians over {args.rounds} alternating rounds of {args.calls} calls, us")
    for (tree, phase, stage), values in steps.items():
        if tree == trees[0]:
            other = statistics.median(steps.get((trees[1], phase, stage), [0.0]))
            mine = statistics.median(values)
            ratio = f"{other / mine:.2f}x" if mine else "-"
            print(f"  {phase:6s} {stage:12s} A {mine:8.1f}  B {other:8.1f}  B/A {ratio}")


def main() -> None:
    """Serve, call, print both phases' tables and the load average."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=600, help="per phase per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--warm", type=int, default=100, help="calls before measuring")
    parser.add_argument("--quick", action="store_true", help="smoke test: 2 rounds of 5 calls")
    parser.add_argument("--ab", nargs=2, metavar="TREE", help="alternate runs against two trees")
    parser.add_argument("--fine", action="store_true", help="split handler -> decided too")
    parser.add_argument("--agents", type=int, default=100, help="roster size of the Decide")
    parser.add_argument("--by-hash", action="store_true", help="name the roster by its sha256")
    args = parser.parse_args()
    if args.ab:
        _ab(args.ab, args)
        return
    if args.quick:
        args.calls, args.rounds, args.warm = 5, 2, 3

    from grpc_health.v1 import health_pb2

    from caseroute.grpc_api import server as served
    from caseroute.logs.setup import configure_logging
    from caseroute.testing import REFERENCE_RULESETS, audit_config

    print("load", load_average(), flush=True)
    _install_stamps()
    if args.fine:
        _install_fine_stamps()
    with Path(os.devnull).open("w") as sink, tempfile.TemporaryDirectory() as tmp:
        configure_logging("json", "info", sink, deferred=True)  # as `serve` does
        config = served.ServerConfig(
            rulesets=REFERENCE_RULESETS, port=0, audit=audit_config(Path(tmp))
        )
        with _stamping_handlers():
            running = served.build_server(config, reuse_port=False)
        running.load(config)
        ctx = multiprocessing.get_context("spawn")
        ours, theirs = ctx.Pipe()
        client = ctx.Process(target=_client, args=(theirs, f"127.0.0.1:{running.port}"))
        client.start()
        theirs.close()  # ours alone: a client that dies ends our recv() (EOFError), no hang
        body = decide_body(args.agents)
        if args.by_hash:  # the first call (unhashed) caches the roster, as the client's retry
            _phase(ours, DECIDE, body, 1, unique=True)
            body = by_hash(body)
        named = "named by its roster_sha256" if args.by_hash else "sent whole"
        print(f"roster: {args.agents} agents, {named} ({len(body)} request bytes)", flush=True)
        check = health_pb2.HealthCheckRequest().SerializeToString()
        _phase(ours, DECIDE, body, args.warm, unique=True)
        _phase(ours, CHECK, check, args.warm, unique=False)
        phases: dict[str, list[dict[str, int]]] = {"check": [], "decide": []}
        for _ in range(args.rounds):
            phases["check"] += _phase(ours, CHECK, check, args.calls, unique=False)
            phases["decide"] += _phase(ours, DECIDE, body, args.calls, unique=True)
        ours.send(None)
        client.join(30)
        running.stop(1.0)
        logging.shutdown()
    print("load", load_average())
    _print_table("check", phases["check"], CHECK_STAGES)
    _print_table("decide", phases["decide"], decide_stages(fine=args.fine))
    check_p50 = statistics.median(c["recv"] - c["send"] for c in phases["check"]) / 1e3
    decide_p50 = statistics.median(c["recv"] - c["send"] for c in phases["decide"]) / 1e3
    print(f"p50 check {check_p50:.1f} us, decide {decide_p50:.1f} us")


if __name__ == "__main__":
    main()
