"""The decision log stores exactly the text it hashed, and verify hashes what it reads."""

import hashlib
import json
import sqlite3
from contextlib import closing
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from caseroute.audit.record import (
    GENESIS,
    AuditRecord,
    chain_hash,
    encode_record,
    hashed_text,
    seal,
)
from caseroute.audit.store import RECORD_COLUMNS, SqliteAuditStore, record_from_row
from caseroute.audit.verify import verify_chain
from caseroute.cli import main
from caseroute.domain.fingerprint import canonical_json
from caseroute.engine.case_rules import EngineKind
from caseroute.service import DecideCommand, load_registry
from caseroute.testing import (
    NOW,
    REFERENCE_RULESET,
    audited_core,
    make_agent,
    make_audit_record,
    make_case,
    make_roster,
)

EDITED = "record {} was edited or moved: its content no longer matches its hash"

# The decisions table exactly as the commit before the hashed text was stored created it
# (acbffce, src/caseroute/audit/store.py): ``input`` and ``decision`` held json.dumps(...,
# sort_keys=True) of the values, and no column held the text that was hashed.
OLD_DECISIONS = """
CREATE TABLE decisions (
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
    now_us INTEGER NOT NULL
);
CREATE INDEX decisions_request ON decisions (request_id);
CREATE INDEX decisions_case ON decisions (case_id, seq);
CREATE INDEX decisions_now ON decisions (now_us);
CREATE INDEX decisions_ruleset ON decisions (ruleset_name, ruleset_version);
"""
OLD_COLUMNS = RECORD_COLUMNS[:16]


def _record(n: int, **overrides: Any) -> AuditRecord:
    values: dict[str, Any] = {
        "decision_id": f"dec_{n}",
        "case_id": f"Ç{n} \u202e",
        "input": {"case": {"case_id": f"Ç{n}", "x": [1.5, None, True]}, "roster": {}},
        "decision": {"outcome": "ASSIGN", "n": n, "text": 'naïve \U0001f600 "q" \\'},
    }
    values.update(overrides)
    return make_audit_record(n, **values)


def _rows(path: Path, sql: str) -> list[Any]:
    with closing(sqlite3.connect(path)) as conn:
        return conn.execute(sql).fetchall()


def _tamper(path: Path, sql: str, *params: object) -> None:
    with closing(sqlite3.connect(path)) as conn:
        conn.execute(sql, params)
        conn.commit()


def _verify(path: Path) -> tuple[bool, int, str | None]:
    store = SqliteAuditStore(path, readonly=True)
    try:
        report = verify_chain(store.records(), store.head())
    finally:
        store.close()
    return report.ok, report.seq, report.problem


@pytest.fixture
def log(tmp_path: Path) -> Path:
    """A log holding three records with non-ASCII, escaped and nested values."""
    store = SqliteAuditStore(tmp_path / "audit.db")
    store.append([_record(1), _record(2)])
    store.append([_record(3)])
    store.close()
    return tmp_path / "audit.db"


def test_encoding_once_gives_the_canonical_json_of_the_content() -> None:
    """The text built before the writer places a record is canonical_json(content) at any seq."""
    record = _record(7, caller="spiffe://x/ü", ruleset_version="2025.06.0")
    encoded = encode_record(record)
    for seq in (1, 9, 10, 123456789):
        placed = seal(record, seq, GENESIS)
        assert canonical_json(placed.content()) == hashed_text(encoded, seq)
    assert canonical_json(record.input) == encoded.input_text
    assert max(record.content()) == "seq"  # the text's last key: the writer only appends it


def test_the_row_holds_exactly_the_hashed_text(log: Path) -> None:
    """The stored text hashes (with prev_hash) to record_hash; input is its canonical copy."""
    rows = _rows(log, "SELECT seq, content, prev_hash, record_hash, input, decision FROM decisions")
    store = SqliteAuditStore(log, readonly=True)
    records = list(store.records())
    store.close()
    for (seq, text, prev, record_hash, input_text, decision), record in zip(
        rows, records, strict=True
    ):
        assert hashlib.sha256((prev + text).encode()).hexdigest() == record_hash
        assert canonical_json(record.content()) == text
        assert (seq, canonical_json(record.input), "") == (record.seq, input_text, decision)
        assert text == record.hashed_text
    assert [r.case_id for r in records] == ["Ç1 \u202e", "Ç2 \u202e", "Ç3 \u202e"]
    assert records[2].decision["text"] == 'naïve \U0001f600 "q" \\'


def test_appended_and_read_records_are_equal_and_carry_the_text(tmp_path: Path) -> None:
    """`append` returns what `get` reads back, both with the stored text; replace drops the text."""
    store = SqliteAuditStore(tmp_path / "audit.db")
    (appended,) = store.append([_record(1)])
    read = store.get("dec_1")
    store.close()
    assert read == appended.record
    assert read is not None
    assert read.hashed_text == appended.record.hashed_text
    assert read.hashed_text == canonical_json(read.content())
    assert replace(read, case_id="other").hashed_text is None


@pytest.mark.parametrize(
    ("sql", "params"),
    [
        # Re-encoding the parsed text would normalise each of these away: only hashing the
        # stored bytes sees them.
        ("UPDATE decisions SET content = replace(content, ',\"seq\":', ', \"seq\":')", ()),
        ("UPDATE decisions SET content = replace(content, '\"n\":2', '\"n\":2.0')", ()),
        ("UPDATE decisions SET content = replace(content, 'ASSIGN', 'ASSIG\\u004e')", ()),
        ('UPDATE decisions SET content = replace(content, \'{"caller"\', \'{"n":1,"caller"\')', ()),
    ],
    ids=["whitespace", "number-spelling", "escape", "duplicate-key"],
)
def test_verify_hashes_the_stored_bytes(log: Path, sql: str, params: tuple[object, ...]) -> None:
    """A byte edit of the stored text that parses to the same record is still named."""
    _tamper(log, sql + " WHERE seq = 2", *params)
    assert _verify(log) == (False, 2, EDITED.format(2))


