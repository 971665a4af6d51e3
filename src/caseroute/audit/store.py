"""Where audit records live: the sink protocol and the embedded SQLite store (group commit).

Durability: SQLite in WAL mode with ``synchronous=FULL``; ``append`` returns only after the
transaction holding the records has committed (fsynced). A writer thread gathers every append
waiting at that moment into one transaction, so concurrent calls share one fsync (group
commit). Several server processes may share one file: each transaction takes SQLite's write
lock (``BEGIN IMMEDIATE``) and extends the chain from the stored head.
"""

from __future__ import annotations

import json
import logging
import queue
import sqlite3
import threading
from collections.abc import Iterator
from concurrent.futures import Future
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from caseroute.audit.record import GENESIS, AuditRecord, seal
from caseroute.domain.errors import AuditUnavailableError, IdempotencyConflictError

log = logging.getLogger("caseroute.audit")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS decisions (
    seq INTEGER PRIMARY KEY,
    decision_id TEXT NOT NULL UNIQUE,
    request_id TEXT NOT NULL,
    request_sha256 TEXT NOT NULL,
    case_id TEXT NOT NULL,
    recorded_at TEXT NOT NULL,
    now TEXT NOT NULL,
    ruleset_name TEXT NOT NULL,
    ruleset_version TEXT NOT NULL,
    ruleset_sha256 TEXT NOT NULL,
    caseroute_version TEXT NOT NULL,
    caller TEXT NOT NULL,
    input TEXT NOT NULL,
    decision TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    record_hash TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS decisions_request ON decisions (request_id);
CREATE INDEX IF NOT EXISTS decisions_case ON decisions (case_id, now);
CREATE INDEX IF NOT EXISTS decisions_now ON decisions (now);
CREATE TABLE IF NOT EXISTS chain_head (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    seq INTEGER NOT NULL,
    record_hash TEXT NOT NULL
);
"""
_COLUMNS = (
    "seq",
    "decision_id",
    "request_id",
    "request_sha256",
    "case_id",
    "recorded_at",
    "now",
    "ruleset_name",
    "ruleset_version",
    "ruleset_sha256",
    "caseroute_version",
    "caller",
    "input",
    "decision",
    "prev_hash",
    "record_hash",
)


class AuditSink(Protocol):
    """What the service needs from a decision log (SQLite here; PostgreSQL later)."""

    def append(self, records: list[AuditRecord]) -> list[AuditRecord]:
        """Store records durably; return them as stored (existing ones for known ids)."""
        ...

    def by_request(self, request_id: str) -> list[AuditRecord]:
        """Records of one request, in position order."""
        ...

    def get(self, decision_id: str) -> AuditRecord | None:
        """One record."""
        ...

    def close(self) -> None:
        """Stop accepting appends and release resources."""
        ...


def _row_to_record(row: sqlite3.Row) -> AuditRecord:
    values = dict(zip(_COLUMNS, row, strict=True))
    values["input"] = json.loads(values["input"])
    values["decision"] = json.loads(values["decision"])
    return AuditRecord(**values)


@dataclass(slots=True)
class _Pending:
    records: list[AuditRecord]
    done: Future[list[AuditRecord]]


class SqliteAuditStore:
    """The embedded decision log: one SQLite file, hash-chained records, group commit."""

    def __init__(self, path: Path, *, max_batch: int = 512, busy_timeout_ms: int = 10_000) -> None:
        """Open (creating if needed) the store at ``path``.

        Raises:
            AuditUnavailableError: If the file cannot be opened or initialised.
        """
        self.path = path
        self._max_batch = max_batch
        self._busy_ms = busy_timeout_ms
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with closing(self._connect()) as conn:
                conn.executescript(_SCHEMA)
        except (OSError, sqlite3.Error) as exc:
            raise AuditUnavailableError(f"cannot open the audit store {path}: {exc}") from exc
        self.commits = 0
        self.failures = 0
        self._queue: queue.Queue[_Pending | None] = queue.Queue()
        self._writer = threading.Thread(target=self._write_loop, name="audit-writer", daemon=True)
        self._writer.start()

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(
            self.path, timeout=self._busy_ms / 1000, isolation_level=None, check_same_thread=False
        )
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute(f"PRAGMA busy_timeout={int(self._busy_ms)}")
        return conn

    def append(self, records: list[AuditRecord]) -> list[AuditRecord]:
        """Store records; returns when they are committed to disk.

        Records whose decision_id is already stored are not written again: the stored record
        is returned instead (a retry). A stored record with the same decision_id but a
        different request input raises IdempotencyConflictError.

        Raises:
            AuditUnavailableError: If the store cannot commit (nothing is stored then).
            IdempotencyConflictError: If a decision_id exists with a different input.
        """
        pending = _Pending(records, Future())
        self._queue.put(pending)
        return pending.done.result()

    def _write_loop(self) -> None:
        conn: sqlite3.Connection | None = None
        while True:
            first = self._queue.get()
            if first is None:
                break
            batch = [first]
            while len(batch) < self._max_batch:
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    self._queue.put(None)
                    break
                batch.append(more)
            try:
                conn = conn or self._connect()
                self._commit(conn, batch)
            except (OSError, sqlite3.Error) as exc:
                self.failures += 1
                log.exception("AUDIT WRITE FAILED (%d calls refused)", len(batch))
                error = AuditUnavailableError(f"the audit store cannot be written: {exc}")
                for item in batch:
                    if not item.done.done():
                        item.done.set_exception(error)
                if conn is not None:
                    conn.close()
                conn = None
        if conn is not None:
            conn.close()

    def _commit(self, conn: sqlite3.Connection, batch: list[_Pending]) -> None:
        conn.execute("BEGIN IMMEDIATE")
        try:
            head = conn.execute("SELECT seq, record_hash FROM chain_head WHERE id = 1").fetchone()
            seq, prev = (head[0], head[1]) if head else (0, GENESIS)
            results: list[tuple[_Pending, list[AuditRecord] | Exception]] = []
            seen: dict[str, AuditRecord] = {}
            for item in batch:
                stored: list[AuditRecord] = []
                conflict: Exception | None = None
                for record in item.records:
                    existing = seen.get(record.decision_id) or self._get(conn, record.decision_id)
                    if existing is not None:
                        if existing.request_sha256 != record.request_sha256:
                            conflict = IdempotencyConflictError(
                                f"request_id {record.request_id!r} was already used with a "
                                "different input; use a new request_id for a new request"
                            )
                            break
                        stored.append(existing)
                        continue
                    seq += 1
                    sealed = seal(record, seq, prev)
                    prev = sealed.record_hash
                    conn.execute(
                        f"INSERT INTO decisions ({', '.join(_COLUMNS)}) VALUES "
                        f"({', '.join('?' * len(_COLUMNS))})",
                        _row_values(sealed),
                    )
                    seen[sealed.decision_id] = sealed
                    stored.append(sealed)
                results.append((item, conflict if conflict is not None else stored))
            conn.execute(
                "INSERT INTO chain_head (id, seq, record_hash) VALUES (1, ?, ?) "
                "ON CONFLICT(id) DO UPDATE SET seq = excluded.seq, "
                "record_hash = excluded.record_hash",
                (seq, prev),
            )
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        self.commits += 1
        for item, outcome in results:
            if isinstance(outcome, Exception):
                item.done.set_exception(outcome)
            else:
                item.done.set_result(outcome)

    def _get(self, conn: sqlite3.Connection, decision_id: str) -> AuditRecord | None:
        row = conn.execute(
            f"SELECT {', '.join(_COLUMNS)} FROM decisions WHERE decision_id = ?", (decision_id,)
        ).fetchone()
        return _row_to_record(row) if row else None

    def get(self, decision_id: str) -> AuditRecord | None:
        """One record by decision id."""
        with closing(self._reader()) as conn:
            return self._get(conn, decision_id)

    def by_request(self, request_id: str) -> list[AuditRecord]:
        """Records of one request, in chain order."""
        with closing(self._reader()) as conn:
            rows = conn.execute(
                f"SELECT {', '.join(_COLUMNS)} FROM decisions WHERE request_id = ? ORDER BY seq",
                (request_id,),
            ).fetchall()
        return [_row_to_record(r) for r in rows]

    def records(self, after_seq: int = 0, limit: int | None = None) -> Iterator[AuditRecord]:
        """Records in chain order, after ``after_seq``."""
        sql = f"SELECT {', '.join(_COLUMNS)} FROM decisions WHERE seq > ? ORDER BY seq"
        params: tuple[int, ...] = (after_seq,)
        if limit is not None:
            sql += " LIMIT ?"
            params = (after_seq, limit)
        with closing(self._reader()) as conn:
            rows = conn.execute(sql, params).fetchall()
        return (_row_to_record(r) for r in rows)

    def head(self) -> tuple[int, str]:
        """(seq, record_hash) of the last record the writer committed."""
        with closing(self._reader()) as conn:
            row = conn.execute("SELECT seq, record_hash FROM chain_head WHERE id = 1").fetchone()
        return (row[0], row[1]) if row else (0, GENESIS)

    def _reader(self) -> sqlite3.Connection:
        try:
            return self._connect()
        except sqlite3.Error as exc:
            raise AuditUnavailableError(f"cannot read the audit store {self.path}: {exc}") from exc

    def close(self) -> None:
        """Finish pending appends and stop the writer."""
        self._queue.put(None)
        self._writer.join(timeout=30)


def _row_values(record: AuditRecord) -> tuple[object, ...]:
    values = [getattr(record, c) for c in _COLUMNS]
    values[_COLUMNS.index("input")] = json.dumps(record.input, sort_keys=True)
    values[_COLUMNS.index("decision")] = json.dumps(record.decision, sort_keys=True)
    return tuple(values)
