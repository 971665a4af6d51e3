"""replay(): each difference class from a purpose-built candidate, sources, filters, workers."""

from __future__ import annotations

import json
from collections.abc import Iterator
from concurrent.futures.process import BrokenProcessPool
from dataclasses import replace
from pathlib import Path

import pytest

from caseroute.audit.record import AuditRecord, Blob
from caseroute.audit.store import SqliteAuditStore
from caseroute.engine.case_rules import EngineKind
from caseroute.replay import (
    CLASSES,
    ExportedRecords,
    RecordFilter,
    ReplayOptions,
    ReplayReport,
    SinkRecords,
    replay,
    report_data,
)
from caseroute.replay.source import ExportFormatError
from caseroute.testing import NOW, make_audit_record
from tests.replay.recorded import candidate, record_log

PY = ReplayOptions(EngineKind.PYTHON)


@pytest.fixture(scope="module")
def log(tmp_path_factory: pytest.TempPathFactory) -> SqliteAuditStore:
    """The recorded log of tests/replay/recorded.py (C1+C3 batch, C2 urgent)."""
    return record_log(tmp_path_factory.mktemp("log"))


def _counts(report: ReplayReport) -> dict[str, int]:
    return {name: count for name, count in report.classes if count}


def _run(log: SqliteAuditStore, name: str, options: ReplayOptions = PY) -> ReplayReport:
    return replay(SinkRecords(log), candidate(name), options)


EXPECTED_CLASSES = {
    "identity": {"unchanged": 3},
    "queue": {"queue_changed": 2, "unchanged": 1},
    "priority": {"priority_changed": 2, "unchanged": 1},
    "agent": {"agent_changed": 2, "unchanged": 1},
    "deciding_rule": {"deciding_rule_changed": 2, "unchanged": 1},
    "escalation_removed": {
        "outcome_changed": 1,
        "agent_changed": 1,
        "queue_changed": 1,
        "escalation_removed": 1,
        "unchanged": 2,
    },
    "escalation_added": {
        "outcome_changed": 2,
        "agent_changed": 2,
        "queue_changed": 2,
        "escalation_added": 3,
    },
    "new_exception": {
        "outcome_changed": 2,
        "agent_changed": 2,
        "queue_changed": 2,
        "new_exception": 2,
        "unchanged": 1,
    },
    "masked_read": {"not_replayable": 1, "unchanged": 2},
}


@pytest.mark.parametrize("name", sorted(EXPECTED_CLASSES))
def test_each_candidate_produces_its_classes(log: SqliteAuditStore, name: str) -> None:
    """Each purpose-built candidate puts exactly the expected records in each class."""
    assert EXPECTED_CLASSES[name] == _counts(_run(log, name))


def test_every_class_is_produced_by_some_candidate() -> None:
    """The fixtures between them cover every class name."""
    produced = {c for counts in EXPECTED_CLASSES.values() for c in counts}
    # The adaptive-routing classes need a ladder and a hold: tests/replay/test_replay_adaptive.py.
    assert set(CLASSES) - {"relaxation_changed", "continuity_changed"} == produced


def test_changed_counts_records_with_any_difference(log: SqliteAuditStore) -> None:
    """A record in several difference classes counts once in changed; rates use the total."""
    report = _run(log, "escalation_added")
    assert (report.total, report.changed, report.not_replayable) == (3, 3, 0)
    assert report.rate("escalation_added") == 1.0
    assert report.outcome_pairs == (("ASSIGN->ESCALATE", 2),)


def test_level_raise_is_an_escalation_added_without_outcome_change(
    log: SqliteAuditStore,
) -> None:
    """C2 escalated at level 1 and escalates at level 2: escalation_added, same outcome."""
    report = _run(log, "escalation_added")
    levels = [
        (s.recorded.escalation_level, s.candidate.escalation_level)
        for s in dict(report.samples)["escalation_added"]
        if s.recorded is not None and s.candidate is not None and s.recorded.outcome == "ESCALATE"
    ]
    assert levels == [(1, 2)]


