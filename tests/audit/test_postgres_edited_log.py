"""A PostgreSQL log an auditor reads: a column altered to bytea reads as text; SQL_ASCII refused.

Review R28b: only the SQLite store turned an edited value into ``EditedText``. On PostgreSQL a
TEXT column altered to bytea (``ALTER TABLE ... TYPE bytea``; an UPDATE cannot do it) came back
as ``bytes``, and ``audit events --format json`` ended in a traceback (N3). A database created
as SQL_ASCII (``initdb`` under a C locale without ``--encoding``) refused every write with
"cannot be written", and ``audit verify`` of the empty log said "TAMPERED: the chain ends at
record 0 but the store's head is record 0" (N6).
"""

from __future__ import annotations

import contextlib
import io
import secrets
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from caseroute.audit.config import AuditConfig
from caseroute.audit.location import PostgresLocation
from caseroute.audit.pg_schema import MIGRATIONS, altered_columns, declared_columns
from caseroute.audit.postgres import PostgresAuditSink
from caseroute.audit.record import ShadowResult
from caseroute.cli import main
from caseroute.domain.case import Intent, Urgency
from caseroute.domain.errors import AuditUnavailableError, RecordDamagedError
from caseroute.engine.case_rules import EngineKind, prepare_ruleset
from caseroute.registry import RulesetRegistry
from caseroute.service import DecideCommand, RoutingCore
from caseroute.testing import NOW, TEST_AUDIT_KEY, compile_text, make_case
from tests.pg import fresh_database, pg_server, pg_url
from tests.replay.recorded import BASE, roster_of_two
from tests.test_cli_audit import _ruleset_event

__all__ = ["pg_server", "pg_url"]

CHAINED = ("decisions", "ruleset_events", "blobs", "chain_head")
SAME_BYTES_SAME_MEANING = {
    ("decisions", "input"),
    ("decisions", "decision"),
    ("chain_head", "record_hash"),
    ("blobs", "sha256"),
}
"""Columns whose same bytes as bytea every reader reads as they were, so verify passes them
(docs/audit.md): JSON parsed before it is compared, the head's hash compared as text, and a
blob's key, which is looked up and never read back."""

LIVE = {"outcome": "ASSIGN", "agent_id": "a1", "queue": "clinical", "priority": "normal"}


def _record(url: str) -> list[str]:
    """Two requests through RoutingCore, two ruleset events, a shadow result and a dropped count.

    Returns:
        The decision ids, in order.
    """
    config = AuditConfig.at(PostgresLocation(url), key_hex=TEST_AUDIT_KEY)
    registry = RulesetRegistry()
    registry.add(prepare_ruleset(compile_text(BASE), EngineKind.PYTHON))
    core = RoutingCore(registry, config.open_sink(), config.masker(), lambda: NOW)
    routine = {"intent": Intent.GENERAL, "urgency": Urgency.ROUTINE}
    case = make_case(case_id="C1", attributes={"notes": "call back"}, **routine)
    result = core.decide(DecideCommand("r1", "", "", (case,), roster_of_two(), NOW))
    urgent = make_case(case_id="C2", intent=Intent.GENERAL, urgency=Urgency.URGENT)
    core.decide(DecideCommand("r2", "", "", (urgent,), roster_of_two(), NOW))
    core.audit.append_events([_ruleset_event(1), _ruleset_event(2)])
    core.audit.append_shadow(
        [
            ShadowResult(
                *("dec_x", "2026-11-21T10:00:01Z", "test", "1", "a" * 64, "2", "b" * 64),
                ("agent",),
                dict(LIVE),
                dict(LIVE, agent_id="a2"),
            )
        ],
        {("test", "2"): 3},
    )
    core.audit.close()
    registry.close()
    return [d.decision_id for d in result.decisions]


@pytest.fixture(scope="module")
def base(pg_server: str) -> Iterator[tuple[str, str]]:
    """A recorded log in its own database: (its URL, the first decision id)."""
    with fresh_database(pg_server) as url:
        (first,) = _record(url)
        yield url, first


