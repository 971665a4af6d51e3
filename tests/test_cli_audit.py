import json
import sqlite3
from contextlib import closing
from datetime import timedelta
from pathlib import Path

import pytest

from caseroute.audit import verify
from caseroute.audit.config import load_key
from caseroute.audit.record import RulesetEvent
from caseroute.audit.store import SqliteAuditStore
from caseroute.cli import main
from caseroute.domain.errors import ConfigError
from caseroute.domain.roster import AgentStatus
from caseroute.engine.case_rules import EngineKind
from caseroute.service import DecideCommand, load_registry, request_decision_id
from caseroute.testing import (
    NOW,
    REFERENCE_RULESET,
    audited_core,
    make_agent,
    make_case,
    make_roster,
    ruleset_with_rules,
)

REGISTRY = load_registry(REFERENCE_RULESET.parent, EngineKind.PYTHON)


@pytest.fixture
def audit_db(tmp_path: Path) -> Path:
    """A decision log holding three decisions an hour apart, one with a summary explanation."""
    core = audited_core(REGISTRY, tmp_path)
    roster = make_roster(
        make_agent("a1"),
        make_agent("off", status=AgentStatus.OFFLINE),
        make_agent("ca", territories=frozenset({"US-CA"})),
    )
    for i in range(3):
        core.decide(
            DecideCommand(
                request_id=f"r{i}",
                ruleset_name="",
                ruleset_version="",
                cases=(make_case(case_id=f"C{i}", attributes={"patient_name": "Ada"}),),
                roster=roster,
                now=NOW + timedelta(hours=i),
                agent_detail=i != 1,
            )
        )
    core.audit.close()
    return tmp_path / "audit.db"


