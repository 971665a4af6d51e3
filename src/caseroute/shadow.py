"""Shadow evaluation: each live decision decided again by a ruleset's shadow version, off the path.

The live call only offers a job to a bounded queue (``submit`` never blocks and never fails the
call: when the queue is full the job is dropped and counted). One worker thread decides each
job under the shadow version, compares it with the live decision (outcome, agent, queue,
priority, deciding rule, escalation, and as replay does, the ladder step with the relaxed
requirements, and continuity with its hold), and stores the comparison beside the live
record (``AuditSink.append_shadow``, outside the hash chain: it never changed what was
returned).
The case is held in memory only until the worker decides it; only summaries (no case data)
are stored.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from caseroute.audit.record import ShadowResult
from caseroute.audit.store import AuditSink
from caseroute.domain.case import Case
from caseroute.domain.decision import Decision
from caseroute.domain.decision_side import (
    DecisionSide,
    candidate_side,
    continuity_differs,
    relaxation_differs,
)
from caseroute.domain.errors import CaserouteError, withheld_cause
from caseroute.domain.fingerprint import format_timestamp
from caseroute.domain.roster import Roster
from caseroute.engine.decide import decide
from caseroute.registry import RulesetRegistry

log = logging.getLogger("caseroute.shadow")

DEFAULT_QUEUE_SIZE = 1000
"""Jobs waiting for the shadow worker; more are dropped (and counted), never waited for."""
BATCH = 64
"""Results stored per write (the worker writes what it has when the queue runs dry)."""


@dataclass(frozen=True, slots=True)
class ShadowJob:
    """One live decision to decide again under a shadow version.

    Attributes:
        case: The case as decided (in memory only; never stored).
        roster: The roster the live decision saw.
        now: The live decision's instant.
        live: The live decision (masked as returned).
        ruleset_name: The ruleset.
        live_version: The version that decided.
        live_sha256: Its sha256.
        shadow_version: The version to decide with now.
        input_sha256: The live decision's input hash in clear (case + roster), so the shadow
            decision does not hash the roster again (None: computed).
    """

    case: Case
    roster: Roster
    now: datetime
    live: Decision
    ruleset_name: str
    live_version: str
    live_sha256: str
    shadow_version: str
    input_sha256: str | None = None


def summarise(decision: Decision, side: DecisionSide) -> dict[str, Any]:
    """What a shadow comparison keeps of a decision: no case data.

    The adaptive values are kept only where they apply, so a ruleset without ladders or
    continuity stores what it always did: the deciding rule's ladder step in force (``""``:
    none yet), the requirements relaxed, the continuity outcome, and for a case held for a
    preferred agent the hold in minutes as the ruleset sets it (never the instant it ends:
    that is the case's own wait anchor plus the hold).

    Args:
        decision: The decision.
        side: Its comparable fields (``candidate_side(decision)``).

    Returns:
        The summary (keys from ``SHADOW_SUMMARY_KEYS``).
    """
    summary: dict[str, Any] = {
        "outcome": decision.outcome.value,
        "agent_id": decision.agent_id,
        "queue": decision.queue,
        "priority": decision.priority.value,
        "rule_id": decision.rule_id,
        "escalation": decision.escalation_level,
    }
    if side.ladder_step is not None:
        summary["ladder_step"] = side.ladder_step
    if side.relaxed:
        summary["relaxed"] = list(side.relaxed)
    if side.continuity is not None:
        summary["continuity"] = side.continuity
    trace = decision.explanation.continuity
    if side.held_until is not None and trace is not None:
        hold = trace.hold_minutes
        summary["hold_minutes"] = int(hold) if float(hold).is_integer() else hold
    return summary


def adaptive_differences(live: DecisionSide, shadow: DecisionSide) -> tuple[str, ...]:
    """``relaxation`` and ``continuity`` where the two decisions differ there, as replay finds.

    Compared in memory, on the full sides (the hold's end instant included), by the same
    functions replay's ``relaxation_changed`` and ``continuity_changed`` use.
    """
    found = ("relaxation",) if relaxation_differs(live, shadow) else ()
    return (*found, "continuity") if continuity_differs(live, shadow) else found


def differences(
    live: dict[str, Any], shadow: dict[str, Any], adaptive: tuple[str, ...] = ()
) -> tuple[str, ...]:
    """How two summaries differ, as ``SHADOW_DIFFERENCES`` kinds (empty: they agree).

    Args:
        live: The live decision's summary.
        shadow: The shadow decision's summary (``{"error": ...}`` when it failed).
        adaptive: ``adaptive_differences`` of the two decisions (empty when the shadow failed).

    Returns:
        The kinds, in ``SHADOW_DIFFERENCES`` order.
    """
    kinds = (
        ("outcome", "outcome"),
        ("agent", "agent_id"),
        ("queue", "queue"),
        ("priority", "priority"),
        ("deciding_rule", "rule_id"),
        ("escalation", "escalation"),
    )
    found = tuple(kind for kind, key in kinds if live.get(key) != shadow.get(key)) + adaptive
    if "error" in shadow:
        found = (*found, "error")
    return found


class ShadowObserver(Protocol):
    """Told about each shadow comparison and dropped job (metrics); must not block or raise."""

    def shadow_compared(self, ruleset: str, shadow_version: str, kinds: tuple[str, ...]) -> None:
        """A live decision was compared with ``shadow_version``: ``kinds`` differ (empty: agree)."""

    def shadow_dropped(self, ruleset: str, shadow_version: str) -> None:
        """A job for ``shadow_version`` was dropped: the queue was full."""


class ShadowRunner:
    """The bounded queue and the worker that decides shadow jobs and stores comparisons."""

    def __init__(
        self,
        registry: RulesetRegistry,
        sink: AuditSink,
        *,
        capacity: int = DEFAULT_QUEUE_SIZE,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        """Decide shadow jobs with ``registry``'s versions; store comparisons in ``sink``.

        Args:
            registry: Where the shadow versions are held (acquired per job).
            sink: The decision log (``append_shadow``).
            capacity: Jobs that may wait; more are dropped and counted.
            clock: Wall clock for ``recorded_at``.
        """
        self._registry = registry
        self._sink = sink
        self._clock = clock
        self._jobs: queue.Queue[ShadowJob | None] = queue.Queue(capacity)
        self._lock = threading.Lock()
        self._dropped: Counter[tuple[str, str]] = Counter()
        self.evaluated = 0
        self.disagreed = 0
        self.dropped_total = 0
        self.store_failures = 0
        self.observer: ShadowObserver | None = None
        """Set to be told of every comparison and dropped job (``caseroute.metrics``)."""
        self._idle = threading.Condition(self._lock)
        self._pending = 0
        self._thread = threading.Thread(target=self._run, name="caseroute-shadow", daemon=True)
        self._thread.start()

    def submit(self, job: ShadowJob) -> bool:
        """Offer a job; never blocks. Returns False when it was dropped (queue full)."""
        with self._lock:
            self._pending += 1
        try:
            self._jobs.put_nowait(job)
        except queue.Full:
            with self._lock:
                self._pending -= 1
                self._dropped[(job.ruleset_name, job.shadow_version)] += 1
                self.dropped_total += 1
                self._idle.notify_all()
            self._observe(lambda o: o.shadow_dropped(job.ruleset_name, job.shadow_version))
            return False
        return True

    def _observe(self, tell: Callable[[ShadowObserver], None]) -> None:
        """Tell the observer, if any; its failure never stops shadowing."""
        if self.observer is None:
            return
        try:
            tell(self.observer)
        except Exception as exc:  # noqa: BLE001 - metrics never stop the shadow worker
            log.error("shadow observer failed: %s", withheld_cause(exc))  # noqa: TRY400

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Wait until every submitted job is decided and stored (tests, shutdown)."""
        with self._idle:
            return self._idle.wait_for(lambda: self._pending == 0, timeout)

    def close(self) -> None:
        """Finish the queued jobs, store them, and stop the worker."""
        self._jobs.put(None)
        self._thread.join()

    def _run(self) -> None:
        batch: list[ShadowResult] = []
        while True:
            job = self._jobs.get()
            if job is not None:
                batch.append(self._evaluate(job))
            if job is None or self._jobs.empty() or len(batch) >= BATCH:
                self._store(batch)
                batch = []
            if job is None:
                return

    def _evaluate(self, job: ShadowJob) -> ShadowResult:
        live_side = candidate_side(job.live)
        live = summarise(job.live, live_side)
        adaptive: tuple[str, ...] = ()
        shadow_sha = ""
        try:
            with self._registry.acquire(job.ruleset_name, job.shadow_version) as ruleset:
                shadow_sha = ruleset.compiled.sha256
                # Summary explanation: the comparison reads only the decision's own fields, so
                # a verdict per agent would be built and thrown away (and the worker thread
                # holds the GIL the live calls need while it builds them).
                decision = decide(
                    job.case,
                    job.roster,
                    ruleset,
                    job.now,
                    agent_detail=False,
                    decision_id=job.live.decision_id,
                    input_hash=job.input_sha256,
                )
            shadow_side = candidate_side(decision)
            shadow = summarise(decision, shadow_side)
            adaptive = adaptive_differences(live_side, shadow_side)
        except CaserouteError as exc:  # the shadow version was removed meanwhile
            shadow = {"error": type(exc).__name__}
        except Exception as exc:  # noqa: BLE001 - a shadow failure must never reach callers
            log.error(  # noqa: TRY400 - withheld_cause carries the frames, not case values
                "shadow decision %s under %s@%s failed: %s",
                job.live.decision_id,
                job.ruleset_name,
                job.shadow_version,
                withheld_cause(exc),
            )
            shadow = {"error": type(exc).__name__}
        found = differences(live, shadow, adaptive)
        with self._lock:
            self.evaluated += 1
            self.disagreed += bool(found)
        self._observe(lambda o: o.shadow_compared(job.ruleset_name, job.shadow_version, found))
        return ShadowResult(
            decision_id=job.live.decision_id,
            recorded_at=format_timestamp(self._clock()),
            ruleset_name=job.ruleset_name,
            live_version=job.live_version,
            live_sha256=job.live_sha256,
            shadow_version=job.shadow_version,
            shadow_sha256=shadow_sha,
            differences=found,
            live=live,
            shadow=shadow,
        )

    def _store(self, batch: list[ShadowResult]) -> None:
        with self._lock:
            dropped = dict(self._dropped)
            self._dropped.clear()
        try:
            if batch or dropped:
                self._sink.append_shadow(batch, dropped)
        except Exception:  # the log is down: these comparisons are lost, and counted
            with self._lock:
                self.store_failures += len(batch)
            log.exception("shadow results not stored (%d lost)", len(batch))
        finally:
            with self._lock:
                self._pending -= len(batch)
                self._idle.notify_all()
