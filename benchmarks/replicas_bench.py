"""Issue 14's scale-out figures: records/s with 1, 2 and 3 replicas sharing one decision log.

Usage: .venv/bin/python benchmarks/replicas_bench.py [--quick] [--logs sqlite,postgresql]
[--replicas 1,2,3] [--clients 6] [--seconds 8] [--rounds 2] [--workers 1] [--agents 100]
[--latency-calls 200] [--pg-url postgresql://USER:PASSWORD@HOST:PORT/postgres]

For each round, log kind and replica count (interleaved: every round runs each pair once, in
the same order), starts that many `caseroute serve` replicas (``--workers`` worker processes
each, durable_rules, the repository's rulesets) on loopback ports, all writing to one FRESH
decision log: a SQLite file in a temporary directory (the store serialises the replicas'
writers with a file lock; every commit is fsynced), or a new database on a PostgreSQL server
(``--pg-url``, else a throwaway cluster started with tests/pg.py's ``start_cluster``:
``synchronous_commit = on``, fsync as shipped). Then:

1. **Records/s**: ``--clients`` client processes, each with its own ``caseroute.client.Client``
   over every replica address (gRPC ``round_robin``), decide for ``--seconds`` after a warm-up,
   each call a new request_id (a new decision and record). Reported: decisions/s over all
   clients, and the median and p90 latency of a call.
2. **Decision latency**: with one replica only, ``--latency-calls`` sequential calls from one
   client: the median latency, to compare PostgreSQL against SQLite in the same run.

Every call is the benchmark's urgent clinical case against ``roster_gen.make_ranked_roster``
(``--agents``), SUMMARY, sent with its roster by hash (the published client's default).
Clients and replicas share this machine's cores (``nproc``; the 1-minute load average is
printed beside each figure), so more replicas on one 2-core machine adds processes, not
cores: compare the figures of one run, and read the 2- and 3-replica rows as "the shared log
is not the limit" rather than as scaling. Linux only (/proc/loadavg).
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import secrets
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from caseroute.client import Client
from caseroute.testing import NOW, REPO_ROOT
from roster_gen import make_bench_case, make_ranked_roster

READY_S = 180.0
"""Longest wait for a replica to print its address and load its rulesets."""
WARM_CALLS = 20
"""Calls per client before timing (connections, roster caches, first-call costs)."""


@dataclass(frozen=True)
class Settings:
    """What one run measures."""

    logs: tuple[str, ...]
    replicas: tuple[int, ...]
    clients: int
    seconds: float
    rounds: int
    workers: int
    agents: int
    latency_calls: int
    pg_url: str | None


@dataclass(frozen=True)
class Throughput:
    """One records/s measurement."""

    decisions: int
    seconds: float
    p50_ms: float
    p90_ms: float
    load: float

    @property
    def per_second(self) -> float:
        """Decisions (records) per second over every client."""
        return self.decisions / self.seconds


def _load() -> float:
    """The 1-minute load average."""
    return float(Path("/proc/loadavg").read_text().split()[0])


def _start_replica(audit_db: str, workers: int, key: str) -> tuple[subprocess.Popen[str], str]:
    """`caseroute serve` on a free loopback port; returns it and its address once SERVING."""
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "caseroute.cli",
            "serve",
            "--port",
            "0",
            "--workers",
            str(workers),
            "--rulesets",
            str(REPO_ROOT / "rulesets"),
            "--audit-db",
            audit_db,
            "--reload-interval",
            "0",
            "--log-level",
            "warning",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env={**os.environ, "CASEROUTE_AUDIT_KEY": key},
        start_new_session=True,
    )
    line = proc.stdout.readline() if proc.stdout is not None else ""
    if not line.startswith("caseroute listening on "):
        os.killpg(proc.pid, signal.SIGKILL)
        where = audit_db.rsplit("@", maxsplit=1)[-1]  # never the password
        raise SystemExit(f"a replica did not start (--audit-db ...{where})")
    address = line.split()[3]
    _wait_serving(address)
    return proc, address


def _wait_serving(address: str) -> None:
    """Poll grpc.health.v1 until the replica reports SERVING (its rulesets loaded)."""
    deadline = time.monotonic() + READY_S
    with grpc.insecure_channel(address) as channel:
        check = health_pb2_grpc.HealthStub(channel).Check  # type: ignore[attr-defined]
        while time.monotonic() < deadline:
            try:
                status = check(health_pb2.HealthCheckRequest(), timeout=5).status
            except grpc.RpcError:
                status = health_pb2.HealthCheckResponse.NOT_SERVING
            if status == health_pb2.HealthCheckResponse.SERVING:
                return
            time.sleep(0.1)
    raise SystemExit(f"the replica at {address} was not SERVING within {READY_S:g} s")


def _stop(proc: subprocess.Popen[str]) -> None:
    """SIGTERM the replica's process group; SIGKILL it if it has not exited in 60 s."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(30)
    if proc.stdout is not None:
        proc.stdout.close()


