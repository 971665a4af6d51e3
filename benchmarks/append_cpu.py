"""The decision log's per-call Python, A/B: CPU of one lone append, fsync left out (issue 13).

Usage:
    .venv/bin/python benchmarks/append_cpu.py --ab TREE_A TREE_B [--order ABBAABBAABBA]
        [--calls 3000] [--synchronous OFF]
    .venv/bin/python benchmarks/append_cpu.py --run [--calls 3000] [--synchronous OFF]

A lone caller appends one realistic record at a time (``record_path._template``: a 100-agent
SUMMARY decision of the reference ruleset, as the server records it, each with its own
decision id) to a fresh log and waits for its commit, as a warm Decide does; the figure is the
median of the calling thread's CPU per append (``time.thread_time_ns``): the encoding, the
hand-off, the flock, the file checks, the statements, the settling. ``--synchronous OFF``
(the default) sets the writing connection's ``PRAGMA synchronous`` after the log is opened,
so the fsync (its wait and its kernel CPU, which swing with the host's disk) is left out and
the Python and SQLite work is what is compared; never a setting to serve with.

``--ab`` runs ``--run`` once per letter of ``--order``, each in a fresh interpreter with
``PYTHONPATH`` at that tree's ``src``, and prints each tree's per-run medians, their median,
and B/A. Run it with the same tree on both sides first (an A/A) to see the harness's noise.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from record_path import _template

HERE = Path(__file__).resolve().parent
WARM_CALLS = 200
"""Appends before the measured ones (statement cache, pages, branch history)."""


def run(calls: int, synchronous: str) -> float:
    """Median thread CPU per lone append, us, in this interpreter's ``caseroute``."""
    from caseroute.audit.store import SqliteAuditStore

    template = _template()
    records = [
        replace(template, decision_id=f"cpu-{i}", request_id=f"cpu-{i}")
        for i in range(calls + WARM_CALLS)
    ]
    cpu = []
    with tempfile.TemporaryDirectory() as tmp:
        store = SqliteAuditStore(Path(tmp) / "audit.db")
        try:
            store.append(records[:1])  # opens the writing connection
            conn = getattr(store, "_conn")  # noqa: B009 - a private member, on purpose
            conn.execute(f"PRAGMA synchronous={synchronous}")
            for record in records[1:WARM_CALLS]:
                store.append([record])
            for record in records[WARM_CALLS:]:
                began = time.thread_time_ns()
                store.append([record])
                cpu.append(time.thread_time_ns() - began)
        finally:
            store.close()
    return statistics.median(cpu) / 1000


def main() -> None:
    """Measure one tree (``--run``) or alternate two (``--ab``)."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--run", action="store_true", help="measure this interpreter's tree")
    parser.add_argument("--ab", nargs=2, metavar="TREE", help="alternate runs of two trees")
    parser.add_argument("--order", default="ABBAABBAABBA", help="--ab: the runs, in order")
    parser.add_argument("--calls", type=int, default=3000, help="measured appends per run")
    parser.add_argument("--synchronous", default="OFF", choices=["OFF", "NORMAL", "FULL"])
    args = parser.parse_args()
    if not args.ab:
        print(json.dumps(run(args.calls, args.synchronous)))
        return
    trees = dict(zip("AB", args.ab, strict=True))
    print(f"A={trees['A']} B={trees['B']} load before: {' '.join(map(str, os.getloadavg()))}")
    runs: dict[str, list[float]] = {"A": [], "B": []}
    for tree in args.order:
        command = [sys.executable, str(Path(__file__).resolve()), "--run"]
        command += ["--calls", str(args.calls), "--synchronous", args.synchronous]
        src = str(Path(trees[tree]).resolve() / "src")
        out = subprocess.run(
            command,
            env={**os.environ, "PYTHONPATH": src},
            capture_output=True,
            text=True,
            check=True,
            cwd=HERE,
        )
        runs[tree].append(json.loads(out.stdout))
    for tree in "AB":
        each = ", ".join(f"{x:.1f}" for x in runs[tree])
        print(f"{tree}: {each}; median {statistics.median(runs[tree]):.1f} us CPU per append")
    ratio = statistics.median(runs["B"]) / statistics.median(runs["A"])
    print(f"B/A {ratio:.3f}; load after: {' '.join(map(str, os.getloadavg()))}")


if __name__ == "__main__":
    main()
