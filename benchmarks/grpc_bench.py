"""Decide latency and throughput over gRPC, beside an empty unary call (health Check) as floor.

Usage: .venv/bin/python benchmarks/grpc_bench.py [--workers 2] [--seconds 4]

Starts `caseroute serve` (its own processes, decision log in a temporary directory), then for
each roster size and client count runs client processes that send pre-serialised requests for a
fixed time. Every call carries a new request_id, so each is a new decision recorded in the
decision log before the reply (``--retries``: one request_id per client, so every call after
the first is an idempotent retry answered from the log). Everything shares this machine's
cores, clients included, so compare rows within one run.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any

import grpc
from grpc_health.v1 import health_pb2

from caseroute.testing import NOW, REFERENCE_RULESET, TEST_AUDIT_KEY
from caseroute.v1 import routing_pb2 as pb
from caseroute.wire import convert
from roster_gen import make_bench_case, make_bench_roster

DECIDE = "/caseroute.v1.RoutingService/Decide"
CHECK = "/grpc.health.v1.Health/Check"


def _with_request_id(body: bytes, request_id: str) -> bytes:
    """``body`` (a DecideRequest without request_id) with field 1 set: proto fields concatenate."""
    raw = request_id.encode()
    return b"\x0a" + bytes([len(raw)]) + raw + body


def _client(address: str, method: str, body: bytes, seconds: float, out: Any, unique: bool) -> None:
    """Call ``method`` with raw ``body`` in a loop for ``seconds``; report latencies."""
    prefix = f"{os.getpid()}-{time.monotonic_ns()}"
    with grpc.insecure_channel(address) as channel:
        call: Any = channel.unary_unary(method)  # raw bytes in and out
        call(_with_request_id(body, f"{prefix}-w") if unique else body, timeout=60)  # warm up
        latencies = []
        end = time.perf_counter() + seconds
        i = 0
        while time.perf_counter() < end:
            payload = _with_request_id(body, f"{prefix}-{i}") if unique else body
            i += 1
            start = time.perf_counter()
            call(payload, timeout=60)
            latencies.append(time.perf_counter() - start)
    out.put(latencies)


def _run(
    address: str, method: str, body: bytes, clients: int, seconds: float, unique: bool = False
) -> tuple[float, float, float]:
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    procs = [
        ctx.Process(target=_client, args=(address, method, body, seconds, queue, unique))
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
    parser.add_argument(
        "--retries",
        action="store_true",
        help="reuse one request_id: measures idempotent retries answered from the decision log",
    )
    parser.add_argument("--sizes", default="10,100,1000,5000", help="roster sizes")
    args = parser.parse_args()
    audit_dir = tempfile.TemporaryDirectory()
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
            "--audit-db",
            f"{audit_dir.name}/audit.db",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env={**os.environ, "CASEROUTE_AUDIT_KEY": TEST_AUDIT_KEY},
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
            f"{cache}; explanation level SUMMARY; "
            f"{'retries of one request_id' if args.retries else 'a new request_id per call'}; "
            f"{args.seconds:g} s per row"
        )
        print()
        print(
            "| agents | clients | Decide median ms | p99 ms | floor median ms | p99 ms "
            "| median ratio | Decide/s |"
        )
        print("| --- | --- | --- | --- | --- | --- | --- | --- |")
        for size in (int(n) for n in args.sizes.split(",")):
            request = pb.DecideRequest(
                request_id=f"bench-{size}" if args.retries else "",
                case=convert.case_to_proto(make_bench_case()),
                roster=convert.roster_to_proto(make_bench_roster(size)),
                now=convert.datetime_to_timestamp(NOW),
                explanation_level=pb.EXPLANATION_LEVEL_SUMMARY,
            )
            body = request.SerializeToString()
            for clients in (1, 8):
                floor = _run(address, CHECK, floor_body, clients, args.seconds)
                decide = _run(address, DECIDE, body, clients, args.seconds, not args.retries)
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
        audit_dir.cleanup()


if __name__ == "__main__":
    main()
