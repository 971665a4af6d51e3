"""The masking key eras are anchored in the hash chain: `audit verify` names an edited era.

Left open since the key history was added: ``key_history`` is no chain entry, so an era's key,
first record or very existence could be edited, and verify (even with ``--expect-head``) said
ok. An auditor then looks up a patient's records with the wrong key for the records an edited
era moved, and finds none. Every record now names the fingerprint of the key that masked it
in its hashed input (``masked_with``), so each era must hold the key of the records in it.
"""

from __future__ import annotations

import hashlib
import sqlite3
from dataclasses import replace
from pathlib import Path

import pytest

from caseroute.audit.config import AuditConfig
from caseroute.audit.location import PostgresLocation
from caseroute.audit.masking import Masker, key_fingerprint
from caseroute.audit.record import AuditRecord, EditedText
from caseroute.audit.sql_rows import sealed_rotation
from caseroute.audit.store import WRITE_UNAVAILABLE, SqliteAuditStore
from caseroute.audit.verify import key_history_problem, verify_chain
from caseroute.cli import main
from caseroute.domain.errors import AuditUnavailableError
from caseroute.engine.case_rules import EngineKind, prepare_ruleset
from caseroute.service import DecideCommand, RoutingCore, RulesetRegistry
from caseroute.testing import (
    CATCH_ALL_RULE,
    NOW,
    compile_text,
    make_agent,
    make_audit_record,
    make_case,
    make_roster,
    ruleset_with_rules,
)
from tests.pg import pg_server, pg_url

__all__ = ["pg_server", "pg_url"]

KEY_A = "11" * 32
KEY_B = "22" * 32
FP_A = key_fingerprint(bytes.fromhex(KEY_A))
FP_B = key_fingerprint(bytes.fromhex(KEY_B))
OTHER = "ffffffffffffffff"


def _registry() -> RulesetRegistry:
    registry = RulesetRegistry()
    registry.add(
        prepare_ruleset(compile_text(ruleset_with_rules(CATCH_ALL_RULE)), EngineKind.PYTHON)
    )
    return registry


def _decide(config: AuditConfig, first: int, count: int) -> list[str]:
    """``count`` one-case requests through RoutingCore, masked with ``config``'s key."""
    registry = _registry()
    core = RoutingCore(registry, config.open_sink(), config.masker(), lambda: NOW)
    ids = []
    try:
        for n in range(first, first + count):
            case = make_case(case_id=f"C{n}", attributes={"patient_name": f"Patient {n}"})
            command = DecideCommand(f"r{n}", "", "", (case,), make_roster(make_agent()), NOW)
            ids.append(core.decide(command).decisions[0].decision_id)
    finally:
        core.audit.close()
        registry.close()
    return ids


def _rotate(config: AuditConfig, fingerprint: str) -> None:
    store = config.open_sink()
    try:
        store.rotate_key(fingerprint, "2026-12-02T10:00:00Z")
    finally:
        store.close()


def _two_era_log(db: Path) -> list[str]:
    """Records 1-3 masked with key A, the rotation to key B sealed at 4, then records 5-7."""
    ids = _decide(AuditConfig(db=db, key_hex=KEY_A), 1, 3)
    _rotate(AuditConfig(db=db, key_hex=KEY_A), FP_B)
    return ids + _decide(AuditConfig(db=db, key_hex=KEY_B), 4, 3)


def _verify(capsys: pytest.CaptureFixture[str], where: str) -> tuple[int, str]:
    code = main(["audit", "verify", "--audit-db", where])
    return code, capsys.readouterr().out


def _sql(db: Path, *statements: str) -> None:
    conn = sqlite3.connect(db)
    try:
        for statement in statements:
            conn.execute(statement)
        conn.commit()
    finally:
        conn.close()


ROTATION = "key rotation seq 4 (era 2)"
"""How verify names the sealed rotation of ``_two_era_log``."""
EDITED = f"{ROTATION} was edited or moved: its content no longer matches its hash"

