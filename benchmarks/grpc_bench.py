"""Decide latency and throughput over gRPC, beside an empty unary call (health Check) as floor.

Usage: .venv/bin/python benchmarks/grpc_bench.py [--workers 2] [--seconds 4]

Starts `caseroute serve` (its own processes), then for each roster size and client count runs
client processes that send pre-serialised requests for a fixed time. Everything shares this
machine's cores, clients included, so compare rows within one run.
"""

from __future__ import annotations

import argparse
import multiprocessing
import statistics
import subprocess
import sys
import time
from typing import Any

import grpc
from grpc_health.v1 import health_pb2

from caseroute.grpc_api import convert
from caseroute.grpc_api._generated import routing_pb2 as pb
from caseroute.testing import NOW, REFERENCE_RULESET
from roster_gen import make_bench_case, make_bench_roster

DECIDE = "/caseroute.v1.RoutingService/Decide"
CHECK = "/grpc.health.v1.Health/Check"


def _client(address: str, method: str, body: bytes, seconds: float, out: Any) -> None:
    """Call ``method`` with raw ``body`` in a loop for ``seconds``; report latencies."""
    with grpc.insecure_channel(address) as channel:
        call: Any = channel.unary_unary(method)  # raw bytes in and out
        call(body, timeout=60)  # warm the connection
        latencies = []
        end = time.perf_counter() + seconds
        while time.perf_counter() < end:
            start = time.perf_counter()
            call(body, timeout=60)
            latencies.append(time.perf_counter() - start)
    out.put(latencies)


def _run(
    address: str, method: str, body: bytes, clients: int, seconds: float
) -> tuple[float, float, float]:
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    procs = [
        ctx.Process(target=_client, args=(address, method, body, seconds, queue))
        for _ in range(clients)
    ]
    for proc in procs:
        proc.start()
    latencies = sorted(x for _ in procs for x in queue.get())
    for proc in procs:
        proc.join()
    p99 = latencies[max(0, int(len(latencies) * 0.99) - 1)]
    return statistics.median(latencies) * 1e3, p99 * 1e3, len(latencies) / seconds


def _wait_serving(address: str) -> None:
    with grpc.insecure_channel(address) as channel:
        check: Any = channel.unary_unary(CHECK)  # raw bytes in and out
        for _ in range(600):
            try:
                raw = check(health_pb2.HealthCheckRequest().SerializeToString(), timeout=2)
                if health_pb2.HealthCheckResponse.FromString(raw).status == 1:
                    return
            except grpc.RpcError:
                pass
            time.sleep(0.1)
    sys.exit("server did not become SERVING")


def main() -> None:
    """Print a markdown table."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--engine", default="durable")
    parser.add_argument(
        "--cold",
        action="store_true",
        help="turn the server's roster cache off: every call parses its roster",
    )
    args = parser.parse_args()
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "caseroute.cli",
            "serve",
            "--port",
            "0",
            "--workers",
            str(args.workers),
            "--engine",
            args.engine,
            "--rulesets",
            str(REFERENCE_RULESET.parent),
            "--roster-cache-agents",
            "0" if args.cold else "100000",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    if server.stdout is None:
        sys.exit("could not read the server's output")
    address = server.stdout.readline().split()[3]
    try:
        time.sleep(1)
        _wait_serving(address)
        floor_body = health_pb2.HealthCheckRequest().SerializeToString()
        cache = "off (cold)" if args.cold else "on (warm)"
        print(
            f"server: {args.workers} worker processes, engine {args.engine}, roster cache "
            f"{cache}; explanation level SUMMARY; {args.seconds:g} s per row"
        )
        print()
        print(
            "| agents | clients | Decide median ms | p99 ms | floor median ms | p99 ms "
            "| median ratio | Decide/s |"
        )
        print("| --- | --- | --- | --- | --- | --- | --- | --- |")
        for size in (10, 100, 1000, 5000):
            request = pb.DecideRequest(
                request_id="bench",
                case=convert.case_to_proto(make_bench_case()),
                roster=convert.roster_to_proto(make_bench_roster(size)),
                now=convert.datetime_to_timestamp(NOW),
                explanation_level=pb.EXPLANATION_LEVEL_SUMMARY,
            )
            body = request.SerializeToString()
            for clients in (1, 8):
                floor = _run(address, CHECK, floor_body, clients, args.seconds)
                decide = _run(address, DECIDE, body, clients, args.seconds)
                print(
                    f"| {size} | {clients} | {decide[0]:.2f} | {decide[1]:.2f} | "
                    f"{floor[0]:.2f} | {floor[1]:.2f} | {decide[0] / floor[0]:.1f}x | "
                    f"{decide[2]:.0f} |",
                    flush=True,
                )
    finally:
        server.terminate()
        server.wait(30)
        server.stdout.close()


if __name__ == "__main__":
    main()