def _head(audit_db: Path) -> str:
    """The log's head as `audit verify` prints it: ``seq:record_hash``."""
    with closing(sqlite3.connect(audit_db)) as conn:
        seq, record_hash = conn.execute("SELECT seq, record_hash FROM chain_head").fetchone()
    return f"{seq}:{record_hash}"


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_show_explains_a_summary_decision_per_agent(
    audit_db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`audit show` prints provenance, the masked fields and each excluded agent's checks."""
    decision_id = request_decision_id("r1", 0)
    code, out, err = _run(capsys, "audit", "show", decision_id, "--audit-db", str(audit_db))
    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert lines[0] == f"Audit record 2: decision {decision_id}"
    assert "  masked (stored as keyed digests): case.attributes.patient_name" in lines
    assert "  x off: failed status" in lines
    assert "C1: ASSIGN to a1 (queue clinical), priority normal" in lines
    assert "Ada" not in out


def _show_warning(seq: int, decision_id: str, problem: str) -> str:
    """The warning `audit show` writes on stderr for a record whose row fails its checks."""
    return (
        f"caseroute: WARNING: record {seq} {problem} (decision {decision_id}); the values shown "
        "are read from its hashed text, never from the columns beside it, but the log was "
        "edited, so do not rely on this record: run `caseroute audit verify` on the log and "
        "restore it from a copy you trust\n"
    )


@pytest.mark.parametrize("as_json", [False, True])
def test_show_of_an_edited_column_prints_the_hashed_text_warns_and_exits_1(
    audit_db: Path, capsys: pytest.CaptureFixture[str], as_json: bool
) -> None:
    """A column edited: show prints what the hashed text says, warns naming the record, exit 1.

    Review R36 F2: `UPDATE decisions SET case_id = ...` and `audit show` printed the forged
    case as the truth, exit 0, while verify said TAMPERED (and --json printed the text's).
    """
    decision_id = request_decision_id("r1", 0)
    at = ("--audit-db", str(audit_db))
    form = ("--json",) if as_json else ()
    code, before, err = _run(capsys, "audit", "show", decision_id, *at, *form)
    assert (code, err) == (0, "")
    with closing(sqlite3.connect(audit_db)) as conn, conn:
        conn.execute(
            "UPDATE decisions SET case_id = 'FORGED', request_id = 'r-forged', "
            "caller = 'forger' WHERE seq = 2"
        )
    code, out, err = _run(capsys, "audit", "show", decision_id, *at, *form)
    edited = "was edited or moved: its content no longer matches its hash"
    assert (code, out, err) == (1, before, _show_warning(2, decision_id, edited))
    assert "FORGED" not in out
    assert "forge" not in out


def test_show_of_a_column_equal_in_other_bytes_warns_naming_the_column(
    audit_db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An input column meaning the same in other bytes (a space) is named as verify names it."""
    decision_id = request_decision_id("r0", 0)
    with closing(sqlite3.connect(audit_db)) as conn, conn:
        conn.execute("UPDATE decisions SET input = replace(input, '{', '{ ') WHERE seq = 1")
    code, out, err = _run(capsys, "audit", "show", decision_id, "--audit-db", str(audit_db))
    problem = "was edited: its input column is not byte for byte what its hashed text holds"
    assert (code, out.splitlines()[0], err) == (
        1,
        f"Audit record 1: decision {decision_id}",
        _show_warning(1, decision_id, problem),
    )
    code, out, _ = _run(capsys, "audit", "verify", "--audit-db", str(audit_db))
    assert (code, out.startswith(f"TAMPERED: record 1 {problem}")) == (1, True)


def test_show_looked_up_by_an_edited_decision_id_names_the_hashed_one(
    audit_db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A row found under a forged decision_id shows and names the id its text holds, exit 1."""
    decision_id = request_decision_id("r2", 0)
    with closing(sqlite3.connect(audit_db)) as conn, conn:
        conn.execute("UPDATE decisions SET decision_id = 'dec_forged' WHERE seq = 3")
    code, out, err = _run(capsys, "audit", "show", "dec_forged", "--audit-db", str(audit_db))
    edited = "was edited or moved: its content no longer matches its hash"
    assert (code, out.splitlines()[0], err) == (
        1,
        f"Audit record 3: decision {decision_id}",
        _show_warning(3, decision_id, edited),
    )


def test_export_filters_by_time_and_case(
    audit_db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`audit export` writes one JSON record per line, within [since, until) and for a case."""
    since = (NOW + timedelta(minutes=30)).isoformat()
    code, out, err = _run(capsys, "audit", "export", "--audit-db", str(audit_db), "--since", since)
    rows = [json.loads(line) for line in out.splitlines()]
    assert (code, [r["decision"]["case_id"] for r in rows], err) == (
        0,
        ["C1", "C2"],
        "exported 2 decision(s)\n",
    )
    with closing(sqlite3.connect(audit_db)) as conn:
        stored = dict(conn.execute("SELECT case_id, record_hash FROM decisions").fetchall())
    assert [r["record_hash"] for r in rows] == [stored["C1"], stored["C2"]]
    _, out, _ = _run(capsys, "audit", "export", "--audit-db", str(audit_db), "--case-id", "C0")
    assert [json.loads(line)["decision"]["decision_id"] for line in out.splitlines()] == [
        request_decision_id("r0", 0)
    ]
    code, _, err = _run(capsys, "audit", "export", "--audit-db", str(audit_db), "--until", "x")
    assert (code, err) == (
        2,
        (
            "caseroute: --until 'x' is not an RFC 3339 instant YYYY-MM-DDTHH:MM:SS[.fraction] "
            "ending in Z or +HH:MM / -HH:MM; e.g. 2026-11-21T10:00:00Z\n"
        ),
    )


def _export_warning(seq: int, decision_id: str, edits: int = 1) -> str:
    """The warning `audit export` writes for records whose row fails its checks."""
    return (
        f"caseroute: WARNING: {edits} record(s) exported from a row edited after it was "
        f"recorded (first: record {seq} was edited or moved: its content no longer matches its "
        f"hash (decision {decision_id!r})); their values are read from the hashed "
        "text, never from the columns beside it, but do not rely on them (nor on which records "
        "--case-id, --since or --until selected): run `caseroute audit verify` on the log and "
        "restore it from a copy you trust\n"
    )


def test_export_of_an_edited_column_writes_the_hashed_text_warns_and_exits_1(
    audit_db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A column edited: export writes what the hashed text says, warns naming the record, exit 1.

    It wrote each line from the columns: `UPDATE decisions SET case_id = 'FORGED'` was exported
    as the record's case id, exit 0 (noticed in stop 37, as `audit show` was fixed).
    """
    at = ("--audit-db", str(audit_db))
    code, before, err = _run(capsys, "audit", "export", *at)
    assert (code, err) == (0, "exported 3 decision(s)\n")
    with closing(sqlite3.connect(audit_db)) as conn, conn:
        conn.execute(
            "UPDATE decisions SET case_id = 'FORGED', request_id = 'r-forged', "
            "caller = 'forger' WHERE seq = 2"
        )
    code, out, err = _run(capsys, "audit", "export", *at)
    assert (code, out, err) == (
        1,
        before,
        "exported 3 decision(s)\n" + _export_warning(2, request_decision_id("r1", 0)),
    )
    assert "forge" not in out.lower()


def test_export_of_a_record_it_cannot_rebuild_warns_and_exits_1(
    audit_db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Every line is still written, but a record exported without its decision is named, exit 1.

    It said `exported 3 decision(s)` and exited 0 (review R34c F2/F3), and the file then
    crashed `replay --input`; `audit show` of the same record exits 1 naming it.
    """
    with closing(sqlite3.connect(audit_db)) as conn, conn:
        conn.execute(
            "UPDATE decisions SET content = replace(content, '\"deciding_rule_id\"', "
            "'\"deciding_rule_idx\"') WHERE seq = 2"
        )
    code, out, err = _run(capsys, "audit", "export", "--audit-db", str(audit_db))
    rows = [json.loads(line) for line in out.splitlines()]
    undecided = (
        "caseroute: WARNING: 1 record(s) exported without their decision (first: record 2, "
        f"decision {request_decision_id('r1', 0)!r}): the decision log cannot rebuild them "
        "(their stored decision or the ruleset source they were decided with was edited "
        "or lost); run `caseroute audit verify` on the log\n"
    )
    assert (code, [r["seq"] for r in rows], ["decision" in r for r in rows], err) == (
        1,
        ["1", "2", "3"],  # int64 as protobuf's JSON mapping writes it
        [True, False, True],
        "exported 3 decision(s)\n" + _export_warning(2, request_decision_id("r1", 0)) + undecided,
    )
    code, _, err = _run(capsys, "audit", "export", "--audit-db", str(audit_db), "--case-id", "C0")
    assert (code, err) == (0, "exported 1 decision(s)\n")  # the damaged record not among them


def test_verify_passes_then_names_the_edited_record(
    audit_db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`audit verify` exits 0 on an intact log, 1 naming the record after an edit."""
    code, out, _ = _run(capsys, "audit", "verify", "--audit-db", str(audit_db))
    head = _head(audit_db)
    assert (code, out.splitlines()[0]) == (
        0,
        (
            f"ok: 3 record(s), every link and blob verified; head {head} "
            "(keep it elsewhere and pass it as --expect-head next time)"
        ),
    )
    code, out, _ = _run(
        capsys, "audit", "verify", "--audit-db", str(audit_db), "--expect-head", head
    )
    assert code == 0
    with closing(sqlite3.connect(audit_db)) as conn:
        conn.execute("UPDATE decisions SET case_id = 'C9' WHERE seq = 2")
        conn.commit()
    code, out, _ = _run(capsys, "audit", "verify", "--audit-db", str(audit_db))
    assert (code, out) == (
        1,
        (
            "TAMPERED: record 2 was edited or moved: its content no longer matches its hash "
            f"(decision {request_decision_id('r1', 0)}); checked 2 record(s)\n"
        ),
    )


def test_verify_with_expect_head_detects_a_rewritten_tail(
    audit_db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Dropping the last record and rewinding the head fools the chain, not --expect-head."""
    head = _head(audit_db)
    with closing(sqlite3.connect(audit_db)) as conn:
        prev = conn.execute("SELECT record_hash FROM decisions WHERE seq = 2").fetchone()[0]
        conn.execute("DELETE FROM decisions WHERE seq = 3")
        conn.execute("UPDATE chain_head SET seq = 2, record_hash = ?", (prev,))
        conn.commit()
    code, out, _ = _run(capsys, "audit", "verify", "--audit-db", str(audit_db))
    assert code == 0  # internally consistent: only an external anchor can tell
    code, out, _ = _run(
        capsys, "audit", "verify", "--audit-db", str(audit_db), "--expect-head", head
    )
    assert (code, out) == (
        1,
        (
            f"TAMPERED: the chain verifies internally but ends at {_head(audit_db)}, before the "
            f"{head} recorded earlier (records truncated)\n"
        ),
    )


def test_verify_passes_a_head_kept_before_the_log_grew(
    audit_db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A live log grows past a kept head: it passes while the entry at its seq is unchanged."""
    kept = _head(audit_db)
    core = audited_core(REGISTRY, audit_db.parent)
    for i in range(2):
        core.decide(
            DecideCommand(f"later{i}", "", "", (make_case(case_id=f"L{i}"),), make_roster(), NOW)
        )
    core.audit.close()
    code, out, _ = _run(
        capsys, "audit", "verify", "--audit-db", str(audit_db), "--expect-head", kept
    )
    assert (code, out.splitlines()[:2]) == (
        0,
        [
            (
                f"ok: 5 record(s), every link and blob verified; head {_head(audit_db)} (keep "
                "it elsewhere and pass it as --expect-head next time)"
            ),
            f"the head kept earlier, {kept}, is in the chain: 2 entry(ies) appended since",
        ],
    )


def test_verify_refuses_a_kept_head_whose_entry_has_another_hash(
    audit_db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A kept head naming an entry the chain holds with another hash is TAMPERED, exit 1."""
    with closing(sqlite3.connect(audit_db)) as conn:
        (actual,) = conn.execute("SELECT record_hash FROM decisions WHERE seq = 2").fetchone()
    kept = "2:" + "a" * 64
    code, out, _ = _run(
        capsys, "audit", "verify", "--audit-db", str(audit_db), "--expect-head", kept
    )
    assert (code, out) == (
        1,
        (
            f"TAMPERED: the chain verifies internally but its entry 2 is 2:{actual}, not the "
            f"{kept} recorded earlier (records rewritten)\n"
        ),
    )


@pytest.mark.parametrize(
    "kept",
    [
        "not-a-head",
        "3:" + "A" * 64,
        "3:9f86d0",
        "03:" + "a" * 64,
        " 3:" + "a" * 64,
        "3:" + "a" * 63 + "g",
    ],
)
def test_verify_refuses_a_malformed_expect_head_as_usage(
    audit_db: Path, capsys: pytest.CaptureFixture[str], kept: str
) -> None:
    """A value that is not SEQ:64 lower-case hex exits 2 saying the form; nothing verified."""
    with pytest.raises(SystemExit) as exited:
        main(["audit", "verify", "--audit-db", str(audit_db), "--expect-head", kept])
    captured = capsys.readouterr()
    assert (exited.value.code, captured.out, captured.err.splitlines()[-1]) == (
        2,
        "",
        (
            f"caseroute audit verify: error: argument --expect-head: {kept!r} is not a head as "
            "`caseroute audit verify` prints it: SEQ:HASH, the entry's number, a colon and its "
            "64 lower-case hex digits (e.g. 1234:9f86d0...); pass the whole head you kept"
        ),
    )


def test_missing_log_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Pointing at no file says so and how to fix it (and does not create one)."""
    code, _, err = _run(capsys, "audit", "verify", "--audit-db", str(tmp_path / "none.db"))
    assert (code, err) == (
        2,
        (
            f"caseroute: no decision log at {tmp_path / 'none.db'}; pass --audit-db "
            "(or $CASEROUTE_AUDIT_DB) pointing at the server's log\n"
        ),
    )
    assert not (tmp_path / "none.db").exists()


def test_rules_check_warns_about_masked_fields(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`rules check` warns at the rule's line when it reads a masked field; bad paths refused."""
    text = ruleset_with_rules(
        "  - id: vip\n    when: \"case.attributes.mrn == 'x'\"\n"
        "    then: {route: {queue: by_intent}}\n"
        "  - id: rest\n    when: true\n    then: {route: {queue: by_intent}}\n"
    ).replace("owner: tests\n", "owner: tests\nattributes: {mrn: string}\n")
    path = tmp_path / "ruleset.yaml"
    path.write_text(text)
    line = text.splitlines().index("  - id: vip") + 1
    code, out, _ = _run(capsys, "rules", "check", str(path))
    assert code == 0
    assert (
        f"{path}:{line}: warning audit.masked_field [rule vip]: rule reads `case.attributes.mrn`"
        in out
    )
    flags = ("--audit-masked-fields", "case.attributes.notes")
    code, out, _ = _run(capsys, "rules", "check", str(path), *flags)
    assert (code, "audit.masked_field" in out) == (0, False)
    code, _, err = _run(capsys, "rules", "check", str(path), "--audit-masked-fields", "roster.x")
    assert code == 2
    assert "invalid masked field path(s): 'roster.x'" in err


def test_masking_key_file_is_created_private_and_checked(tmp_path: Path) -> None:
    """The key file is made 0600 with a fresh key; a readable or malformed key is refused."""
    path = tmp_path / "keys" / "audit.key"
    key = load_key(path, None)
    assert len(key) == 32
    assert path.stat().st_mode & 0o777 == 0o600
    assert load_key(path, None) == key
    path.chmod(0o644)
    with pytest.raises(ConfigError, match="chmod 600"):
        load_key(path, None)
    with pytest.raises(ConfigError, match="must be hex"):
        load_key(path, "not-hex")
    with pytest.raises(ConfigError, match="at least 16"):
        load_key(path, "abcd")
    assert load_key(path, "00" * 16) == bytes(16)


def _ruleset_event(n: int, **overrides: str) -> RulesetEvent:
    """Event ``evt_<n>``: admin:ops activated test@<n+1> over test@<n>."""
    values: dict[str, object] = {
        "seq": 0,
        "event_id": f"evt_{n}",
        "recorded_at": f"2026-11-21T1{n}:00:00Z",
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


def _add_events(audit_db: Path, *events: RulesetEvent) -> list[RulesetEvent]:
    store = SqliteAuditStore(audit_db)
    try:
        return store.append_events(events)
    finally:
        store.close()


def test_events_lists_lifecycle_events_in_chain_order(
    audit_db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`audit events` prints seq, time, action, actor, ruleset, role and from -> to versions."""
    _add_events(
        audit_db,
        _ruleset_event(1, action="load", actor="startup", from_version="", from_sha256=""),
        _ruleset_event(2, ruleset_name="other", role="shadow", to_version="", to_sha256=""),
    )
    code, out, _ = _run(capsys, "audit", "events", "--audit-db", str(audit_db))
    assert (code, out.splitlines()) == (
        0,
        [
            "seq 4 2026-11-21T11:00:00Z load by startup: test active (none) -> 2 (bbbbbbbbbbbb)",
            (
                "seq 5 2026-11-21T12:00:00Z activate by admin:ops: other shadow "
                "2 (aaaaaaaaaaaa) -> (none)"
            ),
        ],
    )
    code, out, _ = _run(
        capsys, "audit", "events", "--audit-db", str(audit_db), "--ruleset", "other"
    )
    assert (code, len(out.splitlines())) == (0, 1)


def test_events_json_holds_the_whole_sealed_events(
    audit_db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`audit events --format json` is one document with every field, hashes included."""
    (stored,) = _add_events(audit_db, _ruleset_event(1))
    code, out, _ = _run(capsys, "audit", "events", "--audit-db", str(audit_db), "--format", "json")
    assert (code, json.loads(out)) == (0, {"events": [stored.as_dict()]})
    assert stored.as_dict()["kind"] == "ruleset_event"


def test_events_on_a_log_without_any(audit_db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """No events: one line saying when a server records them, exit 0."""
    code, out, _ = _run(capsys, "audit", "events", "--audit-db", str(audit_db), "--ruleset", "x")
    assert (code, out) == (
        0,
        (
            "no ruleset events recorded for ruleset x: a server records one per load, reload, "
            "activation and rollback\n"
        ),
    )


def test_verify_walks_events_and_names_a_tampered_one(
    audit_db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`audit verify` counts events in the chain and names an edited event by seq and id."""
    _add_events(audit_db, _ruleset_event(1), _ruleset_event(2))
    code, out, _ = _run(capsys, "audit", "verify", "--audit-db", str(audit_db))
    assert (code, out.splitlines()[0]) == (
        0,
        (
            f"ok: 5 record(s) (2 of them ruleset event(s)), every link and blob verified; head "
            f"{_head(audit_db)} (keep it elsewhere and pass it as --expect-head next time)"
        ),
    )
    with closing(sqlite3.connect(audit_db)) as conn:
        conn.execute("UPDATE ruleset_events SET actor = 'admin:someone' WHERE seq = 4")
        conn.commit()
    code, out, _ = _run(capsys, "audit", "verify", "--audit-db", str(audit_db))
    assert (code, out) == (
        1,
        (
            "TAMPERED: event seq 4 was edited or moved: its content no longer matches its hash "
            "(ruleset event evt_1); checked 4 record(s)\n"
        ),
    )


def test_events_text_cannot_drive_the_terminal(
    audit_db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An actor identity holding escape sequences is printed with them made visible."""
    _add_events(audit_db, _ruleset_event(1, actor="admin:\x1b]0;pwned\x07"))
    code, out, _ = _run(capsys, "audit", "events", "--audit-db", str(audit_db))
    assert (code, out) == (
        0,
        (
            "seq 4 2026-11-21T11:00:00Z activate by admin:\\x1b]0;pwned\\x07: test active "
            "1 (aaaaaaaaaaaa) -> 2 (bbbbbbbbbbbb)\n"
        ),
    )


def test_verify_says_tampered_for_a_record_that_does_not_rebuild_mid_walk(
    audit_db: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A row that is no record while verify walks: TAMPERED naming it, exit 1 (R29b F7).

    Stands for a seq read back as no int (e.g. a PostgreSQL ``seq`` column altered to a float
    type); one altered to text fails verify's SQL first ("cannot be read", no traceback).
    """
    from caseroute.audit import sql_reads
    from caseroute.audit.sql_rows import RecordRow, record_from_row

    real = record_from_row

    def damaged(row: RecordRow) -> object:
        record = real(row)
        if record.seq == 2:
            return real((str(record.seq), *row[1:]))  # as a text-typed column reads
        return record

    monkeypatch.setattr(sql_reads, "record_from_row", damaged)  # where SqlLogReads looks it up
    code, out, _ = _run(capsys, "audit", "verify", "--audit-db", str(audit_db))
    assert (code, out.startswith("TAMPERED: the seq of decision ")) == (1, True), out
    assert "is not a number in the decision log" in out


def test_ctrl_c_ends_a_command_with_one_line_and_exit_130(
    audit_db: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """KeyboardInterrupt mid-command: no traceback, one line on stderr, 130 as shells expect."""

    def interrupted(*_: object, **__: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(verify, "verify_chain", interrupted)
    code, out, err = _run(capsys, "audit", "verify", "--audit-db", str(audit_db))
    assert (code, out, err) == (
        130,
        "",
        "caseroute: interrupted; any output printed is incomplete\n",
    )


def test_an_instant_flag_beyond_utc_is_told_its_range(
    audit_db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`--until 9999-12-31T23:00:00-05:00` is well formed; UTC cannot hold it: say the range."""
    until = "9999-12-31T23:00:00-05:00"
    code, _, err = _run(capsys, "audit", "export", "--audit-db", str(audit_db), "--until", until)
    assert (code, err) == (
        2,
        (
            f"caseroute: --until '{until}' must be from 0001-01-01T00:00:00Z to "
            "9999-12-31T23:59:59.999999999Z once converted to UTC (the range of a protobuf "
            "Timestamp)\n"
        ),
    )