def test_sample_shows_recorded_and_candidate_and_the_agent_check_that_changed(
    log: SqliteAuditStore,
) -> None:
    """The agent sample names the rule, outcome, agents and a1's newly failed skills check."""
    data = report_data(_run(log, "agent"))
    first = data["samples"]["agent_changed"][0]
    assert {
        "recorded": tuple(
            first["recorded"][k] for k in ("rule_id", "outcome", "agent_id", "queue")
        ),
        "candidate": tuple(
            first["candidate"][k] for k in ("rule_id", "outcome", "agent_id", "queue")
        ),
        "agent_checks": first["agent_checks"],
    } == {
        "recorded": ("rest", "ASSIGN", "a1", "general"),
        "candidate": ("rest", "ASSIGN", "a2", "general"),
        "agent_checks": [{"agent_id": "a1", "recorded": [], "candidate": ["skills"]}],
    }
    assert list(data["samples"]) == ["agent_changed"]  # no sample of unchanged records


def test_masked_field_record_is_not_replayable_with_the_reason(log: SqliteAuditStore) -> None:
    """A candidate rule reading a masked attribute makes that record not_replayable, named."""
    report = _run(log, "masked_read")
    (sample,) = dict(report.samples)["not_replayable"]
    assert report.reasons == (("masked_field", 1),)
    assert sample.reason == (
        "candidate rule `noted` reads `case.attributes.notes`, which the log stores only as a "
        "digest"
    )
    assert sample.candidate is None


def test_masked_value_outside_attributes_is_not_replayable(tmp_path: Path) -> None:
    """A log masking a field matching reads (case.region) never compares that record."""
    store = record_log(tmp_path)
    (first, *_) = store.records()
    case = {**first.input["case"], "patient_location": "hmac-sha256:" + "0" * 64}
    records = [replace(first, input={**first.input, "case": case})]
    report = replay(_ListSource(records, store), candidate("identity"), PY)
    (sample,) = dict(report.samples)["not_replayable"]
    assert sample.reason == (
        "the log masks `case.patient_location`, which decisions read (case rules, matching or "
        "signals): replay sees only its digest, so no candidate can decide the record again; "
        "if case.patient_location is not PHI, stop masking it in the recording server's masked "
        "field list (--audit-masked-fields, [audit] masked_fields) to replay later records"
    )
    store.close()


class _ListSource:
    """Given records, with the blobs of a real log."""

    def __init__(self, records: list[AuditRecord], store: SqliteAuditStore) -> None:
        self._records = records
        self._store = store

    def records(self) -> Iterator[AuditRecord]:
        return iter(self._records)

    def get_blob(self, sha256: str) -> Blob | None:
        return self._store.get_blob(sha256)


def test_record_without_roster_blob_is_not_replayable(tmp_path: Path) -> None:
    """Records read from an export with no log for blobs are roster_missing, never compared."""
    store = record_log(tmp_path)
    export = tmp_path / "export.jsonl"
    export.write_text("".join(json.dumps(r.as_dict()) + "\n" for r in store.records()))
    report = replay(ExportedRecords(export), candidate("identity"), PY)
    assert (
        report.total,
        report.not_replayable,
        report.reasons,
    ) == (3, 3, (("roster_missing", 3),))
    store.close()


def test_export_with_log_blobs_replays_like_the_log(tmp_path: Path) -> None:
    """Exported JSON lines plus the log's blobs give the same report as the log itself."""
    store = record_log(tmp_path)
    export = tmp_path / "export.jsonl"
    export.write_text("".join(json.dumps(r.as_dict()) + "\n" for r in store.records()))
    from_file = replay(ExportedRecords(export, blobs=store.get_blob), candidate("agent"), PY)
    # The same but for the chain checks, which only a log's rows get (an export: None).
    assert replace(_run(store, "agent"), chain=None) == from_file
    store.close()


def test_bad_export_line_names_file_and_line(tmp_path: Path) -> None:
    """A line that is not an exported record is refused with file:line and what to pass."""
    export = tmp_path / "export.jsonl"
    export.write_text('\n{"seq": 1}\n')
    with pytest.raises(ExportFormatError) as caught:
        replay(ExportedRecords(export), candidate("identity"), PY)
    assert (
        f"{export}:2: the line has no `decision_id`; --input takes the output of `caseroute "
        "audit export` (one record per line)"
    ) == str(caught.value)


