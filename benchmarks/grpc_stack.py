"""Is Python's gRPC stack the ceiling for issue 13's throughput target? Bare servers, no caseroute.

Usage: .venv/bin/python benchmarks/grpc_stack.py [--quick] [--rounds 5] [--seconds 2] [--clients 8]

Issue 13 target 2 asks for >= 1,500 decisions/s from 8 client processes on this 2-core machine.
This measures what the stack alone allows, with the same client processes as
``grpc_bench.py`` (each its own channel, raw bytes, calls back to back): a unary method whose
handler does nothing but, optionally, burn a fixed amount of CPU (``--burn-us``, standing in for
a decision's own work), served by

- ``sync-2x{threads}``: two processes sharing the port (SO_REUSEPORT), each a ``grpc.server``
  over a thread pool: what ``caseroute serve --workers 2`` runs;
- ``sync-3x{threads}``, ``sync-4x{threads}``: more worker processes than cores;
- ``aio-2``: two processes each running ``grpc.aio`` (the handler runs on the event loop).

Rounds interleave the variants; each figure is the median calls/s over rounds. Clients share
the machine's cores with the servers, as in grpc_bench.py, so compare within one run.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import socket
import statistics
import time
from collections.abc import Callable
from concurrent import futures
from dataclasses import dataclass
from multiprocessing.synchronize import Event
from typing import Any

import grpc

from grpc_bench import Clients, load_average

METHOD = "/bench.Stack/Call"


def _burn(micros: float) -> None:
    """Spend ``micros`` of this thread's CPU (the GIL held, as Python code holds it)."""
    end = time.thread_time() + micros / 1e6
    while time.thread_time() < end:
        pass


def _handler(burn_us: float) -> Callable[[bytes, Any], bytes]:
    def call(_request: bytes, _context: Any) -> bytes:
        if burn_us:
            _burn(burn_us)
        return b""

    return call


def _generic(burn_us: float) -> grpc.GenericRpcHandler:
    call = _handler(burn_us)
    handler: grpc.RpcMethodHandler[bytes, bytes] = grpc.unary_unary_rpc_method_handler(call)
    return grpc.method_handlers_generic_handler("bench.Stack", {"Call": handler})


def _sync_worker(port: int, threads: int, burn_us: float, stop: Event) -> None:
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=threads), options=[("grpc.so_reuseport", 1)]
    )
    server.add_generic_rpc_handlers((_generic(burn_us),))
    server.add_insecure_port(f"127.0.0.1:{port}")
    server.start()
    stop.wait()
    server.stop(None)


def _aio_worker(port: int, _threads: int, burn_us: float, stop: Event) -> None:
    async def main() -> None:
        server = grpc.aio.server(options=[("grpc.so_reuseport", 1)])

        async def call(_request: bytes, _context: Any) -> bytes:
            if burn_us:
                _burn(burn_us)
            return b""

        handler: grpc.RpcMethodHandler[bytes, bytes] = grpc.unary_unary_rpc_method_handler(call)
        server.add_generic_rpc_handlers(
            (grpc.method_handlers_generic_handler("bench.Stack", {"Call": handler}),)
        )
        server.add_insecure_port(f"127.0.0.1:{port}")
        await server.start()
        await asyncio.get_running_loop().run_in_executor(None, stop.wait)
        await server.stop(None)

    asyncio.run(main())


@dataclass(frozen=True)
class Variant:
    """A server shape: worker processes, each sync with ``threads`` threads or aio."""

    name: str
    processes: int
    threads: int
    aio: bool


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class Running:
    """A variant's worker processes on one port."""

    def __init__(self, variant: Variant, burn_us: float) -> None:
        """Start the workers and wait until a call succeeds."""
        ctx = multiprocessing.get_context("spawn")
        self.port = _free_port()
        self._stop = ctx.Event()
        target = _aio_worker if variant.aio else _sync_worker
        self._procs = [
            ctx.Process(target=target, args=(self.port, variant.threads, burn_us, self._stop))
            for _ in range(variant.processes)
        ]
        for proc in self._procs:
            proc.start()
        with grpc.insecure_channel(f"127.0.0.1:{self.port}") as channel:
            grpc.channel_ready_future(channel).result(timeout=30)

    def close(self) -> None:
        """Stop the workers."""
        self._stop.set()
        for proc in self._procs:
            proc.join(30)


def main() -> None:
    """Measure calls/s per variant and burn, interleaved, and print a table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="smoke run: 1 round, 0.3 s blocks")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--threads", type=int, default=10, help="threads per sync worker")
    parser.add_argument("--burn-us", default="0,300,600", help="handler CPU per call, us")
    args = parser.parse_args()
    if args.quick:
        args.rounds, args.seconds = 1, 0.3
    burns = [float(b) for b in args.burn_us.split(",")]
    variants = [
        Variant(f"sync-2x{args.threads}", 2, args.threads, aio=False),
        Variant(f"sync-3x{args.threads}", 3, args.threads, aio=False),
        Variant(f"sync-4x{args.threads}", 4, args.threads, aio=False),
        Variant("aio-2", 2, 0, aio=True),
    ]
    print(f"load average at start: {load_average()} ({os.cpu_count()} cores)")
    print(f"{args.clients} client processes, {args.rounds} rounds of {args.seconds} s each")
    rates: dict[tuple[str, float], list[float]] = {}
    running = {(v, b): Running(v, b) for v in variants for b in burns}
    try:
        for _ in range(args.rounds):
            for (variant, burn), server in running.items():
                # Fresh clients per block: 8 idle processes per variant would cost GBs.
                group = Clients(f"127.0.0.1:{server.port}", args.clients)
                try:
                    group.per_second(METHOD, b"", min(args.seconds, 0.2), unique=False)  # warm
                    rate = group.per_second(METHOD, b"", args.seconds, unique=False)
                finally:
                    group.close()
                rates.setdefault((variant.name, burn), []).append(rate)
    finally:
        for server in running.values():
            server.close()
    print()
    print("| server | handler CPU us | calls/s (median) | per round |")
    print("| --- | --- | --- | --- |")
    for (name, burn), values in rates.items():
        print(
            f"| {name} | {burn:g} | {statistics.median(values):.0f} "
            f"| {min(values):.0f}-{max(values):.0f} |"
        )
    print()
    print(f"load average at end: {load_average()}")


if __name__ == "__main__":
    main()
