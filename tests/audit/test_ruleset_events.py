"""Ruleset lifecycle events in the decision log's hash chain: storage, reads and verify."""

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import closing
from dataclasses import replace
from pathlib import Path

import pytest

from caseroute.audit.record import (
    GENESIS,
    AuditRecord,
    RulesetEvent,
    ShadowResult,
    chain_hash,
    seal,
    seal_event,
)
from caseroute.audit.store import READ_UNAVAILABLE, WRITE_UNAVAILABLE, SqliteAuditStore
from caseroute.audit.verify import ChainReport, verify_chain
from caseroute.domain.errors import AuditUnavailableError
from caseroute.testing import make_audit_record


def _event(n: int, **overrides: str) -> RulesetEvent:
    values: dict[str, object] = {
        "seq": 0,
        "event_id": f"evt_{n}",
        "recorded_at": "2026-11-21T10:00:00Z",
        "action": "activate",
        "actor": "admin:ops",
        "ruleset_name": "test",
        "role": "active",
        "from_version": f"{n}",
        "from_sha256": "a" * 64,
        "to_version": f"{n + 1}",
        "to_sha256": "b" * 64,
        "caseroute_version": "0",
        "prev_hash": "",
        "record_hash": "",
    }
    values.update(overrides)
    return RulesetEvent(**values)  # type: ignore[arg-type]


def _record(n: int, **overrides: object) -> AuditRecord:
    return make_audit_record(n, **overrides)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteAuditStore]:
    """A fresh store in a temporary directory."""
    made = SqliteAuditStore(tmp_path / "audit.db")
    yield made
    made.close()


def _verify(store: SqliteAuditStore) -> ChainReport:
    return verify_chain(store.records(), store.head(), None, store.iter_events())


def _interleaved(store: SqliteAuditStore) -> None:
    """Seq 1 decision, 2-3 events, 4 decision, 5 event."""
    store.append([_record(1)])
    store.append_events([_event(1), _event(2)])
    store.append([_record(2)])
    store.append_events([_event(3)])


def test_events_share_the_decisions_seq_space_and_chain(store: SqliteAuditStore) -> None:
    """Events take the next seq after decisions and link to them; the merged chain verifies."""
    _interleaved(store)
    records, events = list(store.records()), store.events()
    assert [r.seq for r in records] == [1, 4]
    assert [e.seq for e in events] == [2, 3, 5]
    assert events[0].prev_hash == records[0].record_hash
    assert records[1].prev_hash == events[1].record_hash
    assert store.head() == (5, events[2].record_hash)
    assert ChainReport(ok=True, records=5, events=3) == _verify(store)


def test_verify_without_the_events_reports_them_missing(store: SqliteAuditStore) -> None:
    """A log holding events does not verify from its decisions alone (events are in the chain)."""
    _interleaved(store)
    report = verify_chain(store.records(), store.head())
    expected = "record 2 is missing (deleted?): the next stored record is 4"
    assert (False, expected) == (report.ok, report.problem)


def test_event_content_carries_the_discriminator_and_decision_hashes_are_unchanged() -> None:
    """An event hashes with kind=ruleset_event; a decision record's hash is what it always was."""
    sealed = seal_event(_event(1), 1, GENESIS)
    assert sealed.content()["kind"] == "ruleset_event"
    assert chain_hash(GENESIS, sealed.content()) == sealed.record_hash
    record = seal(_record(1), 1, GENESIS)
    assert "kind" not in record.content()
    # Pinned from the code before events existed: decision hashes must never change.
    assert record.record_hash[:16] == "5e4d55db49d4ce98"


