"""Replay reads a SQLite log as undecoded rows and decodes them where they are replayed."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest

from caseroute.audit.record import AuditRecord, Blob
from caseroute.audit.store import RECORD_COLUMNS, SqliteAuditStore, record_from_row
from caseroute.audit.stream_check import ChainCheck
from caseroute.engine.case_rules import EngineKind
from caseroute.replay import RecordFilter, ReplayOptions, SinkRecords, feeds, replay
from caseroute.testing import NOW, audit_config, make_audit_record
from tests.replay.recorded import candidate, record_log

PY = ReplayOptions(EngineKind.PYTHON)


@pytest.fixture(scope="module")
def log(tmp_path_factory: pytest.TempPathFactory) -> SqliteAuditStore:
    """The recorded log of tests/replay/recorded.py (C1+C3 batch, C2 urgent)."""
    return record_log(tmp_path_factory.mktemp("log"))


class _DecodedOnly:
    """A source that yields decoded records only (like an export), over the same log."""

    def __init__(self, log: SqliteAuditStore) -> None:
        self.log = log

    def records(self) -> Iterator[AuditRecord]:
        return self.log.records()

    def get_blob(self, sha256: str) -> Blob | None:
        return self.log.get_blob(sha256)


def test_record_rows_decode_to_the_records_across_pages(tmp_path: Path) -> None:
    """record_rows pages through the log like records, and each row decodes to its record."""
    store = audit_config(tmp_path).open_store()
    instants = [NOW + timedelta(seconds=n % 3) for n in range(1203)]
    store.append(
        [
            make_audit_record(
                n,
                now=f"{at:%Y-%m-%dT%H:%M:%SZ}",
                case_id="C" if n % 2 else "D",
                decision={"outcome": "QUEUE", "n": n},
            )
            for n, at in enumerate(instants)
        ]
    )
    rows = list(store.record_rows())
    assert [record_from_row(row) for row in rows] == list(store.records())
    assert (1203, len(RECORD_COLUMNS)) == (len(rows), len(rows[0]))
    assert isinstance(rows[0][RECORD_COLUMNS.index("decision")], str)
    since, until = NOW + timedelta(seconds=1), NOW + timedelta(seconds=2)
    some = store.record_rows(case_id="C", since=since, until=until)
    expected = list(store.records(case_id="C", since=since, until=until))
    assert expected == [record_from_row(row) for row in some]
    assert len(expected) == 201
    store.close()


def test_sink_record_rows_apply_the_filter_and_limit(log: SqliteAuditStore) -> None:
    """SinkRecords.record_rows gives the rows of the records ``records`` gives."""
    source = SinkRecords(log, RecordFilter(limit=2))
    rows = source.record_rows()
    assert rows is not None
    assert list(source.records()) == [record_from_row(row) for row in rows]
    only = SinkRecords(log, RecordFilter(case_id="C2")).record_rows()
    assert only is not None
    assert [record_from_row(row).case_id for row in only] == ["C2"]


@pytest.mark.parametrize("workers", [1, 2])
@pytest.mark.parametrize("name", ["identity", "agent", "escalation_removed", "masked_read"])
def test_a_sqlite_log_replays_from_rows_without_decoding_here(
    log: SqliteAuditStore, monkeypatch: pytest.MonkeyPatch, name: str, workers: int
) -> None:
    """A SQLite log is replayed from its rows (never ``records``), reporting as decoded records."""
    monkeypatch.setattr(feeds, "CHUNK", 1)  # one record per chunk: two workers share the three
    expected = replay(_DecodedOnly(log), candidate(name), replace(PY, workers=workers))

    def refuse(*_: object, **__: object) -> Iterator[AuditRecord]:
        raise AssertionError("replay decoded the log in the calling process")

    monkeypatch.setattr(SqliteAuditStore, "records", refuse)
    actual = replay(SinkRecords(log), candidate(name), replace(PY, workers=workers))
    # Rows are also checked against the chain (decoded records from elsewhere are not).
    assert (expected, ChainCheck()) == (replace(actual, chain=None), actual.chain)


class _OtherSink:
    """A decision log that is not SQLite: it gives decoded records only."""

    def __init__(self, log: SqliteAuditStore) -> None:
        self.log = log

    def records(self, *, case_id: str = "", **_: object) -> Iterator[AuditRecord]:
        return self.log.records(case_id=case_id)

    def get_blob(self, sha256: str) -> Blob | None:
        return self.log.get_blob(sha256)


def test_a_sink_that_is_not_a_sqlite_log_is_replayed_from_decoded_records(
    log: SqliteAuditStore,
) -> None:
    """SinkRecords over another sink has no rows, and replay reads its decoded records."""
    other = SinkRecords(_OtherSink(log))  # type: ignore[arg-type]
    assert other.record_rows() is None
    expected = replay(SinkRecords(log), candidate("agent"), PY)
    actual = replay(other, candidate("agent"), PY)
    # Decoded records are not checked against the chain (the report says so: chain None).
    assert (replace(expected, chain=None), None) == (actual, actual.chain)
