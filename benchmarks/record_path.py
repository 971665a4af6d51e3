"""The decision log's write path, A/B: two source trees, interleaved rounds, medians.

Usage:
    .venv/bin/python benchmarks/record_path.py --a /tmp/ab-old --b . [--rounds 5] \
        [--threads 1,16] [--processes 1] [--seconds 2]
    .venv/bin/python benchmarks/record_path.py --run [--threads 16] [--processes 2] ...

Each "call" appends one realistic record (a 100-agent SUMMARY decision of the reference
ruleset, as the server records it, with a unique decision id) to a fresh log and waits for its
commit, as a Decide handler does; ``--work-us`` first burns that much Python CPU per call (a
handler's own work, which competes with the writer thread for the GIL). ``--processes N`` runs
N processes on one log file, each with its own store and ``--threads`` calling threads
(``caseroute serve --workers N``). A round runs
the same measurement once with tree A's ``src`` and once with tree B's (alternating which goes
first), each in a fresh interpreter, so both see the same machine load; the table gives each
tree's median over rounds and B/A, with the load average before the first and after the last
round. Reported: records/s, median and p90 append latency, the calling threads' CPU per
append, and all CPU of the appending processes (callers and writer) per record.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent


def _template() -> Any:
    from caseroute.audit.masking import Masker
    from caseroute.audit.recorder import RequestFacts, build_records
    from caseroute.engine.case_rules import EngineKind
    from caseroute.engine.decide import decide
    from caseroute.testing import NOW, reference_ruleset
    from roster_gen import make_bench_case, make_bench_roster

    ruleset = reference_ruleset(EngineKind.PYTHON)
    case, roster = make_bench_case(), make_bench_roster(100)
    decision = decide(case, roster, ruleset, NOW, agent_detail=False)
    facts = RequestFacts("bench", "0" * 64, "", "2026-11-21T10:00:00Z")
    (record,) = build_records(facts, ruleset.compiled, [case], roster, [decision], Masker(b"k"))
    return record


def _process(
    db: str, tag: str, threads: int, seconds: float, start_at: float, work_us: float
) -> dict[str, Any]:
    """One process's appends: counts and latencies (and thread CPU with one thread)."""
    from caseroute.audit.store import SqliteAuditStore

    template = _template()
    store = SqliteAuditStore(Path(db))
    store.append([replace(template, decision_id=f"warm-{tag}", request_id=f"warm-{tag}")])
    latencies: list[list[float]] = [[] for _ in range(threads)]
    cpu = [0.0] * threads
    while time.time() < start_at:  # every process starts together
        time.sleep(0.001)
    end = time.perf_counter() + seconds

    def work(n: int) -> None:
        i, out = 0, latencies[n]
        cpu0 = time.thread_time()
        while (t0 := time.perf_counter()) < end:
            while time.perf_counter() - t0 < work_us / 1e6:  # a handler's Python work
                pass
            rid = f"{tag}-{n}-{i}"
            store.append([replace(template, decision_id=rid, request_id=rid)])
            out.append(time.perf_counter() - t0)
            i += 1
        cpu[n] = (time.thread_time() - cpu0) / max(i, 1)

    workers = [threading.Thread(target=work, args=(n,)) for n in range(threads)]
    cpu_began = time.process_time()
    began = time.perf_counter()
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    elapsed = time.perf_counter() - began
    process_cpu = time.process_time() - cpu_began
    syncer = getattr(store, "_syncer", None)
    commits, fsyncs = store.commits, syncer.fsyncs if syncer else store.commits
    store.close()
    flat = [x for lat in latencies for x in lat]
    return {
        "n": len(flat),
        "elapsed": elapsed,
        "lat": flat,
        "cpu": statistics.mean(cpu),
        "process_cpu": process_cpu,
        "commits": commits,
        "fsyncs": fsyncs,
    }


