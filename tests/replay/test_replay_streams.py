"""Replay streams its records: at most a few chunks are read and not yet replayed at any time.

It held every selected record before replaying any (review R32b F5): ~22 kB per record from a
log, ~130 kB per record from an export, so memory grew with the log. The counters below stand
in for memory: records read from the source (or decoded) minus records folded into the report.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from caseroute.audit.record import AuditRecord
from caseroute.audit.store import RecordRow, SqliteAuditStore
from caseroute.domain.case import Intent, Urgency
from caseroute.engine.case_rules import EngineKind, prepare_ruleset
from caseroute.replay import (
    ExportedRecords,
    RecordFilter,
    ReplayOptions,
    SinkRecords,
    feeds,
    replay,
)
from caseroute.replay.report import ReportBuilder
from caseroute.replay.source import ExportFormatError, record_from_dict
from caseroute.service import DecideCommand, RoutingCore, RulesetRegistry
from caseroute.testing import NOW, audited_core, compile_text, make_case
from tests.replay.recorded import BASE, candidate, roster_of_two

PY = ReplayOptions(EngineKind.PYTHON)
RECORDS = 60
"""Records in the log: many chunks of ``SMALL``."""
SMALL = 4
"""``feeds.CHUNK`` in these tests."""


@pytest.fixture(scope="module")
def log(tmp_path_factory: pytest.TempPathFactory) -> SqliteAuditStore:
    """A log of RECORDS decisions under tests/replay/recorded.py's base ruleset."""
    registry = RulesetRegistry()
    registry.add(prepare_ruleset(compile_text(BASE), EngineKind.PYTHON))
    core: RoutingCore = audited_core(registry, tmp_path_factory.mktemp("log"))
    for n in range(RECORDS):
        urgency = Urgency.URGENT if n % 3 == 0 else Urgency.ROUTINE
        case = make_case(case_id=f"C{n}", intent=Intent.GENERAL, urgency=urgency)
        core.decide(DecideCommand(f"r{n}", "", "", (case,), roster_of_two(), NOW))
    registry.close()
    store = core.audit
    assert isinstance(store, SqliteAuditStore)
    return store


@pytest.fixture
def export(log: SqliteAuditStore, tmp_path: Path) -> Path:
    """The log's records as ``as_dict`` JSON lines."""
    path = tmp_path / "export.jsonl"
    path.write_text("".join(json.dumps(r.as_dict()) + "\n" for r in log.records()))
    return path


class _Held:
    """Counts records taken from a source and records folded into the report."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.taken = 0
        self.folded = 0
        self.most = 0
        add = ReportBuilder.add

        def folded(builder: ReportBuilder, result: Any) -> None:
            self.folded += 1
            add(builder, result)

        monkeypatch.setattr(ReportBuilder, "add", folded)

    def take(self) -> None:
        """One more record read (or decoded) and not yet replayed."""
        self.taken += 1
        self.most = max(self.most, self.taken - self.folded)


@pytest.mark.parametrize("workers", [1, 2])
def test_a_log_is_replayed_holding_a_few_chunks_not_every_record(
    log: SqliteAuditStore, monkeypatch: pytest.MonkeyPatch, workers: int
) -> None:
    """Rows are read as chunks are replayed: never more than the chunks in flight are held."""
    monkeypatch.setattr(feeds, "CHUNK", SMALL)
    held = _Held(monkeypatch)
    record_rows = SqliteAuditStore.record_rows

    def counted(store: SqliteAuditStore, **where: Any) -> Iterator[RecordRow]:
        for row in record_rows(store, **where):
            held.take()
            yield row

    monkeypatch.setattr(SqliteAuditStore, "record_rows", counted)
    report = replay(SinkRecords(log), candidate("identity"), replace(PY, workers=workers))
    # One chunk in this process; with workers, two in flight per worker.
    in_flight = SMALL if workers == 1 else (2 * workers + 1) * SMALL
    assert (report.total, held.folded, held.most <= in_flight) == (RECORDS, RECORDS, True)


def test_an_export_is_decoded_line_by_line_as_it_is_replayed(
    export: Path, log: SqliteAuditStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An export's lines are decoded a chunk at a time, each chunk replayed before the next."""
    monkeypatch.setattr(feeds, "CHUNK", SMALL)
    held = _Held(monkeypatch)

    def decode(data: Any) -> AuditRecord:
        held.take()
        return record_from_dict(data)

    source = ExportedRecords(export, blobs=log.get_blob, parse=decode)
    report = replay(source, candidate("identity"), PY)
    assert (report.total, held.folded, held.most <= SMALL) == (RECORDS, RECORDS, True)


