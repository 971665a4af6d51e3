"""The replay entry point: records in, report out, on one or several worker processes.

Workers are separate processes (``forkserver``: the durable_rules engine lock is per process,
so threads would serialise), each compiling and loading the candidate once. Records go out in
chunks, in chain order, and results are folded in that same order, so the report is identical
for any number of workers. Records are streamed: read, sent and replayed a chunk at a time, so
memory stays flat however many are replayed (review R32b F5); the progress bar's total is
counted first (in the log, ``SELECT COUNT(*)``; in an export, its lines). Records read from a
SQLite log travel as the stored JSON text and are decoded by the worker that replays them:
decoding a 100-agent decision with its per-agent verdicts costs about as much as deciding it,
and pickling the decoded form costs more than sending the text, so decoding in this process
made it the bottleneck of two workers. Lines of an export travel as text too: this process
reads only each line's roster reference (a JSON parse, ~1 ms a line, against ~10 ms for the
record); the worker decodes the line, applies the filters, and replays it. Replaying in this
process (one worker) decodes each line once.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
from collections import OrderedDict, deque
from collections.abc import Callable, Generator, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, replace
from enum import Enum
from itertools import chain as chained
from itertools import islice
from typing import Any, NamedTuple, Protocol

from caseroute.audit.record import AuditRecord, BlobKind
from caseroute.audit.store import RECORD_COLUMNS, RecordRow, SqliteAuditStore
from caseroute.audit.stream_check import ChainCheck, StreamChecker, record_from_text
from caseroute.domain.errors import CaserouteError
from caseroute.engine.case_rules import EngineKind, LoadedRuleset
from caseroute.replay.candidate import CandidateSource
from caseroute.replay.evaluate import (
    ABSENT_FROM_EXPORT,
    ABSENT_FROM_LOG,
    ABSENT_FROM_SOURCE,
    ROSTER_CACHE,
    RecordReplayer,
    RecordResult,
    unverified_result,
)
from caseroute.replay.report import DEFAULT_SAMPLE, ReplayReport, ReportBuilder
from caseroute.replay.source import (
    ExportedRecords,
    ExportFormatError,
    RecordFilter,
    RecordSource,
    SinkRecords,
)

CHUNK = 200
"""Records (of an export: lines) per unit of work sent to a worker."""
Progress = Callable[[int, int], None]
"""Told ``(done, total)`` as records (of an export: its lines) are replayed."""


def default_workers() -> int:
    """Worker processes by default: the CPU count, at most 2 (replay shares the machine)."""
    return max(1, min(2, os.cpu_count() or 1))


@dataclass(frozen=True, slots=True)
class ReplayOptions:
    """How to replay.

    Attributes:
        engine: Engine of record for the candidate.
        workers: Worker processes (1: in this process).
        sample_size: Records sampled per class.
        progress: Told ``(done, total)`` as chunks finish (None: silent, and nothing is
            counted beforehand). From a log, records of the candidate's ruleset; from an
            export, its lines that hold something (filtered ones and other rulesets' too).
    """

    engine: EngineKind = EngineKind.DURABLE
    workers: int = 1
    sample_size: int = DEFAULT_SAMPLE
    progress: Progress | None = None


class ReplayWorkerError(CaserouteError):
    """A replay worker process died (killed, or out of memory); nothing was reported."""


Work = AuditRecord | RecordRow
"""A record, decoded or as stored (decoded by whoever replays it)."""
Selected = tuple[Work, str | None]
"""A record and why its stored content fails its chain check (None: it passes, or unchecked)."""
WorkItem = tuple[Work, str | None, str | None]
"""A record, its roster snapshot's content (None: the source lacks it), and its chain problem."""


class ExportLine(NamedTuple):
    """One line of an export as sent to a worker, undecoded, with its roster snapshot's text.

    Attributes:
        number: Its line number (from 1).
        text: The line as read.
        roster_sha256: The roster snapshot its input references, as read here (None: none).
        roster: That snapshot's content (None: the source lacks it).
        error: Set instead of ``text``: reading the file stopped here, and why.
    """

    number: int
    text: str
    roster_sha256: str | None
    roster: str | None
    error: str | None = None


class LineEnd(Enum):
    """An export line's outcome when it is replayed by no one."""

    OTHER_RULESET = "other_ruleset"
    """A record of another ruleset name than the candidate's (counted, not replayed)."""
    PAST_LIMIT = "past_limit"
    """The record after the worker's budget: the limit ends the run at or before it."""


@dataclass(frozen=True, slots=True)
class LineError:
    """An export line that is no record (or where the file stops being UTF-8)."""

    message: str


Outcome = RecordResult | LineEnd | LineError
"""What one record (one export line) came to, in order."""
Done = tuple[int, list[Outcome]]
"""A chunk's result: how far it took the progress bar, and its outcomes in order."""

_NAME = RECORD_COLUMNS.index("ruleset_name")
_INPUT = RECORD_COLUMNS.index("input")


def _record_of(work: Work) -> AuditRecord:
    # From the hashed text only: a column edited in the log never changes what is replayed.
    return work if isinstance(work, AuditRecord) else record_from_text(work)


def _replay_one(replayer: RecordReplayer, item: WorkItem) -> RecordResult:
    work, roster, problem = item
    record = _record_of(work)
    return (
        replayer.replay(record, roster) if problem is None else unverified_result(record, problem)
    )


def _input_of(work: Work) -> object:
    """A record's input, for its roster reference (None: the stored input is no JSON)."""
    if isinstance(work, AuditRecord):
        return work.input
    try:
        return json.loads(work[_INPUT])
    except (ValueError, RecursionError):  # edited: the record itself is reported invalid_input
        return None


def _roster_sha(data: object) -> str | None:
    """The roster snapshot an input references (None: none, or no input to read)."""
    ref = data.get("roster") if isinstance(data, dict) else None
    sha = ref.get("sha256") if isinstance(ref, dict) else None
    return sha if isinstance(sha, str) else None


def _roster_absent(source: RecordSource) -> str:
    """Why a roster snapshot ``source`` does not give is absent (review R32b F10)."""
    if isinstance(source, ExportedRecords):
        return ABSENT_FROM_EXPORT if source.blobs is None else ABSENT_FROM_LOG
    return ABSENT_FROM_LOG if isinstance(source, SinkRecords) else ABSENT_FROM_SOURCE


class _Replayer:
    """The candidate's ``RecordReplayer``, loaded when the first record needs it."""

    def __init__(
        self, candidate: CandidateSource, engine: EngineKind, roster_absent: str, name: str
    ) -> None:
        self._candidate = candidate
        self._engine = engine
        self._roster_absent = roster_absent
        self.name = name
        """The candidate's ruleset name: records of another are not replayed."""
        self._loaded: LoadedRuleset | None = None
        self._replayer: RecordReplayer | None = None

    def get(self) -> RecordReplayer:
        """The replayer (the candidate loaded on first use)."""
        if self._replayer is None:
            self._loaded = self._candidate.load(self._engine)
            self._replayer = RecordReplayer(self._loaded, self._roster_absent)
        return self._replayer

    def close(self) -> None:
        """Release the loaded candidate (the durable engine's rulesets), if it was loaded."""
        if self._loaded is not None:
            self._loaded.close()


def _replay_items(replayer: _Replayer, items: list[WorkItem]) -> Done:
    """Replay records selected by this process."""
    return len(items), [_replay_one(replayer.get(), item) for item in items]


def _replay_lines(
    replayer: _Replayer,
    export: ExportedRecords,
    lines: list[ExportLine],
    budget: int | None,
    rosters: _RosterTexts | None = None,
) -> Done:
    """Decode, select and replay export lines, stopping after ``budget`` records (None: all).

    Roster snapshots' texts come with the lines (a worker), or from ``rosters`` (this process:
    each line is then decoded once, here).

    ``budget`` is at least what the limit leaves (its records folded so far are known, later
    ones not): the one record past it, or a line that is no record, ends the chunk, and the
    fold stops where the limit does (for a line that is no record: as reading did before).
    """
    outcomes: list[Outcome] = []
    records = 0
    for line in lines:
        if line.error is not None:
            outcomes.append(LineError(line.error))
            break
        try:
            record = export.admitted(line.number, line.text)
        except ExportFormatError as exc:
            outcomes.append(LineError(str(exc)))
            break
        if record is None:
            continue
        if records == budget:
            outcomes.append(LineEnd.PAST_LIMIT)
            break
        records += 1
        if record.ruleset_name != replayer.name:
            outcomes.append(LineEnd.OTHER_RULESET)
            continue
        sha = _roster_sha(record.input)
        if rosters is not None:
            roster = rosters.text(sha)
        else:  # the text read with the line is its snapshot's only if the record says so
            roster = line.roster if sha == line.roster_sha256 else None
        outcomes.append(replayer.get().replay(record, roster))
    return len(lines), outcomes


_worker: _Replayer | None = None
_export: ExportedRecords | None = None


def _init_worker(
    candidate: CandidateSource,
    engine: EngineKind,
    roster_absent: str,
    name: str,
    export: ExportedRecords | None,
) -> None:
    global _worker, _export  # noqa: PLW0603 - one candidate per worker process, loaded once
    # Ctrl-C reaches the whole process group: the calling process stops the run and says so
    # once; a worker interrupted mid-chunk would only print its own traceback.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _worker = _Replayer(candidate, engine, roster_absent, name)
    _export = export


def _replay_chunk(items: list[WorkItem]) -> Done:
    assert _worker is not None  # noqa: S101 - set by the pool's initializer
    return _replay_items(_worker, items)


def _replay_line_chunk(lines: list[ExportLine], budget: int | None) -> Done:
    assert _worker is not None  # noqa: S101 - set by the pool's initializer
    assert _export is not None  # noqa: S101 - set by the pool's initializer for an export
    return _replay_lines(_worker, _export, lines, budget)


class _RosterTexts:
    """Roster snapshots' texts by sha256, the last ROSTER_CACHE of them kept.

    Every record carries its snapshot's text: the same str object, which pickle sends once
    per chunk; workers parse each snapshot once and keep it. Records in chain order reuse
    recent snapshots: a log where each decision saw a new snapshot held every snapshot's text
    for the whole run (~315 kB each at 1,000 agents: 96 MB at 300 snapshots).
    """

    def __init__(self, source: RecordSource) -> None:
        self._source = source
        self._texts: OrderedDict[str, str | None] = OrderedDict()

    def text(self, sha: str | None) -> str | None:
        """The content of snapshot ``sha`` (None: no reference, or the source lacks it)."""
        if sha is None:
            return None
        texts = self._texts
        if sha in texts:
            texts.move_to_end(sha)
            return texts[sha]
        try:
            blob = self._source.get_blob(sha)
        except ValueError:  # a row no caseroute writes: edited, so no roster ("")
            text: str | None = ""
        else:
            text = blob.content if blob and blob.kind is BlobKind.ROSTER else None
        texts[sha] = text
        if len(texts) > ROSTER_CACHE:
            texts.popitem(last=False)
        return text


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
    rosters = _RosterTexts(source)
    return _batched(
        (record, rosters.text(_roster_sha(_input_of(record))), problem)
        for record, problem in records
    )


class _Feed(Protocol):
    """Chunks of work in chain order, and how to replay one here or in a worker."""

    def chunks(self) -> Iterator[list[Any]]:
        """The chunks, read as they are asked for."""
        ...

    def run(self, replayer: _Replayer, chunk: list[Any]) -> Done:
        """Replay a chunk in this process."""
        ...

    def task(self, chunk: list[Any]) -> tuple[Callable[..., Done], tuple[Any, ...]]:
        """A worker's function and arguments replaying a chunk."""
        ...


class _RecordFeed:
    """Records selected here (rows from a log, or decoded records), with their snapshots."""

    def __init__(self, selected: Iterator[Selected], source: RecordSource) -> None:
        self._selected = selected
        self._source = source

    def chunks(self) -> Iterator[list[WorkItem]]:
        """Chunks of ``CHUNK`` records."""
        return _chunks(self._selected, self._source)

    def run(self, replayer: _Replayer, chunk: list[WorkItem]) -> Done:
        """Replay a chunk in this process."""
        return _replay_items(replayer, chunk)

    def task(self, chunk: list[WorkItem]) -> tuple[Callable[..., Done], tuple[Any, ...]]:
        """A worker's function and arguments replaying a chunk."""
        return _replay_chunk, (chunk,)


@dataclass(slots=True)
class _Fold:
    """How far folding results has got."""

    records: int = 0
    """Records folded (replayed, or of another ruleset)."""


class _LineFeed:
    """An export's lines, undecoded, each with its roster snapshot's text."""

    def __init__(self, source: ExportedRecords, fold: _Fold) -> None:
        self._source = source
        self._fold = fold
        self._rosters = _RosterTexts(source)

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
        sha = _roster_sha(self._source.line_input(line.text))
        return line._replace(roster_sha256=sha, roster=self._rosters.text(sha))

    def chunks(self) -> Iterator[list[ExportLine]]:
        """Chunks of ``CHUNK`` lines."""
        return _batched(self._lines())

    def _budget(self) -> int | None:
        limit = self._source.where.limit
        return None if limit is None else max(0, limit - self._fold.records)

    def run(self, replayer: _Replayer, chunk: list[ExportLine]) -> Done:
        """Replay a chunk in this process."""
        return _replay_lines(replayer, self._source, chunk, self._budget(), self._rosters)

    def task(self, chunk: list[ExportLine]) -> tuple[Callable[..., Done], tuple[Any, ...]]:
        """A worker's function and arguments replaying a chunk."""
        lines = [self._with_roster(line) for line in chunk]
        return _replay_line_chunk, (lines, self._budget())


def replay(
    source: RecordSource, candidate: CandidateSource, options: ReplayOptions
) -> ReplayReport:
    """Replay recorded decisions under a candidate ruleset and report what would change.

    Records of another ruleset name than the candidate's are skipped (counted as
    ``other_ruleset``). Records are read and replayed a chunk at a time (``CHUNK``); a decision
    log is read up to its last record when the run starts. With ``options.progress``, what it
    counts is counted first: another read of the source's records, unless the source is a
    SQLite log (counted in the log) or an export (its lines counted).

    Args:
        source: The recorded decisions (and their roster snapshots).
        candidate: The candidate ruleset's source.
        options: Engine, workers, sample size, progress.

    Returns:
        The report.

    Raises:
        RulesetError: If the candidate does not compile.
        EngineUnavailableError: If durable_rules is selected and cannot be used.
        AuditUnavailableError: If the decision log cannot be read.
        ExportFormatError: If a line of an export is no record (``file:line: ...``).
    """
    compiled = candidate.compile()
    name = compiled.name
    builder = ReportBuilder(options.sample_size)
    fold = _Fold()
    finish: Callable[[], ChainCheck | None] = lambda: None  # noqa: E731 - replaced for a log
    feed: _Feed
    count: Callable[[], int]
    rows = None
    if isinstance(source, SinkRecords) and isinstance(source.sink, SqliteAuditStore):
        # Up to the last record now: a live log grows while it is replayed.
        through = source.sink.last_record_seq()
        rows = source.record_rows(through)
    if rows is not None:
        assert isinstance(source, SinkRecords)  # noqa: S101 - only a log's source has rows
        assert isinstance(source.sink, SqliteAuditStore)  # noqa: S101 - as record_rows checks
        # Every row read is checked, whatever its ruleset: one sha256 each (review R32b F3).
        where = source.where
        checker = StreamChecker(source.sink, whole=where == RecordFilter(limit=where.limit))
        read = 0

        def checked(rows: Iterator[RecordRow]) -> Iterator[Selected]:
            nonlocal read
            for row in rows:
                read += 1
                problem = checker.check(row)
                if row[_NAME] == name:
                    yield row, problem
                else:
                    builder.skip_other_ruleset()

        def finish() -> ChainCheck | None:  # after every row is read
            return checker.finish(complete=where.limit is None or read < where.limit)

        feed = _RecordFeed(checked(rows), source)
        log = source
        count = lambda: log.count_rows(name, through)  # noqa: E731
    elif isinstance(source, ExportedRecords):
        feed = _LineFeed(source, fold)
        count = source.count_lines
    else:

        def selected(records: Iterator[AuditRecord]) -> Iterator[Selected]:
            for record in records:
                if record.ruleset_name == name:
                    yield record, None
                else:
                    builder.skip_other_ruleset()

        feed = _RecordFeed(selected(source.records()), source)
        count = lambda: sum(r.ruleset_name == name for r in source.records())  # noqa: E731
    limit = source.where.limit if isinstance(source, ExportedRecords) else None
    total = count() if options.progress is not None else 0
    done = 0
    results = _results(feed, source, candidate, options, name)
    try:
        for units, outcomes in results:
            if _fold(outcomes, builder, fold, limit):
                break
            done += units
            if options.progress is not None:
                options.progress(done, total)
    finally:
        results.close()  # a run the limit ended: chunks not started are dropped
    return builder.build(compiled.name, compiled.version, compiled.sha256, finish())


def _fold(outcomes: list[Outcome], builder: ReportBuilder, fold: _Fold, limit: int | None) -> bool:
    """Add a chunk's outcomes to the report; True when the limit ends the run here.

    Raises:
        ExportFormatError: For a line that is no record, reached before the limit.
    """
    for outcome in outcomes:
        if isinstance(outcome, LineError):
            raise ExportFormatError(outcome.message)
        if outcome is LineEnd.PAST_LIMIT or (limit is not None and fold.records >= limit):
            return True
        fold.records += 1
        if outcome is LineEnd.OTHER_RULESET:
            builder.skip_other_ruleset()
        elif isinstance(outcome, RecordResult):
            builder.add(outcome)
    return False


def _results(
    feed: _Feed,
    source: RecordSource,
    candidate: CandidateSource,
    options: ReplayOptions,
    name: str,
) -> Generator[Done, None, None]:
    """Results per chunk, in chain order."""
    chunks = feed.chunks()
    first = list(islice(chunks, max(1, options.workers)))  # no more workers than chunks
    if not first:
        return
    workers = min(options.workers, len(first))
    absent = _roster_absent(source)
    if workers <= 1:
        replayer = _Replayer(candidate, options.engine, absent, name)
        try:
            for chunk in chained(first, chunks):
                yield feed.run(replayer, chunk)
        finally:
            replayer.close()  # the durable engine's rulesets; workers release theirs on exit
        return
    # Workers decode export lines themselves: the source without the log's connection.
    export = replace(source, blobs=None) if isinstance(source, ExportedRecords) else None
    initargs = (candidate, options.engine, absent, name, export)
    try:
        yield from _pooled(chained(first, chunks), feed, initargs, workers)
    except BrokenProcessPool:
        raise ReplayWorkerError(
            f"a replay worker process died (of {workers}); nothing was reported; retry, or "
            "run with --workers 1 to replay in this process"
        ) from None


def _pooled(
    chunks: Iterator[list[Any]], feed: _Feed, initargs: tuple[Any, ...], workers: int
) -> Iterator[Done]:
    context = multiprocessing.get_context("forkserver")
    pool = ProcessPoolExecutor(workers, context, initializer=_init_worker, initargs=initargs)
    try:
        pending: deque[Future[Done]] = deque()
        for chunk in chunks:
            function, args = feed.task(chunk)
            pending.append(pool.submit(function, *args))
            if len(pending) >= 2 * workers:  # bounded: chunks in flight, not the whole log
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
    except BaseException:
        # Interrupted (Ctrl-C), a worker died, or the caller stopped reading (the limit, or a
        # line that is no record): chunks not started are dropped rather than replayed for
        # nobody (review R32b F9).
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown()