def run(threads: int, processes: int, seconds: float, work_us: float) -> dict[str, float]:
    """One measurement in this interpreter's ``caseroute``: N processes on one fresh log."""
    import multiprocessing

    with tempfile.TemporaryDirectory() as tmp:
        db = str(Path(tmp) / "audit.db")
        start_at = time.time() + 1.5 + 0.5 * processes
        if processes == 1:
            parts = [_process(db, "p0", threads, seconds, start_at, work_us)]
        else:
            ctx = multiprocessing.get_context("spawn")
            with ctx.Pool(processes) as pool:
                parts = pool.starmap(
                    _process,
                    [(db, f"p{p}", threads, seconds, start_at, work_us) for p in range(processes)],
                )
        from caseroute.audit.store import SqliteAuditStore
        from caseroute.audit.verify import verify_chain

        store = SqliteAuditStore(Path(db), readonly=True)
        report = verify_chain(store.records(), store.head())
        store.close()
        if not report.ok or report.records != sum(p["n"] for p in parts) + processes:
            raise SystemExit(f"the log does not verify after the run: {report}")
    lat = sorted(x for p in parts for x in p["lat"])
    return {
        "rps": sum(p["n"] for p in parts) / max(p["elapsed"] for p in parts),
        "p50_ms": 1000 * lat[len(lat) // 2],
        "p90_ms": 1000 * lat[int(len(lat) * 0.9)],
        "cpu_us": 1e6 * statistics.mean(p["cpu"] for p in parts),
        "all_cpu_us": 1e6 * sum(p["process_cpu"] for p in parts) / len(lat),
        "rec_per_commit": len(lat) / sum(p["commits"] for p in parts),
        "rec_per_fsync": len(lat) / sum(p["fsyncs"] for p in parts),
    }


def _measure(
    tree: Path, threads: int, processes: int, seconds: float, work_us: float
) -> dict[str, float]:
    env = dict(os.environ, PYTHONPATH=f"{tree / 'src'}{os.pathsep}{HERE}")
    argv = [sys.executable, str(Path(__file__).resolve()), "--run", "--threads", str(threads)]
    argv += ["--processes", str(processes), "--seconds", str(seconds), "--work-us", str(work_us)]
    done = subprocess.run(argv, env=env, capture_output=True, text=True, check=True)
    result: dict[str, float] = json.loads(done.stdout.splitlines()[-1])
    return result


def _load() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def main() -> None:
    """Run one measurement (``--run``) or an interleaved A/B table."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--run", action="store_true")
    parser.add_argument("--a", type=Path)
    parser.add_argument("--b", type=Path, default=HERE.parent)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", default="1,16")
    parser.add_argument("--processes", type=int, default=1)
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--work-us", type=float, default=0.0)
    args = parser.parse_args()
    if args.run:
        print(json.dumps(run(int(args.threads), args.processes, args.seconds, args.work_us)))
        return
    if args.a is None:
        parser.error("--a TREE is required (or --run)")
    print(
        f"A={args.a} B={args.b} processes={args.processes} work_us={args.work_us} "
        f"seconds={args.seconds} load before: {_load()}"
    )
    print(
        "| threads | tree | rec/s | p50 ms | p90 ms | caller CPU us/append | all CPU us/record "
        "| records/commit | records/fsync |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for threads in (int(t) for t in args.threads.split(",")):
        got: dict[str, list[dict[str, float]]] = {"A": [], "B": []}
        for r in range(args.rounds):
            order = ("A", "B") if r % 2 == 0 else ("B", "A")
            for name in order:
                tree = args.a if name == "A" else args.b
                got[name].append(
                    _measure(tree, threads, args.processes, args.seconds, args.work_us)
                )
        med = {n: {k: statistics.median(m[k] for m in got[n]) for k in got[n][0]} for n in got}
        for n in ("A", "B"):
            m = med[n]
            print(
                f"| {threads} | {n} | {m['rps']:.0f} | {m['p50_ms']:.2f} | {m['p90_ms']:.2f} "
                f"| {m['cpu_us']:.0f} | {m['all_cpu_us']:.0f} | {m['rec_per_commit']:.2f} "
                f"| {m['rec_per_fsync']:.2f} |"
            )
        ratio = {k: med["B"][k] / med["A"][k] for k in med["A"]}
        print(
            f"| {threads} | B/A | {ratio['rps']:.2f}x | {ratio['p50_ms']:.2f}x "
            f"| {ratio['p90_ms']:.2f}x | {ratio['cpu_us']:.2f}x | {ratio['all_cpu_us']:.2f}x "
            f"| {ratio['rec_per_commit']:.2f}x | {ratio['rec_per_fsync']:.2f}x |",
            flush=True,
        )
    print(f"load after: {_load()}")


if __name__ == "__main__":
    main()
