"""``stream_check.record_as_hashed``: what `audit show` prints and whether the row holds."""

from __future__ import annotations

from pathlib import Path

from caseroute.audit.stream_check import record_as_hashed
from caseroute.testing import audit_config, make_audit_record


def test_a_record_built_in_memory_is_taken_as_it_is_and_judged_by_its_hash() -> None:
    """No stored row to decode: the record itself, and verify's words for its missing hash."""
    record = make_audit_record(1)
    shown, problem = record_as_hashed(record)
    assert shown is record
    assert problem is not None
    assert "no longer matches its hash" in problem


def test_a_stored_record_is_decoded_from_its_text_and_holds(tmp_path: Path) -> None:
    """Read back from a log untouched: the same decision, and no problem."""
    store = audit_config(tmp_path).open_store()
    try:
        store.append([make_audit_record(1)])
        (stored,) = store.by_request(make_audit_record(1).request_id)
        shown, problem = record_as_hashed(stored)
    finally:
        store.close()
    assert (shown.decision_id, shown.case_id, problem) == (stored.decision_id, stored.case_id, None)