def _columns(url: str, *types: str) -> list[tuple[str, str]]:
    """Every (table, column) of the log's schema whose type is one of ``types``."""
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT table_name, column_name FROM information_schema.columns "
            "WHERE table_schema = 'public' AND data_type = ANY(%s) ORDER BY 1, 2",
            (list(types),),
        ).fetchall()
    return [(str(t), str(c)) for t, c in rows]


def _crashes(url: str, decision_id: str, where: str) -> tuple[list[str], tuple[int, str]]:
    """Every auditor's command that raised or printed a traceback on the log at ``url``.

    Also ``audit verify``'s exit code and output (empty when it raised), for tests that judge
    its verdict too.
    """
    at = ("--audit-db", url)
    found = []
    verified = (-1, "")
    for argv in (
        ("audit", "export", *at),
        ("audit", "events", *at),
        ("audit", "events", "--format", "json", *at),
        ("audit", "show", decision_id, *at),
        ("audit", "show", decision_id, "--json", *at),
        ("audit", "verify", *at),
    ):
        try:
            code, output = _run(*argv)
        except Exception as exc:  # noqa: BLE001 - the finding is the list of them
            found.append(f"{where}: {' '.join(argv[:4])}: {exc!r}")
            continue
        if argv[:2] == ("audit", "verify"):
            verified = (code, output)
        if code not in (0, 1) or "Traceback" in output:
            found.append(f"{where}: {' '.join(argv[:4])}: exit {code}")
    return found, verified