def test_empty_log_gives_an_empty_report(tmp_path: Path) -> None:
    """Replaying an empty log reports zero everywhere and no samples."""
    store = SqliteAuditStore(tmp_path / "empty.db")
    report = replay(SinkRecords(store), candidate("identity"), PY)
    data = report_data(report)
    assert (0, 0, 0, dict.fromkeys(CLASSES, 0), {}) == (
        data["total"],
        data["changed"],
        data["not_replayable"],
        data["classes"],
        data["samples"],
    )
    store.close()


def test_records_of_other_ruleset_names_are_skipped_and_counted(tmp_path: Path) -> None:
    """A log holding two ruleset names replays only the candidate's; the rest are other_ruleset."""
    from tests.replay.recorded import BASE

    store = record_log(tmp_path)
    other = SqliteAuditStore(tmp_path / "other.db")
    other_text = BASE.replace("ruleset: test", "ruleset: other")
    other.close()
    mixed = record_log(tmp_path / "mixed", other_text)
    records = [*store.records(), *mixed.records()]
    report = replay(_ListSource(records, store), candidate("queue"), PY)
    assert (
        report.total,
        report.other_ruleset,
        _counts(report),
    ) == (3, 3, {"queue_changed": 2, "unchanged": 1})
    store.close()
    mixed.close()


def test_filters_select_by_case_and_limit(log: SqliteAuditStore) -> None:
    """--case-id keeps one case's records; --limit the first N in chain order."""
    by_case = replay(SinkRecords(log, RecordFilter(case_id="C2")), candidate("identity"), PY)
    limited = replay(SinkRecords(log, RecordFilter(limit=2)), candidate("queue"), PY)
    assert (by_case.total, limited.total, _counts(limited)) == (1, 2, {"queue_changed": 2})


def test_time_filters_select_by_recorded_now(log: SqliteAuditStore) -> None:
    """--since is inclusive and --until exclusive of the recorded now."""
    since = replay(SinkRecords(log, RecordFilter(since=NOW)), candidate("identity"), PY)
    until = replay(SinkRecords(log, RecordFilter(until=NOW)), candidate("identity"), PY)
    assert (since.total, until.total) == (3, 0)


def test_export_source_filters_too(tmp_path: Path) -> None:
    """Filters apply to exported records as to the log."""
    store = record_log(tmp_path)
    export = tmp_path / "export.jsonl"
    export.write_text("".join(json.dumps(r.as_dict()) + "\n" for r in store.records()))
    where = RecordFilter(case_id="C3", until=NOW)
    assert replay(ExportedRecords(export, where), candidate("identity"), PY).total == 0
    where = RecordFilter(case_id="C3", since=NOW)
    assert replay(ExportedRecords(export, where), candidate("identity"), PY).total == 1
    store.close()


def test_report_is_identical_for_one_and_two_workers(log: SqliteAuditStore) -> None:
    """Worker processes merge in chain order: the same report as in-process replay."""
    many = list(log.records()) * 150  # 450 records: three chunks
    one = replay(_ListSource(many, log), candidate("agent"), PY)
    two = replay(_ListSource(many, log), candidate("agent"), replace(PY, workers=2))
    assert one == two
    assert two.total == 450


def test_progress_is_told_every_chunk(log: SqliteAuditStore) -> None:
    """The progress callback hears (done, total) after each chunk, ending at the total."""
    seen: list[tuple[int, int]] = []
    many = list(log.records()) * 100
    replay(
        _ListSource(many, log),
        candidate("identity"),
        replace(PY, progress=lambda done, total: seen.append((done, total))),
    )
    assert seen == [(200, 300), (300, 300)]


def test_unparseable_stored_case_is_not_replayable(tmp_path: Path) -> None:
    """A stored case that no longer parses is invalid_input, naming the field only."""
    store = record_log(tmp_path)
    first = next(iter(store.records()))
    broken = replace(first, input={**first.input, "case": {**first.input["case"], "urgency": "x"}})
    report = replay(_ListSource([broken], store), candidate("identity"), PY)
    (sample,) = dict(report.samples)["not_replayable"]
    assert (
        sample.reason,
        report.reasons,
    ) == ("the stored case does not parse at case.urgency", (("invalid_input", 1),))
    store.close()


