"""The PostgreSQL decision log's schema: versioned migrations that caseroute applies itself.

Each migration runs once, in order (all pending ones in one transaction), and is recorded in
``caseroute_schema``; replicas starting at once take an advisory lock, so one applies and the
others find it applied. A database whose schema is newer than this caseroute knows is refused
(an older replica must not write into a layout it does not understand).

The tables mirror the SQLite log (``caseroute.audit.sqlite_schema``) column for column, so a record
reads back identically from either: ``content`` is the canonical text that was hashed, kept
byte for byte as ``text`` (``jsonb`` would reorder keys and renormalise numbers, and verify
hashes the stored bytes); query it as ``content::jsonb``. ``input`` keeps the canonical input
text (replay finds a record's roster without decoding the rest); ``decision`` is '' in every
row (the text holds it), kept so both logs have one row shape.
"""

from __future__ import annotations

import re
from typing import Any

from caseroute.audit.record import GENESIS

SCHEMA_TABLE = "caseroute_schema"
_LOCK_KEY = 0x63617365726F7574  # "caserout": the advisory lock migrations run under

MIGRATIONS: tuple[tuple[int, str, str], ...] = (
    (
        1,
        "decision log: decisions, ruleset events, shadow results, blobs, key eras, chain head",
        f"""
CREATE TABLE decisions (
    seq BIGINT PRIMARY KEY,
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
    now_us BIGINT NOT NULL,
    content TEXT
);
CREATE INDEX decisions_request ON decisions (request_id);
CREATE INDEX decisions_case ON decisions (case_id, seq);
CREATE INDEX decisions_now ON decisions (now_us);
CREATE INDEX decisions_ruleset ON decisions (ruleset_name, ruleset_version);
CREATE TABLE ruleset_events (
    seq BIGINT PRIMARY KEY,
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
CREATE INDEX ruleset_events_name ON ruleset_events (ruleset_name, seq);
CREATE TABLE shadow_results (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    decision_id TEXT NOT NULL,
    recorded_at TEXT NOT NULL,
    ruleset_name TEXT NOT NULL,
    live_version TEXT NOT NULL,
    live_sha256 TEXT NOT NULL,
    shadow_version TEXT NOT NULL,
    shadow_sha256 TEXT NOT NULL,
    differences TEXT NOT NULL,
    agreed INTEGER NOT NULL,
    live TEXT NOT NULL,
    shadow TEXT NOT NULL,
    UNIQUE (decision_id, shadow_version, shadow_sha256)
);
CREATE INDEX shadow_results_version ON shadow_results (ruleset_name, shadow_version, agreed, id);
CREATE TABLE shadow_dropped (
    ruleset_name TEXT NOT NULL,
    shadow_version TEXT NOT NULL,
    dropped BIGINT NOT NULL,
    PRIMARY KEY (ruleset_name, shadow_version)
);
CREATE TABLE blobs (
    sha256 TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    content TEXT NOT NULL
);
CREATE TABLE key_history (
    era INTEGER PRIMARY KEY,
    at TEXT NOT NULL,
    old_fingerprint TEXT NOT NULL,
    new_fingerprint TEXT NOT NULL,
    first_seq BIGINT NOT NULL
);
CREATE TABLE chain_head (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    seq BIGINT NOT NULL,
    record_hash TEXT NOT NULL
);
INSERT INTO chain_head (id, seq, record_hash) VALUES (1, 0, '{GENESIS}');
""",
    ),
    (
        2,
        "key rotations sealed into the chain: key_history's seq, prev_hash and record_hash",
        """
ALTER TABLE key_history
    ADD COLUMN seq BIGINT,
    ADD COLUMN prev_hash TEXT,
    ADD COLUMN record_hash TEXT;
""",
    ),
)
"""(version, what it does, SQL): applied in order; never edit one that shipped, add the next."""
LATEST = MIGRATIONS[-1][0]


_TABLE = re.compile(r"^(?:CREATE|ALTER) TABLE (\w+)( \(.*?^\);|\n.*?;$)", re.MULTILINE | re.DOTALL)
_COLUMN = re.compile(r"^    (?:ADD COLUMN )?(\w+) (BIGINT|INTEGER|TEXT|BOOLEAN)\b", re.MULTILINE)


def declared_columns(version: int | None = None) -> dict[tuple[str, str], str]:
    """Every (table, column) the migrations up to ``version`` create, and its type.

    The type as ``information_schema`` names it: ``bigint``, ``integer``, ``text``, ``boolean``.

    Args:
        version: The schema version to describe (None: ``LATEST``).
    """
    declared: dict[tuple[str, str], str] = {}
    for number, _, sql in MIGRATIONS:
        if version is not None and number > version:
            break
        for table, body in _TABLE.findall(sql):
            for column, kind in _COLUMN.findall(body):
                declared[table, column] = kind.lower()
    return declared


