"""An audit or replay command whose log cannot be read says so once, on one line.

Without a logging set-up, Python writes a library's warnings and errors to stderr itself
(``logging.lastResort``): the sink's ``AUDIT READ FAILED ...`` detail line came out beside the
command's own message, the same failure twice in two formats, and that message was the one a
gRPC caller gets (``retry later or with another replica``), naming neither the log nor what to
do. These run the command as a user does (a process of its own): pytest's log capture would
hide the stray line.
"""

from __future__ import annotations

import io
import json
import logging
import os
import secrets
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest

from caseroute.audit.location import PostgresLocation
from caseroute.audit.postgres import PostgresAuditSink
from caseroute.audit.store import SqliteAuditStore
from caseroute.cli import main
from caseroute.logs.setup import _Handler
from caseroute.testing import REFERENCE_RULESET, make_audit_record
from tests.pg import pg_server, pg_url

__all__ = ["pg_server", "pg_url"]  # fixtures, imported for pytest


def _run(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """``caseroute ARGS`` in a process of its own, with no CASEROUTE_* variable but ``env``."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("CASEROUTE_")}
    return subprocess.run(
        [sys.executable, "-m", "caseroute", *args],
        capture_output=True,
        text=True,
        env={**clean, **env},
        check=False,
        timeout=120,
    )


@pytest.fixture
def unreadable(tmp_path: Path) -> Path:
    """A SQLite decision log that opens but whose records cannot be read (no decisions table)."""
    db = tmp_path / "audit.db"
    store = SqliteAuditStore(db)
    store.append([make_audit_record(1, decision_id="dec_1")])
    store.close()
    with sqlite3.connect(db) as conn:
        conn.execute("ALTER TABLE decisions RENAME TO decisions_moved")
    return db


VERIFY_CHECKED_NOTHING = (
    "caseroute: audit verify checked nothing (the log could not be read: this is not a "
    "finding of tampering); exit 3\n"
)


def _sqlite_message(db: Path) -> str:
    return (
        f"caseroute: the decision log {db} cannot be read: OperationalError: no such table: "
        "decisions; nothing was changed; check that --audit-db names a caseroute decision log "
        "that this user can read, then run the command again\n"
    )


@pytest.mark.parametrize(
    ("command", "code", "after"),
    [
        # 3: the log could not be read, so nothing was checked (1 is a finding: an edited
        # record, a gate exceeded); exit 1 before, indistinguishable from one.
        (["audit", "show", "dec_1"], 3, ""),
        (["audit", "export"], 3, ""),
        (
            ["audit", "verify"],
            3,
            VERIFY_CHECKED_NOTHING,
        ),
        (["replay", "--candidate", str(REFERENCE_RULESET), "--format", "json"], 3, ""),
        # report exited 1 and rules shadow-report 2 (a usage error) for the same outage, each
        # with the sink's detail line beside its message.
        (["report"], 3, ""),
        (["rules", "shadow-report", "reference"], 3, ""),
    ],
)
def test_an_unreadable_sqlite_log_is_one_line_naming_the_file(
    unreadable: Path, command: list[str], code: int, after: str
) -> None:
    """Exactly the command's own line(s) on stderr: the file, the cause, what to do."""
    done = _run(*command, "--audit-db", str(unreadable))
    assert (done.returncode, done.stdout, done.stderr) == (
        code,
        "",
        _sqlite_message(unreadable) + after,
    )


@pytest.mark.parametrize(
    ("given", "env"),
    [
        (["--log-level", "warning"], {}),
        ([], {"CASEROUTE_LOG_LEVEL": "info"}),
    ],
)
def test_with_logging_asked_for_the_detail_is_logged_before_the_message(
    unreadable: Path, given: list[str], env: dict[str, str]
) -> None:
    """--log-level (or its variable) logs the sink's detail as a log line, then the message."""
    done = _run("audit", "show", "dec_1", "--audit-db", str(unreadable), *given, **env)
    *logged, last = done.stderr.splitlines(keepends=True)
    assert (done.returncode, last) == (3, _sqlite_message(unreadable))
    events = [json.loads(line) for line in logged]  # not a terminal: JSON lines
    assert [(e["level"], e["event"]) for e in events] == [
        (
            "error",
            f"AUDIT READ FAILED on {unreadable}: OperationalError: no such table: decisions",
        )
    ]


@pytest.fixture
def refused_role(pg_url: str) -> Iterator[str]:
    """The URL of a role that may open the log (its schema) but not read its decisions."""
    sink = PostgresAuditSink(PostgresLocation(pg_url))
    try:
        sink.append([make_audit_record(1, decision_id="dec_1")])
    finally:
        sink.close()
    role, password = f"auditor_{secrets.token_hex(4)}", secrets.token_hex(8)
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(f"CREATE ROLE {role} LOGIN PASSWORD '{password}'")
        conn.execute(f"GRANT SELECT ON caseroute_schema TO {role}")
    parts = urlsplit(pg_url)
    url = urlunsplit(parts._replace(netloc=f"{role}:{password}@{parts.hostname}:{parts.port}"))
    try:
        yield url
    finally:
        with psycopg.connect(pg_url, autocommit=True) as conn:
            conn.execute(f"REVOKE ALL ON caseroute_schema FROM {role}")
            conn.execute(f"DROP ROLE {role}")


def test_a_postgresql_read_refused_is_one_line_naming_the_server(refused_role: str) -> None:
    """A role refused the read: one line naming host:port, the cause and what to do."""
    done = _run("audit", "show", "dec_1", "--audit-db", refused_role)
    parts = urlsplit(refused_role)
    shown = str(PostgresLocation(refused_role))
    message = (
        f"caseroute: the decision log {shown} cannot be read: PostgreSQL at "
        f"{parts.hostname}:{parts.port} refused the read: InsufficientPrivilege: permission "
        "denied for table decisions; nothing was changed; check that this role may read the "
        "log's tables, then run the command again\n"
    )
    assert (done.returncode, done.stdout, done.stderr) == (3, "", message)
    assert parts.password
    assert parts.password not in done.stderr


def test_a_command_in_process_leaves_the_logging_set_up_as_it_found_it(
    unreadable: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """With or without --log-level, main() restores the root logger's handlers and level."""
    root = logging.getLogger()
    ours = _Handler(io.StringIO())  # serve's (configure_logging replaces it while it runs)
    for handlers in ([], list(root.handlers), [ours]):  # none; a host's (pytest's); serve's
        monkeypatch.setattr(root, "handlers", handlers)
        before = (list(root.handlers), root.level)
        for given in ([], ["--log-level", "debug"]):
            code = main(["audit", "show", "dec_1", "--audit-db", str(unreadable), *given])
            assert (code, (list(root.handlers), root.level)) == (3, before)
    assert capsys.readouterr().err.endswith(_sqlite_message(unreadable))


def test_a_postgresql_read_dropped_without_an_answer_names_the_server(pg_url: str) -> None:
    """A connection lost mid-read (no SQLSTATE: the server never answered) is no refusal.

    The auditor's message names the server and says to check it, the driver's words quoted
    with the password scrubbed, never `refused the read`.
    """
    PostgresAuditSink(PostgresLocation(pg_url)).close()  # the log's schema, for a reader
    sink = PostgresAuditSink(PostgresLocation(pg_url), readonly=True)
    try:
        password = urlsplit(pg_url).password or ""
        dropped = psycopg.OperationalError(
            f"consuming input failed: server closed the connection unexpectedly ({password})"
        )
        message = str(sink._read_error(dropped))
    finally:
        sink.close()
    parts = urlsplit(pg_url)
    assert message.startswith(
        f"the decision log {PostgresLocation(pg_url)} cannot be read from PostgreSQL at "
        f"{parts.hostname}:{parts.port}: OperationalError: consuming input failed: server "
        "closed the connection unexpectedly ("
    )
    assert message.endswith("; nothing was changed; check the server, then run the command again")
    assert "refused" not in message
    assert not password or password not in message