@contextmanager
def _replicas(count: int, audit_db: str, workers: int) -> Iterator[list[str]]:
    """``count`` replicas sharing ``audit_db`` (started at once); yields their addresses."""
    key = secrets.token_hex(32)
    procs: list[subprocess.Popen[str]] = []
    try:
        # The first creates the log (and, on PostgreSQL, its schema); the others join it.
        first, address = _start_replica(audit_db, workers, key)
        procs.append(first)
        addresses = [address]
        for _ in range(count - 1):
            proc, address = _start_replica(audit_db, workers, key)
            procs.append(proc)
            addresses.append(address)
        yield addresses
    finally:
        for proc in procs:
            _stop(proc)


def _tests_pg() -> Any:
    """tests/pg.py (the throwaway PostgreSQL of the tests), importable from a checkout."""
    if str(REPO_ROOT) not in sys.path:
        sys.path.insert(0, str(REPO_ROOT))
    import tests.pg

    return tests.pg


@contextmanager
def _fresh_log(kind: str, pg_server: str | None) -> Iterator[str]:
    """A new, empty decision log of ``kind``: its ``--audit-db`` value."""
    if kind == "sqlite":
        with tempfile.TemporaryDirectory(prefix="caseroute-replicas-") as directory:
            yield str(Path(directory) / "audit.db")
        return
    if pg_server is None:
        raise SystemExit("no PostgreSQL server for --logs postgresql")
    with _tests_pg().fresh_database(pg_server) as url:
        yield url


def _client(
    addresses: list[str], agents: int, seconds: float, tag: str, start: Any, out: Connection
) -> None:
    """One client: warm up, meet the others at the ``start`` barrier, decide for ``seconds``."""
    roster = make_ranked_roster(agents)
    latencies: list[float] = []
    with Client(addresses, timeout=60) as client:
        for i in range(WARM_CALLS):
            client.decide(make_bench_case(i), roster, now=NOW, request_id=f"{tag}-warm-{i}")
        start.wait(READY_S)  # the clients begin together
        end = time.monotonic() + seconds
        i = 0
        while time.monotonic() < end:
            begun = time.perf_counter()
            client.decide(make_bench_case(i), roster, now=NOW, request_id=f"{tag}-{i}")
            latencies.append(time.perf_counter() - begun)
            i += 1
    out.send(latencies)
    out.close()


def _throughput(addresses: list[str], settings: Settings, tag: str) -> Throughput:
    """``settings.clients`` client processes deciding at once for ``settings.seconds``."""
    context = multiprocessing.get_context("spawn")
    start = context.Barrier(settings.clients + 1)
    pipes = []
    procs = []
    for n in range(settings.clients):
        receive, send = context.Pipe(duplex=False)
        proc = context.Process(
            target=_client,
            args=(addresses, settings.agents, settings.seconds, f"{tag}-c{n}", start, send),
        )
        proc.start()
        send.close()
        pipes.append(receive)
        procs.append(proc)
    start.wait(READY_S)  # every client warmed up
    latencies: list[float] = []
    for receive in pipes:
        latencies.extend(receive.recv())
    for proc in procs:
        proc.join(60)
        if proc.exitcode != 0:
            raise SystemExit(f"a client process failed (exit code {proc.exitcode})")
    ordered = sorted(latencies)
    return Throughput(
        len(ordered),
        settings.seconds,
        statistics.median(ordered) * 1000,
        ordered[int(len(ordered) * 0.9)] * 1000,
        _load(),
    )


