"""A log masking `case.attributes` whole is replayed by candidates that read no attribute.

The stored case holds one digest for every attribute. A candidate that declares no attribute
(so no rule or data check of it reads one) decides the same without them; one that declares
any cannot be given them, and the record's reason says what the log masks, why that stops
replay and what to change (review S43a: every record was refused as a field "matching and
signals read", with no advice).
"""

import pytest

from caseroute.audit.store import SqliteAuditStore
from caseroute.engine.case_rules import EngineKind
from caseroute.replay import ReplayOptions, SinkRecords, replay
from tests.replay.recorded import candidate, record_log

PY = ReplayOptions(EngineKind.PYTHON)


@pytest.fixture(scope="module")
def log(tmp_path_factory: pytest.TempPathFactory) -> SqliteAuditStore:
    """The recorded log of tests/replay/recorded.py, its attributes masked whole."""
    return record_log(tmp_path_factory.mktemp("log"), masked_fields=("case.attributes",))


def test_the_log_stores_the_attributes_as_one_digest(log: SqliteAuditStore) -> None:
    """The premise: each stored case's `attributes` is a digest string, not an object."""
    kinds = {type(r.input["case"]["attributes"]).__name__ for r in log.records()}
    assert kinds == {"str"}


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("identity", {"unchanged": 3}),
        ("queue", {"queue_changed": 2, "unchanged": 1}),
    ],
)
def test_a_candidate_declaring_no_attribute_replays_every_record(
    log: SqliteAuditStore, name: str, expected: dict[str, int]
) -> None:
    """Before, every record was not_replayable (masked_field) whatever the candidate read."""
    report = replay(SinkRecords(log), candidate(name), PY)
    assert expected == {c: n for c, n in report.classes if n}


def test_a_candidate_declaring_an_attribute_is_refused_saying_what_to_change(
    log: SqliteAuditStore,
) -> None:
    """The reason names the whole object, the attribute the candidate reads and the setting."""
    report = replay(SinkRecords(log), candidate("masked_read"), PY)
    assert (report.not_replayable, report.reasons) == (3, (("masked_field", 3),))
    reason = dict(report.samples)["not_replayable"][0].reason
    assert reason == (
        "the log masks `case.attributes` whole (one digest for every attribute), and the "
        "candidate declares `case.attributes.notes` (its rules and data checks read it): "
        "replay cannot rebuild the attributes; to replay later records, mask attributes by "
        "name instead (case.attributes.NAME in the recording server's --audit-masked-fields, "
        "[audit] masked_fields), so a record is replayed unless the candidate reads one of them"
    )


def test_the_reason_holds_no_digest_and_no_value(log: SqliteAuditStore) -> None:
    """Reasons name paths and settings only: no attribute value, no digest of one."""
    report = replay(SinkRecords(log), candidate("masked_read"), PY)
    reasons = [s.reason or "" for s in dict(report.samples)["not_replayable"]]
    assert [("call back" in r, "hmac-sha256:" in r) for r in reasons] == [(False, False)] * 3
