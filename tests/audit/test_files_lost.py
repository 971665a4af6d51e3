"""A decision log whose files are deleted under a running writer refuses every write (R31c 2).

SQLite keeps writing a deleted WAL through its open descriptor: decisions committed after
``rm audit.db-wal`` were answered OK, then lost (or left the database malformed) when the
server was killed. The writer now sees the file it wrote is gone and refuses, for good, until
it is restarted; stopping it checkpoints what the open files hold into the database.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from caseroute.audit.store import SqliteAuditStore
from caseroute.domain.errors import AuditUnavailableError
from caseroute.testing import make_audit_record


def _record(n: int) -> object:
    return make_audit_record(n, decision_id=f"dec_lost_{n}", request_id=f"lost-{n}")


@pytest.mark.parametrize("lose", ["wal", "database"])
def test_a_deleted_file_is_refused_for_good_and_the_open_files_are_kept(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, lose: str
) -> None:
    """The write after the deletion is UNAVAILABLE, and so is every later one (no new WAL)."""
    db = tmp_path / "audit.db"
    store = SqliteAuditStore(db)
    store.append([_record(1)])  # type: ignore[list-item]
    wal = db.with_name("audit.db-wal")
    assert wal.exists()
    if lose == "wal":
        wal.unlink()
    else:
        db.rename(tmp_path / "moved.db")
    caplog.set_level(logging.ERROR, logger="caseroute.audit")
    for n in (2, 3):
        with pytest.raises(AuditUnavailableError):
            store.append([_record(n)])  # type: ignore[list-item]
    lost = [r.getMessage() for r in caplog.records if "AUDIT FILES LOST" in r.getMessage()]
    assert len(lost) == 1, lost  # found once; later writes are refused without looking again
    what = "its write-ahead log (-wal)" if lose == "wal" else "the database file"
    assert f"{what} was deleted or replaced while the server was writing to it" in lost[0]
    if lose == "wal":
        assert not wal.exists()  # the refused writes made no new WAL beside the lost one
    store.close()
    if lose == "wal":
        reopened = SqliteAuditStore(db, readonly=True)
        try:  # closing checkpointed the deleted WAL's record into the database
            assert [r.decision_id for r in reopened.records()] == ["dec_lost_1"]
        finally:
            reopened.close()


def test_an_untouched_log_keeps_writing(tmp_path: Path) -> None:
    """Control: the checks pass on every transaction of a log nobody touches."""
    store = SqliteAuditStore(tmp_path / "audit.db")
    try:
        for n in range(1, 6):
            store.append([_record(n)])  # type: ignore[list-item]
        assert store.head()[0] == 5
    finally:
        store.close()


def test_writes_refused_after_the_loss_log_one_line_each_without_a_traceback(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The cause once, when found; then one line per refused write, no traceback (no flood).

    Review of stop 38: every call refused after ``rm audit.db-wal`` logged a full traceback.
    """
    db = tmp_path / "audit.db"
    store = SqliteAuditStore(db)
    store.append([_record(1)])  # type: ignore[list-item]
    db.with_name("audit.db-wal").unlink()
    caplog.set_level(logging.ERROR, logger="caseroute.audit")
    for n in (2, 3, 4):
        with pytest.raises(AuditUnavailableError):
            store.append([_record(n)])  # type: ignore[list-item]
    store.close()
    lines = [(r.getMessage(), r.exc_info is not None) for r in caplog.records]
    refused = [line for line in lines if line[0].startswith("AUDIT WRITE")]
    assert [line[0].split(" on ")[0] for line in lines if "AUDIT" in line[0]] == [
        "AUDIT FILES LOST",
        "AUDIT WRITE REFUSED (1 calls)",
        "AUDIT WRITE REFUSED (1 calls)",
        "AUDIT WRITE REFUSED (1 calls)",
    ]
    assert {with_traceback for _, with_traceback in refused} == {False}
    assert all("restart the server" in message for message, _ in refused)