def _latency(address: str, settings: Settings, tag: str) -> float:
    """Median latency in ms of ``settings.latency_calls`` sequential calls (one client)."""
    roster = make_ranked_roster(settings.agents)
    times: list[float] = []
    with Client(address, timeout=60) as client:
        for i in range(WARM_CALLS + settings.latency_calls):
            begun = time.perf_counter()
            client.decide(make_bench_case(i), roster, now=NOW, request_id=f"{tag}-{i}")
            if i >= WARM_CALLS:
                times.append(time.perf_counter() - begun)
    return statistics.median(times) * 1000


def _parse() -> Settings:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--quick", action="store_true", help="a short run (smoke test)")
    parser.add_argument("--logs", default="sqlite,postgresql")
    parser.add_argument("--replicas", default="1,2,3")
    parser.add_argument("--clients", type=int, default=6)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--agents", type=int, default=100)
    parser.add_argument("--latency-calls", type=int, default=200)
    parser.add_argument("--pg-url", help="a PostgreSQL server's URL (default: a throwaway one)")
    args = parser.parse_args()
    logs = tuple(args.logs.split(","))
    replicas = tuple(int(n) for n in args.replicas.split(","))
    if args.quick:
        replicas, rounds, seconds, clients, latency_calls = (1, 2), 1, 1.0, 2, 20
    else:
        rounds, seconds, clients = args.rounds, args.seconds, args.clients
        latency_calls = args.latency_calls
    if set(logs) - {"sqlite", "postgresql"}:
        parser.error("--logs takes sqlite and/or postgresql")
    return Settings(
        logs,
        replicas,
        clients,
        seconds,
        rounds,
        args.workers,
        args.agents,
        latency_calls,
        args.pg_url,
    )


def main() -> None:
    """Run the measurements and print the table."""
    settings = _parse()
    print(
        f"replicas_bench: {settings.clients} client processes, {settings.seconds:g} s each, "
        f"{settings.rounds} round(s), {settings.workers} worker(s) per replica, "
        f"{settings.agents} agents, nproc {os.cpu_count()}"
    )
    rates: dict[tuple[str, int], list[Throughput]] = {}
    latencies: dict[str, list[float]] = {}
    with ExitStack() as stack:
        pg_server = settings.pg_url
        if "postgresql" in settings.logs and pg_server is None:
            pg = _tests_pg()
            bindir = pg.find_pg_bin()
            if bindir is None:
                raise SystemExit("no PostgreSQL binaries: pass --pg-url or --logs sqlite")
            cluster = pg.start_cluster(bindir)
            stack.callback(cluster.stop)
            pg_server = cluster.url
        for r in range(settings.rounds):
            for count in settings.replicas:
                for kind in settings.logs:
                    tag = f"r{r}-{kind}-{count}"
                    with (
                        _fresh_log(kind, pg_server) as db,
                        _replicas(count, db, settings.workers) as addresses,
                    ):
                        if count == 1:
                            latency = _latency(addresses[0], settings, f"{tag}-lat")
                            latencies.setdefault(kind, []).append(latency)
                        got = _throughput(addresses, settings, tag)
                    rates.setdefault((kind, count), []).append(got)
                    print(
                        f"  round {r + 1} {kind:10} replicas {count}: "
                        f"{got.per_second:7.1f} records/s  p50 {got.p50_ms:6.2f} ms  "
                        f"p90 {got.p90_ms:6.2f} ms  (load {got.load:.2f})",
                        flush=True,
                    )
    print("\nrecords/s (median over rounds; p50/p90 call latency in ms; load average)")
    print("log         replicas  records/s   p50 ms   p90 ms   load")
    for kind in settings.logs:
        for count in settings.replicas:
            runs = rates[(kind, count)]
            print(
                f"{kind:11} {count:8}  {statistics.median(r.per_second for r in runs):9.1f}  "
                f"{statistics.median(r.p50_ms for r in runs):7.2f}  "
                f"{statistics.median(r.p90_ms for r in runs):7.2f}   "
                f"{min(r.load for r in runs):.1f}-{max(r.load for r in runs):.1f}"
            )
    print("\none replica, one client, sequential calls: median decision latency")
    for kind, values in latencies.items():
        print(
            f"{kind:11} {statistics.median(values):7.2f} ms  (rounds: "
            + ", ".join(f"{v:.2f}" for v in values)
            + ")"
        )
    if {"sqlite", "postgresql"} <= latencies.keys():
        ratio = statistics.median(latencies["postgresql"]) / statistics.median(latencies["sqlite"])
        print(f"postgresql / sqlite: {ratio:.2f}x")


if __name__ == "__main__":
    main()
