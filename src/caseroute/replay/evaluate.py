"""Replays one recorded decision: rebuild its exact input, decide it under the candidate, compare.

The input is rebuilt from the record alone: the case from the stored (masked) dict, the roster
from its snapshot blob with ``assigned_before`` applied in order at the recorded ``now`` (the
capacity the batch consumed before this case), and the recorded ``now``. A record the
candidate cannot decide faithfully is ``not_replayable`` with a reason, never compared.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from caseroute.audit.masking import Masker, is_digest, masked_reads, quotes_digest
from caseroute.audit.record import AuditRecord, BlobKind, blob_sha256
from caseroute.domain.case import Case
from caseroute.domain.codec import parse_case, parse_roster, parse_timestamp
from caseroute.domain.decision_codec import decision_to_dict
from caseroute.domain.decision_side import (
    DecisionSide,
    RecordedDecisionError,
    candidate_side,
    recorded_side,
)
from caseroute.domain.errors import RequestError
from caseroute.domain.fingerprint import (
    RosterFingerprint,
    case_json,
    fingerprint_roster,
    input_sha256_of,
)
from caseroute.domain.limits import InputLimits
from caseroute.domain.roster import Roster
from caseroute.engine.case_rules import LoadedRuleset
from caseroute.engine.decide import decide
from caseroute.engine.roster_index import roster_after_assignment
from caseroute.replay.classify import (
    NOT_REPLAYABLE,
    AgentCheckChange,
    agent_check_changes,
    classify,
    outcome_pair,
)

DIMENSIONS: tuple[str, ...] = ("intent", "urgency", "region", "tier", "channel")
"""The case fields the report breaks down by (read from the stored case)."""
MASKED_VALUE = "(masked)"
"""How a breakdown shows a dimension the log stores only as a digest."""
ABSENT_VALUE = "(none)"
"""How a breakdown shows a dimension the case does not have (e.g. no region)."""

# Stable codes of why a record is not replayable (the JSON report counts them).
MASKED_FIELD = "masked_field"
ROSTER_MISSING = "roster_missing"
INVALID_INPUT = "invalid_input"
INVALID_DECISION = "invalid_decision"
CANDIDATE_REFUSED = "candidate_refused"
CHAIN_BROKEN = "chain_broken"
NOT_REPLAYABLE_REASONS: tuple[str, ...] = (
    MASKED_FIELD,
    ROSTER_MISSING,
    INVALID_INPUT,
    INVALID_DECISION,
    CANDIDATE_REFUSED,
    CHAIN_BROKEN,
)

REPLAY_LIMITS = InputLimits(
    max_agents=1_000_000,
    max_id_chars=10_000,
    max_text_chars=1_000_000,
    max_list_items=1_000_000,
    max_attributes=1_000_000,
    max_sentiment_readings=1_000_000,
    max_sla_clocks=1_000_000,
)
"""Parsing limits for stored input: it was accepted once, perhaps by a server with larger
limits, so replay does not refuse it for size."""

ROSTER_CACHE = 16
"""Parsed roster snapshots kept per process (batches and a day of calls share a few)."""


@dataclass(frozen=True, slots=True)
class RecordResult:
    """How one record replayed (no case data beyond the breakdown dimensions).

    Attributes:
        decision_id: The recorded decision.
        classes: Its classes (``CLASSES`` order).
        dimensions: Breakdown dimension -> value (``(masked)`` / ``(none)`` as applicable).
        pair: ``ASSIGN->ESCALATE`` when the outcome changed, else None.
        recorded: The recorded side (None when the record did not hold one).
        candidate: The candidate's side (None when not replayed).
        agent_checks: Agents whose failed checks changed.
        reason_code: Why it is not replayable (a ``NOT_REPLAYABLE_REASONS`` code), else None.
        reason: The same in words, else None.
    """

    decision_id: str
    classes: tuple[str, ...]
    dimensions: tuple[tuple[str, str], ...]
    pair: str | None = None
    recorded: DecisionSide | None = None
    candidate: DecisionSide | None = None
    agent_checks: tuple[AgentCheckChange, ...] = ()
    reason_code: str | None = None
    reason: str | None = None


class NotReplayableError(Exception):
    """A record cannot be replayed faithfully; ``code`` is one of ``NOT_REPLAYABLE_REASONS``."""

    def __init__(self, code: str, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


WHOLE_ATTRIBUTES = "case.attributes"
"""The one object a log may mask whole (``[audit] masked_fields = ["case.attributes"]``)."""
ATTRIBUTE_PATHS = WHOLE_ATTRIBUTES + "."
MASKED_FIELDS_SETTING = "--audit-masked-fields, [audit] masked_fields"
"""How a reason names the setting that made the log mask a field (the recording server's)."""

UNMASKED_PATHS = frozenset({"case.case_id"})
"""Paths the log never masks (``check_masked_fields`` refuses them): a digest-like value there
is the caller's own."""


def _masked_paths(value: Any, path: str) -> Iterator[str]:
    """Every path under ``value`` holding a masked digest.

    A value counts only in the digest's exact form, outside a list (the masker walks objects
    only) and at a path the log may mask: a caller's ``hmac-sha256:...`` case id or attribute
    kept its record out of every comparison (review R32b F11).
    """
    if is_digest(value) and "[" not in path and path not in UNMASKED_PATHS:
        yield path
    elif isinstance(value, Mapping):
        for key, item in value.items():
            yield from _masked_paths(item, f"{path}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _masked_paths(item, f"{path}[{index}]")


def dimensions_of(case: Any) -> tuple[tuple[str, str], ...]:
    """The breakdown values of a stored case."""
    data = case if isinstance(case, Mapping) else {}
    out = []
    for name in DIMENSIONS:
        value = data.get(name)
        if is_digest(value):
            text = MASKED_VALUE
        elif value is None or value == "":
            text = ABSENT_VALUE
        else:
            text = str(value)
        out.append((name, text))
    return tuple(out)


ABSENT_FROM_EXPORT = "an export holds records only: pass --audit-db with --input"
"""Why a roster snapshot is absent when the records came from an export read alone."""
ABSENT_FROM_LOG = "the decision log lacks it: deleted or damaged? run `caseroute audit verify`"
"""Why a roster snapshot is absent when the decision log was searched for it."""
ABSENT_FROM_SOURCE = "the record source does not hold it"
"""Why a roster snapshot is absent from a record source that is neither a log nor an export."""


class RecordReplayer:
    """Replays records under one loaded candidate; keeps a few parsed roster snapshots."""

    def __init__(self, candidate: LoadedRuleset, roster_absent: str = ABSENT_FROM_EXPORT) -> None:
        """Replay under ``candidate``.

        Args:
            candidate: The loaded candidate.
            roster_absent: Why a snapshot the source does not give is absent, in words
                (``ABSENT_FROM_LOG`` when a decision log was searched for it).
        """
        self.candidate = candidate
        self._roster_absent = roster_absent
        self._rosters: OrderedDict[str, tuple[Roster, RosterFingerprint]] = OrderedDict()

    def replay(self, record: AuditRecord, roster_text: str | None) -> RecordResult:
        """Replay one record.

        Args:
            record: The recorded decision (of the candidate's ruleset name).
            roster_text: Its roster snapshot blob's content (None: the source lacks it).

        Returns:
            The classes and the sides compared (or the reason it is not replayable).
        """
        case_data = record.input.get("case") if isinstance(record.input, Mapping) else None
        dims = dimensions_of(case_data)
        try:
            recorded = recorded_side(record.decision)
        except RecordedDecisionError as exc:
            return _not_replayable(record, dims, None, INVALID_DECISION, str(exc))
        try:
            case, (roster, fingerprint), now = self._inputs(record, case_data, roster_text)
        except NotReplayableError as exc:
            return _not_replayable(record, dims, recorded, exc.code, exc.reason)
        # Summary explanations first: what is compared does not depend on per-agent verdicts,
        # which cost a verdict per agent; only a changed record is decided again with them.
        # The record's input hash, from the snapshot's fingerprint kept beside it (hashing
        # every agent again per record would cost more than the decision).
        input_hash = input_sha256_of(case_json(case), fingerprint)
        try:
            decision = decide(
                case,
                roster,
                self.candidate,
                now,
                agent_detail=False,
                decision_id=record.decision_id,
                input_hash=input_hash,
            )
        except RequestError as exc:
            # Input the recording version decided and the candidate refuses (a wait anchor
            # after `now` under a candidate that counts waiting time): a change callers would
            # see as INVALID_ARGUMENT, reported per record; the run goes on (review R32b F2).
            return _not_replayable(record, dims, recorded, CANDIDATE_REFUSED, _refusal_reason(exc))
        candidate = candidate_side(decision)
        checks: tuple[AgentCheckChange, ...] = ()
        classes = classify(recorded, candidate)
        if classes != ("unchanged",):
            detailed = decide(
                case,
                roster,
                self.candidate,
                now,
                decision_id=record.decision_id,
                input_hash=input_hash,
            )
            checks = agent_check_changes(record.decision, decision_to_dict(detailed))
        return RecordResult(
            record.decision_id,
            classes,
            dims,
            outcome_pair(recorded, candidate),
            recorded,
            candidate,
            checks,
        )

    def _inputs(
        self, record: AuditRecord, case_data: Any, roster_text: str | None
    ) -> tuple[Case, tuple[Roster, RosterFingerprint], datetime]:
        """The case, roster (with its fingerprint) and instant the record was decided with."""
        if not isinstance(case_data, Mapping):
            raise NotReplayableError(INVALID_INPUT, "the record holds no stored case")
        case_data = self._check_masked(case_data)
        try:
            case = parse_case(dict(case_data), limits=REPLAY_LIMITS)
        except RequestError as exc:
            # Field paths only: a violation's message may quote a (masked) value.
            fields = ", ".join(sorted({v.field for v in exc.violations}))
            raise NotReplayableError(
                INVALID_INPUT, f"the stored case does not parse at {fields}"
            ) from None
        now = parse_timestamp(record.now)
        if now is None:
            raise NotReplayableError(INVALID_INPUT, "the record's `now` is not an instant")
        return case, self._roster(record, roster_text, now), now

    def _check_masked(self, case_data: Mapping[str, Any]) -> Mapping[str, Any]:
        """Refuse a record whose masked values the candidate would decide on.

        Returns:
            The stored case to decide: as stored, or without ``attributes`` when the log
            masked them whole and the candidate declares none (then no rule or data check
            of the candidate reads them: they cannot change its decision).

        Raises:
            NotReplayableError: ``masked_field``, saying what the log masks, why replay
                cannot use the record and what to change.
        """
        self._check_clock_names(case_data)
        masked = sorted(set(_masked_paths(case_data, "case")))
        if not masked:
            return case_data
        outside = [p for p in masked if not p.startswith(ATTRIBUTE_PATHS)]
        fields = [p for p in outside if p != WHOLE_ATTRIBUTES]
        if fields:
            path = fields[0]
            raise NotReplayableError(
                MASKED_FIELD,
                f"the log masks `{path}`, which decisions read (case rules, matching or "
                "signals): replay sees only its digest, so no candidate can decide the "
                f"record again; if {path} is not PHI, stop masking it in the recording "
                f"server's masked field list ({MASKED_FIELDS_SETTING}) to replay later records",
            )
        compiled = self.candidate.compiled
        if outside:  # attributes masked whole: one digest for the object
            if compiled.attributes:
                first = f"{ATTRIBUTE_PATHS}{min(compiled.attributes)}"
                raise NotReplayableError(
                    MASKED_FIELD,
                    f"the log masks `{WHOLE_ATTRIBUTES}` whole (one digest for every "
                    f"attribute), and the candidate declares `{first}` (its rules and data "
                    "checks read it): replay cannot rebuild the attributes; to replay later "
                    "records, mask attributes by name instead (case.attributes.NAME in the "
                    f"recording server's {MASKED_FIELDS_SETTING}), so a record is replayed "
                    "unless the candidate reads one of them",
                )
            return {key: value for key, value in case_data.items() if key != "attributes"}
        reads = masked_reads(compiled, Masker(b"", tuple(masked)))
        if reads:
            rule = reads[0].rule_id
            path = reads[0].message.split("`")[1]
            raise NotReplayableError(
                MASKED_FIELD,
                f"candidate rule `{rule}` reads `{path}`, which the log stores only as a digest",
            )
        declared = [p for p in masked if p.removeprefix("case.attributes.") in compiled.attributes]
        if declared:
            raise NotReplayableError(
                MASKED_FIELD,
                f"the candidate declares a type for `{declared[0]}`, which the log stores only "
                "as a digest",
            )
        return case_data

    def _check_clock_names(self, case_data: Mapping[str, Any]) -> None:
        """Refuse a candidate reading ``sla.name`` when a stored clock name quotes a digest.

        The log masks a masked value quoted in a clock name (``audit.masking.mask_case``):
        replay sees ``rtt-hmac-sha256:...`` where the decision saw the name as sent.
        """
        clocks = case_data.get("sla_clocks")
        if not isinstance(clocks, list):
            return
        masked = [
            f"case.sla_clocks[{index}].name"
            for index, item in enumerate(clocks)
            if isinstance(item, Mapping) and quotes_digest(item.get("name"))
        ]
        if not masked:
            return
        reads = masked_reads(self.candidate.compiled, Masker(b"", ("sla.name",)))
        if reads:
            raise NotReplayableError(
                MASKED_FIELD,
                f"candidate rule `{reads[0].rule_id}` reads `sla.name`, and the log masks a "
                f"value inside a stored SLA clock name ({masked[0]})",
            )

    def _roster(
        self, record: AuditRecord, roster_text: str | None, now: datetime
    ) -> tuple[Roster, RosterFingerprint]:
        ref = record.input.get("roster")
        sha = ref.get("sha256") if isinstance(ref, Mapping) else None
        assigned = ref.get("assigned_before") if isinstance(ref, Mapping) else None
        if not isinstance(sha, str) or not isinstance(assigned, list):
            raise NotReplayableError(INVALID_INPUT, "the record holds no roster reference")
        kept = self._rosters.get(sha)
        if kept is None:
            if roster_text is None:
                raise NotReplayableError(
                    ROSTER_MISSING,
                    f"roster snapshot {sha[:12]} is not available ({self._roster_absent})",
                )
            try:
                roster = parse_roster(json.loads(roster_text), limits=REPLAY_LIMITS)
            except (ValueError, TypeError, RecursionError, RequestError):
                raise NotReplayableError(
                    INVALID_INPUT, f"roster snapshot {sha[:12]} does not parse"
                ) from None
            fingerprint = fingerprint_roster(roster)
            # A snapshot edited in the log, yet still a roster. The parsed roster re-encodes to
            # the recorded hash unless a Roster built in code held a value the parser
            # normalises (an upper-case language tag): then the stored text itself must hash
            # to it, as `audit verify` checks.
            if fingerprint.sha256 != sha and not _text_hashes_to(roster_text, sha):
                raise NotReplayableError(
                    INVALID_INPUT,
                    f"roster snapshot {sha[:12]} does not hash to its sha256 (edited in the "
                    "decision log? run `caseroute audit verify`)",
                )
            kept = self._rosters[sha] = (roster, fingerprint)
            if len(self._rosters) > ROSTER_CACHE:
                self._rosters.popitem(last=False)
        else:
            self._rosters.move_to_end(sha)
        roster, fingerprint = kept
        ids = {agent.agent_id for agent in roster.agents}
        for agent_id in assigned:
            if agent_id not in ids:
                raise NotReplayableError(
                    INVALID_INPUT,
                    "the record's assigned_before names an agent the roster snapshot lacks",
                )
            roster = roster_after_assignment(roster, agent_id, now)
            fingerprint = fingerprint.after_assignment(roster, agent_id)
        return roster, fingerprint


def unverified_result(record: AuditRecord, problem: str) -> RecordResult:
    """A record whose stored content fails its chain check: never compared (review R32b F3).

    Its recorded decision may be forged (to show a change the candidate does not make, or to
    hide one it does), so it is ``not_replayable`` with the chain's words for what is wrong.
    """
    case_data = record.input.get("case") if isinstance(record.input, Mapping) else None
    return _not_replayable(
        record,
        dimensions_of(case_data),
        None,
        CHAIN_BROKEN,
        f"{problem} (run `caseroute audit verify`)",
    )


def undecided_result(record: AuditRecord) -> RecordResult:
    """A record an export holds without its decision (``source.lacks_decision``): never compared.

    ``audit export`` writes such a line for a record it could not rebuild; the reason names the
    record and where to look (review R34c F2: replay ended in a traceback on it).
    """
    case_data = record.input.get("case") if isinstance(record.input, Mapping) else None
    return _not_replayable(
        record,
        dimensions_of(case_data),
        None,
        INVALID_DECISION,
        f"record {record.seq} was exported without its decision: `caseroute audit export` "
        "could not rebuild it from the decision log (its stored decision or the ruleset "
        "source it was decided with was edited or lost); run `caseroute audit verify` on the log",
    )


def _refusal_reason(exc: RequestError) -> str:
    """Why the candidate refused a record's input: field paths only (messages quote values)."""
    fields = ", ".join(sorted({v.field for v in exc.violations}))
    return (
        f"the candidate refuses the recorded input at {fields}, which the recording version "
        "decided: callers sending it would get INVALID_ARGUMENT"
    )


def _text_hashes_to(roster_text: str, sha256: str) -> bool:
    """Whether a roster snapshot's stored text hashes to ``sha256`` (``blob_sha256``)."""
    try:
        return blob_sha256(BlobKind.ROSTER, roster_text) == sha256
    except ValueError:
        return False


def _not_replayable(
    record: AuditRecord,
    dims: tuple[tuple[str, str], ...],
    recorded: DecisionSide | None,
    code: str,
    reason: str,
) -> RecordResult:
    return RecordResult(
        record.decision_id,
        (NOT_REPLAYABLE,),
        dims,
        recorded=recorded,
        reason_code=code,
        reason=reason,
    )
