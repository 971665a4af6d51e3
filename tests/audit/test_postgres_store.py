"""The PostgreSQL sink: the SQLite store's own tests against it, then what a shared log needs.

The imported tests are collected here too, so they run once against SQLite (in their own
module) and once against PostgreSQL (here: this module's ``store`` and ``core`` fixtures).
"""

import logging
import threading
from collections.abc import Iterator
from concurrent.futures import Future
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest

from caseroute.audit.config import AuditConfig, open_postgres
from caseroute.audit.location import PostgresLocation
from caseroute.audit.pg_schema import LATEST, SCHEMA_TABLE
from caseroute.audit.postgres import PostgresAuditSink
from caseroute.audit.record import AuditRecord, Blob, BlobKind, encode_record
from caseroute.audit.recorder import RequestFacts, blobs_to_store, build_records
from caseroute.audit.sql_appends import Pending
from caseroute.audit.verify import verify_chain
from caseroute.cli import main
from caseroute.domain.errors import (
    AuditUnavailableError,
    IdempotencyConflictError,
    RecordRefusedError,
)
from caseroute.engine.case_rules import EngineKind, prepare_ruleset
from caseroute.engine.decide import decide
from caseroute.service import RoutingCore, RulesetRegistry
from caseroute.testing import (
    NOW,
    TEST_AUDIT_KEY,
    compile_text,
    make_agent,
    make_audit_record,
    make_case,
    make_roster,
    ruleset_with_rules,
)
from tests.audit.test_ruleset_events import (
    test_a_malformed_event_is_refused_before_anything_is_stored,
    test_append_events_returns_sealed_events_and_a_retry_is_not_stored_twice,
    test_concurrent_events_and_decisions_make_one_valid_chain,
    test_events_filter_by_ruleset_and_page_by_seq,
    test_events_share_the_decisions_seq_space_and_chain,
    test_ruleset_names_are_read_from_every_table_that_names_one,
    test_verify_without_the_events_reports_them_missing,
)
from tests.audit.test_shadow_store import (
    test_a_result_that_could_carry_case_data_is_refused,
    test_dropped_must_be_attributable,
    test_failed_shadow_decisions_are_kept_per_version,
    test_results_round_trip_and_filter,
    test_shadow_results_are_outside_the_chain,
    test_summary_counts_per_shadow_version,
    test_the_same_comparison_is_stored_once,
)
from tests.audit.test_store import (
    test_a_conflicting_call_stores_none_of_its_records,
    test_append_chains_and_verifies,
    test_concurrent_retries_store_exactly_one,
    test_retry_returns_the_stored_record_and_conflict_is_refused,
    test_time_range_orders_instants_not_text,
)
from tests.pg import pg_server, pg_url
from tests.test_service import (
    test_batch_consumes_capacity,
    test_batch_records_reproduce_every_decision,
    test_concurrent_retries_store_one_decision,
    test_decision_log_get_and_pages,
    test_every_decision_is_recorded_before_it_is_returned,
    test_retry_returns_the_stored_decision_without_re_evaluating,
    test_reused_request_id_with_other_input_is_refused,
)

__all__ = [  # collected here against PostgreSQL (see the module docstring)
    "pg_server",
    "pg_url",
    "test_a_conflicting_call_stores_none_of_its_records",
    "test_a_malformed_event_is_refused_before_anything_is_stored",
    "test_a_result_that_could_carry_case_data_is_refused",
    "test_append_chains_and_verifies",
    "test_append_events_returns_sealed_events_and_a_retry_is_not_stored_twice",
    "test_batch_consumes_capacity",
    "test_batch_records_reproduce_every_decision",
    "test_concurrent_events_and_decisions_make_one_valid_chain",
    "test_concurrent_retries_store_exactly_one",
    "test_concurrent_retries_store_one_decision",
    "test_decision_log_get_and_pages",
    "test_dropped_must_be_attributable",
    "test_events_filter_by_ruleset_and_page_by_seq",
    "test_events_share_the_decisions_seq_space_and_chain",
    "test_every_decision_is_recorded_before_it_is_returned",
    "test_failed_shadow_decisions_are_kept_per_version",
    "test_results_round_trip_and_filter",
    "test_retry_returns_the_stored_decision_without_re_evaluating",
    "test_retry_returns_the_stored_record_and_conflict_is_refused",
    "test_reused_request_id_with_other_input_is_refused",
    "test_ruleset_names_are_read_from_every_table_that_names_one",
    "test_shadow_results_are_outside_the_chain",
    "test_summary_counts_per_shadow_version",
    "test_the_same_comparison_is_stored_once",
    "test_time_range_orders_instants_not_text",
    "test_verify_without_the_events_reports_them_missing",
]

