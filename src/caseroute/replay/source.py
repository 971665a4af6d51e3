"""Where replay reads recorded decisions: the decision log (with filters) or exported JSON lines."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, fields
from datetime import datetime
from itertools import takewhile
from pathlib import Path
from typing import Any, Protocol, TypeVar

from caseroute.audit.record import AuditRecord, Blob
from caseroute.audit.sql_reads import SqlLogReads
from caseroute.audit.store import AuditSink, RecordRow
from caseroute.domain.codec import parse_timestamp


class RecordSource(Protocol):
    """Recorded decisions in chain order, and the blobs (roster snapshots) they reference."""

    def records(self) -> Iterator[AuditRecord]:
        """The records to replay, in chain order."""
        ...

    def get_blob(self, sha256: str) -> Blob | None:
        """One blob (None when the source does not hold it)."""
        ...


@dataclass(frozen=True, slots=True)
class RecordFilter:
    """Which recorded decisions to replay.

    Attributes:
        since: Only decisions with ``now >= since`` (None: unbounded).
        until: Only decisions with ``now < until`` (None: unbounded).
        case_id: Only this case ("" = any).
        limit: At most this many records, the first in chain order (None: all).
    """

    since: datetime | None = None
    until: datetime | None = None
    case_id: str = ""
    limit: int | None = None

    def admits(self, record: AuditRecord) -> bool:
        """Whether a record passes the case and time filters (not the limit)."""
        if self.case_id and record.case_id != self.case_id:
            return False
        if self.since is None and self.until is None:
            return True
        now = parse_timestamp(record.now)
        if now is None:
            return True  # kept, and reported not_replayable (its `now` is unreadable)
        return (self.since is None or now >= self.since) and (
            self.until is None or now < self.until
        )


T = TypeVar("T")


def _limited(records: Iterator[T], limit: int | None) -> Iterator[T]:
    for count, record in enumerate(records):
        if limit is not None and count >= limit:
            return
        yield record


@dataclass(frozen=True, slots=True)
class SinkRecords:
    """Records read from a decision log (``AuditSink``), filtered in the store."""

    sink: AuditSink
    where: RecordFilter = RecordFilter()

    def records(self) -> Iterator[AuditRecord]:
        """The matching records in chain order."""
        w = self.where
        found = self.sink.records(case_id=w.case_id, since=w.since, until=w.until)
        return _limited(iter(found), w.limit)

    def record_rows(self, through_seq: int | None = None) -> Iterator[RecordRow] | None:
        """The same records undecoded (``RecordRow``), when the log can read them so.

        Args:
            through_seq: Only records at or before this chain position (None: to the end as
                it is when the read gets there; a live log keeps growing).

        Returns:
            The rows in chain order, or None when the sink is not a SQL log (SQLite or
            PostgreSQL; then use ``records``).
        """
        if not isinstance(self.sink, SqlLogReads):
            return None
        w = self.where
        found = self.sink.record_rows(case_id=w.case_id, since=w.since, until=w.until)
        if through_seq is not None:
            bound = through_seq
            found = takewhile(lambda row: type(row[0]) is not int or row[0] <= bound, found)
        return _limited(found, w.limit)

    def count_rows(self, ruleset_name: str, through_seq: int) -> int:
        """How many of the rows ``record_rows(through_seq)`` gives are of ``ruleset_name``.

        Counted in the log (``SELECT COUNT(*)``): no row's text is read.

        Raises:
            TypeError: If the sink is not a SQL log (``record_rows`` gives None).
        """
        if not isinstance(self.sink, SqlLogReads):
            raise TypeError("only a SQL log's rows are counted")
        w = self.where
        return self.sink.count_record_rows(
            ruleset_name,
            case_id=w.case_id,
            since=w.since,
            until=w.until,
            through_seq=through_seq,
            limit=w.limit,
        )

    def get_blob(self, sha256: str) -> Blob | None:
        """A blob from the log."""
        return self.sink.get_blob(sha256)


class ExportFormatError(ValueError):
    """A line of an export file is not an exported record; the message names the line."""


_RECORD_FIELDS = tuple(f.name for f in fields(AuditRecord))


def record_from_dict(data: Any) -> AuditRecord:
    """An ``AuditRecord`` from its ``as_dict`` form (``caseroute audit export``).

    Raises:
        ExportFormatError: If a field is missing or of the wrong type (the message names it).
    """
    if not isinstance(data, dict):
        raise ExportFormatError("is not a JSON object")
    values: dict[str, Any] = {}
    for name in _RECORD_FIELDS:
        if name not in data:
            raise ExportFormatError(f"has no `{name}`")
        value = data[name]
        expected: type | tuple[type, ...] = (
            int if name == "seq" else dict if name in ("input", "decision") else str
        )
        if not isinstance(value, expected) or isinstance(value, bool):
            raise ExportFormatError(f"`{name}` has the wrong type")
        values[name] = value
    return AuditRecord(**values)


def record_without_decision(
    *,
    seq: int,
    request_id: str,
    request_sha256: str,
    recorded_at: str,
    caller: str,
    stored_input: dict[str, Any],
    prev_hash: str,
    record_hash: str,
) -> AuditRecord:
    """The record of an export line that has no decision (``lacks_decision`` tells it).

    ``audit export`` writes a record it cannot rebuild (edited, or its ruleset source lost)
    without its decision: the ruleset, instant and decision id are in the decision, so they
    are empty here; the case id is read from the stored case (never masked).
    """
    case = stored_input.get("case")
    case_id = case.get("case_id") if isinstance(case, dict) else None
    return AuditRecord(
        seq=seq,
        decision_id="",
        request_id=request_id,
        request_sha256=request_sha256,
        case_id=case_id if isinstance(case_id, str) else "",
        recorded_at=recorded_at,
        now="",
        ruleset_name="",
        ruleset_version="",
        ruleset_sha256="",
        caseroute_version="",
        caller=caller,
        input=stored_input,
        decision={},
        prev_hash=prev_hash,
        record_hash=record_hash,
    )


def lacks_decision(record: AuditRecord) -> bool:
    """Whether a record read from an export holds no decision, nor so the ruleset it was of.

    Replay reports such a record ``not_replayable`` under any candidate: it cannot tell it as
    another ruleset's, and skipping it would hide it (review R34c F2).
    """
    return not record.decision and not record.ruleset_name


def stored_input(data: Any) -> object:
    """The input an ``as_dict`` line's record holds (None: it holds none)."""
    return data.get("input") if isinstance(data, dict) else None


