"""Where replay reads recorded decisions: the decision log (with filters) or exported JSON lines."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, fields
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol, TypeVar

from caseroute.audit.record import AuditRecord, Blob
from caseroute.audit.store import AuditSink, RecordRow, SqliteAuditStore
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

    def record_rows(self) -> Iterator[RecordRow] | None:
        """The same records undecoded (``RecordRow``), when the log can read them so.

        Returns:
            The rows in chain order, or None when the sink is not a SQLite log (then use
            ``records``).
        """
        if not isinstance(self.sink, SqliteAuditStore):
            return None
        w = self.where
        found = self.sink.record_rows(case_id=w.case_id, since=w.since, until=w.until)
        return _limited(found, w.limit)

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
    """

    path: Path
    where: RecordFilter = RecordFilter()
    blobs: Callable[[str], Blob | None] | None = None
    parse: Callable[[Any], AuditRecord] = record_from_dict

    def records(self) -> Iterator[AuditRecord]:
        """The matching records in file order.

        Raises:
            ExportFormatError: For a line that is not an exported record (``file:line: ...``).
            OSError: If the file cannot be read.
        """
        return _limited(self._read(), self.where.limit)

    def _read(self) -> Iterator[AuditRecord]:
        number = 0
        try:
            with self.path.open(encoding="utf-8") as lines:
                for number, line in enumerate(lines, 1):
                    record = self._parse(number, line)
                    if record is not None and self.where.admits(record):
                        yield record
        except UnicodeDecodeError:
            # Decoding fails a block at a time: the line is where reading stopped.
            raise ExportFormatError(
                f"{self.path}:{number + 1}: not UTF-8 text (saved as UTF-16, as PowerShell's "
                "`>` does, or compressed?); --input takes the output of `caseroute audit "
                "export` as written, UTF-8"
            ) from None

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
