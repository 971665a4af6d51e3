"""The facade transports call: loaded rulesets, decide (audited, idempotent), the decision log.

Never imports gRPC: the gRPC adapter converts messages to these commands and back.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from caseroute.audit.masking import Masker, mask_decision
from caseroute.audit.record import AuditRecord
from caseroute.audit.recorder import RequestFacts, blobs_to_store, build_records
from caseroute.audit.store import AuditSink
from caseroute.domain.case import Case
from caseroute.domain.codec import canonical_json, case_to_dict, format_timestamp, roster_sha256
from caseroute.domain.decision import Decision
from caseroute.domain.decision_codec import decision_from_dict
from caseroute.domain.errors import (
    AuditUnavailableError,
    DecisionNotFoundError,
    FieldViolation,
    IdempotencyConflictError,
    RequestError,
)
from caseroute.domain.limits import DEFAULT_LIMITS, InputLimits, limit_flag
from caseroute.domain.roster import Roster
from caseroute.engine.case_rules import LoadedRuleset
from caseroute.engine.decide import decide
from caseroute.engine.roster_index import roster_after_assignment
from caseroute.registry import ACTIVE, SHADOW, RulesetRegistry, RulesetStatus, load_registry
from caseroute.shadow import ShadowJob, ShadowRunner

__all__ = [
    "AuditedDecision",
    "DecideCommand",
    "DecideResult",
    "DecisionLog",
    "DecisionPage",
    "DecisionQuery",
    "RoutingCore",
    "RulesetRegistry",
    "RulesetStatus",
    "batch_size_violations",
    "load_registry",
    "request_decision_id",
    "request_sha256",
]

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
    """

    request_id: str
    ruleset_name: str
    ruleset_version: str
    cases: tuple[Case, ...]
    roster: Roster
    now: datetime | None
    agent_detail: bool = True
    caller: str = ""


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


def request_decision_id(request_id: str, index: int) -> str:
    """Decision id for the ``index``-th case of a request: retries get the same id."""
    digest = hashlib.sha256(f"{request_id}\x00{index}".encode()).hexdigest()
    return "dec_" + digest[:28]


def batch_size_violations(cases: int, agents: int, limits: InputLimits) -> list[FieldViolation]:
    """What is wrong with the size of a batch: too many cases, or too much matching work.

    Transports call this before converting the cases (so a huge batch is refused cheaply)
    and ``decide`` calls it again on the command.

    Args:
        cases: Cases in the request.
        agents: Agents in its roster.
        limits: The server's limits.

    Returns:
        The violations (empty when the batch is within the limits).
    """
    if cases == 0:
        return [FieldViolation("cases", "must hold at least 1 case")]
    if cases > limits.max_batch_cases:
        return [
            FieldViolation(
                "cases",
                f"has {cases} cases; the limit is {limits.max_batch_cases} per batch (server "
                f"setting {limit_flag('max_batch_cases')}); split the batch",
            )
        ]
    if cases * agents > limits.max_batch_pairs:
        return [
            FieldViolation(
                "cases",
                f"{cases} cases x {agents} agents = {cases * agents} case-agent pairs; the "
                f"limit is {limits.max_batch_pairs} per batch (server setting "
                f"{limit_flag('max_batch_pairs')}); split the batch",
            )
        ]
    return []


def _check_command(cmd: DecideCommand, limits: InputLimits) -> None:
    violations = []
    if not 0 < len(cmd.request_id) <= limits.max_id_chars:
        violations.append(
            FieldViolation(
                "request_id",
                f"must be 1-{limits.max_id_chars} characters (an idempotency key); got "
                f"{len(cmd.request_id)} characters (server setting {limit_flag('max_id_chars')})",
            )
        )
    violations += batch_size_violations(len(cmd.cases), len(cmd.roster.agents), limits)
    if cmd.now is not None and cmd.now.tzinfo is None:
        violations.append(FieldViolation("now", "must carry a UTC offset"))
    if violations:
        raise RequestError(violations)


def request_sha256(cmd: DecideCommand) -> str:
    """Fingerprint of what a request asks for; the same request_id must always carry it.

    Covers the ruleset selector as sent, the explanation level, ``now`` when the caller gave
    it (a server-chosen ``now`` is not input: a retry gets the stored one), every case, and
    the roster's content hash. Not the caller identity: a retry may come from a sibling node.
    """
    header = {
        "ruleset_name": cmd.ruleset_name,
        "ruleset_version": cmd.ruleset_version,
        "agent_detail": cmd.agent_detail,
        "now": format_timestamp(cmd.now) if cmd.now is not None else None,
    }
    h = hashlib.sha256(canonical_json(header).encode() + b"\n")
    for case in cmd.cases:
        h.update(canonical_json(case_to_dict(case)).encode() + b"\n")
    h.update(roster_sha256(cmd.roster).encode())
    return h.hexdigest()


