"""What a lone decision record's commit costs on this disk, and what would move it.

Usage: .venv/bin/python benchmarks/commit_floor.py [--rounds 6] [--records 1200] [--only NAME]

Issue 13 target 1 asks for ~300 us less of a served Decide's own work; ~400 us of it is the
decision log (``served_latency.py``). This script measures which part of that is the disk's
floor and what the levers proposed for it would buy, in alternating rounds (medians over rounds
of each round's median, us; the load average before and after):

1. ``transaction``: the store's lone-call transaction (``BEGIN IMMEDIATE``, the key and head
   ``SELECT``, the record's ``INSERT``, the head ``UPDATE``, ``COMMIT``) on the decision log's own
   schema (``store._SCHEMA``, 2048-byte pages, WAL), one realistic record per transaction (the
   100-agent SUMMARY record of ``record_path.py``, a new decision and request id each), as
   built and in variants a new-log layout could have: ``fewer-indexes`` drops
   ``decisions_request``, ``decisions_now`` and ``decisions_ruleset`` (3 of the ~10 WAL frames
   a commit writes); ``no-fsync`` is the layout as built with ``synchronous=NORMAL`` (NOT
   durable: what the ``COMMIT`` costs without its fdatasync). WAL frames per commit are
   counted from the WAL's growth before its first checkpoint. The first 200 transactions of a
   round are not counted (the WAL's first cycle appends; later cycles overwrite).
2. ``fdatasync``: 10 frames of 2072 bytes overwritten in a 2 MB file, then ``os.fdatasync``:
   what the disk alone charges a commit of this size.
3. ``lone-append``: ``SqliteAuditStore.append`` from one thread, as built (the caller queues its
   item, which wakes the idle writer thread, then takes it back and commits it itself), against
   the same store whose lone append commits without queueing (``_Unqueued`` below; the writer
   thread then sleeps through it): what the writer's needless wake-up costs a lone call.
   Latency and process CPU per append.
"""

from __future__ import annotations

import argparse
import functools
import os
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from caseroute.audit.record import AuditRecord, encode_record, hashed_text
from caseroute.audit.sql_appends import PendingItem
from caseroute.audit.sql_rows import insert_record_sql, record_values
from caseroute.audit.store import _SCHEMA, NEW_LOG_PAGE_SIZE, SqliteAuditStore
from record_path import _template

SKIPPED = 200
"""Transactions of a round not counted (the WAL's first cycle grows the file); at most half."""
_FEWER = ("decisions_request", "decisions_now", "decisions_ruleset")
_VARIANTS = {
    "as-built": ((), "FULL"),
    "fewer-indexes": (_FEWER, "FULL"),
    "no-fsync": ((), "NORMAL"),
}
FRAME = NEW_LOG_PAGE_SIZE + 24
"""Bytes of one WAL frame (its header, then the page)."""