@dataclass(frozen=True, slots=True)
class ExportedRecords:
    """Records read from ``caseroute audit export`` JSON lines, with blobs from a log if given.

    Attributes:
        path: The JSON lines file.
        where: Filters applied while reading.
        blobs: Where roster snapshots come from (an export holds records only); None: nowhere,
            so every record is ``not_replayable`` for want of its roster.
        parse: Reads one decoded line into a record (``record_from_dict`` by default; the
            CLI passes ``wire.json_dialect.record_from_export_line``, which also reads the
            ``caseroute.v1.AuditedDecision`` lines export writes today). Raises
            ``ExportFormatError`` for a line that is no record.
        read_input: Reads one decoded line's input, its ``roster`` reference as ``parse``'s
            record will hold it, without building the record (``stored_input`` by default;
            the CLI passes ``wire.json_dialect.input_from_export_line``). Replay reads each
            line's roster reference so in the calling process and leaves the line's record
            to the worker that replays it. Returns None for a line it cannot read.
    """

    path: Path
    where: RecordFilter = RecordFilter()
    blobs: Callable[[str], Blob | None] | None = None
    parse: Callable[[Any], AuditRecord] = record_from_dict
    read_input: Callable[[Any], object] = stored_input

    def records(self) -> Iterator[AuditRecord]:
        """The matching records in file order.

        Raises:
            ExportFormatError: For a line that is not an exported record (``file:line: ...``).
            OSError: If the file cannot be read.
        """
        return _limited(self._read(), self.where.limit)

    def _read(self) -> Iterator[AuditRecord]:
        for number, line in self.numbered_lines():
            record = self.admitted(number, line)
            if record is not None:
                yield record

    def count_lines(self) -> int:
        """How many lines hold something, counted without decoding any (replay's progress).

        A file that is not UTF-8 is counted up to where decoding fails: reading the lines
        (``numbered_lines``) reports it there.

        Raises:
            OSError: If the file cannot be read.
        """
        count = 0
        try:
            with self.path.open(encoding="utf-8") as lines:
                for line in lines:
                    count += not line.isspace()
        except UnicodeDecodeError:
            pass
        return count

    def numbered_lines(self) -> Iterator[tuple[int, str]]:
        """The lines that hold something, with their numbers, undecoded (see ``admitted``).

        Raises:
            ExportFormatError: Where the file turns out not to be UTF-8 text.
            OSError: If the file cannot be read.
        """
        # Read as bytes and decoded line by line: a text-mode file decodes a block at a
        # time, so a bad byte anywhere in the first 8 kB was reported at line 1.
        with self.path.open("rb") as raw_lines:
            for number, raw in enumerate(raw_lines, 1):
                try:
                    line = raw.decode("utf-8")
                except UnicodeDecodeError:
                    raise self._not_utf8(number) from None
                if not line.isspace():
                    yield number, line

    def _not_utf8(self, number: int) -> ExportFormatError:
        """The error for line ``number``, which does not decode as UTF-8."""
        return ExportFormatError(
            f"{self.path}:{number}: not UTF-8 text (saved as UTF-16, as PowerShell's "
            "`>` does, or compressed?); --input takes the output of `caseroute audit "
            "export` as written, UTF-8"
        )

    def admitted(self, number: int, line: str) -> AuditRecord | None:
        """Line ``number``'s record when it passes the filters (None: blank, or filtered out).

        Raises:
            ExportFormatError: If the line is not an exported record (``file:line: ...``).
        """
        record = self._parse(number, line)
        return record if record is not None and self.where.admits(record) else None

    def line_input(self, line: str) -> object:
        """A line's input (``read_input``), without decoding its record (None: unreadable).

        A line this cannot read fails ``admitted``, which says why.
        """
        try:
            return self.read_input(json.loads(line))
        except (ValueError, RecursionError):
            return None

    def _parse(self, number: int, line: str) -> AuditRecord | None:
        """One line's record (None: a blank line)."""
        if not line.strip():
            return None
        try:
            return self.parse(json.loads(line))
        except json.JSONDecodeError:
            raise ExportFormatError(
                f"{self.path}:{number}: not JSON; --input takes the output of "
                "`caseroute audit export` (one record per line)"
            ) from None
        except RecursionError:
            raise ExportFormatError(
                f"{self.path}:{number}: not JSON (nested too deep); --input takes the output "
                "of `caseroute audit export` (one record per line)"
            ) from None
        except ExportFormatError as exc:
            raise ExportFormatError(
                f"{self.path}:{number}: the line {exc}; --input takes the output of "
                "`caseroute audit export` (one record per line)"
            ) from None

    def get_blob(self, sha256: str) -> Blob | None:
        """A blob from the companion log, if any."""
        return self.blobs(sha256) if self.blobs is not None else None