def _run(*argv: str) -> tuple[int, str]:
    """``caseroute argv``: its exit code and output; whatever it raises fails the test."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(argv))
    return code, out.getvalue() + err.getvalue()


BYTEA_SHARDS = 4
"""The TEXT columns are split into this many tests, so pytest-xdist spreads ~30 s of work."""


@pytest.mark.parametrize("shard", range(BYTEA_SHARDS))
def test_every_text_column_altered_to_bytea_reads_and_verify_names_it(
    pg_server: str, base: tuple[str, str], shard: int
) -> None:
    """Each TEXT column in turn, same bytes as bytea: every reader answers; verify TAMPERED.

    Every ``BYTEA_SHARDS``-th column from ``shard`` (a database copy each) rather than one test
    per named column: the columns are read from the live schema, so a column a migration adds
    is covered unasked.
    """
    url, decision_id = base
    name = url.rsplit("/", 1)[1]
    columns = _columns(url, "text")
    assert len(columns) > 20  # the schema was read
    crashed, unreported = [], []
    for table, column in columns[shard::BYTEA_SHARDS]:
        with fresh_database(pg_server, f'TEMPLATE "{name}"') as copy:
            with psycopg.connect(copy, autocommit=True) as conn:
                conn.execute(
                    f"ALTER TABLE {table} ALTER COLUMN {column} TYPE bytea "
                    f"USING convert_to({column}, 'UTF8')"
                )
            found, (code, output) = _crashes(copy, decision_id, f"{table}.{column}")
            crashed += found
            tampered = (code, output[:10]) == (1, "TAMPERED: ")
            if table in CHAINED and (table, column) not in SAME_BYTES_SAME_MEANING and not tampered:
                unreported.append(f"{table}.{column}: {output[:120]}")
    assert (crashed, unreported) == ([], [])


def test_every_integer_column_altered_to_text_reads_without_a_traceback(
    pg_server: str, base: tuple[str, str]
) -> None:
    """``decisions.seq`` as text ended ``audit show`` in a TypeError traceback (review R29 F5).

    Each integer column in turn: every auditor's command exits with a message.
    """
    url, decision_id = base
    name = url.rsplit("/", 1)[1]
    columns = _columns(url, "integer", "bigint", "smallint")
    assert ("decisions", "seq") in columns
    crashed = []
    for table, column in columns:
        with fresh_database(pg_server, f'TEMPLATE "{name}"') as copy:
            with psycopg.connect(copy, autocommit=True) as conn:
                try:
                    conn.execute(f"ALTER TABLE {table} ALTER COLUMN {column} TYPE text")
                except (psycopg.errors.UndefinedFunction, psycopg.errors.InvalidParameterValue):
                    # chain_head.id (CHECK id = 1) and identity columns: cannot be made text
                    continue
            crashed += _crashes(copy, decision_id, f"{table}.{column}")[0]
    assert crashed == []


@pytest.fixture
def sql_ascii(pg_server: str) -> Iterator[str]:
    """An empty database created as SQL_ASCII (what initdb gives under a C locale)."""
    options = "ENCODING 'SQL_ASCII' LC_COLLATE 'C' LC_CTYPE 'C' TEMPLATE template0"
    with fresh_database(pg_server, options) as url:
        yield url


@pytest.mark.parametrize("readonly", [False, True])
def test_a_sql_ascii_database_is_refused_naming_its_encoding(
    sql_ascii: str, readonly: bool
) -> None:
    """Serving or auditing: refused at open, saying how to create a UTF8 database."""
    with pytest.raises(AuditUnavailableError) as caught:
        PostgresAuditSink(PostgresLocation(sql_ascii), readonly=readonly)
    assert "the database's encoding is SQL_ASCII, and a decision log needs UTF8" in str(
        caught.value
    )
    assert "ENCODING 'UTF8' TEMPLATE template0" in str(caught.value)


def test_audit_verify_of_a_sql_ascii_database_says_why(sql_ascii: str) -> None:
    """No "TAMPERED" for a log that was never written: the encoding instead.

    Exit 3, as for any log that cannot be opened: verify checked nothing.
    """
    code, output = _run("audit", "verify", "--audit-db", sql_ascii)
    assert (code, "TAMPERED" in output) == (3, False)
    assert "the database's encoding is SQL_ASCII, and a decision log needs UTF8" in output


def test_a_utf8_database_still_opens(pg_url: str) -> None:
    """The check passes the databases every other PostgreSQL test uses."""
    sink = PostgresAuditSink(PostgresLocation(pg_url))
    try:
        assert sink.head()[0] == 0
    finally:
        sink.close()


@pytest.mark.parametrize("how", ["url", "environment"])
def test_another_client_encoding_is_overridden(
    base: tuple[str, str], how: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A UTF8 log read with ``?client_encoding=`` or ``$PGCLIENTENCODING=`` ``SQL_ASCII``.

    It verified TAMPERED (text read as bytes) and writes were refused (review R29 F4):
    caseroute connects in UTF8 whatever they say.
    """
    url, _ = base
    if how == "url":
        url = f"{url}?client_encoding=SQL_ASCII"
    else:
        monkeypatch.setenv("PGCLIENTENCODING", "SQL_ASCII")
    code, output = _run("audit", "verify", "--audit-db", url)
    assert (code, output[:4]) == (0, "ok: "), output


@pytest.mark.parametrize("table", ["decisions", "ruleset_events"])
def test_a_chained_seq_altered_to_text_is_tampered_not_an_outage(
    pg_server: str, base: tuple[str, str], table: str
) -> None:
    """``seq`` as text: verify said "cannot be read; retry later" (left at stop 29).

    The readers' ``seq > %s`` no longer type-checks. An auditor must read that as an edited
    log: verify says TAMPERED naming the column, and show does not call it an outage.
    """
    url, decision_id = base
    name = url.rsplit("/", 1)[1]
    with fresh_database(pg_server, f'TEMPLATE "{name}"') as copy:
        with psycopg.connect(copy, autocommit=True) as conn:
            conn.execute(f"ALTER TABLE {table} ALTER COLUMN seq TYPE text")
        expected = (
            "the decision log's tables were altered after caseroute created them "
            f"({table}.seq is text, not bigint): the log was edited"
        )
        code, output = _run("audit", "verify", "--audit-db", copy)
        assert (code, output.startswith(f"TAMPERED: {expected}")) == (1, True), output
        code, output = _run("audit", "show", decision_id, "--audit-db", copy)
        assert "retry later" not in output, output
        assert code == (1 if table == "decisions" else 0), output  # events: show reads none


