"""Decision-log append throughput: records/s of SQLite against PostgreSQL (issue 14).

N threads each append one record per call (as N concurrent Decide calls would) for a few
seconds; the sinks alternate round by round (SQLite, PostgreSQL, SQLite, ...), so load on the
machine falls on both alike. ``--replicas K`` spreads the threads over K PostgreSQL sinks
sharing one database (K replicas' writers, one chain, one head row). Prints records/s and the
median and p90 append latency per configuration (medians over rounds) and the load average.

PostgreSQL: ``$TEST_POSTGRES_URL`` (a superuser's URL; a database is created per run), or a
throwaway cluster started like the tests' (tests/pg.py).

    python benchmarks/pg_append.py --threads 1,4,16 --replicas 1,2,3 --seconds 3 --rounds 3
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # tests.pg: the throwaway server

from tests.pg import PG_URL_ENV, find_pg_bin, fresh_database, start_cluster

from caseroute.audit.location import PostgresLocation
from caseroute.audit.postgres import PostgresAuditSink
from caseroute.audit.record import AuditRecord
from caseroute.audit.store import SqliteAuditStore
from caseroute.testing import make_audit_record

Sink = Any  # SqliteAuditStore | PostgresAuditSink: both have append and close


def _record(n: int, thread: int) -> AuditRecord:
    """A record of about the size a 100-agent SUMMARY decision stores (~4.5 kB)."""
    return make_audit_record(
        n,
        decision_id=f"dec_{thread}_{n}",
        request_id=f"req_{thread}_{n}",
        request_sha256=f"{n:064x}",
        input={"case": {"case_id": f"C{n}", "notes": "x" * 900}, "roster_sha256": "0" * 64},
        decision={"outcome": "ASSIGN", "agent_id": "a1", "verdicts": ["ok " * 40] * 28},
    )


def run(sinks: Sequence[Sink], threads: int, seconds: float) -> tuple[float, float, float]:
    """Append from ``threads`` threads spread over ``sinks``; (records/s, p50 ms, p90 ms)."""
    stop = threading.Event()
    latencies: list[list[float]] = [[] for _ in range(threads)]
    start = threading.Barrier(threads + 1)

    def work(index: int) -> None:
        sink = sinks[index % len(sinks)]
        mine = latencies[index]
        start.wait()
        n = 0
        while not stop.is_set():
            n += 1
            began = time.perf_counter()
            sink.append([_record(n, index)])
            mine.append(time.perf_counter() - began)

    workers = [threading.Thread(target=work, args=(i,)) for i in range(threads)]
    for worker in workers:
        worker.start()
    start.wait()
    began = time.perf_counter()
    time.sleep(seconds)  # the measured interval itself
    stop.set()
    for worker in workers:
        worker.join()
    elapsed = time.perf_counter() - began
    every = sorted(x for mine in latencies for x in mine)
    p90 = every[int(len(every) * 0.9)] if every else 0.0
    return len(every) / elapsed, statistics.median(every) * 1000, p90 * 1000


def main() -> None:
    """Run the rounds and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", default="1,4,16", help="thread counts, comma-separated")
    parser.add_argument("--replicas", default="1", help="PostgreSQL sink counts (1,2,3)")
    parser.add_argument("--seconds", type=float, default=3.0, help="length of one round")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds per setting")
    args = parser.parse_args()
    thread_counts = [int(t) for t in args.threads.split(",")]
    replica_counts = [int(r) for r in args.replicas.split(",")]
    with ExitStack() as stack:
        server = os.environ.get(PG_URL_ENV)
        if not server:
            bindir = find_pg_bin()
            if bindir is None:
                sys.exit("no PostgreSQL server binaries found (tests/pg.py); set " + PG_URL_ENV)
            cluster = start_cluster(bindir)
            stack.callback(cluster.stop)
            server = cluster.url
        print(f"load before: {Path('/proc/loadavg').read_text().split()[:3]}")
        rows: dict[str, list[tuple[float, float, float]]] = {}
        for _ in range(args.rounds):
            for threads in thread_counts:
                with tempfile.TemporaryDirectory() as tmp:
                    sqlite = SqliteAuditStore(Path(tmp) / "audit.db")
                    rows.setdefault(f"sqlite     1 x {threads:>2} threads", []).append(
                        run([sqlite], threads, args.seconds)
                    )
                    sqlite.close()
                for replicas in replica_counts:
                    with fresh_database(server) as url:
                        sinks = [
                            PostgresAuditSink(PostgresLocation(url), pool_size=threads + 2)
                            for _ in range(replicas)
                        ]
                        rows.setdefault(f"postgresql {replicas} x {threads:>2} threads", []).append(
                            run(sinks, threads, args.seconds)
                        )
                        for sink in sinks:
                            sink.close()
        print(f"load after: {Path('/proc/loadavg').read_text().split()[:3]}")
        print(f"{'sink x threads':<30} {'records/s':>10} {'p50 ms':>8} {'p90 ms':>8}  (medians)")
        for name, results in rows.items():
            rate = statistics.median(r[0] for r in results)
            p50 = statistics.median(r[1] for r in results)
            p90 = statistics.median(r[2] for r in results)
            every = ", ".join(f"{r[0]:.0f}" for r in results)
            print(f"{name:<30} {rate:>10.0f} {p50:>8.2f} {p90:>8.2f}  [{every}]")


if __name__ == "__main__":
    main()