EDITS: dict[str, tuple[tuple[str, ...], str]] = {
    # The rotation is a chain entry: any edit of it breaks its hash, deleting it leaves a gap.
    "era 2's key replaced": (
        (f"UPDATE key_history SET new_fingerprint = '{OTHER}' WHERE era = 2",),
        EDITED,
    ),
    "era 2's instant edited": (
        ("UPDATE key_history SET at = '2026-01-01T00:00:00Z' WHERE era = 2",),
        EDITED,
    ),
    "era 2 starts a record later": (
        ("UPDATE key_history SET first_seq = 6 WHERE era = 2",),
        f"{ROTATION} starts its era at record 6, not the next one",
    ),
    "era 2 deleted": (
        ("DELETE FROM key_history WHERE era = 2",),
        "record 4 is missing (deleted?): the next stored record is 5",
    ),
    "era 2 taken out of the chain": (
        ("UPDATE key_history SET seq = NULL, prev_hash = NULL, record_hash = NULL WHERE era = 2",),
        "record 4 is missing (deleted?): the next stored record is 5",
    ),
    "eras renumbered": (
        ("UPDATE key_history SET era = era + 10",),
        "key rotation seq 4 (era 12) was edited or moved",
    ),
    # Era 1 (bound on first use) is no chain entry: the records naming its key prove it.
    "every era deleted": (
        ("DELETE FROM key_history",),
        f"record 1 was masked with key {FP_A}, but no key era covers it",
    ),
    "era 1's key replaced, and era 2's rotated-from with it": (
        (
            f"UPDATE key_history SET new_fingerprint = '{OTHER}' WHERE era = 1",
            f"UPDATE key_history SET old_fingerprint = '{OTHER}' WHERE era = 2",
        ),
        f"record 1 was masked with key {FP_A}, but the key history places it in era 1 (key {OTHER}",
    ),
    "era 1's key replaced alone": (
        (f"UPDATE key_history SET new_fingerprint = '{OTHER}' WHERE era = 1",),
        f"record 1 was masked with key {FP_A}, but the key history places it in era 1 (key {OTHER}",
    ),
    "era 1 starts a record later": (
        ("UPDATE key_history SET first_seq = 2 WHERE era = 1",),
        f"record 1 was masked with key {FP_A}, but no key era covers it",
    ),
    # An era added without sealing it, among the records or after the head.
    "an unsealed era inserted among the records": (
        (
            (
                "INSERT INTO key_history VALUES "
                f"(3, '2026-12-02T11:00:00Z', '{FP_B}', '{OTHER}', 6, NULL, NULL, NULL)"
            ),
        ),
        f"record 6 was masked with key {FP_B}, but the key history places it in era 3",
    ),
    "an unsealed era inserted after the head": (
        (
            (
                "INSERT INTO key_history VALUES "
                f"(3, '2026-12-02T11:00:00Z', '{FP_B}', '{OTHER}', 8, NULL, NULL, NULL)"
            ),
        ),
        (
            "key era 3 is no chain entry, but comes after a sealed rotation, which a build that "
            "seals rotations wrote: key eras were added or edited"
        ),
    ),
}