def test_altered_columns_names_each_change_and_nothing_on_an_intact_log(
    pg_server: str, base: tuple[str, str]
) -> None:
    """The words verify quotes: a type changed, a column dropped; none for the log as made."""
    url, _ = base
    name = url.rsplit("/", 1)[1]
    with psycopg.connect(url) as conn:
        assert altered_columns(conn) == []
    with (
        fresh_database(pg_server, f'TEMPLATE "{name}"') as copy,
        psycopg.connect(copy, autocommit=True) as conn,
    ):
        conn.execute("ALTER TABLE key_history ALTER COLUMN era TYPE bigint")
        conn.execute("ALTER TABLE decisions DROP COLUMN content")
        assert altered_columns(conn) == [
            "decisions.content is missing",
            "key_history.era is bigint, not integer",
        ]


def test_declared_columns_reads_every_column_of_the_migrations() -> None:
    """Each column line of each CREATE TABLE is read, with its type (none skipped by the regex)."""
    lines = [
        line
        for _, _, sql in MIGRATIONS
        for line in sql.splitlines()
        if line.startswith("    ")
        and not line.startswith("     ")
        and (line.split()[0].islower() or line.startswith("    ADD COLUMN"))
    ]
    declared = declared_columns()
    assert len(declared) == len(lines) == 61  # 58 made by migration 1, 3 added by migration 2
    assert declared["key_history", "record_hash"] == "text"
    assert declared["decisions", "seq"] == "bigint"
    assert declared["shadow_results", "agreed"] == "integer"
    assert declared["chain_head", "record_hash"] == "text"


