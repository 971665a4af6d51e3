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
clients call back to back for ``--seconds`` each, and the rate is printed too.

Variants (joined with ``+``): ``base``; ``nolog`` (the call log's level set to WARNING: no line
per call); ``nointerc`` (no interceptors at all: no call log, metrics, access check);
``threadsN`` (``--threads N``); ``switchS`` (``sys.setswitchinterval(S)``); ``gcfreeze``
(``gc.freeze()`` after the rulesets load). Rounds alternate the variants; medians over rounds.
The machine is shared: compare variants within one run, never with another run's figures.
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


def _group(name: str) -> str:
    """The group a Python thread's CPU is counted under."""
    if "_serve" in name:
        return "serve"
    return name.rstrip("0123456789_").replace("-", "")


def _phase(
    clients: Clients, method: str, body: bytes, unique: bool, args: argparse.Namespace
) -> tuple[int, float]:
    """Calls made and wall seconds of one phase."""
    start = time.perf_counter()
    if args.clients == 1:
        clients.latencies(method, body, args.calls, unique)
        return args.calls, time.perf_counter() - start
    calls = round(clients.per_second(method, body, args.seconds, unique) * args.seconds)
    return calls, time.perf_counter() - start


def _child(variant: str, args: argparse.Namespace) -> None:
    """Serve, measure both phases, print one ``phase key=value ...`` line each."""
    from grpc_health.v1 import health_pb2

    from caseroute.grpc_api import server as served
    from caseroute.logs.setup import configure_logging
    from caseroute.testing import REFERENCE_RULESETS, audit_config

    parts = variant.split("+")
    threads = next((int(p[7:]) for p in parts if p.startswith("threads")), 16)
    if "nointerc" in parts:
        import grpc

        real_server = grpc.server

        def bare(*positional: Any, **named: Any) -> Any:
            named.pop("interceptors", None)
            return real_server(*positional, **named)

        setattr(grpc, "server", bare)  # noqa: B010 - mypy refuses assigning to a function
    for part in parts:
        if part.startswith("switch"):
            sys.setswitchinterval(float(part[6:]))
    with Path(os.devnull).open("w") as sink, tempfile.TemporaryDirectory() as tmp:
        configure_logging("json", "warning" if "nolog" in parts else "info", sink)
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
        for name, method, payload, unique in (
            ("check", CHECK, check, False),
            ("decide", DECIDE, body, True),
        ):
            before = _task_ticks()
            calls, wall = _phase(clients, method, payload, unique, args)
            after = _task_ticks()
            # Named after the phase: a request thread the pool started during it is named too.
            names = {t.native_id: _group(t.name) for t in threading.enumerate()}
            groups: dict[str, int] = {}
            for tid, ticks in after.items():
                group = names.get(tid, "C")
                groups[group] = groups.get(group, 0) + ticks - before.get(tid, 0)
            per_call = 1e6 / os.sysconf("SC_CLK_TCK") / calls
            figures = {g: round(t * per_call) for g, t in groups.items() if t}
            figures["total"] = round(sum(groups.values()) * per_call)
            figures["rate"] = round(calls / wall)
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
    print(f"medians over {args.rounds} rounds, us of server CPU per call (rate: calls/s)")
    for phase in ("check", "decide"):
        for variant in variants:
            got = runs.get((variant, phase), [])
            keys = sorted({k for figures in got for k in figures})
            medians = {k: statistics.median(f.get(k, 0) for f in got) for k in keys}
            print(f"{phase:6s} {variant:20s} " + " ".join(f"{k}={medians[k]:.0f}" for k in keys))


if __name__ == "__main__":
    main()
