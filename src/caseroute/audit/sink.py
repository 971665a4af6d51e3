"""What the service needs from a decision log: the sink protocol both stores implement.

``SqliteAuditStore`` (``store``, the default) and ``PostgresAuditSink`` (``postgres``) implement
``AuditSink``; ``store`` re-exports these names, where their users have always imported them.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Protocol, runtime_checkable

from caseroute.audit.record import (
    Appended,
    AuditRecord,
    Blob,
    RulesetEvent,
    ShadowResult,
    ShadowSummary,
)


class AuditSink(Protocol):
    """What the service needs from a decision log (SQLite: ``store``; PostgreSQL: ``postgres``)."""

    def append(self, records: Sequence[AuditRecord], blobs: Sequence[Blob] = ()) -> list[Appended]:
        """Store records (and the blobs they reference) durably, in one transaction.

        Returns when committed. A record whose decision_id is stored already is not written
        again: the stored one comes back with ``existed=True``.

        Raises:
            AuditUnavailableError: If nothing could be committed.
            IdempotencyConflictError: If a decision_id is stored with a different request input.
        """
        ...

    def has_blob(self, sha256: str) -> bool:
        """Whether a blob is known to be stored (False may be wrong, True never is).

        Lets callers skip building content the store already has.
        """
        ...

    def get_blob(self, sha256: str) -> Blob | None:
        """One blob."""
        ...

    def query(
        self,
        *,
        case_id: str = "",
        since: datetime | None = None,
        until: datetime | None = None,
        after_seq: int = 0,
        limit: int = 100,
    ) -> list[AuditRecord]:
        """Records in chain order after ``after_seq``, by case and decision instant.

        ``since <= now < until``; None = unbounded.
        """
        ...

    def by_request(self, request_id: str) -> list[AuditRecord]:
        """Records of one request, in position order."""
        ...

    def get(self, decision_id: str) -> AuditRecord | None:
        """One record."""
        ...

    def records(
        self,
        after_seq: int = 0,
        *,
        case_id: str = "",
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> Iterator[AuditRecord]:
        """Every matching record in chain order after ``after_seq`` (verify, export)."""
        ...

    def head(self) -> tuple[int, str]:
        """(seq, record_hash) of the last committed record; (0, GENESIS) when empty."""
        ...

    def append_events(
        self, events: Sequence[RulesetEvent], *, unless_current: bool = False
    ) -> list[RulesetEvent]:
        """Seal ruleset lifecycle events into the chain and store them durably.

        Returns when committed. An event whose event_id is stored already is not written
        again: the stored one comes back. With ``unless_current``, neither is an event whose
        ruleset role's last event already ends in the same ``to_version`` and ``to_sha256``
        (checked in the write transaction; that last event comes back).

        Raises:
            AuditUnavailableError: If nothing could be committed.
        """
        ...

    def events(
        self, ruleset_name: str | None = None, after_seq: int = 0, limit: int = 1000
    ) -> list[RulesetEvent]:
        """Ruleset lifecycle events in chain order after ``after_seq`` (None name = all)."""
        ...

    def last_event(self, ruleset_name: str, role: str) -> RulesetEvent | None:
        """The most recent event of one role (active / shadow) of a ruleset, if any."""
        ...

    def decided_sha256s(self, ruleset_name: str, ruleset_version: str) -> frozenset[str]:
        """The distinct ruleset_sha256 of the decisions made by ``ruleset_name@ruleset_version``.

        Raises:
            AuditUnavailableError: If the log cannot be read.
        """
        ...

    def append_shadow(
        self,
        results: Sequence[ShadowResult],
        dropped: int | Mapping[tuple[str, str], int] = 0,
    ) -> None:
        """Store shadow comparisons (outside the chain) and count dropped ones.

        Raises:
            ValueError: If a result or a count is unfit to store (``QueuedAppends``'s
                ``append_shadow`` says which); checked before anything is queued.
            AuditUnavailableError: If nothing could be committed.
        """
        ...

    def shadow_results(
        self,
        ruleset_name: str,
        shadow_version: str | None = None,
        disagreements_only: bool = False,
        limit: int = 1000,
    ) -> list[ShadowResult]:
        """Shadow comparisons of a ruleset, oldest first."""
        ...

    def shadow_summary(self, ruleset_name: str) -> list[ShadowSummary]:
        """Per shadow version of a ruleset: how its decisions compared with the live ones."""
        ...

    def close(self) -> None:
        """Stop accepting appends and release resources."""
        ...


@runtime_checkable
class AuditorReads(Protocol):
    """A log whose long reads (a server's replay) need other bounds than its writer's.

    A PostgreSQL writer bounds each statement by its ``timeout_s`` (a caller waits on every
    write); a replay on the server is an auditor's read, which may scan for minutes on a live
    server. A SQLite log has no such bound on reads and is read as it is.
    """

    def auditor_reads(self) -> AbstractContextManager[AuditSink]:
        """The same log, read as ``caseroute audit`` reads it, for the block."""
        ...


class KeyMismatchError(Exception):
    """The log is masked with another key than the one offered (carries the stored one)."""

    def __init__(self, stored: str) -> None:
        super().__init__(
            f"the decision log's masking key is now {stored or '(none)'}, not this writer's "
            "(rotated with `caseroute audit rotate-key`?); restart it with the current key"
        )
        self.stored = stored