def _stored_result(records: list[AuditRecord]) -> DecideResult:
    return DecideResult(
        tuple(decision_from_dict(r.decision) for r in records),
        datetime.fromisoformat(records[0].now),
        replayed=True,
    )


ReplyCheck = Callable[["DecideResult"], None]
"""Called with a result before it is recorded; raising (e.g. ResponseTooLargeError) refuses it."""

AuditWatcher = Callable[[bool], None]
"""Told ``False`` when the decision log stops taking writes, ``True`` when it takes them again."""


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
    ) -> None:
        """Decide with ``registry``; record in ``audit`` after masking with ``masker``.

        Args:
            registry: Loaded rulesets.
            audit: The decision log.
            masker: PHI masking for the recorded input.
            clock: Wall clock, for requests without ``now`` and for ``recorded_at``.
            limits: Request size limits (the batch-level ones are checked here).
        """
        self.registry = registry
        self.audit = audit
        self.limits = limits
        self._masker = masker
        self._clock = clock
        self.audit_refusals = 0
        self.audit_writable = True
        self.shadow: ShadowRunner | None = None
        """Set to evaluate each live decision under its ruleset's shadow version too."""
        self._audit_watchers: list[AuditWatcher] = []
        self._audit_state = threading.Lock()

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

        A request_id seen before with the same input returns the stored decisions (no
        re-evaluation); with a different input it is refused.

        Args:
            cmd: The command.
            before_record: Called with the result (decisions as they will be returned, masked)
                after evaluation and before anything is recorded, and with a replayed result;
                if it raises, nothing is recorded and the exception propagates. Transports
                use it to refuse a reply they could not deliver.

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
        _check_command(cmd, self.limits)
        # Keyed: the stored hash covers masked values and must not confirm guesses of them.
        digest = self._masker.keyed_hash(request_sha256(cmd))
        prior = self.audit.by_request(cmd.request_id)
        if prior:
            if prior[0].request_sha256 != digest or len(prior) != len(cmd.cases):
                raise IdempotencyConflictError.for_request(cmd.request_id)
            replayed = _stored_result(prior)
            check(replayed)
            return replayed
        # Held for the whole call: a reload meanwhile cannot close it, and every case of the
        # batch is decided (and recorded) by this one version.
        with self.registry.acquire(cmd.ruleset_name, cmd.ruleset_version) as ruleset:
            return self._decide_with(cmd, ruleset, digest, check)

    def _decide_with(
        self, cmd: DecideCommand, ruleset: LoadedRuleset, digest: str, check: ReplyCheck
    ) -> DecideResult:
        now = (cmd.now or self._clock()).astimezone(UTC)
        roster = cmd.roster
        decisions = []
        seen: list[Roster] = []  # the roster each case saw (for the shadow evaluation)
        for index, case in enumerate(cmd.cases):
            seen.append(roster)
            decision = decide(
                case,
                roster,
                ruleset,
                now,
                agent_detail=cmd.agent_detail,
                decision_id=request_decision_id(cmd.request_id, index),
            )
            # Masked once, here: the reply equals the record, and neither holds PHI.
            decisions.append(mask_decision(decision, case_to_dict(case), self._masker))
            if decision.agent_id is not None and index + 1 < len(cmd.cases):
                roster = roster_after_assignment(roster, decision.agent_id, now)
        result = DecideResult(tuple(decisions), now)
        check(result)  # Invariant: before the append, so a refused reply leaves no record.
        facts = RequestFacts(
            cmd.request_id, digest, cmd.caller, format_timestamp(self._clock().astimezone(UTC))
        )
        records = build_records(
            facts, ruleset.compiled, cmd.cases, cmd.roster, decisions, self._masker
        )
        try:
            stored = self.audit.append(
                records, blobs_to_store(self.audit, ruleset.compiled, cmd.roster)
            )
        except AuditUnavailableError:
            self.audit_refusals += 1
            self._audit_outcome(writable=False)
            log.error(  # noqa: TRY400 - the store logged the cause with its traceback
                "decision refused, audit store unavailable: request_id=%r cases=%d "
                "audit_refusals_total=%d",
                cmd.request_id,
                len(cmd.cases),
                self.audit_refusals,
            )
            raise
        self._audit_outcome(writable=True)
        if any(s.existed for s in stored):  # a concurrent retry recorded first: return its
            return _stored_result([s.record for s in stored])
        self._offer_shadow(cmd, ruleset, seen, result)
        return result

    def _offer_shadow(
        self, cmd: DecideCommand, ruleset: LoadedRuleset, seen: list[Roster], result: DecideResult
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
        for case, roster, decision in zip(cmd.cases, seen, result.decisions, strict=True):
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
                )
            )


def _accept(_: DecideResult) -> None:
    """The default ``before_record``: every reply can be delivered."""


