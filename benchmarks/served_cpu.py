"""Where a served Decide's server CPU goes, thread by thread, under variants of the server.

Usage: .venv/bin/python benchmarks/served_cpu.py [--variants base,nolog,threads4] [--rounds 5]
                                                  [--calls 800] [--clients 1] [--seconds 3]

Each run is one child process that builds the server exactly as ``caseroute serve --workers 1``
does (``build_server`` + ``load``, the reference rulesets, durable_rules, a real SQLite decision
log with fsync, the call log rendered as JSON into /dev/null as a server whose stderr is not a
terminal does) and serves ``grpc_bench.py``'s client processes on loopback. Per phase (health
``Check``, then the warm 100-agent SUMMARY ``Decide`` with a new request_id per call) it reads
every thread's CPU from ``/proc/self/task`` and prints it per call, grouped: ``rpc`` (the
request threads), ``serve`` (grpcio's Python event loop, ``_server.py`` ``_serve``),
``auditwriter`` (the decision log's writer), ``C`` (gRPC core's own threads: event_engine,
timers) and the total. ``--clients 1`` calls sequentially (``--calls`` calls per phase); more
clients call back to back for ``--seconds`` each, and the rate is printed too (``--p50``: with 1
client, the median latency in us as well). The call log's writer thread counts as ``rpc`` (the
work it took off the request threads) unless ``--split-log`` names it ``logwriter``.

Variants (joined with ``+``): ``base`` (logging as ``serve`` sets it up: lines formatted and
written by their own thread where the tree has ``deferred``); ``synclog`` (each line formatted
and written on the thread that logs it, as before ``deferred``); ``nolog`` (the call log's
level set to WARNING: no line per call); ``nointerc`` (no interceptors at all: no call log,
metrics, access check); ``threadsN`` (``--threads N``); ``arg:NAME=VALUE`` (the server channel
argument ``grpc.NAME`` set to VALUE, e.g. ``arg:http2.bdp_probe=0``); ``switchS``
(``sys.setswitchinterval(S)``); ``gcfreeze`` (``gc.freeze()`` after the rulesets load);
``logab`` (in one server, ``--blocks`` pairs of phases alternating the call log written by its
own thread and on the request thread in ABBA order, each phase named ``check:deferred``,
``check:sync``...: blocks seconds apart see the same load, runs minutes apart do not). Rounds
alternate the variants; medians over rounds. The machine is shared: compare variants within
one run, never with another run's figures.
"""

from __future__ import annotations

import argparse
import gc
import logging
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from grpc_bench import CHECK, DECIDE, Clients, decide_body

_FIGURE = re.compile(r"(\w+)=(\d+)")


def _task_ticks() -> dict[int, int]:
    """CPU clock ticks (user + system) of every thread of this process, by thread id."""
    ticks = {}
    for task in Path("/proc/self/task").iterdir():
        try:
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:  # the thread ended while listed
            continue
        ticks[int(task.name)] = int(fields[11]) + int(fields[12])
    return ticks


def _group(name: str, split_log: bool) -> str:
    """The group a Python thread's CPU is counted under.

    The call log's writer thread (``log-writer``) is counted with the request threads whose
    lines it writes (that work moved off them), unless ``split_log``: then as ``logwriter``.
    """
    if "_serve" in name:
        return "serve"
    if name == "log-writer" and not split_log:
        return "rpc"
    return name.rstrip("0123456789_").replace("-", "")


def _phase(
    clients: Clients, method: str, body: bytes, unique: bool, args: argparse.Namespace
) -> tuple[int, float, float]:
    """Calls made, wall seconds and (1 client) the median latency in us of one phase."""
    start = time.perf_counter()
    if args.clients == 1:
        latencies = clients.latencies(method, body, args.calls, unique)
        return args.calls, time.perf_counter() - start, statistics.median(latencies) * 1e6
    calls = round(clients.per_second(method, body, args.seconds, unique) * args.seconds)
    return calls, time.perf_counter() - start, 0.0


def _server_option(text: str) -> tuple[str, int | str]:
    """``("grpc.NAME", value)`` from ``NAME=VALUE`` (an integer when it reads as one)."""
    name, _, value = text.partition("=")
    return f"grpc.{name}", int(value) if value.lstrip("-").isdigit() else value


