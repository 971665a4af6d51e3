"""The replay loop: a feed's chunks replayed here or on a pool of workers, folded into a report.

Workers are separate processes (``forkserver``: the durable_rules engine lock is per process,
so threads would serialise), each compiling and loading the candidate once. Records go out in
chunks, in chain order, and results are folded in that same order, so the report is identical
for any number of workers. Chunks are read as they are sent (``caseroute.replay.feeds``), so
memory stays flat however many records are replayed (review R32b F5); the progress bar's total
is counted first (in the log, ``SELECT COUNT(*)``; in an export, its lines).
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
from collections import deque
from collections.abc import Callable, Generator, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from dataclasses import dataclass, replace
from itertools import chain as chained
from itertools import islice
from typing import Any

from caseroute.audit.record import AuditRecord
from caseroute.audit.sql_reads import SqlLogReads
from caseroute.audit.store import RECORD_COLUMNS, RecordRow
from caseroute.audit.stream_check import ChainCheck, StreamChecker
from caseroute.domain.errors import CaserouteError
from caseroute.engine.case_rules import EngineKind
from caseroute.replay.candidate import CandidateSource
from caseroute.replay.evaluate import RecordResult
from caseroute.replay.feeds import Feed, Fold, LineFeed, RecordFeed, Selected
from caseroute.replay.report import DEFAULT_SAMPLE, ReplayReport, ReportBuilder
from caseroute.replay.rosters import roster_absent
from caseroute.replay.source import (
    ExportedRecords,
    ExportFormatError,
    RecordFilter,
    RecordSource,
    SinkRecords,
)
from caseroute.replay.worker import Done, LineEnd, LineError, Outcome, Replayer, init_worker

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


_NAME = RECORD_COLUMNS.index("ruleset_name")


def replay(
    source: RecordSource, candidate: CandidateSource, options: ReplayOptions
) -> ReplayReport:
    """Replay recorded decisions under a candidate ruleset and report what would change.

    Records of another ruleset name than the candidate's are skipped (counted as
    ``other_ruleset``). Records are read and replayed a chunk at a time (``feeds.CHUNK``); a
    decision log is read up to its last record when the run starts. With ``options.progress``,
    what it counts is counted first: another read of the source's records, unless the source
    is a SQL decision log (counted in the log) or an export (its lines counted).

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
    fold = Fold()
    finish: Callable[[], ChainCheck | None] = lambda: None  # noqa: E731 - replaced for a log
    feed: Feed
    count: Callable[[], int]
    rows = None
    # A SQL log (SQLite, or the PostgreSQL log replicas share: `replay --server`) is read as
    # rows and chain-checked as they stream; only another AuditSink is read decoded, unchecked.
    if isinstance(source, SinkRecords) and isinstance(source.sink, SqlLogReads):
        # Up to the last record now: a live log grows while it is replayed.
        through = source.sink.last_record_seq()
        rows = source.record_rows(through)
    if rows is not None:
        assert isinstance(source, SinkRecords)  # noqa: S101 - only a log's source has rows
        assert isinstance(source.sink, SqlLogReads)  # noqa: S101 - as record_rows checks
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

        feed = RecordFeed(checked(rows), source)
        log = source
        count = lambda: log.count_rows(name, through)  # noqa: E731
    elif isinstance(source, ExportedRecords):
        feed = LineFeed(source, fold)
        count = source.count_lines
    else:

        def selected(records: Iterator[AuditRecord]) -> Iterator[Selected]:
            for record in records:
                if record.ruleset_name == name:
                    yield record, None
                else:
                    builder.skip_other_ruleset()

        feed = RecordFeed(selected(source.records()), source)
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


def _fold(outcomes: list[Outcome], builder: ReportBuilder, fold: Fold, limit: int | None) -> bool:
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
    feed: Feed,
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
    absent = roster_absent(source)
    if workers <= 1:
        replayer = Replayer(candidate, options.engine, absent, name)
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
    chunks: Iterator[list[Any]], feed: Feed, initargs: tuple[Any, ...], workers: int
) -> Iterator[Done]:
    context = multiprocessing.get_context("forkserver")
    pool = ProcessPoolExecutor(workers, context, initializer=init_worker, initargs=initargs)
    try:
        pending: deque[Future[Done]] = deque()
        for chunk in chunks:
            function, args = feed.task(chunk)
            with _ctrl_c_held():  # a submit may start the forkserver or a worker
                pending.append(pool.submit(function, *args))
            if len(pending) >= 2 * workers:  # bounded: chunks in flight, not the whole log
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
    except BaseException:
        # Interrupted (Ctrl-C), a worker died, or the caller stopped reading (the limit, or a
        # line that is no record): chunks not started are dropped rather than replayed for
        # nobody (review R32b F9). Chunks a worker has started are finished (workers ignore
        # Ctrl-C); the interpreter waits for them as it exits.
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown()


@contextmanager
def _ctrl_c_held() -> Iterator[None]:
    """Hold Ctrl-C (SIGINT) off while the pool may start processes; take it after.

    A terminal sends SIGINT to the whole process group. The forkserver, and each worker it
    forks, answer it with a KeyboardInterrupt traceback until they set it aside (the
    forkserver once it has imported what it runs, a worker in ``init_worker``): about 1 Ctrl-C
    in 9 printed the forkserver's (review R32b F9). The forkserver inherits the signal mask of
    the thread that starts it, and each worker the forkserver's: started here, they begin with
    SIGINT blocked and never see it (CPython starts its resource tracker so, bpo-33613). In
    the main thread, where Python runs signal handlers, a SIGINT another thread receives (a
    progress bar's) is held too, rather than raised halfway through a start, whose child would
    then fail reading what it was sent and print that. A held SIGINT is raised on leaving.
    """
    held: list[int] = []
    handler = None
    if threading.current_thread() is threading.main_thread():
        handler = signal.getsignal(signal.SIGINT)
        if handler is not None:  # None: not set from Python, so it could not be put back
            signal.signal(signal.SIGINT, lambda signum, _: held.append(signum))
    mask = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        # Unblocked, a SIGINT that came meanwhile reaches the holder above, here.
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        if handler is not None:
            signal.signal(signal.SIGINT, handler)
            if held:
                signal.raise_signal(signal.SIGINT)  # as the caller's handler takes it
