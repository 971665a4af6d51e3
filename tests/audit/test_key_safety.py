"""The masking key cannot change under a decision log silently, and the log stays private."""

import hashlib
import hmac
from datetime import datetime
from pathlib import Path

import pytest

from caseroute.audit.config import AuditConfig
from caseroute.audit.masking import key_fingerprint
from caseroute.audit.store import READ_UNAVAILABLE, WRITE_UNAVAILABLE, KeyEra, SqliteAuditStore
from caseroute.cli import main
from caseroute.domain.errors import AuditUnavailableError, ConfigError
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

KEY_A = "11" * 32
KEY_B = "22" * 32


def _log_with_one_record(config: AuditConfig) -> None:
    store = config.open_store()
    store.append([make_audit_record(1)])
    store.close()


def _eras(db: Path) -> list[tuple[int, str, str, int]]:
    store = SqliteAuditStore(db, readonly=True)
    try:
        history = store.key_history()
    finally:
        store.close()
    for era in history:
        datetime.fromisoformat(era.at)  # a real instant
    return [(e.era, e.old_fingerprint, e.new_fingerprint, e.first_seq) for e in history]


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_fingerprint_is_stored_on_first_use_and_not_the_key(tmp_path: Path) -> None:
    """The first writer records a truncated HMAC fingerprint of the key, never the key."""
    db = tmp_path / "audit.db"
    _log_with_one_record(AuditConfig(db=db, key_hex=KEY_A))
    fingerprint = key_fingerprint(bytes.fromhex(KEY_A))
    expected = hmac.new(bytes.fromhex(KEY_A), b"caseroute-key-fingerprint", hashlib.sha256)
    assert fingerprint == expected.hexdigest()[:16]
    assert _eras(db) == [(1, "", fingerprint, 1)]
    assert KEY_A.encode() not in db.read_bytes()


def test_a_lost_key_file_is_not_replaced_silently(tmp_path: Path) -> None:
    """A missing key file next to a log with records is refused, and no new key is created."""
    db, key_file = tmp_path / "audit.db", tmp_path / "audit.db.key"
    config = AuditConfig(db=db)
    _log_with_one_record(config)
    fingerprint = key_fingerprint(bytes.fromhex(key_file.read_text().strip()))
    key_file.unlink()
    with pytest.raises(ConfigError) as caught:
        config.open_store()
    assert str(caught.value) == (
        f"the audit key file {key_file} is missing, but the decision log {db} already holds "
        f"records masked with a key (fingerprint {fingerprint}); a new key would give the same "
        "patient a different digest. Restore the key file from its backup (or set "
        "CASEROUTE_AUDIT_KEY), or, if the key is lost for good, start a new key era with "
        f"`caseroute audit rotate-key --audit-db {db} --new-key-file FILE --confirm`"
    )
    assert not key_file.exists()


def test_a_different_key_is_refused(tmp_path: Path) -> None:
    """Opening a log for writing with another key names both fingerprints and the way out."""
    db = tmp_path / "audit.db"
    _log_with_one_record(AuditConfig(db=db, key_hex=KEY_A))
    with pytest.raises(ConfigError) as caught:
        AuditConfig(db=db, key_hex=KEY_B).open_store()
    assert str(caught.value) == (
        f"the audit key (CASEROUTE_AUDIT_KEY) does not match the key the decision log {db} is "
        f"masked with (fingerprint {key_fingerprint(bytes.fromhex(KEY_A))}, this key "
        f"{key_fingerprint(bytes.fromhex(KEY_B))}): the same patient would get a different "
        "digest. Restore the original key, or change keys on purpose with "
        f"`caseroute audit rotate-key --audit-db {db} --new-key-file FILE --confirm`"
    )


