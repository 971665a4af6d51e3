"""Replay on the server (``RulesetAdmin.Replay``): a candidate against the server's own log.

The admin API's replay core: it resolves the candidate (text sent by the caller, or
``NAME@VERSION`` found under the server's rulesets directory, else in the decision log), reads
the records from the decision log the server records into, and replays them with the server's
engine of record. Never imports gRPC.

Cost: one record after another in the calling thread (workers=1), about 1-5 ms per record, so
the default maximum of ``MAX_REPLAY_RECORDS`` takes minutes; records are streamed a chunk at a
time, so memory stays flat (review R32b F5). Decisions keep being served meanwhile: they run
on other threads of the server's pool and read the registry's snapshot, never this replay's
candidate, waiting at most for one record's evaluation (the GIL and the engine's lock are
shared); one replay runs at a time so admin calls cannot take over the pool.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from contextlib import ExitStack
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Protocol, runtime_checkable

from caseroute.audit.store import AuditorReads, AuditSink
from caseroute.domain.errors import (
    AuditUnavailableError,
    EngineValidationError,
    Problem,
    RulesetError,
    RulesetNotFoundError,
    RulesetStateError,
)
from caseroute.engine.case_rules import EngineKind
from caseroute.replay import (
    CandidateSource,
    RecordFilter,
    ReplayOptions,
    ReplayReport,
    SinkRecords,
    replay,
)
from caseroute.replay.candidate import resolve_version
from caseroute.replay.report import DEFAULT_SAMPLE

log = logging.getLogger("caseroute.replay_admin")

MAX_REPLAY_RECORDS = 100_000
"""Most records one Replay call reads (and the default): it bounds the minutes of work."""
MAX_SAMPLE = 50
"""Most decision ids sampled per class in a Replay call's report."""
UNREADABLE = "the decision log cannot be read; retry later (the server log has why)"
"""What a Replay caller is told when the log cannot be read (the cause goes to the log)."""
DEFAULT_FILE_NAME = "ruleset.yaml"
"""The file name a candidate sent as text carries in its problems when none is given."""


@dataclass(frozen=True, slots=True)
class ReplayCandidate:
    """The candidate a caller asked for: its source text, or a version the server finds.

    Attributes:
        source: The YAML text ("" when ``ruleset`` is given).
        file_name: The file name ``source``'s problems carry (``file:line``).
        name: With ``version``: the ruleset to find ("" when ``source`` is given).
        version: Its version.
    """

    source: str = ""
    file_name: str = DEFAULT_FILE_NAME
    name: str = ""
    version: str = ""


@dataclass(frozen=True, slots=True)
class ServerReplay:
    """A Replay call's result.

    Attributes:
        report: The replay report.
        limit_reached: The records read reached the limit: the log may hold more.
    """

    report: ReplayReport
    limit_reached: bool


@runtime_checkable
class ReplayAdminCore(Protocol):
    """What the admin transport needs for Replay (``RulesetLifecycle`` implements it)."""

    def replay(
        self, wanted: ReplayCandidate, where: RecordFilter, sample_size: int
    ) -> ServerReplay:
        """Replay the server's decision log under a candidate (see ``ReplayRunner.replay``)."""
        ...


