"""Replaying one chunk of work, in this process or in a worker process (the pool's entry points).

A chunk holds records as stored (decoded by whoever replays them) or export lines as read; it
comes to one ``Outcome`` per record or line, in order. A worker process loads the candidate
once (``init_worker``, the pool's initializer) and replays every chunk it is sent with it.
"""

from __future__ import annotations

import signal
from dataclasses import dataclass
from enum import Enum
from typing import NamedTuple

from caseroute.audit.record import AuditRecord
from caseroute.audit.store import RecordRow
from caseroute.audit.stream_check import record_from_text
from caseroute.engine.case_rules import EngineKind, LoadedRuleset
from caseroute.replay.candidate import CandidateSource
from caseroute.replay.evaluate import (
    RecordReplayer,
    RecordResult,
    undecided_result,
    unverified_result,
)
from caseroute.replay.rosters import RosterTexts, roster_sha
from caseroute.replay.source import ExportedRecords, ExportFormatError, lacks_decision

Work = AuditRecord | RecordRow
"""A record, decoded or as stored (decoded by whoever replays it)."""
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


def _record_of(work: Work) -> AuditRecord:
    # From the hashed text only: a column edited in the log never changes what is replayed.
    return work if isinstance(work, AuditRecord) else record_from_text(work)


def _replay_one(replayer: RecordReplayer, item: WorkItem) -> RecordResult:
    work, roster, problem = item
    record = _record_of(work)
    return (
        replayer.replay(record, roster) if problem is None else unverified_result(record, problem)
    )


class Replayer:
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


def replay_items(replayer: Replayer, items: list[WorkItem]) -> Done:
    """Replay records selected by the calling process."""
    return len(items), [_replay_one(replayer.get(), item) for item in items]


def replay_lines(
    replayer: Replayer,
    export: ExportedRecords,
    lines: list[ExportLine],
    budget: int | None,
    rosters: RosterTexts | None = None,
) -> Done:
    """Decode, select and replay export lines, stopping after ``budget`` records (None: all).

    Roster snapshots' texts come with the lines (a worker), or from ``rosters`` (the calling
    process: each line is then decoded once, there).

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
        if lacks_decision(record):  # no ruleset to tell it by: reported, never skipped
            outcomes.append(undecided_result(record))
            continue
        if record.ruleset_name != replayer.name:
            outcomes.append(LineEnd.OTHER_RULESET)
            continue
        sha = roster_sha(record.input)
        if rosters is not None:
            roster = rosters.text(sha)
        else:  # the text read with the line is its snapshot's only if the record says so
            roster = line.roster if sha == line.roster_sha256 else None
        outcomes.append(replayer.get().replay(record, roster))
    return len(lines), outcomes


_worker: Replayer | None = None
_export: ExportedRecords | None = None


def init_worker(
    candidate: CandidateSource,
    engine: EngineKind,
    roster_absent: str,
    name: str,
    export: ExportedRecords | None,
) -> None:
    """The pool's initializer: what this worker process replays with.

    Args:
        candidate: The candidate ruleset's source (loaded when the first record needs it).
        engine: Engine of record for the candidate.
        roster_absent: Why a roster snapshot the records' source lacks is absent.
        name: The candidate's ruleset name.
        export: The export whose lines this worker decodes (None: records are sent).
    """
    global _worker, _export  # noqa: PLW0603 - one candidate per worker process, loaded once
    # Ctrl-C reaches the whole process group: the calling process stops the run and says so
    # once; a worker interrupted mid-chunk would only print its own traceback. Replay starts
    # workers with SIGINT blocked (run._ctrl_c_held); ignored, one pending is dropped too.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _worker = Replayer(candidate, engine, roster_absent, name)
    _export = export


def replay_chunk(items: list[WorkItem]) -> Done:
    """Replay records in a worker process."""
    assert _worker is not None  # noqa: S101 - set by the pool's initializer
    return replay_items(_worker, items)


def replay_line_chunk(lines: list[ExportLine], budget: int | None) -> Done:
    """Replay export lines in a worker process (see ``replay_lines``)."""
    assert _worker is not None  # noqa: S101 - set by the pool's initializer
    assert _export is not None  # noqa: S101 - set by the pool's initializer for an export
    return replay_lines(_worker, _export, lines, budget)
