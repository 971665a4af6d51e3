"""The decide path: audited, idempotent decisions with the registry's rulesets.

Never imports gRPC: the gRPC adapter converts messages to these commands and back.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from caseroute.audit.explain import StoredExplainer
from caseroute.audit.masking import Masker, mask_decision
from caseroute.audit.record import AuditRecord
from caseroute.audit.recorder import RequestFacts, blobs_to_store, build_records
from caseroute.audit.store import AuditSink
from caseroute.domain.case import Case
from caseroute.domain.decision import Decision
from caseroute.domain.decision_codec import decision_from_dict
from caseroute.domain.errors import (
    AuditUnavailableError,
    FieldViolation,
    IdempotencyConflictError,
    RequestError,
    withheld_cause,
)
from caseroute.domain.fingerprint import (
    RosterFingerprint,
    case_forms,
    fingerprint_roster,
    format_timestamp,
    input_sha256_of,
    stamp_of,
)
from caseroute.domain.fingerprint import (  # re-exported: the served decisions' id rule
    request_decision_id as request_decision_id,  # noqa: PLC0414 - explicit re-export (mypy)
)
from caseroute.domain.fingerprint import request_sha256 as fingerprint_request
from caseroute.domain.limits import DEFAULT_LIMITS, InputLimits
from caseroute.domain.roster import Roster
from caseroute.engine.case_rules import LoadedRuleset
from caseroute.engine.decide import decide
from caseroute.engine.roster_index import roster_after_assignment
from caseroute.registry import ACTIVE, SHADOW, RulesetRegistry
from caseroute.service.command_check import (  # batch_size_violations: re-exported
    batch_size_violations as batch_size_violations,  # noqa: PLC0414 - explicit re-export (mypy)
)
from caseroute.service.command_check import check_command, parsed_command
from caseroute.shadow import ShadowJob, ShadowRunner

log = logging.getLogger("caseroute.service")


@dataclass(frozen=True, slots=True)
class DecideCommand:
    """One or more cases to decide against one roster.

    Attributes:
        request_id: Caller's idempotency key.
        ruleset_name: Ruleset to use ("" for the default).
        ruleset_version: Version to pin ("" for the active one).
        cases: Cases, decided in order (one for Decide).
        roster: The roster snapshot.
        now: Decision instant; ``None`` means the service clock.
        agent_detail: Keep per-agent verdicts in explanations.
        caller: Authenticated caller identity, recorded in the audit log ("" when none).
        batch: The cases came as a list (DecideBatch): a case problem the engine finds
            names ``cases[i]``, as the converter's do, instead of ``case``.
        roster_fingerprint: The roster's digests when the transport has them (its roster
            cache); computed from ``roster`` when None. Derived data: not compared.
        parsed: The cases and roster were built by caseroute's strict parsers (the wire
            converters set it). False (a command built in code): ``RoutingCore`` checks the
            command's own fields and reads the cases and roster through the parsers first
            (``caseroute.service.command_check``), so a flag spelt
            ``"Safeguarding"`` means what it means over gRPC, and a field no transport could
            carry is refused as a ``RequestError``. Not compared.
    """

    request_id: str
    ruleset_name: str
    ruleset_version: str
    cases: tuple[Case, ...]
    roster: Roster
    now: datetime | None
    agent_detail: bool = True
    caller: str = ""
    batch: bool = False
    roster_fingerprint: RosterFingerprint | None = field(default=None, compare=False)
    parsed: bool = field(default=False, compare=False)


@dataclass(frozen=True, slots=True)
class DecideResult:
    """Decisions in request order, and the instant used.

    Attributes:
        decisions: The decisions.
        now: The decision instant.
        replayed: True when they are the stored decisions of an earlier identical request.
    """

    decisions: tuple[Decision, ...]
    now: datetime
    replayed: bool = False


@dataclass(frozen=True, slots=True)
class _Canonical:
    """A command's canonical forms, built once per call and passed down.

    Every text of the call has one home here: nothing below encodes a case or formats one of
    these instants again.

    Attributes:
        cases: Each case's ``case_to_dict`` (masking, the audit record).
        texts: Each case's canonical JSON (request and input hashes, the records' inputs).
        attributes: Each case's attributes as canonical JSON (the start of its text).
        stamps: Every instant of the cases and the request's ``now``, with its
            ``format_timestamp`` text (the request hash, the decisions' stored instants).
        roster: The roster's fingerprint.
    """

    cases: tuple[dict[str, Any], ...]
    texts: tuple[str, ...]
    attributes: tuple[str, ...]
    stamps: dict[datetime, str]
    roster: RosterFingerprint


def _canonical(cmd: DecideCommand) -> _Canonical:
    forms = [case_forms(case) for case in cmd.cases]
    stamps = forms[0].stamps if len(forms) == 1 else {}
    if len(forms) != 1:
        for form in forms:
            stamps.update(form.stamps)
    if cmd.now is not None:
        stamp_of(stamps, cmd.now)
    return _Canonical(
        tuple(f.data for f in forms),
        tuple(f.text for f in forms),
        tuple(f.attributes_text for f in forms),
        stamps,
        cmd.roster_fingerprint or fingerprint_roster(cmd.roster, keep_texts=True),
    )


def _request_sha256(cmd: DecideCommand, canonical: _Canonical) -> str:
    return fingerprint_request(
        ruleset_name=cmd.ruleset_name,
        ruleset_version=cmd.ruleset_version,
        agent_detail=cmd.agent_detail,
        now=cmd.now,
        case_texts=canonical.texts,
        roster_sha256=canonical.roster.sha256,
        now_text=None if cmd.now is None else stamp_of(canonical.stamps, cmd.now),
    )


def request_sha256(cmd: DecideCommand) -> str:
    """Fingerprint of what a request asks for; the same request_id must always carry it.

    Covers the ruleset selector as sent, the explanation level, ``now`` when the caller gave
    it (a server-chosen ``now`` is not input: a retry gets the stored one), every case, and
    the roster's content hash. Not the caller identity: a retry may come from a sibling node.
    Defined in ``caseroute.domain.fingerprint.request_sha256``.
    """
    return _request_sha256(cmd, _canonical(cmd))


def _in_batch(violation: FieldViolation, index: int) -> FieldViolation:
    """A violation the engine found in one case, renamed under ``cases[index]``."""
    field = violation.field
    if field == "case" or field.startswith("case."):
        field = f"cases[{index}]{field.removeprefix('case')}"
    return FieldViolation(field, violation.message)


def _stored_result(records: list[AuditRecord], explain: StoredExplainer) -> DecideResult:
    return DecideResult(
        # Rules are stored as data: rendered from the ruleset, they equal the first reply.
        tuple(decision_from_dict(r.decision, explain) for r in records),
        datetime.fromisoformat(records[0].now),
        replayed=True,
    )


@dataclass(frozen=True, slots=True)
class _Evaluated:
    """A command's result before it is recorded, and what the shadow evaluation needs.

    Attributes:
        result: The decisions (masked) and the instant used.
        seen: The roster each case saw.
        hashes: Each case's input hash in clear.
    """

    result: DecideResult
    seen: list[Roster]
    hashes: list[str]


RECENT_REQUESTS = 4096
"""Request ids a core remembers having recorded (a retry of one is read from the log first)."""

ReplyCheck = Callable[["DecideResult"], None]
"""Called with a result before it is recorded; raising (e.g. ResponseTooLargeError) refuses it."""

AuditWatcher = Callable[[bool], None]
"""Told ``False`` when the decision log stops taking writes, ``True`` when it takes them again."""


class DecisionObserver(Protocol):
    """Told about each result ``RoutingCore.decide`` returns, after it is recorded (metrics).

    Implementations must be cheap and must not block; an exception they raise is logged and
    swallowed (the decision is already stored and goes to the caller regardless).
    """

    def decided(self, cases: tuple[Case, ...], result: DecideResult) -> None:
        """New decisions of ``cases`` (in order), recorded and about to be returned."""

    def replayed(self, result: DecideResult) -> None:
        """Stored decisions returned again to an idempotent retry (not new decisions)."""


class RoutingCore:
    """Decides cases with the registry's rulesets; the one object transports talk to.

    Invariant: a decision leaves ``decide`` only after its audit record is committed, and no
    record is committed for a result the transport has refused to deliver.
    """

    def __init__(
        self,
        registry: RulesetRegistry,
        audit: AuditSink,
        masker: Masker,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        limits: InputLimits = DEFAULT_LIMITS,
        max_now_skew: timedelta | None = None,
    ) -> None:
        """Decide with ``registry``; record in ``audit`` after masking with ``masker``.

        Args:
            registry: Loaded rulesets.
            audit: The decision log.
            masker: PHI masking for the recorded input.
            clock: Wall clock, for requests without ``now`` and for ``recorded_at``.
            limits: Request size limits (the batch-level ones are checked here).
            max_now_skew: How far a request's ``now`` may be from ``clock`` when deciding
                afresh (None: any ``now``, as offline tools need). A retry of a recorded
                request gets its stored decisions whatever its ``now``.
        """
        self.registry = registry
        self.audit = audit
        self.limits = limits
        self._masker = masker
        self._clock = clock
        self._max_now_skew = max_now_skew
        self.audit_refusals = 0
        self.audit_writable = True
        self.shadow: ShadowRunner | None = None
        """Set to evaluate each live decision under its ruleset's shadow version too."""
        self.observer: DecisionObserver | None = None
        """Set to be told of every result returned (``caseroute.metrics`` counts them)."""
        self._audit_watchers: list[AuditWatcher] = []
        self._audit_state = threading.Lock()
        self._recorded: dict[str, None] = {}
        """Request ids recently recorded (or replayed) here, oldest first; bounded."""
        self._recorded_lock = threading.Lock()

    def watch_audit(self, watcher: AuditWatcher) -> None:
        """Tell ``watcher`` each time the decision log stops or starts accepting writes.

        Transitions only: ``watcher(False)`` after the first failed write, ``watcher(True)``
        after the first successful write (or ``probe_audit``) that follows. Health checks use
        it so a load balancer sends traffic elsewhere while no decision can be recorded.
        """
        self._audit_watchers.append(watcher)

    def _audit_outcome(self, writable: bool) -> None:
        with self._audit_state:
            if writable == self.audit_writable:
                return
            self.audit_writable = writable
            for watcher in self._audit_watchers:
                watcher(writable)

    def probe_audit(self) -> bool:
        """Try an empty write to the decision log and report the outcome to the watchers.

        Returns:
            Whether the write succeeded.
        """
        try:
            self.audit.append([], [])
        except AuditUnavailableError:
            self._audit_outcome(writable=False)
            return False
        self._audit_outcome(writable=True)
        return True

    def decide(self, cmd: DecideCommand, before_record: ReplyCheck | None = None) -> DecideResult:
        """Decide every case of a command, in order, consuming capacity as agents are assigned.

        A request_id seen before with the same input returns the stored decisions; with a
        different input it is refused. A request_id this core recorded recently is looked up
        in the log first (no re-evaluation); any other is decided at once, and a retry this
        core never saw (another worker recorded it, or before a restart) is found by the log
        when the decisions are appended (the stored ones come back), or, when evaluating
        fails (no ruleset, a refused reply), by reading the log then.

        Args:
            cmd: The command.
            before_record: Called with the result (decisions as they will be returned, masked)
                after evaluation and before anything is recorded, and with a replayed result
                (the last call a retry gets); if it raises, nothing is recorded and the
                exception propagates. Transports use it to refuse a reply they could not
                deliver.

        Returns:
            Decisions in order and the instant used; recorded durably before returning.

        Raises:
            RequestError: If the command itself is invalid.
            NoRulesetLoadedError: If no ruleset is loaded.
            RulesetNotFoundError: If the selected ruleset or version is unknown.
            IdempotencyConflictError: If the request_id was used for a different input.
            AuditUnavailableError: If the decisions could not be recorded (none is returned).
            Exception: Whatever ``before_record`` raises (nothing is recorded then).
        """
        check = before_record or _accept
        if cmd.parsed:
            check_command(cmd, self.limits)
        else:  # built in code: its fields' types, its sizes, then the parsers
            cmd = parsed_command(cmd, self.limits, self.registry.safeguarding_flags)
        canonical = _canonical(cmd)  # Invariant: the only canonical encoding of this call
        # Keyed: the stored hash covers masked values and must not confirm guesses of them.
        digest = self._masker.keyed_hash(_request_sha256(cmd, canonical))
        if cmd.request_id in self._recorded:
            replayed = self._replay(cmd, digest, check)
            if replayed is not None:
                return replayed
        with ExitStack() as held:
            try:
                # Held for the whole call: a reload meanwhile cannot close it, and every case
                # of the batch is decided (and recorded) by this one version.
                ruleset = held.enter_context(
                    self.registry.acquire(cmd.ruleset_name, cmd.ruleset_version)
                )
                evaluated = self._evaluate(cmd, canonical, ruleset, check)
            except Exception:
                # Nothing is recorded: a retry of a stored request gets the stored decisions
                # (or its conflict) whatever evaluating it again raised.
                replayed = self._replay(cmd, digest, check)
                if replayed is None:
                    raise
                return replayed
            return self._record(cmd, canonical, ruleset, digest, check, evaluated)

    def _replay(self, cmd: DecideCommand, digest: str, check: ReplyCheck) -> DecideResult | None:
        """The stored result of an earlier request with this request_id, or None if none.

        Raises:
            IdempotencyConflictError: If it was stored for a different input.
            AuditUnavailableError: If the log cannot be read.
            Exception: Whatever ``check`` raises for the stored result.
        """
        try:
            prior = self.audit.by_request(cmd.request_id)
        except AuditUnavailableError:
            # Nothing can be decided without the log: health follows it as after a failed
            # write (a shared database that went away fails this read first).
            self._audit_outcome(writable=False)
            raise
        if not prior:
            return None
        if prior[0].request_sha256 != digest or len(prior) != len(cmd.cases):
            raise IdempotencyConflictError.for_request(cmd.request_id)
        self._remember(cmd.request_id)
        replayed = _stored_result(prior, StoredExplainer(self.audit.get_blob))
        check(replayed)
        self._observe(None, replayed)
        return replayed

    def _remember(self, request_id: str) -> None:
        """Note a request_id the log holds: a retry of it here is read from the log first."""
        with self._recorded_lock:
            recorded = self._recorded
            recorded[request_id] = None
            if len(recorded) > RECENT_REQUESTS:
                del recorded[next(iter(recorded))]  # the oldest: insertion order

    def _decision_instant(self, sent: datetime | None) -> datetime:
        """The request's ``now`` (else the clock's), in UTC, held to ``max_now_skew``.

        A caller's stale or future ``now`` would judge licences, consent and SLA clocks as
        of another day (review R36a M2: an expired licence judged valid): a server with
        ``--max-now-skew`` refuses it at the field.

        Raises:
            RequestError: If ``sent`` is further from the clock than ``max_now_skew``.
        """
        if sent is None:
            return self._clock().astimezone(UTC)
        skew = self._max_now_skew
        if skew is not None:
            clock = self._clock().astimezone(UTC)
            off = sent - clock
            if abs(off) > skew:
                side = "behind" if off < timedelta(0) else "ahead of"
                raise RequestError(
                    [
                        FieldViolation(
                            "now",
                            f"is {_duration(abs(off))} {side} this server's clock "
                            f"({format_timestamp(clock)}); the server accepts at most "
                            f"{_duration(skew)} (--max-now-skew): send the current time, or "
                            "leave now unset for the server's clock; replay past cases with "
                            "`caseroute replay` or `caseroute decide` without --server",
                        )
                    ]
                )
        return sent.astimezone(UTC)

    def _evaluate(
        self, cmd: DecideCommand, canonical: _Canonical, ruleset: LoadedRuleset, check: ReplyCheck
    ) -> _Evaluated:
        """Decide and mask every case, and pass the result to ``check``; nothing is recorded."""
        now = self._decision_instant(cmd.now)
        roster = cmd.roster
        fingerprint = canonical.roster
        decisions = []
        seen: list[Roster] = []  # the roster each case saw (for the shadow evaluation)
        hashes: list[str] = []  # each case's input hash in clear (for the shadow evaluation)
        for index, case in enumerate(cmd.cases):
            seen.append(roster)
            hashes.append(input_sha256_of(canonical.texts[index], fingerprint))
            try:
                decision = decide(
                    case,
                    roster,
                    ruleset,
                    now,
                    agent_detail=cmd.agent_detail,
                    decision_id=request_decision_id(cmd.request_id, index),
                    input_hash=hashes[index],
                )
            except RequestError as exc:
                if not cmd.batch:
                    raise
                # The engine sees one case and names it `case`; the caller sent a list.
                raise RequestError([_in_batch(v, index) for v in exc.violations]) from None
            # Masked once, here: the reply equals the record, and neither holds PHI.
            decisions.append(mask_decision(decision, canonical.cases[index], self._masker))
            if decision.agent_id is not None and index + 1 < len(cmd.cases):
                roster = roster_after_assignment(roster, decision.agent_id, now)
                fingerprint = fingerprint.after_assignment(roster, decision.agent_id)
        result = DecideResult(tuple(decisions), now)
        check(result)  # Invariant: before the append, so a refused reply leaves no record.
        return _Evaluated(result, seen, hashes)

    def _record(
        self,
        cmd: DecideCommand,
        canonical: _Canonical,
        ruleset: LoadedRuleset,
        digest: str,
        check: ReplyCheck,
        evaluated: _Evaluated,
    ) -> DecideResult:
        """Append the evaluated decisions (or find the stored ones of a retry) and return them.

        A failed append tells the audit watchers (health) the log takes no writes, then reads
        the log: a retry of a stored request is answered with the stored decisions and is not
        counted in ``audit_refusals`` (the count of calls refused because nothing could be
        recorded); any other call is refused, counted and logged.
        """
        result = evaluated.result
        facts = RequestFacts(
            cmd.request_id, digest, cmd.caller, format_timestamp(self._clock().astimezone(UTC))
        )
        snapshot = canonical.roster.sha256
        records = build_records(
            facts,
            ruleset.compiled,
            cmd.cases,
            cmd.roster,
            result.decisions,
            self._masker,
            snapshot_sha256=snapshot,
            case_dicts=canonical.cases,  # the dicts the hashes were built from, not again
            case_texts=canonical.texts,  # and their texts: the records' inputs reuse them
            attribute_texts=canonical.attributes,
            stamps=canonical.stamps,
        )
        try:
            stored = self.audit.append(
                records,
                blobs_to_store(
                    self.audit,
                    ruleset.compiled,
                    cmd.roster,
                    canonical.roster,  # a first sight's agent texts, encoded once
                ),
            )
        except AuditUnavailableError:
            # Writes fail: health follows at once, whether or not the log answers this call.
            self._audit_outcome(writable=False)
            # A retry of a stored request is answered from the log while writes fail (as a
            # read before deciding did); a read failing too raises its own refusal. Answered,
            # it was not refused: audit_refusals counts refused calls only.
            replayed = self._replay(cmd, digest, check)
            if replayed is not None:
                return replayed
            self.audit_refusals += 1
            log.error(  # noqa: TRY400 - the store logged the cause with its traceback
                "decision refused, audit store unavailable: request_id=%r cases=%d "
                "audit_refusals_total=%d",
                cmd.request_id,
                len(cmd.cases),
                self.audit_refusals,
            )
            raise
        self._audit_outcome(writable=True)
        self._remember(cmd.request_id)
        if any(s.existed for s in stored):  # recorded before (a retry, or a concurrent one)
            replayed = _stored_result(
                [s.record for s in stored], StoredExplainer(self.audit.get_blob)
            )
            check(replayed)  # as a retry read before deciding is (nothing was recorded now)
            self._observe(None, replayed)
            return replayed
        self._offer_shadow(cmd, ruleset, evaluated.seen, evaluated.hashes, result)
        self._observe(cmd.cases, result)
        return result

    def _observe(self, cases: tuple[Case, ...] | None, result: DecideResult) -> None:
        """Tell the observer (if any) of a result about to be returned; never raises.

        Args:
            cases: The cases of new decisions; ``None`` for a replayed (stored) result.
            result: The result.
        """
        if self.observer is None:
            return
        try:
            if cases is None:
                self.observer.replayed(result)
            else:
                self.observer.decided(cases, result)
        except Exception as exc:  # noqa: BLE001 - metrics never fail a recorded decision
            log.error(  # noqa: TRY400 - type and frames only: the text may quote case values
                "decision observer failed (the decision stands): %s", withheld_cause(exc)
            )

    def _offer_shadow(
        self,
        cmd: DecideCommand,
        ruleset: LoadedRuleset,
        seen: list[Roster],
        hashes: list[str],
        result: DecideResult,
    ) -> None:
        """Offer each recorded decision of the active version to the shadow runner, if any.

        Pinned requests are not shadowed: a shadow compares a candidate with what serves.
        """
        if self.shadow is None or cmd.ruleset_version:
            return
        compiled = ruleset.compiled
        if self.registry.serving(compiled.name, ACTIVE) is not ruleset:
            return  # a reload swapped the active version during this call
        shadow = self.registry.serving(compiled.name, SHADOW)
        if shadow is None:
            return
        for case, roster, input_hash, decision in zip(
            cmd.cases, seen, hashes, result.decisions, strict=True
        ):
            self.shadow.submit(
                ShadowJob(
                    case,
                    roster,
                    result.now,
                    decision,
                    compiled.name,
                    compiled.version,
                    compiled.sha256,
                    shadow.compiled.version,
                    input_hash,
                )
            )


def _accept(_: DecideResult) -> None:
    """The default ``before_record``: every reply can be delivered."""


def _duration(span: timedelta) -> str:
    """``span`` as a person reads it: ``2 d 3 h 4 min 5 s`` (whole seconds, largest first)."""
    left = int(span.total_seconds())
    parts = []
    for unit, size in (("d", 86_400), ("h", 3_600), ("min", 60)):
        if left >= size:
            parts.append(f"{left // size} {unit}")
            left %= size
    if left or not parts:
        parts.append(f"{left} s")
    return " ".join(parts)