@pytest.mark.parametrize(
    ("sql", "seq", "event_id", "problem"),
    [
        (
            "UPDATE ruleset_events SET to_version = '9' WHERE seq = 3",
            3,
            "evt_2",
            "event seq 3 was edited or moved: its content no longer matches its hash",
        ),
        (
            "UPDATE ruleset_events SET action = 'delete' WHERE seq = 2",
            2,
            "evt_1",
            (
                "event seq 2 is not a valid ruleset event: action 'delete' is not one of "
                "activate, load, reload, rollback"
            ),
        ),
        (
            "DELETE FROM ruleset_events WHERE seq = 3",
            4,
            "",
            "record 3 is missing (deleted?): the next stored record is 4",
        ),
        (
            "DELETE FROM ruleset_events WHERE seq = 5",
            0,
            "",
            (
                "the chain ends at record 4 but the store's head is record 5 "
                "(records truncated or the head edited)"
            ),
        ),
        (
            (
                "UPDATE ruleset_events SET seq = -1 WHERE seq = 2; "
                "UPDATE ruleset_events SET seq = 2 WHERE seq = 3; "
                "UPDATE ruleset_events SET seq = 3 WHERE seq = -1"
            ),
            2,
            "evt_2",
            "event seq 2 was edited or moved: its content no longer matches its hash",
        ),
        (
            "UPDATE ruleset_events SET seq = 4 WHERE seq = 5",
            4,
            "evt_3",
            "event seq 4 is stored twice (a decision and an event share the position?)",
        ),
        (
            "UPDATE decisions SET seq = 0 WHERE seq = 1",
            2,
            "evt_1",
            "record 1 is missing (deleted?): the next stored event seq is 2",
        ),
    ],
    ids=["edited", "bad-action", "deleted", "tail-deleted", "reordered", "seq-reused", "seq-0"],
)
def test_verify_names_the_tampered_event(
    tmp_path: Path, sql: str, seq: int, event_id: str, problem: str
) -> None:
    """Editing, deleting or reordering an event is caught and named like a decision record."""
    store = SqliteAuditStore(tmp_path / "audit.db")
    _interleaved(store)
    store.close()
    with closing(sqlite3.connect(tmp_path / "audit.db")) as conn:
        conn.executescript(sql)
        conn.commit()
    report = _verify(store)
    assert (False, problem, seq, event_id) == (
        report.ok,
        report.problem,
        report.seq,
        report.event_id,
    )


def test_a_decision_edited_among_events_is_still_named(tmp_path: Path) -> None:
    """A decision edited between events is reported as that record, with its decision id."""
    store = SqliteAuditStore(tmp_path / "audit.db")
    _interleaved(store)
    store.close()
    with closing(sqlite3.connect(tmp_path / "audit.db")) as conn:
        conn.execute("UPDATE decisions SET case_id = 'C9' WHERE seq = 4")
        conn.commit()
    report = _verify(store)
    assert (report.problem, report.decision_id, report.event_id) == (
        "record 4 was edited or moved: its content no longer matches its hash",
        "dec_2",
        "",
    )


def test_append_events_returns_sealed_events_and_a_retry_is_not_stored_twice(
    store: SqliteAuditStore,
) -> None:
    """A repeated event_id returns the stored event; the chain does not grow."""
    (first,) = store.append_events([_event(1)])
    assert (first.seq, first.prev_hash) == (1, GENESIS)
    (again,) = store.append_events([_event(1, actor="someone-else")])
    assert first == again
    assert (1, first.record_hash) == store.head()
    same_call = store.append_events([_event(2), _event(2)])
    assert [e.seq for e in same_call] == [2, 2]
    assert store.head()[0] == 2


@pytest.mark.parametrize(
    ("override", "message"),
    [
        (
            {"action": "publish"},
            (
                "ruleset event 'evt_1': action 'publish' is not one of activate, load, reload, "
                "rollback"
            ),
        ),
        ({"role": "canary"}, "ruleset event 'evt_1': role 'canary' is not one of active, shadow"),
        ({"event_id": ""}, "ruleset event '': event_id must not be empty"),
    ],
)
def test_a_malformed_event_is_refused_before_anything_is_stored(
    store: SqliteAuditStore, override: dict[str, str], message: str
) -> None:
    """An unknown action or role, or no event_id, is a caller bug: ValueError, nothing stored."""
    with pytest.raises(ValueError, match=r"^ruleset event ") as caught:
        store.append_events([_event(0), _event(1, **override)])
    assert str(caught.value) == message
    assert (store.head()[0], store.events()) == (0, [])


