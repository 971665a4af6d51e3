import hashlib
import hmac
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from caseroute.audit.masking import MASK_PREFIX, Masker, masked_reads
from caseroute.audit.record import GENESIS, AuditRecord, Blob, BlobKind, blob_sha256
from caseroute.audit.store import SqliteAuditStore
from caseroute.audit.verify import verify_chain
from caseroute.domain.errors import AuditUnavailableError, IdempotencyConflictError
from caseroute.domain.fingerprint import canonical_json, roster_to_dict
from caseroute.testing import (
    MINIMAL_HEADER,
    compile_text,
    make_agent,
    make_audit_record,
    make_roster,
    ruleset_with_rules,
)


def _stored(store: SqliteAuditStore, records: list[AuditRecord]) -> list[AuditRecord]:
    return [a.record for a in store.append(records)]


def _record(n: int, request: str = "req", body: str = "x") -> AuditRecord:
    return make_audit_record(
        n,
        decision_id=f"dec_{request}_{n}",
        request_id=request,
        request_sha256=f"sha-{request}-{body}",
        input={"case": {"case_id": f"C{n}"}},
        decision={"outcome": "ASSIGN", "n": n},
    )


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteAuditStore]:
    """A fresh store in a temporary directory."""
    made = SqliteAuditStore(tmp_path / "audit.db")
    yield made
    made.close()


def test_append_chains_and_verifies(store: SqliteAuditStore) -> None:
    """Records get consecutive seqs, each linked to the previous; the chain verifies."""
    stored = _stored(store, [_record(1), _record(2)]) + _stored(store, [_record(3)])
    assert [r.seq for r in stored] == [1, 2, 3]
    assert stored[0].prev_hash == GENESIS
    assert [r.prev_hash for r in stored[1:]] == [r.record_hash for r in stored[:-1]]
    assert store.get("dec_req_2") == stored[1]
    report = verify_chain(store.records(), store.head())
    assert (report.ok, report.records) == (True, 3)


def test_concurrent_appends_share_commits(store: SqliteAuditStore) -> None:
    """Group commit: appends queued while a commit is under way share the next transaction."""
    writing, release = threading.Event(), threading.Event()
    queued = threading.Semaphore(0)
    process_lock, put = store._process_lock, store._queue.put

    @contextmanager
    def held_lock() -> Iterator[None]:
        writing.set()
        release.wait(30)
        with process_lock():
            yield

    def counted_put(item: Any) -> None:
        put(item)
        queued.release()

    store._process_lock = held_lock  # type: ignore[method-assign]
    store._queue.put = counted_put  # type: ignore[method-assign,assignment]
    first = threading.Thread(target=store.append, args=([_record(0, "r0")],))
    first.start()
    assert writing.wait(30)  # the first append's caller commits it alone, never queued
    threads = [
        threading.Thread(target=store.append, args=([_record(n, f"r{n}")],)) for n in range(1, 64)
    ]
    for t in threads:
        t.start()
    for _ in range(63):
        assert queued.acquire(timeout=30)  # the 63 appends behind the first are queued
    release.set()
    for t in [first, *threads]:
        t.join()
    assert (store.head()[0], store.commits) == (64, 2)
    assert verify_chain(store.records(), store.head()).ok


def test_retry_returns_the_stored_record_and_conflict_is_refused(store: SqliteAuditStore) -> None:
    """Same decision id and input: the stored record, not a new one; different input: refused."""
    (first,) = store.append([_record(1)])
    (again,) = store.append([_record(1)])
    assert (first.existed, again.existed) == (False, True)
    assert again.record == first.record
    assert store.head()[0] == 1
    with pytest.raises(IdempotencyConflictError, match="different input"):
        store.append([_record(1, body="changed")])
    assert store.head()[0] == 1