def _child(variant: str, args: argparse.Namespace) -> None:
    """Serve, measure both phases, print one ``phase key=value ...`` line each."""
    from grpc_health.v1 import health_pb2

    from caseroute.grpc_api import server as served
    from caseroute.logs.setup import configure_logging
    from caseroute.testing import REFERENCE_RULESETS, audit_config

    parts = variant.split("+")
    threads = next((int(p[7:]) for p in parts if p.startswith("threads")), 16)
    extra_options = [_server_option(p[4:]) for p in parts if p.startswith("arg:")]
    if "nointerc" in parts or extra_options:
        import grpc

        real_server = grpc.server

        def varied(*positional: Any, **named: Any) -> Any:
            if "nointerc" in parts:
                named.pop("interceptors", None)
            named["options"] = [*named.get("options", ()), *extra_options]
            return real_server(*positional, **named)

        setattr(grpc, "server", varied)  # noqa: B010 - mypy refuses assigning to a function
    for part in parts:
        if part.startswith("switch"):
            sys.setswitchinterval(float(part[6:]))
    with Path(os.devnull).open("w") as sink, tempfile.TemporaryDirectory() as tmp:
        level = "warning" if "nolog" in parts else "info"
        try:  # as `serve` does: lines written by their own thread, unless ``synclog``
            configure_logging("json", level, sink, deferred="synclog" not in parts)
        except TypeError:  # a tree from before deferred lines
            configure_logging("json", level, sink)
        config = served.ServerConfig(
            rulesets=REFERENCE_RULESETS, port=0, threads=threads, audit=audit_config(Path(tmp))
        )
        running = served.build_server(config, reuse_port=False)
        running.load(config)
        if "gcfreeze" in parts:
            gc.collect()
            gc.freeze()
        clients = Clients(f"127.0.0.1:{running.port}", args.clients)
        body = decide_body(100)
        check = health_pb2.HealthCheckRequest().SerializeToString()
        clients.warm(DECIDE, body)
        clients.latencies(DECIDE, body, 100, unique=True)
        # ``logab``: blocks alternate the call log written by its own thread and written on
        # the request thread, in this one server (the load drifts less between blocks than
        # between runs); each phase is named for its mode.
        # Counterbalanced (ABBA...): whatever drifts with the call count (the decision log's
        # WAL checkpoints) falls on both modes alike.
        modes = (
            [m for i in range(args.blocks) for m in ("deferred", "sync")[:: 1 - 2 * (i % 2)]]
            if "logab" in parts
            else [""]
        )
        phases = [
            (f"{name}:{mode}" if mode else name, method, payload, unique, mode)
            for mode in modes
            for name, method, payload, unique in (
                ("check", CHECK, check, False),
                ("decide", DECIDE, body, True),
            )
        ]
        for name, method, payload, unique, mode in phases:
            if mode:
                configure_logging("json", level, sink, deferred=mode == "deferred")
            before = _task_ticks()
            calls, wall, p50 = _phase(clients, method, payload, unique, args)
            after = _task_ticks()
            # Named after the phase: a request thread the pool started during it is named too.
            names = {t.native_id: _group(t.name, args.split_log) for t in threading.enumerate()}
            groups: dict[str, int] = {}
            for tid, ticks in after.items():
                group = names.get(tid, "C")
                groups[group] = groups.get(group, 0) + ticks - before.get(tid, 0)
            per_call = 1e6 / os.sysconf("SC_CLK_TCK") / calls
            figures = {g: round(t * per_call) for g, t in groups.items() if t}
            figures["total"] = round(sum(groups.values()) * per_call)
            figures["rate"] = round(calls / wall)
            if args.p50:
                figures["p50"] = round(p50)
            print(name, " ".join(f"{k}={v}" for k, v in sorted(figures.items())), flush=True)
        clients.close()
        running.stop(1.0)
        logging.shutdown()
    os._exit(0)  # grpc's threads: nothing left to wait for


def main() -> None:
    """Alternate the variants' runs, print each run and the medians."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--variants", default="base,nolog,nointerc,threads4")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--calls", type=int, default=800, help="per phase, 1 client")
    parser.add_argument("--clients", type=int, default=1)
    parser.add_argument("--seconds", type=float, default=3.0, help="per phase, 2+ clients")
    parser.add_argument("--blocks", type=int, default=4, help="logab: blocks per mode per run")
    parser.add_argument("--p50", action="store_true", help="1 client: median latency (us) too")
    parser.add_argument(
        "--split-log", action="store_true", help="the log writer thread as its own group"
    )
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(args.child, args)
        return
    variants = args.variants.split(",")
    print("load", " ".join(f"{x:.2f}" for x in os.getloadavg()), flush=True)
    runs: dict[tuple[str, str], list[dict[str, int]]] = {}
    for _ in range(args.rounds):
        for variant in variants:
            command = [sys.executable, __file__, *sys.argv[1:], "--child", variant]
            output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
            for line in output.splitlines():
                phase, _, rest = line.partition(" ")
                figures = {k: int(v) for k, v in _FIGURE.findall(rest)}
                runs.setdefault((variant, phase), []).append(figures)
                print(f"{variant:20s} {line}", flush=True)
    print("load", " ".join(f"{x:.2f}" for x in os.getloadavg()))
    print(
        f"medians over {args.rounds} rounds, us of server CPU per call (rate: calls/s; p50: "
        "median latency in us, 1 client)"
    )
    for variant, phase in sorted(runs, key=lambda k: (k[1].split(":")[0], k[0], k[1])):
        got = runs[(variant, phase)]
        keys = sorted({k for figures in got for k in figures})
        medians = {k: statistics.median(f.get(k, 0) for f in got) for k in keys}
        print(f"{phase:6s} {variant:20s} " + " ".join(f"{k}={medians[k]:.0f}" for k in keys))


if __name__ == "__main__":
    main()