def test_a_pooler_error_on_an_intact_log_is_an_outage_not_an_edit(
    base: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A prepared-statement clash (PgBouncer in transaction mode) is SQLSTATE class 42 too.

    Review R30b: it was reported as "tables were altered ... the log was edited". Every
    pooled connection here already holds the statement name psycopg prepares next.
    """
    import caseroute.audit.postgres as pg_module

    url, decision_id = base
    configure = pg_module._configure

    def taken(conn: psycopg.Connection[Any]) -> None:
        configure(conn)
        conn.pgconn.exec_(b"PREPARE _pg3_0 AS SELECT 1")  # beside psycopg's own bookkeeping

    monkeypatch.setattr(pg_module, "_configure", taken)
    sink = PostgresAuditSink(PostgresLocation(url), readonly=True)
    refused = None
    try:
        # psycopg prepares a query after it ran 5 times on a connection; the pool may spread
        # the reads over its connections (R30c saw 10 reads miss the clash now and then).
        for _ in range(40):
            try:
                sink.get(decision_id)
            except AuditUnavailableError as exc:
                refused = exc
                break
    finally:
        sink.close()
    assert refused is not None  # the clash happened: else this test proves nothing
    assert "edited" not in str(refused)
    assert "cannot be read: PostgreSQL at " in str(refused)
    assert str(refused).endswith(
        "nothing was changed; check the server (and any connection pooler in front of it), "
        "then run the command again"
    )


def test_a_refused_permission_is_unreadable_not_tampered(base: tuple[str, str]) -> None:
    """A role that may not read ``decisions`` gets "cannot be read", never TAMPERED."""
    url, _ = base
    role = f"auditor_{secrets.token_hex(4)}"
    database = url.rsplit("/", 1)[1]
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"CREATE ROLE {role} LOGIN PASSWORD 'pw'")
        conn.execute(f'GRANT CONNECT ON DATABASE "{database}" TO {role}')
        conn.execute(f"GRANT SELECT ON ALL TABLES IN SCHEMA public TO {role}")
        conn.execute(f"REVOKE SELECT ON decisions FROM {role}")
    try:
        limited = url.replace(url.split("://", 1)[1].split("@", 1)[0], f"{role}:pw", 1)
        code, output = _run("audit", "verify", "--audit-db", limited)
        assert (code, "TAMPERED" in output, "cannot be read" in output) == (3, False, True)
    finally:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f"REVOKE ALL ON ALL TABLES IN SCHEMA public FROM {role}")
            conn.execute(f'REVOKE CONNECT ON DATABASE "{database}" FROM {role}')
            conn.execute(f"DROP ROLE {role}")


def test_the_servers_own_reads_of_an_altered_log_stay_an_outage(
    pg_server: str, base: tuple[str, str]
) -> None:
    """Only an auditor's read names the edit: the writable sink's says unavailable, as before."""
    url, _ = base
    name = url.rsplit("/", 1)[1]
    with fresh_database(pg_server, f'TEMPLATE "{name}"') as copy:
        with psycopg.connect(copy, autocommit=True) as conn:
            conn.execute("ALTER TABLE decisions ALTER COLUMN seq TYPE text")
        sink = AuditConfig.at(PostgresLocation(copy), key_hex=TEST_AUDIT_KEY).open_sink()
        try:
            with pytest.raises(AuditUnavailableError, match="retry later"):
                list(sink.records(after_seq=1))
        finally:
            sink.close()


def test_an_emptied_schema_table_does_not_hide_an_altered_column(
    pg_server: str, base: tuple[str, str]
) -> None:
    """Review R30d: with caseroute_schema emptied the version read 0 and nothing was compared.

    The columns are compared as of the version the sink saw when it opened.
    """
    url, _ = base
    name = url.rsplit("/", 1)[1]
    with fresh_database(pg_server, f'TEMPLATE "{name}"') as copy:
        sink = PostgresAuditSink(PostgresLocation(copy), readonly=True)
        try:
            with psycopg.connect(copy, autocommit=True) as conn:
                conn.execute("ALTER TABLE decisions ALTER COLUMN seq TYPE text")
                conn.execute("DELETE FROM caseroute_schema")
            with pytest.raises(RecordDamagedError, match=r"decisions\.seq is text, not bigint"):
                list(sink.records(after_seq=1))
        finally:
            sink.close()


@pytest.mark.parametrize("column_type", ["text", "bigint", "numeric"])
def test_a_schema_version_altered_is_tampered_not_a_sql_error(
    pg_server: str, base: tuple[str, str], column_type: str
) -> None:
    """``caseroute_schema.version`` altered said PostgreSQL's "COALESCE types text and integer".

    Left at stop 29. Verify says TAMPERED naming the column, show and a writer's open refuse
    naming it, and none quotes PostgreSQL's error.
    """
    url, decision_id = base
    name = url.rsplit("/", 1)[1]
    with fresh_database(pg_server, f'TEMPLATE "{name}"') as copy:
        with psycopg.connect(copy, autocommit=True) as conn:
            conn.execute(f"ALTER TABLE caseroute_schema ALTER COLUMN version TYPE {column_type}")
        expected = (
            "the decision log's tables were altered after caseroute created them "
            f"(caseroute_schema.version is {column_type}, not integer): the log was edited; "
            "restore it from a copy you trust"
        )
        code, output = _run("audit", "verify", "--audit-db", copy)
        assert (code, output) == (1, f"TAMPERED: {expected}\n")
        code, output = _run("audit", "show", decision_id, "--audit-db", copy)
        assert (code, expected in output, "COALESCE" in output) == (1, True, False), output
        with pytest.raises(AuditUnavailableError) as refused:
            AuditConfig.at(PostgresLocation(copy), key_hex=TEST_AUDIT_KEY).open_sink()
        message = str(refused.value)
        assert (expected in message, "COALESCE" in message) == (True, False), message