@dataclass(frozen=True, slots=True)
class AuditedDecision:
    """A stored decision: the audit record and the decision rebuilt from it."""

    record: AuditRecord
    decision: Decision


@dataclass(frozen=True, slots=True)
class DecisionPage:
    """One page of a decision listing; ``next_page_token`` is "" on the last page."""

    decisions: tuple[AuditedDecision, ...]
    next_page_token: str


DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 500


@dataclass(frozen=True, slots=True)
class DecisionQuery:
    """Which decisions to list.

    Attributes:
        case_id: Only this case ("" = every case).
        since: Only decisions with ``now >= since`` (None = unbounded).
        until: Only decisions with ``now < until`` (None = unbounded).
        page_size: Decisions per page (0 = 50; at most 500).
        page_token: ``next_page_token`` of the previous page, with the same filters.
    """

    case_id: str = ""
    since: datetime | None = None
    until: datetime | None = None
    page_size: int = 0
    page_token: str = ""


class DecisionLog:
    """Reads the decision log for auditors: one decision, or pages by case and time range."""

    def __init__(self, sink: AuditSink) -> None:
        """Read from ``sink``."""
        self._sink = sink

    def get(self, decision_id: str) -> AuditedDecision:
        """One decision by id.

        Raises:
            DecisionNotFoundError: If no record has that id.
            AuditUnavailableError: If the store cannot be read.
        """
        record = self._sink.get(decision_id)
        if record is None:
            raise DecisionNotFoundError(
                f"no decision {decision_id!r} in the decision log; check the id (decision ids "
                "start with dec_) and that this server writes to the store that decided it"
            )
        return AuditedDecision(record, decision_from_dict(record.decision))

    def list(self, query: DecisionQuery) -> DecisionPage:
        """Decisions in log order for a case and/or a range of decision instants.

        Args:
            query: Filters and page.

        Returns:
            The page.

        Raises:
            RequestError: If the page size, time range or page token is invalid.
        """
        case_id, since, until = query.case_id, query.since, query.until
        violations = []
        if not 0 <= query.page_size <= MAX_PAGE_SIZE:
            violations.append(FieldViolation("page_size", f"must be 0-{MAX_PAGE_SIZE}"))
        if since is not None and until is not None and until <= since:
            violations.append(FieldViolation("until", "must be later than since"))
        query_key = _query_key(query)
        after = 0
        if query.page_token:
            after = _read_token(query.page_token, query_key, violations)
        if violations:
            raise RequestError(violations)
        size = query.page_size or DEFAULT_PAGE_SIZE
        records = self._sink.query(
            case_id=case_id, since=since, until=until, after_seq=after, limit=size + 1
        )
        more = len(records) > size
        records = records[:size]
        token = _make_token(records[-1].seq, query_key) if more else ""
        return DecisionPage(
            tuple(AuditedDecision(r, decision_from_dict(r.decision)) for r in records), token
        )

    def token_after(self, query: DecisionQuery, seq: int) -> str:
        """A page token that continues ``query``'s listing after the record ``seq``.

        Transports use it to cut a page short (a reply too large to send) without losing
        the records after the cut.
        """
        return _make_token(seq, _query_key(query))


def _query_key(query: DecisionQuery) -> str:
    since, until = query.since, query.until
    return hashlib.sha256(
        canonical_json(
            [query.case_id, since and format_timestamp(since), until and format_timestamp(until)]
        ).encode()
    ).hexdigest()[:16]


def _make_token(after_seq: int, query_key: str) -> str:
    raw = json.dumps({"after": after_seq, "query": query_key}).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


MAX_PAGE_TOKEN = 200  # the tokens _make_token issues are under 80 characters
MAX_SEQ = 2**63  # SQLite INTEGER is 64-bit signed: a record seq is always below this


def _read_token(token: str, query_key: str, violations: list[FieldViolation]) -> int:
    try:
        # A token longer than any issued one is refused unread (and json.loads of a deeply
        # nested document raises RecursionError, which must not reach the caller as INTERNAL).
        data = json.loads(
            base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
            if len(token) <= MAX_PAGE_TOKEN
            else b""
        )
        after, key = data["after"], str(data["query"])
        # Exactly what _make_token writes: a record seq, an int SQLite can hold. A forged
        # 1e999 or 2**70 would otherwise raise OverflowError (INTERNAL) further down.
        if type(after) is not int or not 0 <= after < MAX_SEQ:
            raise ValueError(after)  # noqa: TRY301 - one refusal for every malformed token
    except (binascii.Error, ValueError, KeyError, TypeError, RecursionError):
        violations.append(
            FieldViolation("page_token", "is not a token this service issued; omit it to start")
        )
        return 0
    if key != query_key:
        violations.append(
            FieldViolation(
                "page_token",
                "belongs to a listing with other filters; send the same case_id, since and "
                "until as the first page, or omit the token to start over",
            )
        )
    return after