@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE decisions SET case_id = 'C9'",
        "UPDATE decisions SET request_sha256 = 'x'",
        'UPDATE decisions SET input = \'{"case":{},"roster":{}}\'',
        'UPDATE decisions SET decision = \'{"outcome":"QUEUE"}\'',
        "UPDATE decisions SET content = NULL",
        "UPDATE decisions SET content = 'not json'",
        "UPDATE decisions SET content = '[1]'",
    ],
    ids=[
        "case_id",
        "request_sha256",
        "input",
        "decision",
        "text-removed",
        "text-garbled",
        "text-not-an-object",
    ],
)
def test_verify_checks_every_column_against_the_text(log: Path, sql: str) -> None:
    """A column that no longer says what the hashed text says is named as an edit."""
    _tamper(log, sql + " WHERE seq = 2")
    assert _verify(log) == (False, 2, EDITED.format(2))


def _decided_log(directory: Path) -> Path:
    """A log written by the service: two full and one summary decision, masked PHI."""
    core = audited_core(load_registry(REFERENCE_RULESET.parent, EngineKind.PYTHON), directory)
    roster = make_roster(make_agent("a1"), make_agent("a2", territories=frozenset({"US-CA"})))
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
    return directory / "audit.db"


def _to_old_format(path: Path) -> None:
    """Rewrite a log's decisions as the previous commit stored them (no hashed text)."""
    with closing(sqlite3.connect(path)) as conn:
        rows = conn.execute(
            f"SELECT {', '.join(OLD_COLUMNS)}, now_us, content FROM decisions ORDER BY seq"
        ).fetchall()
        conn.execute("DROP TABLE decisions")
        conn.executescript(OLD_DECISIONS)
        for *values, now_us, text in rows:
            content = json.loads(text)
            values[OLD_COLUMNS.index("input")] = json.dumps(content["input"], sort_keys=True)
            values[OLD_COLUMNS.index("decision")] = json.dumps(content["decision"], sort_keys=True)
            conn.execute(
                f"INSERT INTO decisions ({', '.join(OLD_COLUMNS)}, now_us) "
                f"VALUES ({', '.join('?' * 17)})",
                (*values, now_us),
            )
        conn.commit()


def _cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    return code, capsys.readouterr().out


def test_an_old_format_log_verifies_shows_and_exports_as_before(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A log without hashed text reads as the same records: verify, show, export agree."""
    new = _decided_log(tmp_path / "new")
    old = _decided_log(tmp_path / "old")
    _to_old_format(old)
    assert [c[1] for c in _rows(old, "PRAGMA table_info(decisions)")] == [*OLD_COLUMNS, "now_us"]
    outputs = {}
    for name, path in (("new", new), ("old", old)):
        db = ("--audit-db", str(path))
        verified = _cli(capsys, "audit", "verify", *db)
        exported = _cli(capsys, "audit", "export", *db)
        ids = [json.loads(line)["decision"]["decision_id"] for line in exported[1].splitlines()]
        shows = [_cli(capsys, "audit", "show", i, *db) for i in ids]
        outputs[name] = (verified[0], verified[1].split("; head")[0], exported, shows)
    assert outputs["old"] == outputs["new"]
    assert outputs["old"][:2] == (0, "ok: 3 record(s), every link and blob verified")
    assert [code for code, _ in outputs["old"][3]] == [0, 0, 0]


def test_an_old_format_log_is_upgraded_and_extended(tmp_path: Path) -> None:
    """A writable open adds the text column; old rows keep verifying, new rows carry text."""
    path = _decided_log(tmp_path)
    _to_old_format(path)
    store = SqliteAuditStore(path)
    before = list(store.records())
    store.append([_record(9, decision_id="dec_new")])
    after = list(store.records())
    store.close()
    assert after[:3] == before
    assert [r.hashed_text is None for r in after] == [True, True, True, False]
    assert _verify(path) == (True, 0, None)
    texts = _rows(path, "SELECT content IS NULL, decision = '' FROM decisions ORDER BY seq")
    assert texts == [(1, 0), (1, 0), (1, 0), (0, 1)]
    _tamper(path, "UPDATE decisions SET decision = replace(decision, 'ASSIGN', 'QUEUE')")
    assert _verify(path) == (False, 1, EDITED.format(1))


def test_record_rows_carry_the_text_and_decode_like_records(log: Path) -> None:
    """A raw row ends with the hashed text and decodes to the record ``records`` gives."""
    store = SqliteAuditStore(log, readonly=True)
    rows = list(store.record_rows())
    records = list(store.records())
    store.close()
    assert [record_from_row(r) for r in rows] == records
    assert [r[RECORD_COLUMNS.index("content")] for r in rows] == [r.hashed_text for r in records]


def test_chain_hash_of_a_sealed_record_matches_its_stored_text(log: Path) -> None:
    """The hash definition did not change: the dict-based chain_hash agrees with the text."""
    store = SqliteAuditStore(log, readonly=True)
    for record in store.records():
        assert chain_hash(record.prev_hash, record.content()) == record.record_hash
    store.close()
