"""Server CPU per unary call spent by caseroute's per-call stack: interceptors, call log, metrics.

Usage: .venv/bin/python benchmarks/call_overhead.py [--calls 3000] [--rounds 5] [--threads 4]
       .venv/bin/python benchmarks/call_overhead.py --ab TREE_A TREE_B [--runs 3] [...]

A ``grpc.server`` in a child process serves the standard health ``Check`` (the cheapest method
caseroute has) behind exactly the interceptors ``build_server`` installs: ``RpcCallInterceptor``
telling the call log (``RpcLogListener``, lines rendered as JSON by ``configure_logging`` into
/dev/null, as a server whose stderr is not a terminal does, on their own thread where the
tree's ``configure_logging`` has ``deferred``) and the metrics
(``RpcMetricsListener`` over a private registry), ``AuthInterceptor`` with open policies, and
``CallerNoteInterceptor``. The same server without interceptors, logging or metrics (``bare``)
runs in the same rounds. Clients are ``--threads`` threads of this process, each calling back to
back on one channel. The figure is the server process's CPU (``time.process_time`` in the
child, every thread) per call, medians over rounds; ``caseroute - bare`` is what the stack
costs per call. ``--ab`` runs the whole thing under each tree's ``src`` alternately.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import threading
from concurrent import futures
from typing import IO, Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

VARIANTS = ("bare", "caseroute")


def _serve(variant: str) -> None:
    """Child: serve health on a free port, print it, then report CPU between commands."""
    import time

    from grpc_health.v1 import health

    interceptors: list[Any] = []
    if variant == "caseroute":
        from prometheus_client import CollectorRegistry

        from caseroute.grpc_api.auth import AccessPolicy, AuthInterceptor
        from caseroute.grpc_api.rpc_calls import (
            CallerNoteInterceptor,
            RpcCallInterceptor,
        )
        from caseroute.grpc_api.rpc_log import RpcLogListener
        from caseroute.grpc_api.rpc_metrics import RpcMetricsListener
        from caseroute.logs import configure_logging
        from caseroute.metrics import MetricsRecorder, define_metrics

        sink = open(os.devnull, "w")  # noqa: SIM115, PTH123
        try:  # as `serve` does: lines written by their own thread
            configure_logging("json", "info", sink, deferred=True)
        except TypeError:  # a tree from before deferred lines
            configure_logging("json", "info", sink)
        recorder = MetricsRecorder(define_metrics(CollectorRegistry()))
        interceptors = [
            RpcCallInterceptor([RpcLogListener(), RpcMetricsListener(recorder)]),
            AuthInterceptor(
                {
                    "caseroute.v1.RulesetAdmin": AccessPolicy(),
                    "caseroute.v1.DecisionLog": AccessPolicy(),
                    "caseroute.v1.RoutingService": AccessPolicy(),
                },
                required=frozenset({"caseroute.v1.RulesetAdmin"}),
            ),
            CallerNoteInterceptor(),
        ]
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=8), interceptors=interceptors)
    health_pb2_grpc.add_HealthServicer_to_server(health.HealthServicer(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    print(port, flush=True)
    start = 0.0
    for line in sys.stdin:
        if line.strip() == "start":
            start = time.process_time()
            print("ok", flush=True)
        elif line.strip() == "stop":
            print(time.process_time() - start, flush=True)
    server.stop(None)


def _calls(port: int, calls: int, threads: int) -> None:
    def worker(n: int) -> None:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            check = channel.unary_unary(
                "/grpc.health.v1.Health/Check",
                request_serializer=health_pb2.HealthCheckRequest.SerializeToString,
                response_deserializer=health_pb2.HealthCheckResponse.FromString,
            )
            request = health_pb2.HealthCheckRequest()
            for _ in range(n):
                check(request)

    pool = [threading.Thread(target=worker, args=(calls // threads,)) for _ in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()


def _pipe(stream: IO[str] | None) -> IO[str]:
    if stream is None:
        raise RuntimeError("the server's pipe is gone")
    return stream


def measure(calls: int, rounds: int, threads: int) -> dict[str, float]:
    """Median server CPU per call (us) of each variant, rounds interleaved."""
    servers = {}
    for variant in VARIANTS:
        proc = subprocess.Popen(
            [sys.executable, __file__, "--serve", variant],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        servers[variant] = (proc, int(_pipe(proc.stdout).readline()))
    samples: dict[str, list[float]] = {v: [] for v in VARIANTS}
    try:
        for _, port in servers.values():
            _calls(port, 200, threads)  # warm-up
        for _ in range(rounds):
            for variant, (proc, port) in servers.items():
                stdin, stdout = _pipe(proc.stdin), _pipe(proc.stdout)
                stdin.write("start\n")
                stdin.flush()
                stdout.readline()
                _calls(port, calls, threads)
                stdin.write("stop\n")
                stdin.flush()
                done = (calls // threads) * threads
                samples[variant].append(float(stdout.readline()) / done * 1e6)
    finally:
        for proc, _ in servers.values():
            if proc.stdin is not None:
                proc.stdin.close()
            proc.wait(30)
    out = {v: statistics.median(s) for v, s in samples.items()}
    out["stack"] = out["caseroute"] - out["bare"]
    return out


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def _ab(args: argparse.Namespace) -> None:
    runs: dict[str, list[dict[str, float]]] = {"A": [], "B": []}
    print(f"load average at start: {_load()}")
    for i in range(args.runs):
        for side, tree in zip("AB", args.ab, strict=True):
            env = {**os.environ, "PYTHONPATH": os.path.join(tree, "src")}  # noqa: PTH118
            cmd = [sys.executable, __file__, "--json", "--calls", str(args.calls)]
            cmd += ["--rounds", str(args.rounds), "--threads", str(args.threads)]
            result = json.loads(
                subprocess.run(cmd, env=env, check=True, capture_output=True, text=True).stdout
            )
            runs[side].append(result)
            print(
                f"run {side}{i + 1}: "
                + ", ".join(f"{k} {v:.1f}" for k, v in result.items())
                + f" us per call (load {_load()})"
            )
    print("\n| server CPU us per call | A median | B median | B/A |\n| --- | --- | --- | --- |")
    for key in (*VARIANTS, "stack"):
        a = statistics.median(r[key] for r in runs["A"])
        b = statistics.median(r[key] for r in runs["B"])
        print(f"| {key} | {a:.1f} | {b:.1f} | {b / a:.3f} |")
    print(f"\nload average at end: {_load()} ({os.cpu_count()} cores)")


def main() -> None:
    """Run the benchmark (see the module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=3000, help="calls per round")
    parser.add_argument("--rounds", type=int, default=5, help="rounds")
    parser.add_argument("--threads", type=int, default=4, help="client threads")
    parser.add_argument("--ab", nargs=2, metavar="TREE", help="compare two source trees")
    parser.add_argument("--runs", type=int, default=3, help="--ab: runs per tree, alternating")
    parser.add_argument("--serve", choices=VARIANTS, help=argparse.SUPPRESS)
    parser.add_argument("--json", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        _serve(args.serve)
    elif args.ab:
        _ab(args)
    else:
        result = measure(args.calls, args.rounds, args.threads)
        if args.json:
            print(json.dumps(result))
        else:
            for key, value in result.items():
                print(f"{key}: {value:.1f} us of server CPU per call")
            print(f"load average: {_load()} ({os.cpu_count()} cores)")


if __name__ == "__main__":
    main()