RULES = ruleset_with_rules(
    """\
  - id: rest
    when: true
    then: {route: {queue: by_intent}}
"""
)


@pytest.fixture
def store(pg_url: str) -> Iterator[PostgresAuditSink]:
    """A PostgreSQL sink on a fresh database (the name the SQLite tests ask for)."""
    made = PostgresAuditSink(PostgresLocation(pg_url))
    yield made
    made.close()


@pytest.fixture
def core(registry: RulesetRegistry, pg_url: str) -> Iterator[RoutingCore]:
    """A core over the ``registry`` fixture recording to PostgreSQL (as tests/conftest.py's)."""
    config = AuditConfig.at(PostgresLocation(pg_url), key_hex=TEST_AUDIT_KEY)
    made = RoutingCore(registry, config.open_sink(), config.masker(), lambda: NOW)
    yield made
    made.audit.close()


def _record(n: int, request: str = "req", body: str = "x") -> AuditRecord:
    return make_audit_record(
        n,
        decision_id=f"dec_{request}_{n}",
        request_id=request,
        request_sha256=f"sha-{request}-{body}",
        input={"case": {"case_id": f"C{n}"}},
        decision={"outcome": "ASSIGN", "n": n},
    )


def _admin(url: str) -> psycopg.Connection[tuple[object, ...]]:
    return psycopg.connect(url, autocommit=True)