@pytest.mark.parametrize("edit", sorted(EDITS))
def test_verify_names_an_edited_key_era(
    edit: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Each edit of the key history (chain and head untouched) is TAMPERED, naming it."""
    db = tmp_path / "audit.db"
    _two_era_log(db)
    statements, expected = EDITS[edit]
    _sql(db, *statements)
    code, out = _verify(capsys, str(db))
    assert (code, out.startswith("TAMPERED: ")) == (1, True), out
    assert expected in out


def test_an_unedited_log_with_a_rotation_verifies_every_record_against_its_era(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The same log unedited: ok, with every record checked against its era."""
    db = tmp_path / "audit.db"
    _two_era_log(db)
    store = SqliteAuditStore(db, readonly=True)
    try:
        records = list(store.records())
        eras = store.key_history()
    finally:
        store.close()
    assert [r.input["masked_with"] for r in records] == [FP_A] * 3 + [FP_B] * 3
    assert [r.seq for r in records] == [1, 2, 3, 5, 6, 7]
    assert [(e.era, e.new_fingerprint, e.first_seq, e.seq) for e in eras] == [
        (1, FP_A, 1, None),
        (2, FP_B, 5, 4),
    ]
    code, out = _verify(capsys, str(db))
    assert code == 0, out
    assert out.startswith("ok: 7 record(s) (1 of them key rotation(s)), every link")
    assert "masking key eras (checked against the 6 record(s) that name their key):" in out


def test_show_says_the_record_names_another_key_than_its_era(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`audit show` of a record an edit moved into another era names both keys."""
    db = tmp_path / "audit.db"
    ids = _two_era_log(db)
    _sql(db, "DELETE FROM key_history WHERE era = 2")
    assert main(["audit", "show", ids[3], "--audit-db", str(db)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert (
        f"  masking key: era 1, fingerprint {FP_A} (records from 1); but the record names key "
        f"{FP_B}: the key history was edited (run `caseroute audit verify`)"
    ) in lines
    _sql(db, "DELETE FROM key_history")
    assert main(["audit", "show", ids[3], "--audit-db", str(db)]) == 0
    assert (
        f"  masking key: {FP_B}, named by the record, but no key era covers it: the key history "
        "was edited (run `caseroute audit verify`)"
    ) in capsys.readouterr().out.splitlines()


@pytest.mark.parametrize(("stored", "shown"), [('"nokey"', '"nokey"'), ("42", "42")])
def test_show_says_a_masked_with_that_is_no_fingerprint_was_edited(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], stored: str, shown: str
) -> None:
    """`audit show` of a record whose masked_with an edit replaced names the record as edited.

    Its hash no longer holds either: show warns on stderr and exits 1 (review R36 F2).
    """
    db = tmp_path / "audit.db"
    ids = _two_era_log(db)
    for column in ("input", "content"):
        _sql(
            db,
            f'UPDATE decisions SET {column} = REPLACE({column}, \'"masked_with":"{FP_B}"\', '
            f"'\"masked_with\":{stored}') WHERE decision_id = '{ids[3]}'",
        )
    assert main(["audit", "show", ids[3], "--audit-db", str(db)]) == 1
    assert (
        f"  masking key: era 2, fingerprint {FP_B}; but the record's masked_with, {shown}, is no "
        "key fingerprint: the record was edited (run `caseroute audit verify`)"
    ) in capsys.readouterr().out.splitlines()
    _sql(db, "DELETE FROM key_history")
    assert main(["audit", "show", ids[3], "--audit-db", str(db)]) == 1
    assert (
        f"  masking key: no key era covers the record; but the record's masked_with, {shown}, "
        "is no key fingerprint: the record was edited (run `caseroute audit verify`)"
    ) in capsys.readouterr().out.splitlines()


def test_records_that_name_no_key_are_counted_as_unchecked(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A log from builds before records named their key verifies, saying what was not checked."""
    older = [
        replace(r, input={k: v for k, v in r.input.items() if k != "masked_with"})
        for r in _records_masked_with(KEY_A, tmp_path, 2)
    ]
    db = tmp_path / "audit.db"
    store = AuditConfig(db=db, key_hex=KEY_A).open_store()
    store.append(older)
    store.close()
    _decide(AuditConfig(db=db, key_hex=KEY_A), 3, 1)  # stores the roster and ruleset blobs
    code, out = _verify(capsys, str(db))
    assert code == 0, out
    assert (
        "masking key eras (checked against the 1 record(s) that name their key; 2 record(s) "
        "written by builds before records named their key are placed by these eras "
        "unchecked):"
    ) in out


def test_an_unbound_writer_binds_to_the_key_its_records_name(tmp_path: Path) -> None:
    """A store opened in code (no ``claim_key``) records the key of the first record it stores.

    Before, nothing bound it: verify would have found records naming a key no era holds.
    """
    db = tmp_path / "audit.db"
    registry = _registry()
    masker = Masker(bytes.fromhex(KEY_A))
    core = RoutingCore(registry, SqliteAuditStore(db), masker, lambda: NOW)
    command = DecideCommand("r1", "", "", (make_case(),), make_roster(make_agent()), NOW)
    core.decide(command)
    store = core.audit
    assert isinstance(store, SqliteAuditStore)
    history = store.key_history()
    records = list(store.records())
    assert [(e.era, e.new_fingerprint, e.first_seq) for e in history] == [(1, FP_A, 1)]
    assert verify_chain(records, store.head(), store.get_blob, (), history).keyed == 1
    store.close()
    registry.close()


def _records_masked_with(key_hex: str, tmp_path: Path, count: int = 1) -> list[AuditRecord]:
    """Records of ``count`` decisions masked with ``key_hex``, taken from a scratch log."""
    scratch = tmp_path / f"scratch-{key_hex[:2]}.db"
    _decide(AuditConfig(db=scratch, key_hex=key_hex), 1, count)
    store = SqliteAuditStore(scratch, readonly=True)
    try:
        return list(store.records())
    finally:
        store.close()


def test_a_writer_refuses_records_masked_with_another_key(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Records masked with key B are never stored by a writer bound to key A, nor in its log.

    Refused as the log being unwritable (UNAVAILABLE, health NOT_SERVING), the reason logged:
    before review R30's F3 a raw ValueError or KeyMismatchError reached the caller (INTERNAL).
    """
    records = _records_masked_with(KEY_B, tmp_path)
    db = tmp_path / "audit.db"
    bound = AuditConfig(db=db, key_hex=KEY_A).open_store()
    with pytest.raises(AuditUnavailableError, match=WRITE_UNAVAILABLE):
        bound.append(records)
    assert bound.head()[0] == 0
    bound.close()
    assert f"it was masked with key {FP_B}, but this writer is bound to key {FP_A}" in caplog.text
    caplog.clear()
    unbound = SqliteAuditStore(db)
    with pytest.raises(AuditUnavailableError, match=WRITE_UNAVAILABLE):
        unbound.append(records)
    assert unbound.head()[0] == 0
    unbound.close()
    assert f"the decision log's masking key is now {FP_A}, not this writer's" in caplog.text


def test_one_record_of_another_key_refuses_the_whole_batch(tmp_path: Path) -> None:
    """A batch whose second record names another key: nothing of it is stored."""
    a_records = _records_masked_with(KEY_A, tmp_path)
    b_records = _records_masked_with(KEY_B, tmp_path)
    store = AuditConfig(db=tmp_path / "audit.db", key_hex=KEY_A).open_store()
    try:
        with pytest.raises(AuditUnavailableError):
            store.append([*a_records, *b_records])
        assert store.head()[0] == 0
    finally:
        store.close()


@pytest.mark.parametrize("masked_with", [None, 7, ""])
def test_a_masked_with_that_is_no_fingerprint_is_refused(
    masked_with: object, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """``masked_with: null`` was stored, and verify then called the log edited (R30 F2)."""
    (record,) = _records_masked_with(KEY_A, tmp_path)
    odd = replace(record, input={**record.input, "masked_with": masked_with})
    store = AuditConfig(db=tmp_path / "audit.db", key_hex=KEY_A).open_store()
    try:
        with pytest.raises(AuditUnavailableError):
            store.append([odd])
        assert store.head()[0] == 0
    finally:
        store.close()
    assert "its masked_with is no key fingerprint (16 hex digits)" in caplog.text


def test_an_unbound_writer_starts_era_1_at_the_records_time(tmp_path: Path) -> None:
    """The era's ``at`` is the first record's ``recorded_at`` (not checked by verify)."""
    (record,) = _records_masked_with(KEY_A, tmp_path)
    store = SqliteAuditStore(tmp_path / "audit.db")
    try:
        store.append([record])
        assert [(e.at, e.new_fingerprint) for e in store.key_history()] == [
            (record.recorded_at, FP_A)
        ]
    finally:
        store.close()


def test_open_recording_gives_the_masker_of_the_key_it_bound(tmp_path: Path) -> None:
    """One read of the key for both (the server read the key file twice, R30 F3)."""
    config = AuditConfig(db=tmp_path / "audit.db", key_file=tmp_path / "k")
    store, masker = config.open_recording()  # creates the key file
    try:
        assert [e.new_fingerprint for e in store.key_history()] == [masker.fingerprint]
        assert masker.key == bytes.fromhex((tmp_path / "k").read_text().strip())
    finally:
        store.close()


def test_key_history_problem_accepts_what_claim_and_rotate_write() -> None:
    """Eras as the stores write them pass, a rotation before any record included."""
    from caseroute.audit.store import KeyEra

    eras = [
        KeyEra(1, "t1", "", FP_A, 1),
        KeyEra(2, "t2", FP_A, FP_B, 1),  # rotated before the first record
        KeyEra(3, "t3", FP_B, FP_A, 4),  # back to key A at the record after the head
    ]
    assert key_history_problem(eras, 3) is None
    assert key_history_problem([KeyEra(1, "t", "", FP_A, 7)], 6) is None  # a rotate-key era 1
    assert key_history_problem([KeyEra(1, "t", "", "", 1)], 0) == (
        "key era 1 holds no key fingerprint: key eras were edited"
    )
    assert key_history_problem([eras[0], KeyEra(2, "t", FP_A, FP_B, 0)], 5) == (
        "key era 2 starts at record 0, before the first record of era 1 (1): key eras were edited"
    )


def _pg_edit(url: str, statement: str) -> None:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(statement)


@pytest.mark.parametrize(
    ("statement", "expected"),
    [
        (
            "DELETE FROM key_history WHERE era = 2",
            "record 3 is missing (deleted?): the next stored record is 4",
        ),
        (
            "UPDATE key_history SET first_seq = 5 WHERE era = 2",
            "key rotation seq 3 (era 2) starts its era at record 5, not the next one",
        ),
        (
            f"UPDATE key_history SET new_fingerprint = '{OTHER}' WHERE era = 2",
            "key rotation seq 3 (era 2) was edited or moved",
        ),
        (
            f"UPDATE key_history SET new_fingerprint = '{OTHER}' WHERE era = 1",
            f"record 1 was masked with key {FP_A}, but the key history places it in era 1",
        ),
    ],
)
def test_postgres_verify_names_an_edited_key_era(
    statement: str,
    expected: str,
    pg_url: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The PostgreSQL log's key eras are anchored the same way."""
    location = PostgresLocation(pg_url)
    _decide(AuditConfig.at(location, key_hex=KEY_A), 1, 2)
    _rotate(AuditConfig.at(location, key_hex=KEY_A), FP_B)
    _decide(AuditConfig.at(location, key_hex=KEY_B), 3, 2)
    code, out = _verify(capsys, pg_url)
    assert code == 0, out
    assert "checked against the 4 record(s)" in out
    _pg_edit(pg_url, statement)
    code, out = _verify(capsys, pg_url)
    assert (code, out.startswith("TAMPERED: ")) == (1, True), out
    assert expected in out


def test_key_history_problem_names_each_break() -> None:
    """The bounds exactly, a non-text key, and a rotation from a key the era before lacks."""
    from caseroute.audit.store import KeyEra

    era1 = KeyEra(1, "t1", "", FP_A, 1)
    assert key_history_problem([era1, KeyEra(2, "t2", FP_A, FP_B, 4)], 3) is None  # head + 1
    assert key_history_problem([era1, KeyEra(2, "t2", FP_A, FP_B, 5)], 3) == (
        "key era 2 starts at record 5, after record 4 (the one after the head, where a rotation "
        "starts): key eras were edited, or the newest records were deleted and the head "
        "rewritten"
    )
    assert key_history_problem([KeyEra(1, "t", "", b"ab", 1)], 0) == (  # type: ignore[arg-type]
        "key era 1 holds no key fingerprint: key eras were edited"
    )
    assert key_history_problem([era1, KeyEra(2, "t2", OTHER, FP_B, 2)], 3) == (
        f"key era 2 says it rotated from key {OTHER}, but era 1 holds {FP_A}: key eras were edited"
    )
    assert key_history_problem([KeyEra(1, "t", FP_B, FP_A, 1)], 0) == (
        f"key era 1 says it rotated from key {FP_B}, but the start of the log holds no key: key "
        "eras were edited"
    )


def _sealed(*inputs: dict[str, object]) -> list[AuditRecord]:
    """Records with these inputs, chained from GENESIS (no store: what verify is given)."""
    from caseroute.audit.record import GENESIS, seal

    records, prev = [], GENESIS
    for n, stored_input in enumerate(inputs, start=1):
        record = seal(make_audit_record(n, input=stored_input), n, prev)
        records.append(record)
        prev = record.record_hash
    return records


@pytest.mark.parametrize("masked_with", [7, None, "", EditedText("c56b\ufffd")])
def test_verify_names_a_masked_with_that_is_no_fingerprint(masked_with: object) -> None:
    """A hashed ``masked_with`` that is no key (a chain rewritten around it) is named."""
    from caseroute.audit.store import KeyEra

    records = _sealed({"case": {}, "masked_with": masked_with, "roster": {}})
    report = verify_chain(
        records, (1, records[-1].record_hash), None, (), [KeyEra(1, "t", "", FP_A, 1)]
    )
    assert (report.ok, report.problem) == (
        False,
        "record 1 names no masking key fingerprint (masked_with was edited)",
    )


def test_verify_counts_only_records_that_name_a_key_and_checks_none_without_eras() -> None:
    """``keyed`` counts records naming a key; with no eras given nothing is checked."""
    from caseroute.audit.store import KeyEra

    records = _sealed(
        {"case": {}}, {"case": {}, "masked_with": FP_A}, {"case": {}, "masked_with": FP_A}
    )
    head = (3, records[-1].record_hash)
    assert verify_chain(records, head, None, (), [KeyEra(1, "t", "", FP_A, 1)]).keyed == 2
    unchecked = verify_chain(records, head, None, (), None)
    assert (unchecked.ok, unchecked.keyed) == (True, 0)
    assert verify_chain(records, head, None, (), []).problem == (
        f"record 2 was masked with key {FP_A}, but no key era covers it: key eras "
        "(key_history) were deleted or edited"
    )


def test_show_of_records_without_a_named_key() -> None:
    """A record from before fingerprints claims no key; one whose masked_with is no text is edited.

    `audit verify` names the second as edited (``_key_problem``); show says the same.
    """
    from caseroute.audit.show import _key_line
    from caseroute.audit.store import KeyEra

    older, odd = _sealed({"case": {}}, {"case": {}, "masked_with": 7})
    era = KeyEra(1, "t", "", FP_A, 1)
    assert _key_line(older, None) == "  masking key: not recorded (written before key fingerprints)"
    plain = f"  masking key: era 1, fingerprint {FP_A} (records from 1)"
    assert _key_line(older, era) == plain
    edited = "is no key fingerprint: the record was edited (run `caseroute audit verify`)"
    assert _key_line(odd, era) == (
        f"  masking key: era 1, fingerprint {FP_A}; but the record's masked_with, 7, {edited}"
    )
    assert _key_line(odd, None) == (
        f"  masking key: no key era covers the record; but the record's masked_with, 7, {edited}"
    )


def test_verify_of_a_log_with_ruleset_events_counts_no_event_as_unchecked(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Events share the chain but mask nothing: every decision record named its key."""
    from tests.test_cli_audit import _ruleset_event

    db = tmp_path / "audit.db"
    _decide(AuditConfig(db=db, key_hex=KEY_A), 1, 2)
    store = AuditConfig(db=db, key_hex=KEY_A).open_store()
    store.append_events([_ruleset_event(1), _ruleset_event(2)])
    store.close()
    _decide(AuditConfig(db=db, key_hex=KEY_A), 3, 1)
    code, out = _verify(capsys, str(db))
    assert code == 0, out
    assert "ok: 5 record(s) (2 of them ruleset event(s))" in out
    assert "masking key eras (checked against the 3 record(s) that name their key):" in out


def test_a_refused_batch_stores_no_key_era_either(tmp_path: Path) -> None:
    """An unbound writer given records of keys A and B: no records and no era 1 (R30b F3).

    Before, era 1 (key A) was claimed and then B refused, so a server with key B was refused
    at start on a log that held nothing.
    """
    a_records = _records_masked_with(KEY_A, tmp_path)
    b_records = _records_masked_with(KEY_B, tmp_path)
    db = tmp_path / "audit.db"
    store = SqliteAuditStore(db)
    try:
        with pytest.raises(AuditUnavailableError):
            store.append([*a_records, *b_records])
        assert (store.head()[0], store.key_history()) == (0, [])
    finally:
        store.close()
    _decide(AuditConfig(db=db, key_hex=KEY_B), 1, 1)  # the log is still anyone's


@pytest.mark.parametrize("masked_with", [None, "x", "C56B3B5A171F6952", FP_A + "\n"])
def test_an_unbound_writer_refuses_a_masked_with_that_is_no_fingerprint(
    masked_with: object, tmp_path: Path
) -> None:
    """Refused before any claim: no record, no era (R30b F4 and its mutant M2)."""
    (record,) = _records_masked_with(KEY_A, tmp_path)
    odd = replace(record, input={**record.input, "masked_with": masked_with})
    store = SqliteAuditStore(tmp_path / "audit.db")
    try:
        with pytest.raises(AuditUnavailableError):
            store.append([odd])
        assert (store.head()[0], store.key_history()) == (0, [])
    finally:
        store.close()


def test_verify_names_a_masked_with_that_is_text_but_no_fingerprint() -> None:
    """Any text was a key to verify before R30b F4: only what ``key_fingerprint`` writes is."""
    from caseroute.audit.store import KeyEra

    records = _sealed({"case": {}, "masked_with": "x", "roster": {}})
    report = verify_chain(
        records, (1, records[-1].record_hash), None, (), [KeyEra(1, "t", "", "x", 1)]
    )
    assert report.problem == "record 1 names no masking key fingerprint (masked_with was edited)"


def test_open_recording_reads_the_key_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A key file replaced between two reads cannot give the writer and masker two keys."""
    import caseroute.audit.config as config_module

    keys = iter([bytes.fromhex(KEY_A), bytes.fromhex(KEY_B)])
    monkeypatch.setattr(config_module, "load_key", lambda *_, **__: next(keys))
    store, masker = AuditConfig(db=tmp_path / "audit.db", key_hex=KEY_A).open_recording()
    try:
        assert [e.new_fingerprint for e in store.key_history()] == [masker.fingerprint] == [FP_A]
    finally:
        store.close()


def _unsealed_layout(db: Path) -> None:
    """The log as builds before sealed rotations left it: key_history without chain columns."""
    _sql(
        db,
        "ALTER TABLE key_history DROP COLUMN seq",
        "ALTER TABLE key_history DROP COLUMN prev_hash",
        "ALTER TABLE key_history DROP COLUMN record_hash",
    )


def test_a_log_from_before_sealed_rotations_reads_verifies_and_is_upgraded(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Read-only, its eras read unsealed; the first writable open adds the columns."""
    db = tmp_path / "audit.db"
    _decide(AuditConfig(db=db, key_hex=KEY_A), 1, 2)
    _unsealed_layout(db)
    readonly = SqliteAuditStore(db, readonly=True)
    try:
        assert [(e.era, e.seq, e.record_hash) for e in readonly.key_history()] == [(1, None, "")]
    finally:
        readonly.close()
    code, out = _verify(capsys, str(db))
    assert code == 0, out
    _rotate(AuditConfig(db=db, key_hex=KEY_A), FP_B)  # a writable open: the columns come back
    _decide(AuditConfig(db=db, key_hex=KEY_B), 3, 1)
    code, out = _verify(capsys, str(db))
    assert code == 0, out
    assert "ok: 4 record(s) (1 of them key rotation(s))" in out


def test_rotations_from_before_sealing_verify_only_before_sealed_ones() -> None:
    """An unsealed rotation, one an older build made, never comes after a sealed one.

    It may follow records naming their key (builds 6c11fa9-3aa6ada, review R30c).
    """
    from caseroute.audit.store import KeyEra

    era1 = KeyEra(1, "t1", "", FP_A, 1)
    old = KeyEra(2, "t2", FP_A, FP_B, 3)  # made by an older build
    sealed = KeyEra(3, "t3", FP_B, OTHER, 9, 8, "p", "h")
    assert key_history_problem([era1, old, sealed], 10) is None
    assert key_history_problem([era1, old], 10) is None
    first_sealed = replace(sealed, era=2, old_fingerprint=FP_A)
    late = replace(old, era=3, old_fingerprint=OTHER, first_seq=10)
    assert key_history_problem([era1, first_sealed, late], 10) == (
        "key era 3 is no chain entry, but comes after a sealed rotation, which a build that "
        "seals rotations wrote: key eras were added or edited"
    )


def test_a_log_of_the_builds_that_named_keys_but_did_not_seal_rotations_verifies(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Review R30c's High: 3aa6ada's log (keyed records, an unsealed rotation) was TAMPERED.

    Its rotation is written here as 3aa6ada wrote it (a key_history row, no chain entry);
    then this build rotates again (sealed) and records more.
    """
    db = tmp_path / "audit.db"
    _decide(AuditConfig(db=db, key_hex=KEY_A), 1, 2)
    _sql(
        db,
        "INSERT INTO key_history (era, at, old_fingerprint, new_fingerprint, first_seq) "
        f"VALUES (2, '2026-12-02T09:00:00Z', '{FP_A}', '{FP_B}', 3)",
    )
    _decide(AuditConfig(db=db, key_hex=KEY_B), 3, 2)
    code, out = _verify(capsys, str(db))
    assert code == 0, out
    _rotate(AuditConfig(db=db, key_hex=KEY_B), FP_A)
    _decide(AuditConfig(db=db, key_hex=KEY_A), 5, 1)
    code, out = _verify(capsys, str(db))
    assert code == 0, out
    assert "ok: 6 record(s) (1 of them key rotation(s))" in out
    assert "checked against the 5 record(s) that name their key" in out


def test_a_sealed_rotation_hashes_as_it_always_will() -> None:
    """Known answer: the hashed bytes of a rotation are a format (review R30c F5).

    Every sealed log holds them; a change (a key dropped from the content, another order)
    would make every one of them verify TAMPERED.
    """
    from caseroute.audit.store import KeyEra
    from caseroute.domain.fingerprint import canonical_json

    era = sealed_rotation(KeyEra(2, "2026-12-02T10:00:00Z", "a" * 16, "b" * 16, 0), (3, "c" * 64))
    text = (
        '{"at":"2026-12-02T10:00:00Z","era":2,"first_seq":5,"kind":"key_rotation",'
        '"new_fingerprint":"bbbbbbbbbbbbbbbb","old_fingerprint":"aaaaaaaaaaaaaaaa","seq":4}'
    )
    assert canonical_json(era.content()) == text
    assert era.record_hash == hashlib.sha256(("c" * 64 + text).encode()).hexdigest()
    assert era.record_hash == "12ddd1f9aa42bff45bef73eb2abe4e4e5fd28573c46e5c60171694d462be4291"
    assert (era.seq, era.first_seq, era.prev_hash) == (4, 5, "c" * 64)


def test_a_log_with_a_sealed_rotation_verifies_only_with_its_eras(tmp_path: Path) -> None:
    """The rotation holds a chain position: walked without the eras, its seq is a gap."""
    db = tmp_path / "audit.db"
    _two_era_log(db)
    store = SqliteAuditStore(db, readonly=True)
    try:
        records, head, eras = list(store.records()), store.head(), store.key_history()
    finally:
        store.close()
    assert verify_chain(records, head, None, (), None).problem == (
        "record 4 is missing (deleted?): the next stored record is 5"
    )
    report = verify_chain(records, head, None, (), eras)
    assert (report.ok, report.records, report.rotations, report.keyed) == (True, 7, 1, 6)


def test_postgres_migration_2_adds_the_rotation_columns(pg_url: str) -> None:
    """A version-1 log reads read-only as it is, and a writable open migrates it."""
    import psycopg

    from caseroute.audit.config import open_postgres
    from caseroute.audit.pg_schema import MIGRATIONS, SCHEMA_TABLE, altered_columns

    location = PostgresLocation(pg_url)
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(
            f"CREATE TABLE {SCHEMA_TABLE} (version INTEGER PRIMARY KEY, description TEXT NOT "
            "NULL, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())"
        )
        version, description, sql = MIGRATIONS[0]
        conn.execute(sql)
        conn.execute(
            f"INSERT INTO {SCHEMA_TABLE} (version, description) VALUES (%s, %s)",
            (version, description),
        )
        conn.execute(
            "INSERT INTO key_history VALUES (1, '2026-12-01T00:00:00Z', '', %s, 1)", (FP_A,)
        )
    with psycopg.connect(pg_url) as conn:
        assert altered_columns(conn) == []  # as of version 1: R30c F2 listed 3 as missing
    readonly = open_postgres(location, readonly=True)
    try:
        assert [(e.era, e.seq) for e in readonly.key_history()] == [(1, None)]
    finally:
        readonly.close()
    _rotate(AuditConfig.at(location, key_hex=KEY_A), FP_B)  # migrates, then seals
    readonly = open_postgres(location, readonly=True)
    try:
        assert [(e.era, e.seq, e.first_seq) for e in readonly.key_history()] == [
            (1, None, 1),
            (2, 1, 2),
        ]
    finally:
        readonly.close()


def test_an_unused_rotation_cannot_be_deleted_unseen(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Review R30's E1: deleting a rotation no record used yet verified ok, undoing it.

    The rotation moved the head: deleted alone the chain ends short of the head; deleted with
    the head rewritten, the head kept for ``--expect-head`` no longer matches.
    """
    db = tmp_path / "audit.db"
    _decide(AuditConfig(db=db, key_hex=KEY_A), 1, 2)
    _rotate(AuditConfig(db=db, key_hex=KEY_A), FP_B)
    code, out = _verify(capsys, str(db))
    assert code == 0, out
    kept = out.split("head ", 1)[1].split(" ", 1)[0]
    assert kept.startswith("3:")
    _sql(db, "DELETE FROM key_history WHERE era = 2")
    code, out = _verify(capsys, str(db))
    assert (code, out.split(";")[0]) == (
        1,
        (
            "TAMPERED: the chain ends at record 2 but the store's head is record 3 (records "
            "truncated or the head edited)"
        ),
    )
    store = SqliteAuditStore(db, readonly=True)
    try:
        second = next(r for r in store.records() if r.seq == 2).record_hash
    finally:
        store.close()
    _sql(db, f"UPDATE chain_head SET seq = 2, record_hash = '{second}' WHERE id = 1")
    code, out = _verify(capsys, str(db))
    assert code == 0, out  # internally whole: what --expect-head is for
    assert main(["audit", "verify", "--audit-db", str(db), "--expect-head", kept]) == 1
    assert "TAMPERED: the chain verifies internally but ends at 2:" in capsys.readouterr().out


def test_a_made_up_rotation_to_the_same_key_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Review R30d: an unsealed era A -> A among records of key A passed once R30c's rule went.

    ``rotate-key`` refuses the key already in use, in every build, so no log holds one.
    """
    db = tmp_path / "audit.db"
    _decide(AuditConfig(db=db, key_hex=KEY_A), 1, 4)
    _sql(
        db,
        "INSERT INTO key_history (era, at, old_fingerprint, new_fingerprint, first_seq) "
        f"VALUES (2, '2026-01-01T00:00:00Z', '{FP_A}', '{FP_A}', 3)",
    )
    code, out = _verify(capsys, str(db))
    assert (code, out.split(";")[0]) == (
        1,
        "TAMPERED: key era 2 rotates to the key it rotates from: key eras were added",
    )


@pytest.mark.parametrize("text", ["fp-1", "F" * 16, "a" * 15, "a" * 16 + "\n", ""])
def test_binding_or_rotating_to_text_that_is_no_fingerprint_is_refused(
    tmp_path: Path, text: str
) -> None:
    """claim_key/rotate_key take only a fingerprint: a writer bound to other text skips checks."""
    store = SqliteAuditStore(tmp_path / "audit.db")
    try:
        with pytest.raises(ValueError, match="no masking-key fingerprint"):
            store.claim_key(text, "2026-12-02T10:00:00Z")
        with pytest.raises(ValueError, match=r"Masker\.fingerprint"):
            store.rotate_key(text, "2026-12-02T10:00:00Z")
        assert (store.key_history(), store.head()[0]) == ([], 0)
        store.claim_key(FP_A, "2026-12-02T10:00:00Z")  # a real fingerprint binds
        assert [e.new_fingerprint for e in store.key_history()] == [FP_A]
    finally:
        store.close()


def test_postgres_binding_or_rotating_to_text_that_is_no_fingerprint_is_refused(
    pg_url: str,
) -> None:
    """The PostgreSQL sink refuses the same texts before it opens a transaction."""
    config = AuditConfig.at(PostgresLocation(pg_url), key_hex=KEY_A)
    sink = config.open_sink()
    try:
        for text in ("fp-1", "A" * 16):
            with pytest.raises(ValueError, match="no masking-key fingerprint"):
                sink.claim_key(text, "2026-12-02T10:00:00Z")
            with pytest.raises(ValueError, match="no masking-key fingerprint"):
                sink.rotate_key(text, "2026-12-02T10:00:00Z")
        assert [e.new_fingerprint for e in sink.key_history()] == [FP_A]
    finally:
        sink.close()


def test_a_failed_report_names_the_position_of_the_bad_entry(tmp_path: Path) -> None:
    """R30c: a mutant reporting position 0 for every bad entry survived; the seq is the entry's."""
    db = tmp_path / "audit.db"
    ids = _two_era_log(db)

    def report_of(*statements: str) -> tuple[int, str]:
        _sql(db, *statements)
        store = SqliteAuditStore(db, readonly=True)
        try:
            report = verify_chain(
                store.records(),
                store.head(),
                store.stored_blob,
                store.iter_events(),
                store.key_history(),
            )
        finally:
            store.close()
        return report.seq, report.decision_id

    assert report_of("UPDATE key_history SET first_seq = 6 WHERE era = 2") == (4, "")
    assert report_of(
        "UPDATE key_history SET first_seq = 5 WHERE era = 2",
        f"UPDATE decisions SET caller = 'someone else' WHERE decision_id = '{ids[4]}'",
    ) == (6, ids[4])
