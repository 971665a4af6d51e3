"""The record feeds: what a source holds to replay, read in chain order a chunk at a time.

Records are streamed: read, sent and replayed a chunk at a time, so memory stays flat however
many are replayed (review R32b F5). Records read from a SQLite log travel as the stored JSON
text and are decoded by the worker that replays them: decoding a 100-agent decision with its
per-agent verdicts costs about as much as deciding it, and pickling the decoded form costs more
than sending the text, so decoding in the calling process made it the bottleneck of two
workers. Lines of an export travel as text too: the calling process reads only each line's
roster reference (a JSON parse, ~1 ms a line, against ~10 ms for the record); the worker
decodes the line, applies the filters, and replays it. Replaying in the calling process (one
worker) decodes each line once.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

from caseroute.audit.record import AuditRecord
from caseroute.audit.store import RECORD_COLUMNS
from caseroute.replay.rosters import RosterTexts, roster_sha
from caseroute.replay.source import ExportedRecords, ExportFormatError, RecordSource
from caseroute.replay.worker import (
    Done,
    ExportLine,
    Replayer,
    Work,
    WorkItem,
    replay_chunk,
    replay_items,
    replay_line_chunk,
    replay_lines,
)

CHUNK = 200
"""Records (of an export: lines) per unit of work sent to a worker."""
Selected = tuple[Work, str | None]
"""A record and why its stored content fails its chain check (None: it passes, or unchecked)."""

_INPUT = RECORD_COLUMNS.index("input")


def _input_of(work: Work) -> object:
    """A record's input, for its roster reference (None: the stored input is no JSON)."""
    if isinstance(work, AuditRecord):
        return work.input
    try:
        return json.loads(work[_INPUT])
    except (ValueError, RecursionError):  # edited: the record itself is reported invalid_input
        return None


def _batched(items: Iterable[Any]) -> Iterator[list[Any]]:
    chunk: list[Any] = []
    for item in items:
        chunk.append(item)
        if len(chunk) == CHUNK:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _chunks(records: Iterable[Selected], source: RecordSource) -> Iterator[list[WorkItem]]:
    """Records in chunks of ``CHUNK``, each with its roster snapshot's text."""
    rosters = RosterTexts(source)
    return _batched(
        (record, rosters.text(roster_sha(_input_of(record))), problem)
        for record, problem in records
    )


class Feed(Protocol):
    """Chunks of work in chain order, and how to replay one here or in a worker."""

    def chunks(self) -> Iterator[list[Any]]:
        """The chunks, read as they are asked for."""
        ...

    def run(self, replayer: Replayer, chunk: list[Any]) -> Done:
        """Replay a chunk in this process."""
        ...

    def task(self, chunk: list[Any]) -> tuple[Callable[..., Done], tuple[Any, ...]]:
        """A worker's function and arguments replaying a chunk."""
        ...


class RecordFeed:
    """Records selected here (rows from a log, or decoded records), with their snapshots."""

    def __init__(self, selected: Iterator[Selected], source: RecordSource) -> None:
        self._selected = selected
        self._source = source

    def chunks(self) -> Iterator[list[WorkItem]]:
        """Chunks of ``CHUNK`` records."""
        return _chunks(self._selected, self._source)

    def run(self, replayer: Replayer, chunk: list[WorkItem]) -> Done:
        """Replay a chunk in this process."""
        return replay_items(replayer, chunk)

    def task(self, chunk: list[WorkItem]) -> tuple[Callable[..., Done], tuple[Any, ...]]:
        """A worker's function and arguments replaying a chunk."""
        return replay_chunk, (chunk,)


@dataclass(slots=True)
class Fold:
    """How far folding results has got."""

    records: int = 0
    """Records folded (replayed, or of another ruleset)."""


class LineFeed:
    """An export's lines, undecoded, each with its roster snapshot's text."""

    def __init__(self, source: ExportedRecords, fold: Fold) -> None:
        self._source = source
        self._fold = fold
        self._rosters = RosterTexts(source)

    def _lines(self) -> Iterator[ExportLine]:
        source = self._source
        lines = source.numbered_lines()
        while True:
            try:
                number, text = next(lines)
            except StopIteration:
                return
            except ExportFormatError as exc:  # not UTF-8: reported where the fold gets to it
                yield ExportLine(0, "", None, None, str(exc))
                return
            yield ExportLine(number, text, None, None)

    def _with_roster(self, line: ExportLine) -> ExportLine:
        """The line with its roster snapshot's text, for a worker (its reference read here)."""
        if line.error is not None:
            return line
        sha = roster_sha(self._source.line_input(line.text))
        return line._replace(roster_sha256=sha, roster=self._rosters.text(sha))

    def chunks(self) -> Iterator[list[ExportLine]]:
        """Chunks of ``CHUNK`` lines."""
        return _batched(self._lines())

    def _budget(self) -> int | None:
        limit = self._source.where.limit
        return None if limit is None else max(0, limit - self._fold.records)

    def run(self, replayer: Replayer, chunk: list[ExportLine]) -> Done:
        """Replay a chunk in this process."""
        return replay_lines(replayer, self._source, chunk, self._budget(), self._rosters)

    def task(self, chunk: list[ExportLine]) -> tuple[Callable[..., Done], tuple[Any, ...]]:
        """A worker's function and arguments replaying a chunk."""
        lines = [self._with_roster(line) for line in chunk]
        return replay_line_chunk, (lines, self._budget())