def test_record_without_decision_fields_is_not_replayable(tmp_path: Path) -> None:
    """A record whose stored decision lacks its outcome is invalid_decision, not compared."""
    store = record_log(tmp_path)
    record = make_audit_record(1, decision={"rule_id": "x"})
    report = replay(_ListSource([record], store), candidate("identity"), PY)
    (sample,) = dict(report.samples)["not_replayable"]
    assert (
        sample.reason,
        report.reasons,
    ) == ("the recorded decision has no 'outcome'", (("invalid_decision", 1),))
    store.close()


def test_breakdowns_count_per_dimension_value(log: SqliteAuditStore) -> None:
    """Breakdowns by urgency split changed and unchanged records by the stored value."""
    data = report_data(_run(log, "escalation_removed"))
    assert data["breakdowns"]["urgency"] == {
        "routine": {"total": 2, "changed": 0, "not_replayable": 0},
        "urgent": {"total": 1, "changed": 1, "not_replayable": 0},
    }
    assert data["breakdowns"]["region"] == {
        "US-TX": {"total": 3, "changed": 1, "not_replayable": 0}
    }


def test_masked_dimension_shows_as_masked(tmp_path: Path) -> None:
    """A breakdown dimension the log masks shows as (masked), never as its digest."""
    store = record_log(tmp_path)
    first = next(iter(store.records()))
    case = {**first.input["case"], "region": "hmac-sha256:" + "1" * 64}
    masked = replace(first, input={**first.input, "case": case})
    data = report_data(replay(_ListSource([masked], store), candidate("identity"), PY))
    assert data["breakdowns"]["region"] == {
        "(masked)": {"total": 1, "changed": 0, "not_replayable": 1}
    }
    store.close()


def test_a_dead_worker_is_reported_not_raised_raw(
    log: SqliteAuditStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A worker process that dies becomes a ReplayWorkerError saying what to do."""
    from caseroute.replay import run

    def dead(*_: object) -> Iterator[list[object]]:
        yield from ()
        raise BrokenProcessPool("killed")

    monkeypatch.setattr(run, "_pooled", dead)
    many = list(log.records()) * 150
    with pytest.raises(run.ReplayWorkerError) as caught:
        replay(_ListSource(many, log), candidate("identity"), replace(PY, workers=2))
    assert str(caught.value) == (
        "a replay worker process died (of 2); nothing was reported; retry, or run with "
        "--workers 1 to replay in this process"
    )


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ("[]", "the line is not a JSON object"),
        ('{"seq": "1"}', "the line `seq` has the wrong type"),
    ],
)
def test_export_line_of_the_wrong_shape_is_named(tmp_path: Path, line: str, problem: str) -> None:
    """A line that is JSON but not a record says what is wrong with it."""
    store = record_log(tmp_path)
    good = json.dumps(next(iter(store.records())).as_dict())
    store.close()
    export = tmp_path / "export.jsonl"
    fields = json.loads(good)
    if line.startswith("{"):
        fields.update(json.loads(line))
        line = json.dumps(fields)
    export.write_text(line + "\n")
    with pytest.raises(ExportFormatError) as caught:
        replay(ExportedRecords(export), candidate("identity"), PY)
    assert str(caught.value) == (
        f"{export}:1: {problem}; --input takes the output of `caseroute audit export` (one "
        "record per line)"
    )


def test_export_record_with_unreadable_now_is_kept_and_not_replayable(tmp_path: Path) -> None:
    """A time filter keeps a record whose now does not parse, so it is reported, not lost."""
    store = record_log(tmp_path)
    first = next(iter(store.records()))
    export = tmp_path / "export.jsonl"
    export.write_text(json.dumps(replace(first, now="soon").as_dict()) + "\n")
    source = ExportedRecords(export, RecordFilter(since=NOW), store.get_blob)
    report = replay(source, candidate("identity"), PY)
    store.close()
    assert (report.total, report.reasons) == (1, (("invalid_input", 1),))