def transaction(
    template: AuditRecord, records: int, drop: tuple[str, ...], sync: str
) -> dict[str, float]:
    """One round of lone transactions on a fresh log: medians (us) and frames per commit."""
    encoded = encode_record(template)
    insert = insert_record_sql("?")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "audit.db"
        conn = sqlite3.connect(path, isolation_level=None)
        conn.execute(f"PRAGMA page_size={NEW_LOG_PAGE_SIZE}")
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute(f"PRAGMA synchronous={sync}")
        conn.executescript(_SCHEMA)
        for index in drop:
            conn.execute(f"DROP INDEX {index}")
        conn.execute("INSERT INTO chain_head (id, seq, record_hash) VALUES (1, 0, '')")
        wal = Path(f"{path}-wal")
        commits: list[float] = []
        totals: list[float] = []
        frames: list[int] = []
        for seq in range(1, records + 1):
            rid = f"{seq:08d}-{os.urandom(6).hex()}"  # index keys land anywhere, as real ids do
            record = replace(template, decision_id=f"dec_{rid}", request_id=rid, case_id=rid)
            row = record_values(
                replace(record, seq=seq), encoded.input_text, hashed_text(encoded, seq)
            )
            size = wal.stat().st_size
            began = time.perf_counter()
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("SELECT seq, record_hash FROM chain_head WHERE id = 1").fetchone()
            conn.execute(insert, row)
            conn.execute("UPDATE chain_head SET seq = ?, record_hash = ? WHERE id = 1", (seq, rid))
            issued = time.perf_counter()
            conn.execute("COMMIT")
            ended = time.perf_counter()
            grown = wal.stat().st_size - size
            if grown > 0 and size > 0:
                frames.append(grown // FRAME)
            if seq > min(SKIPPED, records // 2):
                commits.append(ended - issued)
                totals.append(ended - began)
        conn.close()
    return {
        "transaction_us": statistics.median(totals) * 1e6,
        "commit_us": statistics.median(commits) * 1e6,
        "frames": statistics.mean(frames) if frames else 0.0,
    }


def fdatasync(count: int, per_commit: int = 10) -> dict[str, float]:
    """``count`` overwrites of ``per_commit`` frames in a 2 MB file, each then fdatasync'ed."""
    cycle = 1000 * FRAME
    samples: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        fd = os.open(Path(tmp) / "wal", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            os.write(fd, b"\0" * (cycle + 32))
            os.fsync(fd)
            frame, offset = b"x" * FRAME, 32
            for _ in range(count):
                for _ in range(per_commit):
                    os.pwrite(fd, frame, offset)
                    offset = offset + FRAME if offset + 2 * FRAME < cycle else 32
                began = time.perf_counter()
                os.fdatasync(fd)
                samples.append(time.perf_counter() - began)
        finally:
            os.close(fd)
    return {"fdatasync_us": statistics.median(samples) * 1e6}


class _Unqueued(SqliteAuditStore):
    """The store, but a lone append commits without passing through the writer's queue.

    For this measurement only (the store as built queues every item first: its tests pin that
    the writer may take a lone call's item).
    """

    def _enqueue(self, item: PendingItem) -> None:
        with self._closing:
            alone = (
                not self._closed
                and not self._holding
                and self._queue.empty()
                and self._committing.acquire(blocking=False)
            )
        if not alone:
            super()._enqueue(item)
            return
        try:
            self._write([item])
        finally:
            self._committing.release()


def lone_append(
    template: AuditRecord, records: int, store_type: type[SqliteAuditStore]
) -> dict[str, float]:
    """One round of lone appends from one thread: median latency and process CPU per append."""
    with tempfile.TemporaryDirectory() as tmp:
        store = store_type(Path(tmp) / "audit.db")
        try:
            batch = [
                replace(template, decision_id=f"d{n}", request_id=f"r{n}") for n in range(records)
            ]
            latencies: list[float] = []
            cpu = 0.0
            for n, record in enumerate(batch):
                began, cpu_began = time.perf_counter(), time.process_time()
                store.append([record])
                if n >= min(SKIPPED, records // 2):
                    latencies.append(time.perf_counter() - began)
                    cpu += time.process_time() - cpu_began
            stored = store.head()[0]
        finally:
            store.close()
    if stored != records:
        raise SystemExit(f"{store_type.__name__} stored {stored} of {records} records")
    return {
        "append_us": statistics.median(latencies) * 1e6,
        "cpu_us": cpu / max(len(latencies), 1) * 1e6,
    }


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def main(argv: list[str] | None = None) -> None:
    """Print one table per measurement."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--records", type=int, default=1200, help="transactions per round")
    parser.add_argument("--only", choices=("transaction", "fdatasync", "lone-append"))
    args = parser.parse_args(argv)
    template = _template()
    sides: dict[str, Callable[[], dict[str, float]]] = {}
    if args.only in (None, "transaction"):
        for name, (drop, sync) in _VARIANTS.items():
            sides[name] = functools.partial(transaction, template, args.records, drop, sync)
    if args.only in (None, "fdatasync"):
        sides["fdatasync"] = lambda: fdatasync(args.records)
    if args.only in (None, "lone-append"):
        sides["queued (as built)"] = lambda: lone_append(template, args.records, SqliteAuditStore)
        sides["unqueued"] = lambda: lone_append(template, args.records, _Unqueued)
    print(f"load before: {_load()}; {args.rounds} rounds x {args.records}, medians in us")
    got: dict[str, list[dict[str, float]]] = {name: [] for name in sides}
    names = list(sides)
    for r in range(args.rounds):
        for name in names if r % 2 == 0 else reversed(names):  # alternate the order per round
            got[name].append(sides[name]())
    for name, rows in got.items():
        columns = ", ".join(
            f"{key} {statistics.median(row[key] for row in rows):.1f}"
            f" ({min(row[key] for row in rows):.0f}-{max(row[key] for row in rows):.0f})"
            for key in rows[0]
        )
        print(f"| {name} | {columns} |")
    print(f"load after: {_load()}")


if __name__ == "__main__":
    main()
