"""The SQLite log's tables: the schema a writable open creates, and the upgrade of an older log.

The PostgreSQL log mirrors these tables column for column (``pg_schema``).
"""

from __future__ import annotations

import sqlite3

from caseroute.audit.sql_rows import TEXT_COLUMN

SCHEMA = """
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
    record_hash TEXT NOT NULL,
    now_us INTEGER NOT NULL, -- ``now`` as epoch microseconds, for range queries (not hashed)
    content TEXT             -- the text hashed (canonical JSON of the content), exactly; NULL
                             -- in rows written before it was kept (see TEXT_COLUMN)
);
CREATE INDEX IF NOT EXISTS decisions_request ON decisions (request_id);
CREATE INDEX IF NOT EXISTS decisions_case ON decisions (case_id, seq);
CREATE INDEX IF NOT EXISTS decisions_now ON decisions (now_us);
CREATE INDEX IF NOT EXISTS decisions_ruleset ON decisions (ruleset_name, ruleset_version);
CREATE TABLE IF NOT EXISTS ruleset_events (
    seq INTEGER PRIMARY KEY,         -- shared with decisions: one chain, one head
    event_id TEXT NOT NULL UNIQUE,
    recorded_at TEXT NOT NULL,
    action TEXT NOT NULL,
    actor TEXT NOT NULL,
    ruleset_name TEXT NOT NULL,
    role TEXT NOT NULL,
    from_version TEXT NOT NULL,
    from_sha256 TEXT NOT NULL,
    to_version TEXT NOT NULL,
    to_sha256 TEXT NOT NULL,
    caseroute_version TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    record_hash TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS ruleset_events_name ON ruleset_events (ruleset_name, seq);
CREATE TABLE IF NOT EXISTS shadow_results (  -- review data, NOT in the hash chain
    id INTEGER PRIMARY KEY,
    decision_id TEXT NOT NULL,
    recorded_at TEXT NOT NULL,
    ruleset_name TEXT NOT NULL,
    live_version TEXT NOT NULL,
    live_sha256 TEXT NOT NULL,
    shadow_version TEXT NOT NULL,
    shadow_sha256 TEXT NOT NULL,
    differences TEXT NOT NULL,       -- JSON list of kinds; [] = agreed
    agreed INTEGER NOT NULL,
    live TEXT NOT NULL,              -- JSON summary: outcome, agent_id, queue, priority, rule_id
    shadow TEXT NOT NULL,
    UNIQUE (decision_id, shadow_version, shadow_sha256)  -- sha256 is '' when shadow failed
);
CREATE INDEX IF NOT EXISTS shadow_results_version
    ON shadow_results (ruleset_name, shadow_version, agreed, id);
CREATE TABLE IF NOT EXISTS shadow_dropped (
    ruleset_name TEXT NOT NULL,
    shadow_version TEXT NOT NULL,
    dropped INTEGER NOT NULL,        -- live decisions never compared (shadow queue full)
    PRIMARY KEY (ruleset_name, shadow_version)
);
CREATE TABLE IF NOT EXISTS blobs (
    sha256 TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    content TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS key_history (
    era INTEGER PRIMARY KEY,         -- 1, 2, ...: one per masking key, in order of use
    at TEXT NOT NULL,                -- when the key was first used or rotated in (UTC)
    old_fingerprint TEXT NOT NULL,   -- the previous key's fingerprint ("" for era 1)
    new_fingerprint TEXT NOT NULL,   -- this era's key fingerprint (never the key)
    first_seq INTEGER NOT NULL,      -- records from this seq on are masked with this key
    seq INTEGER,                     -- a rotation's chain position (first_seq - 1), shared
    prev_hash TEXT,                  -- with the decisions; NULL for era 1 and for rotations
    record_hash TEXT                 -- made before rotations were sealed
);
CREATE TABLE IF NOT EXISTS chain_head (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    seq INTEGER NOT NULL,
    record_hash TEXT NOT NULL
);
"""
"""Every table and index of the log (each ``IF NOT EXISTS``: a writable open runs it)."""

NEW_LOG_PAGE_SIZE = 2048
"""The page size of a log this store creates (a log created earlier keeps its own: 4096).

A commit writes every page it changes to the WAL (about nine: the decisions leaf and overflow
pages, one leaf of each of its five indexes, the head row's page, page 1), so the commit's
writes and fsync follow the page size: 2048-byte pages write ~23 kB per lone record where
4096-byte pages write ~38 kB. The stored values, and so every hash, do not depend on it."""


def has_text_column(conn: sqlite3.Connection) -> bool:
    """Whether the decisions keep the hashed text (a log from before it was kept does not)."""
    return _column_exists(conn, "decisions", TEXT_COLUMN)


def _column_exists(conn: sqlite3.Connection, table: str, column: str) -> bool:
    return any(row[1] == column for row in conn.execute(f"PRAGMA table_info({table})"))


def add_text_column(conn: sqlite3.Connection) -> None:
    """Upgrade a log written before the hashed text, or sealed rotations, were kept.

    The decisions' ``content`` and the key rotations' chain columns: rows written before keep
    NULL there. Checked under the write lock, so two processes opening an old log at once add
    them once.
    """
    conn.execute("BEGIN IMMEDIATE")
    try:
        if not has_text_column(conn):
            conn.execute(f"ALTER TABLE decisions ADD COLUMN {TEXT_COLUMN} TEXT")
        if not _column_exists(conn, "key_history", "record_hash"):
            for column, kind in (
                ("seq", "INTEGER"),
                ("prev_hash", "TEXT"),
                ("record_hash", "TEXT"),
            ):
                conn.execute(f"ALTER TABLE key_history ADD COLUMN {column} {kind}")
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