def test_rotation_needs_confirmation_and_starts_a_recorded_key_era(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """rotate-key asks for --confirm, records old/new fingerprints, then only the new key opens."""
    db, new_key = tmp_path / "audit.db", tmp_path / "new.key"
    _log_with_one_record(AuditConfig(db=db, key_hex=KEY_A))
    argv = ("audit", "rotate-key", "--audit-db", str(db), "--new-key-file", str(new_key))
    code, out, err = _run(capsys, *argv)
    assert (code, out) == (2, "")
    assert err == (
        f"caseroute: rotating the masking key of {db} starts a new key era at record 3 (the "
        "rotation itself is sealed into the chain at 2): from then on the same patient gets a "
        "different digest than in the decisions recorded before it (chain entries 1-1); keep "
        "the old key if those digests must still be matched. Rerun with --confirm to rotate\n"
    )
    assert not new_key.exists()
    code, out, err = _run(capsys, *argv, "--confirm")
    assert code == 0
    new_fingerprint = key_fingerprint(bytes.fromhex(new_key.read_text().strip()))
    old_fingerprint = key_fingerprint(bytes.fromhex(KEY_A))
    assert new_key.stat().st_mode & 0o777 == 0o600
    assert out == (
        f"masking key rotated: key era 2 starts at record 3 (fingerprint {old_fingerprint} -> "
        f"{new_fingerprint}; the rotation is chain entry 2); a new key was written to "
        f"{new_key} (mode 0600, back it up separately); restart the servers with "
        f"--audit-key-file {new_key}\n"
    )
    assert _eras(db) == [(1, "", old_fingerprint, 1), (2, old_fingerprint, new_fingerprint, 3)]
    with pytest.raises(ConfigError, match="does not match"):
        AuditConfig(db=db, key_hex=KEY_A).open_store()
    AuditConfig(db=db, key_file=new_key).open_store().close()


def test_rotation_to_an_existing_key_file_and_to_the_same_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An existing new key file is used as it is; rotating to the key in use is refused."""
    db, new_key = tmp_path / "audit.db", tmp_path / "b.key"
    _log_with_one_record(AuditConfig(db=db, key_hex=KEY_A))
    new_key.write_text(KEY_A + "\n")
    new_key.chmod(0o600)
    argv = ("audit", "rotate-key", "--audit-db", str(db), "--new-key-file", str(new_key))
    code, _, err = _run(capsys, *argv, "--confirm")
    assert (code, err) == (
        2,
        (
            f"caseroute: {new_key} holds the key already in use (fingerprint "
            f"{key_fingerprint(bytes.fromhex(KEY_A))}); nothing to rotate\n"
        ),
    )
    new_key.write_text(KEY_B + "\n")
    code, out, _ = _run(capsys, *argv, "--confirm")
    assert code == 0
    assert out.startswith("masking key rotated: key era 2 starts at record 3")
    assert new_key.read_text() == KEY_B + "\n"


def test_a_server_still_on_the_old_key_stops_writing_after_rotation(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A store opened before a rotation refuses appends: its digests would be of the old era."""
    db = tmp_path / "audit.db"
    store = AuditConfig(db=db, key_hex=KEY_A).open_store()
    store.append([make_audit_record(1)])
    argv = ("audit", "rotate-key", "--audit-db", str(db), "--new-key-file", str(tmp_path / "k"))
    assert _run(capsys, *argv, "--confirm")[0] == 0
    with pytest.raises(AuditUnavailableError) as caught:
        store.append([make_audit_record(2)])
    store.close()
    assert str(caught.value) == WRITE_UNAVAILABLE
    assert _eras(db)[-1][3] == 3  # the rotation is chain entry 2


def test_verify_and_show_name_the_key_eras(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`audit verify` lists the key history; `audit show` says which era a record belongs to."""
    db = tmp_path / "audit.db"
    config = AuditConfig(db=db, key_hex=KEY_A)
    registry = RulesetRegistry()
    registry.add(
        prepare_ruleset(compile_text(ruleset_with_rules(CATCH_ALL_RULE)), EngineKind.PYTHON)
    )
    core = RoutingCore(registry, config.open_store(), config.masker(), lambda: NOW)
    command = DecideCommand("r1", "", "", (make_case(),), make_roster(make_agent()), NOW)
    decision_id = core.decide(command).decisions[0].decision_id
    core.audit.close()
    argv = ("audit", "rotate-key", "--audit-db", str(db), "--new-key-file", str(tmp_path / "k"))
    assert _run(capsys, *argv, "--confirm")[0] == 0
    store = SqliteAuditStore(db, readonly=True)
    eras = store.key_history()
    store.close()
    code, out, _ = _run(capsys, "audit", "verify", "--audit-db", str(db))
    assert code == 0
    assert out.splitlines()[1:] == [
        "masking key eras (checked against the 1 record(s) that name their key):",
        f"  era 1 from record 1: key {eras[0].new_fingerprint} (since {eras[0].at})",
        (
            f"  era 2 from record 3: key {eras[1].new_fingerprint} (since {eras[1].at}; "
            f"rotated from {eras[0].new_fingerprint}; sealed as chain entry 2)"
        ),
    ]
    assert isinstance(eras[0], KeyEra)
    code, out, _ = _run(capsys, "audit", "show", decision_id, "--audit-db", str(db))
    assert code == 0
    assert (
        f"  masking key: era 1, fingerprint {eras[0].new_fingerprint} (records from 1)"
        in out.splitlines()
    )


def test_a_log_readable_by_others_is_refused_for_writing(tmp_path: Path) -> None:
    """An existing log (or its -wal) readable by group or other stops the writer with chmod 600."""
    db = tmp_path / "audit.db"
    _log_with_one_record(AuditConfig(db=db, key_hex=KEY_A))
    db.chmod(0o640)
    wal = tmp_path / "audit.db-wal"
    wal.write_bytes(b"")
    wal.chmod(0o604)
    with pytest.raises(ConfigError) as caught:
        AuditConfig(db=db, key_hex=KEY_A).open_store()
    assert str(caught.value) == (
        f"the decision log is readable by other users: {db} (mode 640), {wal} (mode 604); "
        f"it holds patient data: run `chmod 600 {db} {wal}`"
    )


def test_auditor_commands_warn_about_a_log_readable_by_others(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Read-only auditor commands still work on a 0644 log, with a loud warning on stderr."""
    db = tmp_path / "audit.db"
    _log_with_one_record(AuditConfig(db=db, key_hex=KEY_A))
    db.chmod(0o644)
    code, _, err = _run(capsys, "audit", "export", "--audit-db", str(db))
    # make_audit_record's decision is no decision caseroute can rebuild: export also says so
    # and exits 1 (review R34c F3); the permissions warning comes first all the same.
    assert (code, err.splitlines()[:2]) == (
        1,
        [
            (
                f"caseroute: WARNING: the decision log is readable by other users: {db} (mode "
                f"644); it holds patient data: run `chmod 600 {db}`"
            ),
            "exported 1 decision(s)",
        ],
    )


def test_an_unreadable_log_is_named_to_the_operator_not_to_callers(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Opening a file that is no decision log (CLI, startup) names the file and the cause.

    verify exits 3, saying it checked nothing: 1 would read as TAMPERED to a monitor.
    """
    db = tmp_path / "audit.db"
    db.write_text("not a database")
    db.chmod(0o600)
    code, out, err = _run(capsys, "audit", "verify", "--audit-db", str(db))
    assert (code, out, err) == (
        3,
        "",
        (
            f"caseroute: cannot open the decision log {db}: file is not a database; check that "
            "--audit-db names a caseroute decision log and that this user can read (and, to "
            "serve, write) it and its directory\n"
            "caseroute: audit verify checked nothing (the log could not be read: this is not a "
            "finding of tampering); exit 3\n"
        ),
    )


def test_the_rotation_prompt_counts_chain_entries_not_records(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """R30c: "N earlier record(s)" counted events and rotations as records; an empty log: none."""
    db, new_key = tmp_path / "audit.db", tmp_path / "new.key"
    store = AuditConfig(db=db, key_hex=KEY_A).open_store()
    store.close()
    argv = ("audit", "rotate-key", "--audit-db", str(db), "--new-key-file", str(new_key))
    assert "before it (none yet); keep" in _run(capsys, *argv)[2]
    _log_with_one_record(AuditConfig(db=db, key_hex=KEY_A))
    assert _run(capsys, *argv, "--confirm")[0] == 0  # the rotation is chain entry 2
    other = tmp_path / "other.key"
    argv = ("audit", "rotate-key", "--audit-db", str(db), "--new-key-file", str(other))
    assert "before it (chain entries 1-2); keep" in _run(capsys, *argv)[2]


def test_a_rotation_the_log_cannot_write_exits_3_and_says_to_run_it_again(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A rotation whose write fails: exit 3 (an outage), in a rotation's words, not a caller's.

    It exited 1 with "no decision was made; retry later or with another replica", the words a
    Decide caller gets. A lost commit answer may still have recorded the rotation, so the line
    says so and what a second run does.
    """
    db, new_key = tmp_path / "audit.db", tmp_path / "new.key"
    _log_with_one_record(AuditConfig(db=db, key_hex=KEY_A))

    def refused(_self: SqliteAuditStore, _fingerprint: str, _at: str) -> KeyEra:
        raise AuditUnavailableError(WRITE_UNAVAILABLE)

    monkeypatch.setattr(SqliteAuditStore, "rotate_key", refused)
    argv = ("audit", "rotate-key", "--audit-db", str(db), "--new-key-file", str(new_key))
    code, out, err = _run(capsys, *argv, "--confirm")
    assert (code, out) == (3, "")
    assert err == (
        f"caseroute: the masking key of {db} was not rotated, or the log could not confirm it "
        "(the cause is in the log lines above); run the same command again once the log is "
        f"reachable: it rotates to {new_key}, or says 'nothing to rotate' if the rotation was "
        "recorded\n"
    )
    assert _eras(db) == [(1, "", key_fingerprint(bytes.fromhex(KEY_A)), 1)]


def test_a_rotation_that_cannot_read_the_log_says_so_in_a_rotation_s_words(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The head or key eras unreadable: exit 3 naming the log, not a Decide caller's words.

    The rotation's own write got its words (review S43a), but the reads before it still said
    "nothing was decided or changed; retry later or with another replica".
    """
    db, new_key = tmp_path / "audit.db", tmp_path / "new.key"
    _log_with_one_record(AuditConfig(db=db, key_hex=KEY_A))

    def unreadable(_self: SqliteAuditStore) -> tuple[int, str]:
        raise AuditUnavailableError(READ_UNAVAILABLE)

    monkeypatch.setattr(SqliteAuditStore, "head", unreadable)
    argv = ("audit", "rotate-key", "--audit-db", str(db), "--new-key-file", str(new_key))
    code, out, err = _run(capsys, *argv, "--confirm")
    assert (code, out) == (3, "")
    assert err == (
        f"caseroute: the masking key of {db} was not rotated: the log could not be read (the "
        "cause is in the log lines above); nothing was changed; run the same command again "
        "once the log is readable\n"
    )
    assert not new_key.exists()
