"""Decision-log append throughput with group commit on and off.

Usage: .venv/bin/python benchmarks/audit_commit.py [--seconds 3] [--repeats 3]

Each "call" appends one realistic record (a 100-agent SUMMARY decision of the reference ruleset,
as the server records it) and waits for its commit, as a Decide handler does. ``group`` is the
default store (the writer commits every append waiting at that moment in one transaction, one
fsync); ``single`` sets ``max_batch=1`` (one transaction and fsync per append). The same threads
and records are used for both; medians of ``--repeats`` runs.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import threading
import time
from dataclasses import replace
from pathlib import Path

from caseroute.audit.masking import Masker
from caseroute.audit.record import AuditRecord
from caseroute.audit.recorder import RequestFacts, build_records
from caseroute.audit.store import SqliteAuditStore
from caseroute.engine.case_rules import EngineKind
from caseroute.engine.decide import decide
from caseroute.testing import NOW, reference_ruleset
from roster_gen import make_bench_case, make_bench_roster


def _template() -> AuditRecord:
    ruleset = reference_ruleset(EngineKind.PYTHON)
    case, roster = make_bench_case(), make_bench_roster(100)
    decision = decide(case, roster, ruleset, NOW, agent_detail=False)
    facts = RequestFacts("bench", "0" * 64, "", "2026-11-21T10:00:00Z")
    (record,) = build_records(facts, ruleset.compiled, [case], roster, [decision], Masker(b"k"))
    return record


def _run(template: AuditRecord, threads: int, max_batch: int, seconds: float) -> tuple[float, int]:
    """Records committed per second, and transactions used."""
    with tempfile.TemporaryDirectory() as tmp:
        store = SqliteAuditStore(Path(tmp) / "audit.db", max_batch=max_batch)
        done = [0] * threads
        end = time.perf_counter() + seconds

        def work(n: int) -> None:
            i = 0
            while time.perf_counter() < end:
                store.append([replace(template, decision_id=f"d{n}-{i}", request_id=f"r{n}-{i}")])
                i += 1
            done[n] = i

        workers = [threading.Thread(target=work, args=(n,)) for n in range(threads)]
        start = time.perf_counter()
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        elapsed = time.perf_counter() - start
        store.close()
        return sum(done) / elapsed, store.commits


def main() -> None:
    """Print a markdown table."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    template = _template()
    print(f"record size: {len(str(template.content()))} characters of JSON-ish text")
    print()
    print(
        "| concurrent calls | group commit rec/s | commits "
        "| single commit rec/s | commits | ratio |"
    )
    print("| --- | --- | --- | --- | --- | --- |")
    for threads in (1, 4, 16, 64):
        rows = {}
        for mode, max_batch in (("group", 512), ("single", 1)):
            runs = [_run(template, threads, max_batch, args.seconds) for _ in range(args.repeats)]
            rows[mode] = (
                statistics.median(r[0] for r in runs),
                int(statistics.median(r[1] for r in runs)),
            )
        group, single = rows["group"], rows["single"]
        print(
            f"| {threads} | {group[0]:.0f} | {group[1]} | {single[0]:.0f} | {single[1]} | "
            f"{group[0] / single[0]:.1f}x |",
            flush=True,
        )


if __name__ == "__main__":
    main()
