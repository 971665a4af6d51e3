"""``decide(case, roster, ruleset, now)``: the pure, deterministic routing decision.

Order of work: derive signals -> check business data -> evaluate rules (engine of record +
cross-check) -> apply the first fired rule's action (matching, ranking) -> enforce the
safeguarding hard constraint. Nothing reads the clock; ``now`` is an input. Bad business data
never raises: it becomes an EXCEPTION decision with a reason.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

from caseroute import __version__
from caseroute.domain.case import Case
from caseroute.domain.decision import (
    ContinuityTrace,
    Decision,
    Explanation,
    MatchingTrace,
    Outcome,
    Priority,
    RelaxationTrace,
    RuleResults,
    RuleTrace,
)
from caseroute.domain.errors import FieldViolation, RequestError
from caseroute.domain.fingerprint import derive_decision_id, format_timestamp, input_sha256
from caseroute.domain.roster import Roster
from caseroute.engine.case_rules import LoadedRuleset
from caseroute.engine.facts import attribute_fits, build_case_fact
from caseroute.engine.flag_spelling import flag_spelling_problems
from caseroute.engine.matching import MissingDataError
from caseroute.engine.roster_index import index_for
from caseroute.engine.selection import select_agent
from caseroute.engine.signals import derive_signals
from caseroute.engine.trace import choose_and_explain
from caseroute.rules.model import (
    CompiledRuleset,
    EscalateAction,
    ExceptionAction,
    RouteAction,
)

log = logging.getLogger("caseroute.engine")

EXCEPTIONS_QUEUE = "exceptions"


@dataclass(frozen=True, slots=True)
class DataProblem:
    """Business-invalid case data: a stable reason code and a field-level detail."""

    reason: str
    detail: str


def find_data_problems(case: Case, ruleset: CompiledRuleset, now: datetime) -> list[DataProblem]:
    """Business-level checks a well-formed case can still fail.

    Args:
        case: The case.
        ruleset: For declared attribute types, and whether it counts waiting time (ladders,
            continuity) or reads last contacts (continuity).
        now: The decision instant (UTC).

    Returns:
        Problems found (empty when the data is usable).
    """
    problems = [
        DataProblem(
            "invalid_sla_clock",
            f"case.sla_clocks[{clock.name}]: deadline {format_timestamp(clock.deadline)} "
            f"is before started_at {format_timestamp(clock.started_at)}",
        )
        for clock in case.sla_clocks
        if clock.deadline < clock.started_at
    ]
    if (
        (ruleset.ladders or ruleset.continuity is not None)
        and case.waiting_since is not None
        and case.waiting_since < case.created_at
    ):
        # An anchor before the case existed would relax steps and end holds early: the wait
        # cannot be trusted, so nobody is assigned on it (review R33a L3).
        problems.append(
            DataProblem(
                "waiting_since_before_created_at",
                f"case.waiting_since: {format_timestamp(case.waiting_since)} is before "
                f"created_at {format_timestamp(case.created_at)}; ruleset "
                f"{ruleset.name}@{ruleset.version} counts waiting time from it, so the wait "
                "cannot be trusted",
            )
        )
    if ruleset.continuity is not None:
        # A contact after `now` would count as inside the window and keep the preference a
        # window past any true contact (review R33a L3). Only the ruleset says whether
        # contacts are read, so this is a decision's data problem, not a parse error.
        problems.extend(
            DataProblem(
                "last_contact_after_now",
                f"case.preferred_agents[{i}].last_contact_at: "
                f"{format_timestamp(pref.last_contact_at)} is after now "
                f"({format_timestamp(now)}); ruleset {ruleset.name}@{ruleset.version} counts "
                "the continuity window from it",
            )
            for i, pref in enumerate(case.preferred_agents)
            if pref.last_contact_at is not None and pref.last_contact_at > now
        )
    if case.flags:  # a near spelling of a hard-constraint flag is never routed as unflagged
        problems.extend(
            DataProblem("ambiguous_flag", detail)
            for detail in flag_spelling_problems(case.flags, ruleset.constraints)
        )
    for key, ftype in ruleset.attributes.items():
        value = case.attributes.get(key)
        if value is not None and not attribute_fits(value, ftype):
            problems.append(
                DataProblem(
                    "invalid_attribute",
                    f"case.attributes.{key} is {type(value).__name__} {value!r}, but the ruleset "
                    f"declares it {ftype.kind.value}",
                )
            )
    return problems


@dataclass(slots=True)
class _Outcome:
    """The parts of a decision decided so far."""

    outcome: Outcome
    queue: str
    rule_id: str
    priority: Priority
    reason_codes: list[str]
    agent_id: str | None = None
    escalation_level: int | None = None
    matching: MatchingTrace | None = None
    data_problems: list[str] = field(default_factory=list)
    relaxation: RelaxationTrace | None = None
    continuity: ContinuityTrace | None = None
    held_until: datetime | None = None
    next_at: datetime | None = None


def _exception(reason: str, rule_id: str, detail: list[str]) -> _Outcome:
    return _Outcome(
        Outcome.EXCEPTION, EXCEPTIONS_QUEUE, rule_id, Priority.HIGH, [reason], data_problems=detail
    )


def _apply(
    case: Case,
    roster: Roster,
    ruleset: CompiledRuleset,
    rule_id: str,
    action: RouteAction | EscalateAction | ExceptionAction,
    priority: Priority,
    now: datetime,
    detail: bool,
) -> _Outcome:
    if isinstance(action, ExceptionAction):
        return _Outcome(Outcome.EXCEPTION, action.queue, rule_id, priority, [action.reason])
    queue = action.queue.resolve(case.intent)
    requirements = action.requirements if isinstance(action, RouteAction) else action.assign
    if requirements is None:  # escalate to a queue, no agent (e.g. safeguarding)
        assert isinstance(action, EscalateAction)  # noqa: S101 - routes always have requirements
        return _Outcome(
            Outcome.ESCALATE,
            queue,
            rule_id,
            priority,
            [action.reason],
            escalation_level=action.level,
        )
    # Invariant: the engine keys agents by agent_id (ranking keys, positions, preferences,
    # continuity), so a roster repeating one (built in code: the parsers refuse it) is
    # business-invalid, never selected from. Worked out once per roster, with its index.
    repeated = index_for(roster).repeated
    if repeated is not None:
        agent_id, first, later = repeated
        return _exception(
            "duplicate_agent_id",
            rule_id,
            [
                (
                    f"roster.agents[{later}].agent_id: duplicate agent_id {agent_id!r} (first "
                    f"at roster.agents[{first}]); each agent must appear once"
                )
            ],
        )
    escalate = isinstance(action, EscalateAction)
    try:
        picked = select_agent(
            case, roster, requirements, ruleset, now, detail=detail, may_hold=not escalate
        )
    except MissingDataError as exc:
        return _exception(exc.reason, rule_id, [exc.detail])
    chosen, trace = picked.chosen, picked.matching
    reasons = [action.reason]
    if picked.held_until is not None:
        reasons.append("held_for_preferred_agent")
    elif chosen is None:
        reasons.append("no_eligible_agent")
        if any(check == "consent" for check, _ in trace.exclusion_counts):
            reasons.append("consent_missing")
    else:
        if picked.continuity is not None and picked.continuity.outcome == "assigned_preferred":
            reasons.append("continuity_of_care")
        if picked.relaxation is not None:
            reasons += [f"relaxed_{name}" for name in picked.relaxation.relaxed]
    if isinstance(action, EscalateAction):
        outcome, level = Outcome.ESCALATE, action.level
    else:
        outcome, level = (Outcome.ASSIGN if chosen is not None else Outcome.QUEUE), None
    return _Outcome(
        outcome,
        queue,
        rule_id,
        priority,
        reasons,
        chosen,
        level,
        trace,
        relaxation=picked.relaxation,
        continuity=picked.continuity,
        held_until=picked.held_until,
        next_at=picked.next_at,
    )


def _enforce_safeguarding(case: Case, ruleset: CompiledRuleset, result: _Outcome) -> _Outcome:
    """Hard constraint, enforced last on every path: flagged cases escalate to safeguarding."""
    c = ruleset.constraints
    if c.safeguarding_flag not in case.flags:
        return result
    if (
        result.outcome is Outcome.ESCALATE
        and result.queue == c.safeguarding_queue
        and result.agent_id is None
    ):
        return result
    log.info(
        "safeguarding constraint overrode %s from %s for case %r",
        result.outcome,
        result.rule_id,
        case.case_id,
    )
    return replace(
        result,
        outcome=Outcome.ESCALATE,
        queue=c.safeguarding_queue,
        agent_id=None,
        escalation_level=1,
        priority=Priority.URGENT,
        rule_id="constraint:safeguarding",
        reason_codes=["safeguarding_concern", *result.reason_codes],
        matching=None,
        relaxation=None,
        continuity=None,
        held_until=None,
        next_at=None,
    )


def _check_wait_anchor(case: Case, ruleset: CompiledRuleset, now: datetime) -> None:
    """Waiting time cannot be negative where a ruleset counts it (ladders, continuity holds).

    A safeguarding-flagged case is never refused for it: the hard constraint escalates it
    without reading waiting time, and a caller's clock skew must not stop that.
    """
    if not ruleset.ladders and ruleset.continuity is None:
        return
    if ruleset.constraints.safeguarding_flag in case.flags:
        return  # safeguarding escalates whatever the clocks say; it never reads waiting time
    if case.wait_anchor > now:
        field_path = "case.waiting_since" if case.waiting_since is not None else "case.created_at"
        raise RequestError(
            [
                FieldViolation(
                    field_path,
                    f"is {format_timestamp(case.wait_anchor)}, after now "
                    f"({format_timestamp(now)}); ruleset {ruleset.name}@{ruleset.version} counts "
                    "waiting time from it, which cannot be negative. Send the decision instant "
                    "as `now`, or fix the clock that stamped it",
                )
            ]
        )


def decide(
    case: Case,
    roster: Roster,
    ruleset: LoadedRuleset,
    now: datetime,
    *,
    agent_detail: bool = True,
    decision_id: str | None = None,
    input_hash: str | None = None,
    explain_rules_text: bool = True,
) -> Decision:
    """Decide where a case goes, and record why.

    Args:
        case: The case context, as the strict parser builds it: flags are compared exactly,
            so a case built in code goes through ``caseroute.domain.code_built.checked_case``
            first (``RoutingCore`` does that for commands not marked ``parsed``).
        roster: The roster snapshot (likewise: ``checked_roster``).
        ruleset: The loaded ruleset (compiled + evaluators).
        now: The decision instant; must carry a UTC offset. Never read from the clock here.
        agent_detail: Keep a verdict per agent in the explanation (off for large rosters:
            counts per failed check and the top of the ranking are always kept).
        decision_id: Identifier to use; derived from the inputs when omitted.
        input_hash: ``input_sha256(case, roster)`` when the caller has it already (from the
            case's canonical JSON and the roster's fingerprint); computed when omitted.
        explain_rules_text: Render every rule's trace (clause texts and values) into
            ``explanation.rules``. Off, only ``explanation.rule_results`` (the same as data)
            is kept: for callers that read the outcome alone, or render later.

    Returns:
        The decision with its full explanation.

    Raises:
        RequestError: If ``now`` has no UTC offset, or the ruleset counts waiting time and the
            case's wait anchor (``waiting_since``, else ``created_at``) is after ``now``.
    """
    if now.tzinfo is None:
        raise RequestError(
            [FieldViolation("now", "must carry a UTC offset, e.g. 2026-11-21T09:30:00Z")]
        )
    now = now.astimezone(UTC)
    compiled = ruleset.compiled
    _check_wait_anchor(case, compiled, now)
    input_hash = input_hash or input_sha256(case, roster)
    decision_id = decision_id or derive_decision_id(input_hash, compiled.sha256, now)
    signals = derive_signals(case, compiled.signals, now)
    traces: tuple[RuleTrace, ...] = ()
    results: RuleResults | None = None
    problems = find_data_problems(case, compiled, now)
    if problems:
        result = _exception(
            "invalid_case_data", "data:invalid_case_data", [p.detail for p in problems]
        )
        result.reason_codes.extend(dict.fromkeys(p.reason for p in problems))
    else:
        fact = build_case_fact(case, signals, compiled.attributes, compiled.areas)
        evaluation = ruleset.evaluate(fact)
        # Choosing needs only the leaf values; the text is rendered from the same results.
        results, rule, traces = choose_and_explain(
            ruleset.trace_plan, evaluation.truth, fact, explain=explain_rules_text
        )
        if evaluation.engine_error is not None:
            # Ids only: case values never reach a log line (the engine's frames were logged).
            log.error(
                "ENGINE ERROR decision_id=%s case_id=%r ruleset=%s@%s: the decision is an "
                "EXCEPTION",
                decision_id,
                case.case_id,
                compiled.name,
                compiled.version,
            )
            result = _exception(
                "engine_error",
                "engine:error",
                [
                    (
                        f"the rule engine failed ({evaluation.engine_error}); the case went to "
                        "the exceptions queue; the server log has the details under this "
                        "decision_id"
                    )
                ],
            )
        elif evaluation.disagreements:
            # Ids and field paths only, never the fact: it holds patient names and notes.
            log.error(
                "ENGINE DISAGREEMENT decision_id=%s case_id=%r ruleset=%s@%s leaves=%s",
                decision_id,
                case.case_id,
                compiled.name,
                compiled.version,
                ",".join(
                    f"{leaf_id}({'|'.join(compiled.leaves[leaf_id].paths)})"
                    for leaf_id in evaluation.disagreements
                ),
            )
            result = _exception(
                "engine_disagreement",
                "engine:disagreement",
                [
                    "durable_rules and the python evaluator disagree on "
                    + ", ".join(
                        f"{leaf_id} ({compiled.leaves[leaf_id].path})"
                        for leaf_id in evaluation.disagreements
                    )
                ],
            )
        else:
            result = _apply(
                case, roster, compiled, rule.rule_id, rule.action, rule.priority, now, agent_detail
            )
    result = _enforce_safeguarding(case, compiled, result)
    explanation = Explanation(
        decision_id=decision_id,
        ruleset_name=compiled.name,
        ruleset_version=compiled.version,
        ruleset_sha256=compiled.sha256,
        caseroute_version=__version__,
        engine=ruleset.engine_label,
        now=now,
        input_sha256=input_hash,
        signals=signals,
        data_problems=tuple(result.data_problems),
        rules=traces,
        deciding_rule_id=result.rule_id,
        matching=result.matching,
        reason_codes=tuple(result.reason_codes),
        relaxation=result.relaxation,
        continuity=result.continuity,
        rule_results=results,
    )
    return Decision(
        decision_id=decision_id,
        case_id=case.case_id,
        outcome=result.outcome,
        queue=result.queue,
        agent_id=result.agent_id,
        escalation_level=result.escalation_level,
        priority=result.priority,
        reason_codes=tuple(result.reason_codes),
        rule_id=result.rule_id,
        explanation=explanation,
        next_relaxation_at=result.next_at,
        held_for_preferred_until=result.held_until,
    )