def altered_columns(conn: Any, opened_at: int = 0) -> list[str]:
    """How the log's columns differ from what the migrations created, in words.

    Compared with the migrations up to the database's schema version, or ``opened_at`` (the
    version the sink saw when it opened) if higher: an emptied or dropped ``caseroute_schema``
    reads as version 0, which would compare nothing (review R30d). Only an edit of the
    schema (``ALTER TABLE``, ``DROP``) makes them differ: caseroute's queries then fail to
    type-check, which an auditor must read as an edited log, not as an
    outage.

    Args:
        conn: A psycopg connection to the log's database.
        opened_at: The schema version the sink found (or migrated to) when it opened.

    Returns:
        ``decisions.seq is text, not bigint``, ``decisions.content is missing``, ... (empty
        when every column is as created).
    """
    rows = conn.execute(
        "SELECT table_name, column_name, data_type FROM information_schema.columns "
        "WHERE table_schema = current_schema()"
    ).fetchall()
    found = {(str(t), str(c)): str(k) for t, c, k in rows}
    changes = []
    # As of the database's own version: an auditor's read-only open never migrates it.
    version = max(schema_version(conn), opened_at)
    for (table, column), kind in declared_columns(version).items():
        now = found.get((table, column))
        if now is None:
            changes.append(f"{table}.{column} is missing")
        elif now != kind:
            changes.append(f"{table}.{column} is {now}, not {kind}")
    return changes


class UnusableDatabaseError(Exception):
    """The database cannot hold a decision log; the message says why and what to do."""


class SchemaTooNewError(UnusableDatabaseError):
    """The database was migrated by a newer caseroute than this one (or holds no log)."""


class SchemaTableAlteredError(UnusableDatabaseError):
    """``caseroute_schema.version`` is no longer an integer column: the log was edited."""


def _version_column(conn: Any) -> None:
    """Refuse a schema table whose ``version`` column was altered (its versions unreadable).

    ``version`` altered to text made every open fail with PostgreSQL's own "COALESCE types
    text and integer cannot be matched" (left at stop 29).

    Raises:
        SchemaTableAlteredError: Naming the column's type now.
    """
    row = conn.execute(
        "SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = "
        "to_regclass(%s) AND attname = 'version' AND NOT attisdropped",
        (SCHEMA_TABLE,),
    ).fetchone()
    found = None if row is None else row[0]
    if found != "integer":
        raise SchemaTableAlteredError(
            f"{SCHEMA_TABLE}.version is {found or 'missing'}, not integer"
        )


def require_utf8(conn: Any) -> None:
    """Refuse a database whose encoding is not UTF8 (before anything is read or written).

    Under a C or POSIX locale ``initdb`` creates SQL_ASCII databases: PostgreSQL then stores
    bytes unchecked and psycopg reads every text column as bytes, so every write was refused
    with "cannot be written" and ``audit verify`` of the empty log said "TAMPERED: the chain
    ends at record 0 but the store's head is record 0" (review R28b, N6).

    Raises:
        UnusableDatabaseError: Naming the encoding and how to create a UTF8 database.
    """
    row = conn.execute("SHOW server_encoding").fetchone()
    found = None if row is None else row[0]
    # Under SQL_ASCII psycopg reads the answer itself as bytes.
    encoding = found.decode() if isinstance(found, bytes) else str(found)
    if encoding != "UTF8":
        raise UnusableDatabaseError(
            f"the database's encoding is {encoding}, and a decision log needs UTF8; create "
            "the database with CREATE DATABASE <name> ENCODING 'UTF8' TEMPLATE template0 "
            "(or createdb -E UTF8 -T template0 <name>) and point --audit-db at it"
        )


def migrate(conn: Any) -> int:
    """Apply the migrations the database lacks (an autocommit psycopg connection).

    Args:
        conn: A ``psycopg.Connection`` in autocommit mode.

    Returns:
        The schema version now in force.

    Raises:
        SchemaTooNewError: If the database holds a newer schema than ``LATEST``.
        SchemaTableAlteredError: If ``caseroute_schema.version`` is no integer column.
        psycopg.Error: If a statement fails (nothing of that migration is applied).
    """
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_KEY,))
        conn.execute(
            f"CREATE TABLE IF NOT EXISTS {SCHEMA_TABLE} (version INTEGER PRIMARY KEY, "
            "description TEXT NOT NULL, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())"
        )
        _version_column(conn)
        row = conn.execute(f"SELECT coalesce(max(version), 0) FROM {SCHEMA_TABLE}").fetchone()
        current = int(row[0])
        if current > LATEST:
            raise SchemaTooNewError(
                f"the decision log's schema is version {current}, newer than this caseroute "
                f"knows ({LATEST}); upgrade caseroute on this replica"
            )
        for version, description, sql in MIGRATIONS:
            if version > current:
                conn.execute(sql)
                conn.execute(
                    f"INSERT INTO {SCHEMA_TABLE} (version, description) VALUES (%s, %s)",
                    (version, description),
                )
                current = version
    return current


def schema_version(conn: Any) -> int:
    """The schema version of a database (0: not created by caseroute).

    Raises:
        SchemaTableAlteredError: If ``caseroute_schema.version`` is no integer column.
    """
    row = conn.execute("SELECT to_regclass(%s)", (SCHEMA_TABLE,)).fetchone()
    if row is None or row[0] is None:
        return 0
    _version_column(conn)
    found = conn.execute(f"SELECT coalesce(max(version), 0) FROM {SCHEMA_TABLE}").fetchone()
    return int(found[0])
