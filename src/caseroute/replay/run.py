"""The replay entry point: records in, report out, on one or several worker processes.

Workers are separate processes (``forkserver``: the durable_rules engine lock is per process,
so threads would serialise), each compiling and loading the candidate once. Records go out in
chunks, in chain order, and results are folded in that same order, so the report is identical
for any number of workers. Records read from a SQLite log travel as the stored JSON text and
are decoded by the worker that replays them: decoding a 100-agent decision with its per-agent
verdicts costs about as much as deciding it, and pickling the decoded form costs more than
sending the text, so decoding in this process made it the bottleneck of two workers.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
from collections import OrderedDict, deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass

from caseroute.audit.record import AuditRecord, BlobKind
from caseroute.audit.store import RECORD_COLUMNS, RecordRow, SqliteAuditStore
from caseroute.audit.stream_check import ChainCheck, StreamChecker, record_from_text
from caseroute.domain.errors import CaserouteError
from caseroute.engine.case_rules import EngineKind
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
from caseroute.replay.source import ExportedRecords, RecordFilter, RecordSource, SinkRecords

CHUNK = 200
"""Records per unit of work sent to a worker."""
Progress = Callable[[int, int], None]
"""Told ``(done, total)`` as records are replayed."""


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
        progress: Told ``(done, total)`` as chunks finish (None: silent).
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


_worker: RecordReplayer | None = None


def _roster_absent(source: RecordSource) -> str:
    """Why a roster snapshot ``source`` does not give is absent (review R32b F10)."""
    if isinstance(source, ExportedRecords):
        return ABSENT_FROM_EXPORT if source.blobs is None else ABSENT_FROM_LOG
    return ABSENT_FROM_LOG if isinstance(source, SinkRecords) else ABSENT_FROM_SOURCE


def _init_worker(candidate: CandidateSource, engine: EngineKind, roster_absent: str) -> None:
    global _worker  # noqa: PLW0603 - one candidate per worker process, loaded once
    # Ctrl-C reaches the whole process group: the calling process stops the run and says so
    # once; a worker interrupted mid-chunk would only print its own traceback.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _worker = RecordReplayer(candidate.load(engine), roster_absent)


def _replay_chunk(items: list[WorkItem]) -> list[RecordResult]:
    assert _worker is not None  # noqa: S101 - set by the pool's initializer
    return [_replay_one(_worker, item) for item in items]


def _chunks(records: list[Selected], source: RecordSource) -> Iterator[list[WorkItem]]:
    # Every record carries its snapshot's text: the same str object, which pickle sends once
    # per chunk; workers parse each snapshot once and keep it. The last ROSTER_CACHE snapshots'
    # texts are kept here (records in chain order reuse recent ones): a log where each decision
    # saw a new snapshot held every snapshot's text for the whole run (~315 kB each at 1,000
    # agents: 96 MB at 300 snapshots).
    blobs: OrderedDict[str, str | None] = OrderedDict()
    chunk: list[WorkItem] = []
    for record, problem in records:
        data = _input_of(record)
        ref = data.get("roster") if isinstance(data, dict) else None
        sha = ref.get("sha256") if isinstance(ref, dict) else None
        text: str | None = None
        if isinstance(sha, str):
            if sha in blobs:
                blobs.move_to_end(sha)
            else:
                try:
                    blob = source.get_blob(sha)
                except ValueError:  # a row no caseroute writes: edited, so no roster ("")
                    blobs[sha] = ""
                else:
                    blobs[sha] = blob.content if blob and blob.kind is BlobKind.ROSTER else None
                if len(blobs) > ROSTER_CACHE:
                    blobs.popitem(last=False)
            text = blobs[sha]
        chunk.append((record, text, problem))
        if len(chunk) == CHUNK:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def replay(
    source: RecordSource, candidate: CandidateSource, options: ReplayOptions
) -> ReplayReport:
    """Replay recorded decisions under a candidate ruleset and report what would change.

    Records of another ruleset name than the candidate's are skipped (counted as
    ``other_ruleset``).

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
    """
    compiled = candidate.compile()
    builder = ReportBuilder(options.sample_size)
    mine: list[Selected] = []
    chain: ChainCheck | None = None
    rows = source.record_rows() if isinstance(source, SinkRecords) else None
    if rows is not None:
        assert isinstance(source, SinkRecords)  # noqa: S101 - only a log's source has rows
        assert isinstance(source.sink, SqliteAuditStore)  # noqa: S101 - as record_rows checks
        # Every row read is checked, whatever its ruleset: one sha256 each (review R32b F3).
        where = source.where
        checker = StreamChecker(source.sink, whole=where == RecordFilter(limit=where.limit))
        read = 0
        for row in rows:
            read += 1
            problem = checker.check(row)
            if row[_NAME] == compiled.name:
                mine.append((row, problem))
            else:
                builder.skip_other_ruleset()
        chain = checker.finish(complete=where.limit is None or read < where.limit)
    else:
        for record in source.records():
            if record.ruleset_name == compiled.name:
                mine.append((record, None))
            else:
                builder.skip_other_ruleset()
    total = len(mine)
    done = 0
    for results in _results(mine, source, candidate, options):
        for result in results:
            builder.add(result)
        done += len(results)
        if options.progress is not None:
            options.progress(done, total)
    return builder.build(compiled.name, compiled.version, compiled.sha256, chain)


def _results(
    records: list[Selected],
    source: RecordSource,
    candidate: CandidateSource,
    options: ReplayOptions,
) -> Iterator[list[RecordResult]]:
    """Results per chunk, in chain order."""
    if not records:
        return
    workers = min(options.workers, -(-len(records) // CHUNK))
    if workers <= 1:
        loaded = candidate.load(options.engine)
        try:
            replayer = RecordReplayer(loaded, _roster_absent(source))
            for chunk in _chunks(records, source):
                yield [_replay_one(replayer, item) for item in chunk]
        finally:
            loaded.close()  # the durable engine's rulesets; workers release theirs on exit
        return
    try:
        yield from _pooled(records, source, candidate, options, workers)
    except BrokenProcessPool:
        raise ReplayWorkerError(
            f"a replay worker process died (of {workers}); nothing was reported; retry, or "
            "run with --workers 1 to replay in this process"
        ) from None


def _pooled(
    records: list[Selected],
    source: RecordSource,
    candidate: CandidateSource,
    options: ReplayOptions,
    workers: int,
) -> Iterator[list[RecordResult]]:
    context = multiprocessing.get_context("forkserver")
    pool = ProcessPoolExecutor(
        workers,
        context,
        initializer=_init_worker,
        initargs=(candidate, options.engine, _roster_absent(source)),
    )
    try:
        pending: deque[Future[list[RecordResult]]] = deque()
        for chunk in _chunks(records, source):
            pending.append(pool.submit(_replay_chunk, chunk))
            if len(pending) >= 2 * workers:  # bounded: chunks in flight, not the whole log
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
    except BaseException:
        # Interrupted (Ctrl-C), a worker died, or the caller stopped reading: chunks not
        # started are dropped rather than replayed for nobody (review R32b F9).
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown()