def test_concurrent_retries_store_exactly_one(store: SqliteAuditStore) -> None:
    """Sixteen simultaneous retries of one request store one record, all get the same one."""
    results: list[AuditRecord] = []
    threads = [
        threading.Thread(target=lambda: results.extend(_stored(store, [_record(7)])))
        for _ in range(16)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert store.head()[0] == 1
    assert {r.record_hash for r in results} == {results[0].record_hash}
    assert len(results) == 16


def test_unwritable_store_is_unavailable(tmp_path: Path) -> None:
    """A store that cannot commit refuses the append (the caller must not answer)."""
    store = SqliteAuditStore(tmp_path / "audit.db")
    store.append([_record(1)])
    with closing(sqlite3.connect(tmp_path / "audit.db")) as conn:
        conn.execute(
            "CREATE TRIGGER refuse BEFORE INSERT ON decisions "
            "BEGIN SELECT RAISE(ABORT, 'disk full'); END"
        )
        conn.commit()
    with pytest.raises(AuditUnavailableError, match="cannot be written"):
        store.append([_record(2)])
    assert store.failures == 1
    assert store.head()[0] == 1
    store.close()


def _tamper(path: Path, sql: str) -> None:
    with closing(sqlite3.connect(path)) as conn:
        conn.executescript(sql)
        conn.commit()


@pytest.mark.parametrize(
    ("sql", "seq", "problem"),
    [
        (
            'UPDATE decisions SET decision = \'{"outcome": "QUEUE", "n": 3}\' WHERE seq = 3',
            3,
            "record 3 was edited or moved: its content no longer matches its hash",
        ),
        (
            "DELETE FROM decisions WHERE seq = 2",
            3,
            "record 2 is missing (deleted?): the next stored record is 3",
        ),
        (
            (
                "UPDATE decisions SET seq = -1 WHERE seq = 2; "
                "UPDATE decisions SET seq = 2 WHERE seq = 4; "
                "UPDATE decisions SET seq = 4 WHERE seq = -1"
            ),
            2,
            "record 2 was edited or moved: its content no longer matches its hash",
        ),
        (
            "DELETE FROM decisions WHERE seq = 5",
            0,
            (
                "the chain ends at record 4 but the store's head is record 5 "
                "(records truncated or the head edited)"
            ),
        ),
    ],
)
def test_verify_names_the_first_tampered_record(
    tmp_path: Path, sql: str, seq: int, problem: str
) -> None:
    """Edit, delete, reorder and truncate are each detected and located."""
    store = SqliteAuditStore(tmp_path / "audit.db")
    store.append([_record(n) for n in range(1, 6)])
    store.close()
    _tamper(tmp_path / "audit.db", sql)
    reopened = SqliteAuditStore(tmp_path / "audit.db")
    report = verify_chain(reopened.records(), reopened.head())
    reopened.close()
    assert (report.ok, report.seq, report.problem) == (False, seq, problem)


def test_masking_replaces_configured_paths_with_keyed_digests() -> None:
    """PHI paths become HMAC digests: equal values match, the value is gone, others untouched."""
    masker = Masker(b"k1", ("case.attributes.patient_name", "roster.secret"))
    data: dict[str, Any] = {
        "case": {"case_id": "C1", "attributes": {"patient_name": "Ada", "payer": "acme"}},
        "roster": {"agents": []},
    }
    masked = masker.mask(data)
    name = MASK_PREFIX + hmac.new(b"k1", b"Ada", hashlib.sha256).hexdigest()
    assert masked == {
        "case": {"case_id": "C1", "attributes": {"patient_name": name, "payer": "acme"}},
        "roster": {"agents": []},
    }
    assert data["case"]["attributes"]["patient_name"] == "Ada"  # the input is not modified
    assert Masker(b"k1").digest("Ada") == name
    assert Masker(b"k2").digest("Ada") != name
    assert masker.covers("case.attributes.patient_name")
    assert not masker.covers("case.attributes.payer")


def test_a_conflicting_call_stores_none_of_its_records(store: SqliteAuditStore) -> None:
    """All or nothing per call: a conflict on its second record leaves its first unstored."""
    store.append([_record(2)])
    with pytest.raises(IdempotencyConflictError):
        store.append([_record(1), _record(2, body="changed")])
    assert store.get("dec_req_1") is None
    assert store.head()[0] == 1
    assert verify_chain(store.records(), store.head()).ok


def test_time_range_orders_instants_not_text(store: SqliteAuditStore) -> None:
    """10:00:00.5 is after 10:00:00 (as text '.5Z' sorts before 'Z'; the index uses numbers)."""
    store.append([replace(_record(1), now="2026-11-21T10:00:00Z")])
    store.append([replace(_record(2), now="2026-11-21T10:00:00.500000Z")])
    later = store.query(since=datetime(2026, 11, 21, 10, 0, 0, 1, tzinfo=UTC))
    assert [r.decision_id for r in later] == ["dec_req_2"]
    earlier = store.query(until=datetime(2026, 11, 21, 10, 0, 0, 1, tzinfo=UTC))
    assert [r.decision_id for r in earlier] == ["dec_req_1"]


def _with_blobs(n: int, roster: Blob, ruleset: Blob) -> AuditRecord:
    return replace(
        _record(n),
        ruleset_sha256=ruleset.sha256,
        input={"case": {"case_id": f"C{n}"}, "roster": {"sha256": roster.sha256}},
    )


def test_blobs_are_stored_once_and_verified(tmp_path: Path) -> None:
    """Records reference roster and ruleset blobs by hash; an edited or missing blob is named."""
    roster_json = canonical_json(roster_to_dict(make_roster(make_agent("a1"))))
    roster = Blob(blob_sha256(BlobKind.ROSTER, roster_json), BlobKind.ROSTER, roster_json)
    ruleset = Blob(blob_sha256(BlobKind.RULESET, "rules: []"), BlobKind.RULESET, "rules: []")
    store = SqliteAuditStore(tmp_path / "audit.db")
    store.append([_with_blobs(1, roster, ruleset)], [roster, ruleset])
    assert store.has_blob(roster.sha256)
    store.append([_with_blobs(2, roster, ruleset)])  # known: not sent again
    assert store.get_blob(roster.sha256) == roster
    assert verify_chain(store.records(), store.head(), store.get_blob).ok
    _tamper(
        tmp_path / "audit.db",
        f"UPDATE blobs SET content = replace(content, 'a1', 'zz') WHERE sha256 = '{roster.sha256}'",
    )
    report = verify_chain(store.records(), store.head(), store.get_blob)
    assert (report.ok, report.seq) == (False, 1)
    assert report.problem == f"the roster blob {roster.sha256} (used by record 1) was edited"
    _tamper(tmp_path / "audit.db", f"DELETE FROM blobs WHERE sha256 = '{ruleset.sha256}'")
    _tamper(tmp_path / "audit.db", f"UPDATE blobs SET content = '{roster_json}'")
    report = verify_chain(store.records(), store.head(), store.get_blob)
    assert report.problem == f"record 1 references a ruleset blob {ruleset.sha256} that is missing"
    store.close()


def test_rules_reading_masked_fields_are_warned_about() -> None:
    """A rule reading a masked attribute gets an audit.masked_field warning at its line."""
    text = ruleset_with_rules(
        """\
  - id: vip
    when: "case.attributes.patient_name == 'Ada'"
    then: {route: {queue: by_intent}}
  - id: rest
    when: true
    then: {route: {queue: by_intent}}
""",
        MINIMAL_HEADER + "attributes: {patient_name: string}\n",
    )
    compiled = compile_text(text)
    line = text.splitlines().index("  - id: vip") + 1
    (warning,) = masked_reads(compiled, Masker(b"k"))
    assert (warning.code, warning.rule_id, warning.line) == ("audit.masked_field", "vip", line)
    assert warning.message == (
        "rule reads `case.attributes.patient_name`, which is masked: the decision log stores "
        "it, and the explanation (recorded and returned to the caller) shows it, only as a keyed "
        "digest, so readers cannot see the value this rule decided on and replay cannot "
        "reproduce its decisions. Route on a non-identifying field instead, or stop masking "
        "this field (--audit-masked-fields) if it is not PHI"
    )
    assert masked_reads(compiled, Masker(b"k", ("case.attributes.other",))) == []
