"""Cheap chain checks of decision rows as replay and report stream them, and text-only decoding.

``caseroute audit verify`` walks the whole chain; readers that stream records for another
purpose (replay, the operations report) must still not present an edited log as trustworthy
(review R32b F3). Per row they check, for about one sha256 over its stored text, that the text
hashes to its ``record_hash`` after its ``prev_hash``, that every column holds what the text
says, and that it follows the chain entry before it (a decision streamed just before, a ruleset
event or a sealed key rotation); over an unfiltered read, also that no record is missing and the
chain ends at the store's head. They decode a record from its hashed text only
(``record_from_text``), so an edited column never changes what they count or replay.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields
from typing import Any, Protocol

from caseroute.audit.record import GENESIS, AuditRecord, RulesetEvent, text_hash
from caseroute.audit.sql_rows import (
    RECORD_COLUMNS,
    KeyEra,
    RecordRow,
    column_off_text,
    record_from_row,
)
from caseroute.audit.verify import record_problem

_COL = {name: index for index, name in enumerate(RECORD_COLUMNS)}
_RECORD_FIELDS = frozenset(f.name for f in fields(AuditRecord))
_CONTENT_FIELDS = _RECORD_FIELDS - {"prev_hash", "record_hash"}


@dataclass(frozen=True, slots=True)
class ChainCheck:
    """What the streamed chain checks found.

    Attributes:
        problems: Problems found (0: every check passed).
        first: The first one, in words (None when there is none).
    """

    problems: int = 0
    first: str | None = None


class ChainEntries(Protocol):
    """What the checks read of a log besides its decision rows (all small)."""

    def head(self) -> tuple[int, str]:
        """The (seq, record_hash) committed last."""
        ...

    def iter_events(self) -> Iterable[RulesetEvent]:
        """The ruleset events in chain order."""
        ...

    def key_history(self) -> list[KeyEra]:
        """The masking key eras."""
        ...


def record_from_text(row: RecordRow) -> AuditRecord:
    """The record a row's hashed text holds (its hashes from their columns).

    The other columns are copies of the text's values for indexes and filters; reading them
    would let a column edited after the fact change what is counted or replayed. A row stored
    before the log kept its text, or whose text is no record, is decoded from its columns
    (``record_from_row``; the checks name it).
    """
    text = row[_COL["content"]]
    if type(text) is str:
        try:
            data = json.loads(text)
        except (ValueError, RecursionError):
            data = None
        if isinstance(data, dict) and data.keys() == _CONTENT_FIELDS:
            try:
                record = AuditRecord(
                    **data,
                    prev_hash=row[_COL["prev_hash"]],
                    record_hash=row[_COL["record_hash"]],
                )
            except TypeError:
                pass
            else:
                if isinstance(record.input, dict) and isinstance(record.decision, dict):
                    object.__setattr__(record, "_hashed_text", text)
                    return record
    return record_from_row(row)


def record_as_hashed(record: AuditRecord) -> tuple[AuditRecord, str | None]:
    """A record read from a log, as the text its chain hash covers holds it, and its problem.

    ``caseroute audit show`` reads one record by id; it shows the text's values (the columns
    beside it are copies an edit can change alone: review R36 F2, a ``case_id`` column edited
    was printed as the case) and says when the row cannot be trusted, in verify's words.

    Args:
        record: A record a log's read decoded (``stored_row`` set); one built in memory is
            taken as it is.

    Returns:
        The record decoded from its hashed text (``record_from_text``), and why its row cannot
        be trusted: its text does not hash to its record_hash, or a column is not the writer's
        copy of the text (None: it can; links to other entries are ``audit verify``'s).
    """
    row = record.stored_row
    if row is None:
        return record, record_problem(record)
    return record_from_text(row), _row_problem(row)


def _row_problem(row: RecordRow) -> str | None:
    """Why a row's own content cannot be trusted, in verify's words (None: it can).

    About one sha256 for a row as the writer stored it: its text hashes to its record_hash
    and every column is the writer's exact copy of the text (``column_off_text``). Anything
    else is decoded and judged as verify judges it (``verify.record_problem``), so an edit is
    named in the same words: a row stored before the text was kept is compared by value.
    """
    seq = row[_COL["seq"]]
    text = row[_COL["content"]]
    texts = (text, row[_COL["prev_hash"]], row[_COL["record_hash"]], row[_COL["input"]])
    edited = f"record {seq} was edited or moved: its content no longer matches its hash"
    if text is None:
        return record_problem(record_from_row(row))
    if not all(type(t) is str for t in texts):
        return edited
    if text_hash(row[_COL["prev_hash"]], text) != row[_COL["record_hash"]]:
        return edited
    if column_off_text(row) is None:
        return None
    return record_problem(record_from_row(row))


class StreamChecker:
    """Checks decision rows streamed in chain order; counts every problem, keeps the first."""

    def __init__(self, log: ChainEntries, whole: bool) -> None:
        """Check rows of ``log``.

        Args:
            log: The decision log (its events and key eras are read here, and again when a
                whole read finds a gap: a live log may record an event meanwhile).
            whole: The rows are every decision from the start of the chain (no filter): a
                missing record, and a head behind the last entry or at it with another hash,
                are found too. A filtered read checks links only between entries adjacent in
                the chain. A log that grew past the last row read cannot tell a deleted tail
                from new records: ``caseroute audit verify --expect-head`` does.
        """
        self._log = log
        self._others: dict[int, str] = {}
        self._read_others()
        self._whole = whole
        self._last: tuple[int, str] = (0, GENESIS)
        self.problems = 0
        self.first: str | None = None

    def _read_others(self) -> None:
        """The chain entries that are no decision: ruleset events and sealed rotations."""
        self._others = {e.seq: e.record_hash for e in self._log.iter_events()}
        for era in self._log.key_history():
            if era.seq is not None:
                self._others[era.seq] = era.record_hash

    def _found(self, problem: str) -> None:
        self.problems += 1
        if self.first is None:
            self.first = problem

    def check(self, row: RecordRow) -> str | None:
        """Check one row (the next in chain order).

        Returns:
            Why its own content cannot be trusted (its text does not hash to its record_hash,
            or a column disagrees with it), else None; a broken link is counted, not returned.
        """
        seq = row[_COL["seq"]]
        if type(seq) is not int:
            self._found("a record's seq is no number (edited)")
            return "its seq is no number"
        own = _row_problem(row)
        if own is not None:
            self._found(own)
        expected = self._predecessor(seq)
        if expected is not None and row[_COL["prev_hash"]] != expected:
            self._found(
                f"record {seq} does not follow record {seq - 1} (deleted, replaced or "
                "reordered records)"
            )
        self._last = (seq, row[_COL["record_hash"]])
        return own

    def _predecessor(self, seq: int) -> str | None:
        """The hash the entry before ``seq`` has (None: not known to a filtered read)."""
        last_seq, last_hash = self._last
        if seq == 1:
            return GENESIS
        if seq - 1 in self._others:
            return self._others[seq - 1]
        if last_seq == seq - 1:
            return last_hash
        if self._whole:
            self._read_others()  # an event recorded since they were read fills the gap
            if seq - 1 in self._others:
                return self._others[seq - 1]
            missing = self._after(last_seq)
            self._found(f"record {missing} is missing (deleted?): the next stored record is {seq}")
        return None

    def _after(self, seq: int) -> int:
        """The first position after ``seq`` that no event or rotation takes."""
        seq += 1
        while seq in self._others:
            seq += 1
        return seq

    def finish(self, complete: bool) -> ChainCheck:
        """The result; ``complete``: the read was not cut short (``--limit``)."""
        if self._whole and complete:
            head = self._log.head()  # now: a live log grows while it is read
            self._read_others()
            seq, hashed = self._last
            while seq + 1 in self._others:
                seq += 1
                hashed = self._others[seq]
            if head[0] < seq or (head[0] == seq and head[1] != hashed):
                self._found(
                    f"the chain ends at record {seq} but the store's head is record "
                    f"{head[0]} (the head edited, or records rewritten)"
                )
        return ChainCheck(self.problems, self.first)


def chain_data(check: ChainCheck | None) -> Mapping[str, Any] | None:
    """A check's JSON form: ``{"verified", "problems", "first"}`` (None: not checked)."""
    if check is None:
        return None
    return {"verified": check.problems == 0, "problems": check.problems, "first": check.first}


def chain_warning(check: ChainCheck | None) -> str | None:
    """The warning a report prints first when the log failed its checks (None: it did not)."""
    if check is None or not check.problems:
        return None
    return (
        f"WARNING: the decision log fails its chain checks ({check.problems} problem(s); "
        f"first: {check.first}): it was edited or damaged, so these figures cannot be "
        "trusted; run `caseroute audit verify`"
    )
