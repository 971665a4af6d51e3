"""Edges of replay's streaming readers (review R32b F5, F7) that whole runs do not reach.

A worker's entry points called in this process, an export's blank and undecodable lines,
counting a file that is not UTF-8, a SQLite-only count asked of another sink, and the input
an export line holds read without its record.
"""

from __future__ import annotations

import json
import signal
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from caseroute.audit.stream_check import StreamChecker
from caseroute.engine.case_rules import EngineKind
from caseroute.replay import worker
from caseroute.replay.source import ExportedRecords, SinkRecords
from caseroute.wire.json_dialect import input_from_export_line
from tests.replay.recorded import candidate, record_log


def test_a_workers_entry_points_in_this_process(tmp_path: Path) -> None:
    """The pool's initializer and both chunk functions, as a worker process runs them."""
    export = ExportedRecords(tmp_path / "export.jsonl")
    before = signal.getsignal(signal.SIGINT)
    try:
        worker.init_worker(candidate("identity"), EngineKind.PYTHON, "absent", "test", export)
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
        assert worker.replay_chunk([]) == (0, [])
        assert worker.replay_line_chunk([], None) == (0, [])
    finally:
        signal.signal(signal.SIGINT, before)
        worker._worker = worker._export = None


def test_an_exports_lines_read_counted_and_decoded(tmp_path: Path) -> None:
    """Blank lines are skipped, not records; a line that is no JSON has no input to read."""
    store = record_log(tmp_path)
    path = tmp_path / "export.jsonl"
    lines = [json.dumps(r.as_dict()) for r in store.records()]
    path.write_text("\n\n".join(lines) + "\n  \n")
    export = ExportedRecords(path)
    assert [r.seq for r in export.records()] == [r.seq for r in store.records()]
    assert export.count_lines() == len(lines)
    assert export.line_input("{not json") is None
    assert export._parse(7, "   ") is None
    path.write_bytes(b"".join(line.encode() + b"\n" for line in lines[:2]) + b"\xff\xfe\n")
    assert export.count_lines() < 3  # no error: counted up to the read that fails to decode
    store.close()


def test_only_a_sql_log_counts_its_rows() -> None:
    """Counting rows is asked of SQL logs (SQLite, PostgreSQL) only; another sink says so."""

    class _Sink:
        def record_rows(self, **_: object) -> None:
            return None

    with pytest.raises(TypeError, match="only a SQL log's rows are counted"):
        SinkRecords(_Sink()).count_rows("test", 1)  # type: ignore[arg-type]  # not a log


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ({"input": {"roster": {"sha256": "a"}}}, {"roster": {"sha256": "a"}}),  # as_dict lines
        ({"input_json": '{"roster": 1}'}, {"roster": 1}),
        ({"inputJson": '{"roster": 2}'}, {"roster": 2}),  # grpcurl's camelCase
        ({"input_json": 7}, None),
        ({"input_json": "{not json"}, None),
        ("not an object", None),
    ],
)
def test_the_input_an_export_line_holds(line: object, expected: object) -> None:
    """What the calling process reads of a line to find its roster, without its record."""
    assert input_from_export_line(line) == expected


def test_export_lines_replayed_as_a_worker_replays_them(tmp_path: Path) -> None:
    """A worker's line chunk: another ruleset's lines skipped; a roster read with the line."""
    store = record_log(tmp_path)
    path = tmp_path / "export.jsonl"
    texts = [json.dumps(r.as_dict()) for r in store.records()]
    path.write_text("\n".join(texts) + "\n")
    export = ExportedRecords(path)
    lines = [worker.ExportLine(n, t, None, None) for n, t in enumerate(texts, 1)]
    other = worker.Replayer(candidate("identity"), EngineKind.PYTHON, "absent", "other")
    done, outcomes = worker.replay_lines(other, export, lines, None)
    assert (done, outcomes) == (3, [worker.LineEnd.OTHER_RULESET] * 3)
    mine = worker.Replayer(candidate("identity"), EngineKind.PYTHON, "no roster", "test")
    done, outcomes = worker.replay_lines(mine, export, lines, 1)
    assert done == 3
    assert outcomes[1] is worker.LineEnd.PAST_LIMIT
    assert [type(o).__name__ for o in outcomes] == ["RecordResult", "LineEnd"]
    mine.close()
    store.close()


class _Entries:
    """A log's other chain entries as the checker reads them: events appear after a while."""

    def __init__(self, head: tuple[int, str], events: dict[int, str], rotation: int) -> None:
        self._head = head
        self.events: dict[int, str] = {}
        self.later = events
        self.rotation = rotation

    def head(self) -> tuple[int, str]:
        return self._head

    def iter_events(self) -> list[Any]:
        found = [SimpleNamespace(seq=s, record_hash=h) for s, h in self.events.items()]
        self.events = self.later  # recorded while the rows are read
        return found

    def key_history(self) -> list[Any]:
        return [
            SimpleNamespace(seq=None, record_hash=""),
            SimpleNamespace(seq=self.rotation, record_hash="r"),
        ]


def test_the_stream_checker_on_gaps_events_rotations_and_a_bad_seq(tmp_path: Path) -> None:
    """A seq that is no number; a gap an event recorded since fills; a gap nothing fills."""
    store = record_log(tmp_path)
    rows = list(store.record_rows())
    assert [r[0] for r in rows] == [1, 2, 3]
    first, _, third = rows
    checker = StreamChecker(_Entries((3, third[-1]), {}, 99), whole=True)
    assert checker.check(("x", *first[1:])) == "its seq is no number"
    assert checker.first == "a record's seq is no number (edited)"
    # Record 2 gone; an event took seq 2 meanwhile (a live log), its hash where 3 links.
    filled = StreamChecker(_Entries((3, third[-1]), {2: first[-1]}, 99), whole=True)
    assert filled.check(first) is None
    assert filled.check(third) is None
    # Record 2 gone and nothing recorded in its place.
    gap = StreamChecker(_Entries((3, third[-1]), {}, 99), whole=True)
    assert (gap.check(first), gap.check(third)) == (None, None)
    assert gap.first == "record 2 is missing (deleted?): the next stored record is 3"
    store.close()