def test_an_export_is_read_as_its_chunks_are_replayed(
    export: Path, log: SqliteAuditStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With workers, an export's lines are read (undecoded) as chunks go out, not all first."""
    monkeypatch.setattr(feeds, "CHUNK", SMALL)
    held = _Held(monkeypatch)
    loads = json.loads

    def counted(text: str) -> Any:  # this process decodes each line once (before: records)
        held.take()
        return loads(text)

    monkeypatch.setattr(json, "loads", counted)  # in this process only
    source = ExportedRecords(export, blobs=log.get_blob)
    report = replay(source, candidate("identity"), replace(PY, workers=2))
    assert (report.total, held.most <= 5 * SMALL) == (RECORDS, True)


@pytest.mark.parametrize("workers", [1, 2])
@pytest.mark.parametrize(
    "where",
    [RecordFilter(), RecordFilter(limit=7), RecordFilter(case_id="C5"), RecordFilter(limit=0)],
)
def test_an_export_reports_as_the_log_it_came_from(
    export: Path,
    log: SqliteAuditStore,
    monkeypatch: pytest.MonkeyPatch,
    workers: int,
    where: RecordFilter,
) -> None:
    """Lines decoded and filtered by workers report as the log's records, limit included."""
    monkeypatch.setattr(feeds, "CHUNK", SMALL)
    options = replace(PY, workers=workers)
    expected = replay(SinkRecords(log, where), candidate("agent"), PY)
    actual = replay(ExportedRecords(export, where, log.get_blob), candidate("agent"), options)
    assert replace(expected, chain=None) == actual


@pytest.mark.parametrize("workers", [1, 2])
@pytest.mark.parametrize(("bad_at", "raises"), [(8, True), (9, False), (40, False)])
def test_a_bad_line_past_the_limit_is_reported_as_before(
    export: Path,
    log: SqliteAuditStore,
    monkeypatch: pytest.MonkeyPatch,
    workers: int,
    bad_at: int,
    raises: bool,
) -> None:
    """A line that is no record fails the run before the record after the limit, not past it.

    As when every line was read first: however far workers read ahead (here the limit is 7).
    """
    monkeypatch.setattr(feeds, "CHUNK", SMALL)
    lines = export.read_text().splitlines(keepends=True)
    lines.insert(bad_at - 1, "[]\n")
    export.write_text("".join(lines))
    source = ExportedRecords(export, RecordFilter(limit=7), log.get_blob)
    options = replace(PY, workers=workers)
    if raises:
        with pytest.raises(ExportFormatError, match=f":{bad_at}: the line is not a JSON object"):
            replay(source, candidate("identity"), options)
    else:
        assert replay(source, candidate("identity"), options).total == 7


@pytest.mark.parametrize(
    "where", [RecordFilter(), RecordFilter(limit=7), RecordFilter(case_id="C5")]
)
def test_progress_counts_what_a_log_replays(
    log: SqliteAuditStore, monkeypatch: pytest.MonkeyPatch, where: RecordFilter
) -> None:
    """The total counted in the log beforehand is what replay then replays."""
    monkeypatch.setattr(feeds, "CHUNK", SMALL)
    seen: list[tuple[int, int]] = []
    options = replace(PY, progress=lambda done, total: seen.append((done, total)))
    report = replay(SinkRecords(log, where), candidate("identity"), options)
    assert (report.total, report.total) == seen[-1]


def test_progress_counts_an_exports_lines(export: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """From an export the progress bar counts its lines, counted before any is decoded."""
    monkeypatch.setattr(feeds, "CHUNK", 25)
    with export.open("a") as lines:
        lines.write("\n")  # blank: not counted
    seen: list[tuple[int, int]] = []
    options = replace(PY, progress=lambda done, total: seen.append((done, total)))
    replay(ExportedRecords(export, RecordFilter(case_id="C5")), candidate("identity"), options)
    assert seen == [(25, RECORDS), (50, RECORDS), (RECORDS, RECORDS)]