class ReplayRunner:
    """Replays candidates against one server's decision log (one replay at a time)."""

    def __init__(self, engine: EngineKind, audit: AuditSink | None) -> None:
        """Replay with ``engine`` against ``audit``."""
        self._engine = engine
        self._audit = audit
        self._busy = threading.Lock()

    def _candidate(self, root: Path, wanted: ReplayCandidate, audit: AuditSink) -> CandidateSource:
        if not wanted.name:
            return CandidateSource(wanted.file_name, wanted.source)
        spec = f"{wanted.name}@{wanted.version}"
        try:
            found = resolve_version(wanted.name, wanted.version, root, audit)
        except RulesetNotFoundError as exc:
            # Its text names server paths: the caller gets a text without them.
            log.info("Replay: candidate %s not found: %s", spec, exc)
            raise RulesetNotFoundError(
                f"no ruleset version {spec} on this server (neither under its rulesets "
                "directory nor decided in its decision log); ListRulesets shows the loaded "
                "versions, or send the candidate's source instead"
            ) from None
        base = root if root.is_dir() else root.parent
        try:
            shown = str(Path(found.path).relative_to(base))
        except ValueError:
            shown = found.path  # from the log: "NAME@VERSION (from the decision log)"
        return replace(found, path=shown)

    def replay(
        self,
        root: Path,
        wanted: ReplayCandidate,
        where: RecordFilter,
        sample_size: int = DEFAULT_SAMPLE,
    ) -> ServerReplay:
        """Replay the server's decision log (filtered) under a candidate.

        Args:
            root: The rulesets directory ``NAME@VERSION`` is looked up in.
            wanted: The candidate.
            where: Filters; ``limit`` None means ``MAX_REPLAY_RECORDS``.
            sample_size: Decision ids sampled per class.

        Returns:
            The report, and whether the limit was reached.

        Raises:
            RulesetNotFoundError: If ``NAME@VERSION`` is found nowhere (no server paths said).
            RulesetError: If the candidate has errors (files named relative to the rulesets
                directory, or as the caller named them).
            RulesetStateError: If another replay is running on this server.
            AuditUnavailableError: If the server has no decision log or it cannot be read.
            EngineUnavailableError: If durable_rules is the engine and cannot be used.
        """
        audit = self._audit
        if audit is None:
            raise AuditUnavailableError(
                "this server has no decision log to replay; replay a log locally with "
                "`caseroute replay --audit-db`"
            )
        if not self._busy.acquire(blocking=False):
            raise RulesetStateError(
                "another replay is running on this server; retry when it has finished"
            )
        try:
            with ExitStack() as held:
                # A PostgreSQL writer's statements are cut after its timeout_s: the replay
                # reads as an auditor does instead (bounded by liveness, not by total time).
                reads = (
                    held.enter_context(audit.auditor_reads())
                    if isinstance(audit, AuditorReads)
                    else audit
                )
                limit = where.limit or MAX_REPLAY_RECORDS
                report = self._replay(root, wanted, reads, replace(where, limit=limit), sample_size)
        except AuditUnavailableError as exc:
            # An auditor's message names the database server and what an operator should do:
            # the log has it (the sink logged the driver's cause), the caller no server detail.
            log.error("Replay: cannot read the decision log: %s", exc)  # noqa: TRY400
            raise AuditUnavailableError(UNREADABLE) from None
        except (OSError, sqlite3.Error):
            log.exception("Replay: cannot read the decision log")
            raise AuditUnavailableError(UNREADABLE) from None
        finally:
            self._busy.release()
        return ServerReplay(report, report.total + report.other_ruleset >= limit)

    def _replay(
        self,
        root: Path,
        wanted: ReplayCandidate,
        audit: AuditSink,
        where: RecordFilter,
        sample_size: int,
    ) -> ReplayReport:
        """``replay``'s work on the log as read (``where.limit`` set), an engine's refusal named."""
        candidate = self._candidate(root, wanted, audit)
        # workers=1: a process pool would fork the gRPC server process (grpcio does not
        # survive a fork with live threads) or start a forkserver per call; in-thread
        # replay keeps its cost visible and bounded by the limit.
        options = ReplayOptions(self._engine, workers=1, sample_size=sample_size)
        try:
            return replay(SinkRecords(audit, where), candidate, options)
        except EngineValidationError as exc:
            log.warning("Replay: the engine refused candidate %s: %s", candidate.path, exc)
            raise RulesetError(
                [
                    Problem(
                        "engine.rejected",
                        f"the rules engine refused this ruleset ({type(exc).__name__}); the "
                        "server log has the detail; simplify the conditions or report it",
                        candidate.path,
                    )
                ]
            ) from None
