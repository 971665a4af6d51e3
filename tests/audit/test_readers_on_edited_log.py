"""Every reader of a SQLite log, on a log with one stored value edited: a message, never a crash.

Review R28 edited every TEXT value of every table, one at a time, and ran every reader. With
non-UTF-8 bytes read back as raw bytes (the first fix of "cannot be read"), 32 runs ended in a
traceback (events JSON, report, shadow-report, replay, show, and verify on older rows); BLOB
and integer values crashed 25 and 24 runs before either fix. Now such a value reads as
``EditedText`` (a value edited into a BLOB too), JSON columns that are no object read as {}, and
a shadow result or record that does not rebuild is a ``RecordDamagedError`` naming it; verify
reports every edit of a chained table.
"""

from __future__ import annotations

import contextlib
import io
import shutil
import sqlite3
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import pytest

from caseroute.audit import store as store_module
from caseroute.audit.record import ShadowResult
from caseroute.cli import main
from tests.replay.recorded import CANDIDATES, record_log
from tests.test_cli_audit import _ruleset_event

LIVE = {"outcome": "ASSIGN", "agent_id": "a1", "queue": "clinical", "priority": "normal"}
CHAINED = ("decisions", "ruleset_events", "blobs", "chain_head")
EDITS = {
    "not UTF-8": "CAST(X'C328' || {column} AS TEXT)",
    "a BLOB": "CAST(X'C328' || CAST({column} AS BLOB) AS BLOB)",
    "a number": "7",
    "text": "'x'",
}


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A log with every table holding a row, and beside it a rulesets directory (test@2).

    3 decisions (a batch with assigned_before, and one alone), 2 ruleset events, a shadow
    result and a dropped count.
    """
    root = tmp_path_factory.mktemp("edited")
    store = record_log(root)
    store.append_events([_ruleset_event(1), _ruleset_event(2)])
    store.append_shadow(
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
    store.close()
    (root / "rulesets" / "test" / "2").mkdir(parents=True)
    (root / "rulesets" / "test" / "2" / "ruleset.yaml").write_text(CANDIDATES["identity"])
    return root


def _columns(kind: str = "TEXT") -> Iterator[tuple[str, str]]:
    """Every (table, column of ``kind``) of a log's schema."""
    with closing(sqlite3.connect(":memory:")) as conn:
        conn.executescript(store_module._SCHEMA)
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        for table in tables:
            for _, name, declared, _, _, key in conn.execute(f"PRAGMA table_info({table})"):
                # An INTEGER PRIMARY KEY is the rowid itself: SQLite refuses anything else there.
                if declared.upper() == kind and not (key and kind == "INTEGER"):
                    yield table, name


def _run(*argv: str) -> tuple[int, str]:
    """``caseroute argv``: its exit code and output; whatever it raises fails the test."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(argv))
    return code, out.getvalue() + err.getvalue()


def _readers(db: Path, rulesets: Path, decision_id: str) -> list[list[str]]:
    at = ["--audit-db", str(db)]
    return [
        ["audit", "export", *at],
        ["audit", "events", *at],
        ["audit", "events", "--format", "json", *at],
        ["audit", "show", decision_id, *at],
        ["audit", "show", decision_id, "--json", *at],
        ["report", *at],
        ["report", "--format", "json", *at],
        ["rules", "shadow-report", "test", *at],
        [
            "replay",
            *at,
            *("--rulesets", str(rulesets), "--engine", "python", "--workers", "1"),
            *("--candidate", "test@2", "--format", "json"),
        ],
    ]


@pytest.mark.parametrize(
    ("table", "column", "edit"),
    [(t, c, e) for t, c in _columns() for e in EDITS]
    + [(t, c, "text") for t, c in _columns("INTEGER")],
)
def test_every_reader_answers_and_verify_names_the_edit(
    base: Path, tmp_path: Path, table: str, column: str, edit: str
) -> None:
    """The first row's value edited: each reader exits with a code; verify says TAMPERED.

    INTEGER columns get text (SQLite keeps it): that crashed verify (the head's seq), show (a
    key era's first record) and shadow-report (a dropped count) before.
    """
    shutil.copytree(base, tmp_path / "log")
    db = tmp_path / "log" / "audit.db"
    with closing(sqlite3.connect(db)) as conn, conn:
        (decision_id,) = conn.execute("SELECT decision_id FROM decisions WHERE seq = 1").fetchone()
        value = EDITS[edit].format(column=column)  # "text" is only for INTEGER columns
        first = f"(SELECT min(rowid) FROM {table})"
        assert conn.execute(f"UPDATE {table} SET {column} = {value} WHERE rowid = {first}").rowcount
    for argv in _readers(db, tmp_path / "log" / "rulesets", decision_id):
        code, output = _run(*argv)
        assert code in (0, 1), (argv, output)
        assert "Traceback" not in output
    code, output = _run("audit", "verify", "--audit-db", str(db))
    if table in CHAINED:
        assert (code, output[:10]) == (1, "TAMPERED: "), output