def test_an_event_that_cannot_be_committed_is_unavailable(tmp_path: Path) -> None:
    """A failed commit raises the fixed WRITE_UNAVAILABLE text and stores nothing."""
    store = SqliteAuditStore(tmp_path / "audit.db")
    with closing(sqlite3.connect(tmp_path / "audit.db")) as conn:
        conn.execute(
            "CREATE TRIGGER refuse BEFORE INSERT ON ruleset_events "
            "BEGIN SELECT RAISE(ABORT, 'disk full'); END"
        )
        conn.commit()
    with pytest.raises(AuditUnavailableError) as caught:
        store.append_events([_event(1)])
    assert (str(caught.value), store.failures, store.head()[0]) == (WRITE_UNAVAILABLE, 1, 0)
    store.close()
    readonly = SqliteAuditStore(tmp_path / "audit.db", readonly=True)
    with pytest.raises(AuditUnavailableError) as caught:
        readonly.append_events([_event(1)])
    assert str(caught.value) == WRITE_UNAVAILABLE
    readonly.close()


def test_events_filter_by_ruleset_and_page_by_seq(store: SqliteAuditStore) -> None:
    """events() filters by ruleset name and resumes after a seq, up to a limit, in chain order."""
    store.append_events(
        [_event(1), _event(2, ruleset_name="other"), _event(3), _event(4, role="shadow")]
    )
    assert [e.event_id for e in store.events("test")] == ["evt_1", "evt_3", "evt_4"]
    assert [e.event_id for e in store.events("test", after_seq=1, limit=1)] == ["evt_3"]
    assert [e.event_id for e in store.events("other")] == ["evt_2"]
    assert [e.seq for e in store.iter_events()] == [1, 2, 3, 4]