def test_two_replicas_racing_on_one_request_store_one_record_set(pg_url: str) -> None:
    """The same request_id from two sinks at once: one record set; every caller gets it."""
    sinks = [PostgresAuditSink(PostgresLocation(pg_url)) for _ in range(2)]
    results: list[list[AuditRecord]] = []
    start = threading.Barrier(8)

    def send(sink: PostgresAuditSink) -> None:
        start.wait()
        results.append([a.record for a in sink.append([_record(1), _record(2)])])

    threads = [threading.Thread(target=send, args=(sinks[i % 2],)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    try:
        assert sinks[0].head()[0] == 2
        assert len(results) == 8
        assert {tuple(r.record_hash for r in got) for got in results} == {
            tuple(r.record_hash for r in results[0])
        }
        with pytest.raises(IdempotencyConflictError, match="different input"):
            sinks[1].append([_record(1, body="changed")])
        report = verify_chain(sinks[1].records(), sinks[1].head())
        assert (report.ok, report.records) == (True, 2)
    finally:
        for sink in sinks:
            sink.close()


def test_replicas_extend_one_chain(pg_url: str) -> None:
    """Three sinks appending concurrently build one gap-free chain that verifies."""
    sinks = [PostgresAuditSink(PostgresLocation(pg_url)) for _ in range(3)]

    def send(i: int) -> None:
        for n in range(20):
            sinks[i].append([_record(n, request=f"r{i}")])

    threads = [threading.Thread(target=send, args=(i,)) for i in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    try:
        records = list(sinks[0].records())
        assert [r.seq for r in records] == list(range(1, 61))
        report = verify_chain(records, sinks[2].head())
        assert (report.ok, report.records) == (True, 60)
    finally:
        for sink in sinks:
            sink.close()


def test_every_connection_commits_synchronously(pg_url: str) -> None:
    """Even where the database default is synchronous_commit = off, the sink's sessions say on."""
    with _admin(pg_url) as conn:
        name = conn.execute("SELECT current_database()").fetchone()
        assert name is not None
        conn.execute(f'ALTER DATABASE "{name[0]}" SET synchronous_commit = off')
    sink = PostgresAuditSink(PostgresLocation(pg_url))
    try:
        assert sink._fetch("SHOW synchronous_commit", ()) == [("on",)]
    finally:
        sink.close()


def test_schema_is_versioned_and_migrated_once(pg_url: str) -> None:
    """A migration table records each version once; a second open applies nothing again."""
    PostgresAuditSink(PostgresLocation(pg_url)).close()
    sink = PostgresAuditSink(PostgresLocation(pg_url))
    try:
        rows = sink._fetch(f"SELECT version FROM {SCHEMA_TABLE} ORDER BY version", ())
        assert [row[0] for row in rows] == list(range(1, LATEST + 1))
    finally:
        sink.close()


def test_a_newer_schema_or_none_is_refused(pg_url: str) -> None:
    """Read-only on a database without the schema, or any open of a newer one: refused."""
    location = PostgresLocation(pg_url)
    with pytest.raises(AuditUnavailableError, match="holds no caseroute decision log"):
        PostgresAuditSink(location, readonly=True)
    PostgresAuditSink(location).close()
    with _admin(pg_url) as conn:
        conn.execute(f"INSERT INTO {SCHEMA_TABLE} (version, description) VALUES (99, 'future')")
    for readonly in (False, True):
        with pytest.raises(AuditUnavailableError, match="newer than this caseroute knows"):
            PostgresAuditSink(location, readonly=readonly)


def test_a_read_only_sink_refuses_appends(pg_url: str) -> None:
    """`caseroute audit` opens read-only: an append is refused, reads work."""
    PostgresAuditSink(PostgresLocation(pg_url)).close()
    sink = open_postgres(PostgresLocation(pg_url), readonly=True)
    try:
        with pytest.raises(AuditUnavailableError, match="cannot be written"):
            sink.append([_record(1)])
        assert sink.head()[0] == 0
    finally:
        sink.close()


def test_a_closed_sink_refuses_appends(pg_url: str) -> None:
    """After close (shutting down), an append is refused rather than left waiting."""
    sink = PostgresAuditSink(PostgresLocation(pg_url))
    sink.close()
    sink.close()  # twice is harmless
    with pytest.raises(AuditUnavailableError, match="cannot be written"):
        sink.append([_record(1)])


def test_an_unreachable_database_is_named_without_its_password() -> None:
    """Startup names the database (password masked) and the cause; the password never shows."""
    url = "postgresql://caseroute:pw-never-shown@127.0.0.1:1/nowhere"
    with pytest.raises(AuditUnavailableError) as refused:
        PostgresAuditSink(PostgresLocation(url), timeout_s=1)
    message = str(refused.value)
    assert message.startswith(
        "cannot open the decision log postgresql://caseroute:***@127.0.0.1:1/nowhere: "
    )
    assert "pw-never-shown" not in message
    with pytest.raises(AuditUnavailableError, match=r"log postgresql://127.0.0.1:1/x: "):
        PostgresAuditSink(PostgresLocation("postgresql://127.0.0.1:1/x"), timeout_s=1)


def test_a_lost_database_is_unavailable_then_writable_again(
    pg_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Connections refused: appends and reads raise AuditUnavailableError; allowed again: works."""
    sink = PostgresAuditSink(PostgresLocation(pg_url), timeout_s=1)
    sink.append([_record(1)])
    with _admin(pg_url) as conn:
        name = conn.execute("SELECT current_database()").fetchone()
        assert name is not None
    database = name[0]
    admin_url = pg_url.rsplit("/", 1)[0] + "/postgres"
    try:
        with _admin(admin_url) as conn:
            conn.execute(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS false')
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
                (database,),
            )
        with caplog.at_level(logging.ERROR, "caseroute.audit"):
            with pytest.raises(AuditUnavailableError, match="cannot be written"):
                sink.append([_record(2)])
            with pytest.raises(AuditUnavailableError, match="cannot be read"):
                sink.head()
        assert sink.failures >= 1
        assert any("AUDIT WRITE FAILED (1 calls refused)" in r.message for r in caplog.records)
        (password,) = PostgresLocation(pg_url).passwords
        assert all(password not in r.getMessage() for r in caplog.records)
    finally:
        with _admin(admin_url) as conn:
            conn.execute(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS true')
    # The pool reconnects with back-off, so the first attempts after the database came back may
    # still time out (after timeout_s each: waiting on an event, not a sleep); a write succeeds
    # again within a bounded number of attempts.
    for _ in range(30):
        try:
            (again,) = sink.append([_record(2)])
            break
        except AuditUnavailableError:
            continue
    else:
        pytest.fail("no write succeeded within 30 attempts after the database came back")
    assert (again.existed, again.record.seq) == (False, 2)
    sink.close()


def test_key_eras_bind_and_rotate(pg_url: str) -> None:
    """The first key is recorded; another is refused; after rotation an old writer stops."""
    location = PostgresLocation(pg_url)
    config = AuditConfig.at(location, key_hex=TEST_AUDIT_KEY)
    writer = config.open_sink()
    other = AuditConfig.at(location, key_hex="ff" * 16)
    with pytest.raises(Exception, match="does not match the key"):
        other.open_sink()
    rotator = open_postgres(location)
    era = rotator.rotate_key("f" * 16, "2026-12-01T00:00:00Z")
    rotator.close()
    assert (era.era, era.seq, era.first_seq, era.new_fingerprint) == (2, 1, 2, "f" * 16)
    with pytest.raises(AuditUnavailableError, match="cannot be written"):
        writer.append([_record(1)])
    assert [e.era for e in writer.key_history()] == [1, 2]
    writer.close()


def _decided_log(pg_url: str) -> str:
    """A PostgreSQL log holding one real decision (with its blobs); returns its decision_id."""
    config = AuditConfig.at(PostgresLocation(pg_url), key_hex=TEST_AUDIT_KEY)
    sink = config.open_sink()
    loaded = prepare_ruleset(compile_text(RULES), EngineKind.PYTHON)
    roster = make_roster(make_agent("a1"))
    case = make_case(case_id="C-pg", attributes={"patient_name": "Ada Lovelace"})
    decision = decide(case, roster, loaded, NOW, decision_id="dec_pg")
    facts = RequestFacts("req-pg", "0" * 64, "tester", "2026-11-21T10:00:00Z")
    records = build_records(facts, loaded.compiled, [case], roster, [decision], config.masker())
    sink.append(records, blobs_to_store(sink, loaded.compiled, roster))
    sink.close()
    return decision.decision_id


def test_audit_commands_read_a_postgres_log(
    pg_url: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Audit verify, show and export read PostgreSQL as they read SQLite; no PHI, no password."""
    monkeypatch.delenv("CASEROUTE_AUDIT_DB", raising=False)
    decision_id = _decided_log(pg_url)
    (password,) = PostgresLocation(pg_url).passwords
    assert main(["audit", "verify", "--audit-db", pg_url]) == 0
    verified = capsys.readouterr().out
    assert verified.startswith("ok: 1 record(s), every link and blob verified; head 1:")
    assert main(["audit", "show", decision_id, "--audit-db", pg_url]) == 0
    shown = capsys.readouterr().out
    assert decision_id in shown
    assert main(["audit", "export", "--audit-db", pg_url]) == 0
    exported = capsys.readouterr().out
    assert exported.count("\n") == 1
    assert '"decision_id":"dec_pg"' in exported.replace(" ", "")
    for text in (verified, shown, exported):
        assert "Ada Lovelace" not in text
        assert password not in text


def test_show_of_an_edited_column_on_postgres_reads_the_hashed_text_and_exits_1(
    pg_url: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """PostgreSQL as SQLite: an edited case_id is not shown; show warns naming the record, exit 1.

    Review R36 F2 (found on SQLite; PostgreSQL reads a record through the same code).
    """
    monkeypatch.delenv("CASEROUTE_AUDIT_DB", raising=False)
    decision_id = _decided_log(pg_url)
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("UPDATE decisions SET case_id = 'C-forged' WHERE seq = 1")
    for form in ((), ("--json",)):
        assert main(["audit", "show", decision_id, "--audit-db", pg_url, *form]) == 1
        captured = capsys.readouterr()
        assert "C-forged" not in captured.out
        assert "C-pg" in captured.out
        assert captured.err == (
            "caseroute: WARNING: record 1 was edited or moved: its content no longer matches "
            f"its hash (decision {decision_id}); the values shown are read from its hashed "
            "text, never from the columns beside it, but the log was edited, so do not rely on "
            "this record: run `caseroute audit verify` on the log and restore it from a copy "
            "you trust\n"
        )


def test_rotate_key_against_postgres(
    pg_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`audit rotate-key --audit-db postgresql://...` starts a new era in the database."""
    _decided_log(pg_url)
    key_file = tmp_path / "new.key"
    assert (
        main(
            [
                "audit",
                "rotate-key",
                "--audit-db",
                pg_url,
                "--new-key-file",
                str(key_file),
                "--confirm",
            ]
        )
        == 0
    )
    assert "masking key rotated: key era 2 starts at record 3" in capsys.readouterr().out
    sink = open_postgres(PostgresLocation(pg_url), readonly=True)
    try:
        assert [e.first_seq for e in sink.key_history()] == [1, 3]  # the rotation is chain entry 2
    finally:
        sink.close()


def test_sqlite_only_commands_refuse_a_url(pg_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    """Commands that read only SQLite (report) say so instead of failing on the URL."""
    code = main(["report", "--audit-db", pg_url])
    err = capsys.readouterr().err
    assert code == 2
    assert "this command reads a SQLite decision log, not postgresql://" in err
    assert PostgresLocation(pg_url).passwords[0] not in err


def test_replay_of_a_url_says_to_replay_on_the_server(
    pg_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Not `audit export`: an export alone has no roster snapshots (all roster_missing)."""
    code = main(["replay", "--audit-db", pg_url, "--candidate", "rulesets/patient-enquiries"])
    err = capsys.readouterr().err
    assert code == 2
    assert "replay a PostgreSQL log on a server that writes it: `caseroute replay --server" in err
    assert "audit verify|show|export|events" not in err
    assert PostgresLocation(pg_url).passwords[0] not in err


def test_a_bad_value_refuses_only_its_call(pg_url: str) -> None:
    """A value PostgreSQL cannot store (a NUL in a blob) refuses that call; its batch goes on.

    The refusal is the call's own (RecordRefusedError), not the log's: before R32c F2 it was
    AuditUnavailableError, which turned the worker NOT_SERVING and told the caller to retry.
    """
    sink = PostgresAuditSink(PostgresLocation(pg_url))
    try:
        with pytest.raises(RecordRefusedError, match="refused this call's records"):
            sink.append([_record(1)], [_nul_blob()])
        assert sink.failures == 0
        calls = [
            Pending([encode_record(_record(2))], [_nul_blob()], Future()),
            Pending([encode_record(_record(2))], [], Future()),
            Pending([encode_record(_record(3))], [], Future()),
        ]
        outcomes = sink._commit(list(calls))
        assert [type(error).__name__ for _, error in outcomes] == [
            "RecordRefusedError",
            "NoneType",
            "NoneType",
        ]
        assert [[a.record.seq for a in call.stored] for call in calls[1:]] == [[1], [2]]
        assert sink.head()[0] == 2
        report = verify_chain(sink.records(), sink.head())
        assert (report.ok, report.records) == (True, 2)
    finally:
        sink.close()


def _nul_blob() -> Blob:
    return Blob("0" * 64, BlobKind.RULESET, "rules:\x00")


def test_times_are_compared_as_instants(store: PostgresAuditSink) -> None:
    """Since/until filter on the decision instant (a UTC microsecond count), not its text."""
    store.append([_record(1)])
    assert [r.seq for r in store.query(since=datetime(2000, 1, 1, tzinfo=UTC))] == [1]


def test_appends_waiting_on_the_head_share_a_commit_and_wait_for_it(pg_url: str) -> None:
    """While another replica holds the head row, no append returns; then they commit together."""
    sink = PostgresAuditSink(PostgresLocation(pg_url))
    queued = threading.Semaphore(0)
    put = sink._queue.put

    def counted_put(item: Any) -> None:
        put(item)
        queued.release()

    sink._queue.put = counted_put  # type: ignore[method-assign,assignment]
    returned: list[int] = []

    def send(n: int) -> None:
        (appended,) = sink.append([_record(n)])
        returned.append(appended.record.seq)

    threads = [threading.Thread(target=send, args=(n,)) for n in range(8)]
    try:
        with _admin(pg_url) as conn, conn.transaction():
            conn.execute("SELECT seq FROM chain_head WHERE id = 1 FOR UPDATE")  # another replica
            for thread in threads:
                thread.start()
            assert all(queued.acquire(timeout=30) for _ in threads)
            assert returned == []  # nobody is answered before the commit
        for thread in threads:
            thread.join()
        assert sorted(returned) == list(range(1, 9))
        assert sink.commits <= 2  # the first batch alone at most, then the other seven at once
    finally:
        sink.close()


class _Observer:
    """Records what the sink tells it; raises on demand (metrics must never stop the log)."""

    def __init__(self, fail: bool = False) -> None:
        self.seen: list[tuple[str, int]] = []
        self.fail = fail

    def committed(self, items: int, seconds: float) -> None:
        self.seen.append(("committed", items))
        assert seconds >= 0
        if self.fail:
            raise RuntimeError("observer broke")

    def commit_failed(self, items: int) -> None:
        self.seen.append(("failed", items))


def test_the_observer_hears_commits_and_failures_and_cannot_break_them(
    store: PostgresAuditSink, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each transaction is reported; an observer that raises is logged, the append succeeds."""
    observer = _Observer()
    store.observer = observer
    store.append([_record(1)])

    def broken(_batch: object) -> object:
        raise RuntimeError("a value that must not be logged")

    with monkeypatch.context() as patch:
        patch.setattr(store, "_commit", broken)
        with pytest.raises(AuditUnavailableError, match="cannot be written"):
            store.append([_record(2)])
    store.observer = _Observer(fail=True)
    (appended,) = store.append([_record(2)])
    assert observer.seen == [("committed", 1), ("failed", 1)]
    assert appended.record.seq == 2


def test_an_unexpected_error_is_logged_without_its_text(
    store: PostgresAuditSink, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A bug's exception may quote a record: its type is logged, never its message."""

    def broken(_batch: object) -> object:
        raise RuntimeError("Ada " + "Lovelace")  # the source line is in the traceback

    monkeypatch.setattr(store, "_commit", broken)
    with caplog.at_level(logging.ERROR, "caseroute.audit"), pytest.raises(AuditUnavailableError):
        store.append([_record(1)])
    assert "AUDIT WRITE FAILED (1 calls refused)" in caplog.text
    assert "Ada Lovelace" not in caplog.text


def test_max_batch_one_commits_each_append_alone(pg_url: str) -> None:
    """max_batch=1 turns group commit off: one transaction per append."""
    sink = PostgresAuditSink(PostgresLocation(pg_url), max_batch=1)
    try:
        threads = [threading.Thread(target=sink.append, args=([_record(n)],)) for n in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert (sink.commits, sink.head()[0]) == (4, 4)
    finally:
        sink.close()


def test_close_finishes_the_appends_already_queued(pg_url: str) -> None:
    """Appends queued before close are committed and answered; the writer then stops."""
    sink = PostgresAuditSink(PostgresLocation(pg_url))
    queued = threading.Semaphore(0)
    put = sink._queue.put

    def counted_put(item: Any) -> None:
        put(item)
        queued.release()

    sink._queue.put = counted_put  # type: ignore[method-assign,assignment]
    returned: list[int] = []

    def send(n: int) -> None:
        returned.append(sink.append([_record(n)])[0].record.seq)

    threads = [threading.Thread(target=send, args=(n,)) for n in range(3)]
    closer = threading.Thread(target=sink.close)
    with _admin(pg_url) as conn, conn.transaction():
        conn.execute("SELECT seq FROM chain_head WHERE id = 1 FOR UPDATE")
        for thread in threads:
            thread.start()
        assert all(queued.acquire(timeout=30) for _ in threads)
        closer.start()
        assert queued.acquire(timeout=30)  # the stop marker, behind the appends
    for thread in [*threads, closer]:
        thread.join()
    assert sorted(returned) == [1, 2, 3]


def test_reads_page_through_long_logs(
    store: PostgresAuditSink, monkeypatch: pytest.MonkeyPatch
) -> None:
    """records, record_rows and iter_events read page after page, in chain order."""
    import caseroute.audit.sql_reads as module
    from tests.audit.test_ruleset_events import _event

    monkeypatch.setattr(module, "PAGE", 2)
    store.append([_record(n) for n in range(1, 6)])
    store.append_events([_event(n) for n in range(1, 4)])
    assert [r.seq for r in store.records()] == [1, 2, 3, 4, 5]
    assert [row[0] for row in store.record_rows()] == [1, 2, 3, 4, 5]
    assert [r.seq for r in store.records(case_id="C3")] == [3]
    assert [e.seq for e in store.iter_events()] == [6, 7, 8]


def test_known_blobs_are_a_bounded_hint(
    store: PostgresAuditSink, monkeypatch: pytest.MonkeyPatch
) -> None:
    """has_blob remembers the most recent blobs only; get_blob reads the database."""
    import caseroute.audit.sql_appends as module

    monkeypatch.setattr(module, "KNOWN_BLOBS", 1)
    first, second = (Blob(f"{n:064x}", BlobKind.RULESET, f"rules {n}") for n in (1, 2))
    store.append([_record(1)], [first])
    assert store.has_blob(first.sha256)
    store.append([_record(2)], [second])
    assert (store.has_blob(first.sha256), store.has_blob(second.sha256)) == (False, True)
    assert store.get_blob(first.sha256) == first
    assert store.get_blob("f" * 64) is None


def test_shadow_dropped_counts_alone_and_nothing(store: PostgresAuditSink) -> None:
    """Only dropped counts are stored and added up; an empty call stores nothing."""
    store.append_shadow([])
    store.append_shadow([], {("rs", "2"): 3})
    store.append_shadow([], {("rs", "2"): 2})
    (summary,) = store.shadow_summary("rs")
    assert (summary.shadow_version, summary.evaluated, summary.dropped) == ("2", 0, 5)
    assert store.commits == 2


def test_shadow_results_with_and_without_the_adaptive_kinds_round_trip(
    store: PostgresAuditSink,
) -> None:
    """Ladder and hold values read back as stored; the summary counts their kinds, as SQLite."""
    from tests.audit.test_shadow_store import LIVE, _result

    step = {"ladder_step": "any-language", "relaxed": ["language"]}
    held = {"continuity": "held_for_preferred", "hold_minutes": 7.5}
    results = [
        _result(1, "agent"),
        _result(2, "relaxation", live={**LIVE, "ladder_step": ""}, shadow={**LIVE, **step}),
        _result(
            3, "continuity", live={**LIVE, **held}, shadow={**LIVE, **held, "hold_minutes": 10}
        ),
    ]
    store.append_shadow(results)
    assert store.shadow_results("test") == results
    (summary,) = store.shadow_summary("test")
    assert (summary.evaluated, summary.agreed, summary.differences) == (
        3,
        0,
        (("agent", 1), ("relaxation", 1), ("continuity", 1)),
    )


def test_key_checks_on_a_lost_database_are_unavailable(pg_url: str) -> None:
    """claim_key and rotate_key refuse with AuditUnavailableError when the database is gone."""
    sink = PostgresAuditSink(PostgresLocation(pg_url), timeout_s=1)
    database = pg_url.rsplit("/", 1)[1]
    admin_url = pg_url.rsplit("/", 1)[0] + "/postgres"
    try:
        with _admin(admin_url) as conn:
            conn.execute(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS false')
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
                (database,),
            )
        with pytest.raises(AuditUnavailableError, match="cannot be written"):
            sink.claim_key("a" * 16, "2026-12-01T00:00:00Z")
        with pytest.raises(AuditUnavailableError, match="cannot be written"):
            sink.rotate_key("a" * 16, "2026-12-01T00:00:00Z")
    finally:
        with _admin(admin_url) as conn:
            conn.execute(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS true')
        sink.close()


def test_a_url_may_set_its_own_connect_timeout(pg_url: str) -> None:
    """A connect_timeout in the URL is the driver's; the sink's own applies only without one."""
    sink = PostgresAuditSink(PostgresLocation(pg_url + "?connect_timeout=5"))
    try:
        assert sink.head() == (0, "0" * 64)
    finally:
        sink.close()
