"""The idempotency read (``by_request``): a thread's kept connection never answers stale."""

from pathlib import Path

from caseroute.audit.store import SqliteAuditStore
from caseroute.testing import make_audit_record


def test_a_kept_read_connection_sees_another_writers_commit(tmp_path: Path) -> None:
    """A request absent, then committed by another store on the file (a worker), is found."""
    path = tmp_path / "audit.db"
    reader, other = SqliteAuditStore(path), SqliteAuditStore(path)
    try:
        assert reader.by_request("req1") == []  # this thread's connection is now open and kept
        (appended,) = other.append([make_audit_record(1)])
        assert [r.record_hash for r in reader.by_request("req1")] == [appended.record.record_hash]
        assert reader.get("dec_1") == appended.record
        assert (reader.by_request("req2"), reader.get("dec_2")) == ([], None)
    finally:
        reader.close()
        other.close()