def test_concurrent_events_and_decisions_make_one_valid_chain(store: SqliteAuditStore) -> None:
    """Events and decisions appended from many threads get distinct seqs and one chain."""
    threads = [threading.Thread(target=store.append, args=([_record(n)],)) for n in range(20)] + [
        threading.Thread(target=store.append_events, args=([_event(n)],)) for n in range(20)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    seqs = [r.seq for r in store.records()] + [e.seq for e in store.events()]
    assert list(range(1, 41)) == sorted(seqs)
    assert ChainReport(ok=True, records=40, events=20) == _verify(store)


def test_decided_sha256s_lists_the_contents_a_version_decided_with(
    store: SqliteAuditStore,
) -> None:
    """Distinct sha256s per name and version, empty when the version never decided; indexed."""
    store.append(
        [
            _record(1, ruleset_version="1", ruleset_sha256="a" * 64),
            _record(2, ruleset_version="1", ruleset_sha256="b" * 64),
            _record(3, ruleset_version="1", ruleset_sha256="a" * 64),
            _record(4, ruleset_version="2", ruleset_sha256="c" * 64),
            _record(5, ruleset_name="other", ruleset_version="1", ruleset_sha256="d" * 64),
        ]
    )
    assert frozenset({"a" * 64, "b" * 64}) == store.decided_sha256s("test", "1")
    assert frozenset({"c" * 64}) == store.decided_sha256s("test", "2")
    assert frozenset() == store.decided_sha256s("test", "3")
    with closing(sqlite3.connect(store.path)) as conn:
        plan = conn.execute(
            "EXPLAIN QUERY PLAN SELECT DISTINCT ruleset_sha256 FROM decisions "
            "WHERE ruleset_name = 'test' AND ruleset_version = '1'"
        ).fetchall()
    assert "decisions_ruleset" in " ".join(str(row) for row in plan)


def test_decided_sha256s_on_an_unreadable_log_is_unavailable(tmp_path: Path) -> None:
    """A log that cannot be read raises the fixed READ_UNAVAILABLE text (a server's read)."""
    opened = SqliteAuditStore(tmp_path / "audit.db")
    try:
        with closing(sqlite3.connect(tmp_path / "audit.db")) as conn:
            conn.execute("DROP TABLE decisions")
            conn.commit()
        with pytest.raises(AuditUnavailableError) as caught:
            opened.decided_sha256s("test", "1")
    finally:
        opened.close()
    assert str(caught.value) == READ_UNAVAILABLE


def test_a_read_only_open_names_the_file_the_cause_and_what_to_do(tmp_path: Path) -> None:
    """An auditor's (read-only) read that fails says which file, why and what to do."""
    store = SqliteAuditStore(tmp_path / "audit.db")
    store.close()
    with closing(sqlite3.connect(tmp_path / "audit.db")) as conn:
        conn.execute("DROP TABLE decisions")
        conn.commit()
    readonly = SqliteAuditStore(tmp_path / "audit.db", readonly=True)
    try:
        with pytest.raises(AuditUnavailableError) as caught:
            readonly.decided_sha256s("test", "1")
    finally:
        readonly.close()
    assert str(caught.value) == (
        f"the decision log {tmp_path / 'audit.db'} cannot be read: OperationalError: no such "
        "table: decisions; nothing was changed; check that --audit-db names a caseroute "
        "decision log that this user can read, then run the command again"
    )


def test_a_log_from_before_events_reads_and_verifies(tmp_path: Path) -> None:
    """A log without the new tables opens read-only: no events, no shadow data, verifies."""
    store = SqliteAuditStore(tmp_path / "audit.db")
    store.append([_record(1)])
    store.close()
    with closing(sqlite3.connect(tmp_path / "audit.db")) as conn:
        conn.executescript(
            "DROP TABLE ruleset_events; DROP TABLE shadow_results; DROP TABLE shadow_dropped; "
            "DROP INDEX decisions_ruleset;"
        )
    old = SqliteAuditStore(tmp_path / "audit.db", readonly=True)
    assert (
        old.events(),
        old.shadow_results("test"),
        old.shadow_summary("test"),
        _verify(old).ok,
    ) == ([], [], [], True)
    assert frozenset({"f" * 64}) == old.decided_sha256s("test", "1")
    old.close()
    upgraded = SqliteAuditStore(tmp_path / "audit.db")
    (event,) = upgraded.append_events([_event(1)])
    assert event.seq == 2
    upgraded.close()


def test_sealing_ignores_what_the_caller_put_in_seq_and_hashes() -> None:
    """seal_event places the event: caller-supplied seq and hashes are replaced."""
    placed = seal_event(replace(_event(1), seq=99, prev_hash="x", record_hash="y"), 3, "p" * 64)
    assert (placed.seq, placed.prev_hash) == (3, "p" * 64)
    assert seal_event(_event(1), 3, "p" * 64) == placed


def test_a_first_entry_at_seq_0_is_missing_not_a_duplicate() -> None:
    """Only a repeat of the previous seq is reported as stored twice; seq 0 first is a gap."""
    record = seal(_record(1), 0, GENESIS)
    report = verify_chain([record], (0, record.record_hash))
    assert (report.problem, report.seq) == (
        "record 1 is missing (deleted?): the next stored record is 0",
        0,
    )


def test_ruleset_names_are_read_from_every_table_that_names_one(
    store: SqliteAuditStore,
) -> None:
    """Decisions, events, shadow results and drops each name rulesets; each is found by seek.

    What `report --ruleset` and `rules shadow-report` list for a name no record holds (review
    R36 F11); run against PostgreSQL too (tests/audit/test_postgres_store.py).
    """
    assert (store.ruleset_names(), store.holds_ruleset("test")) == ((), False)
    store.append([_record(n, ruleset_name=name) for n, name in enumerate(["b", "a", "b", "c"])])
    store.append_events([_event(1, ruleset_name="events-only")])
    shadow = ShadowResult(
        *("dec_x", "2026-11-21T10:00:01Z", "shadowed", "1", "a" * 64, "2", "b" * 64),
        (),
        {"outcome": "ASSIGN"},
        {"outcome": "ASSIGN"},
    )
    store.append_shadow([shadow], {("dropped-only", "2"): 3})
    expected = ("a", "b", "c", "dropped-only", "events-only", "shadowed")
    assert store.ruleset_names() == expected
    assert [n for n in (*expected, "d", "B", "") if store.holds_ruleset(n)] == list(expected)
    assert store.ruleset_names(limit=1) == ("a", "dropped-only", "events-only", "shadowed")
