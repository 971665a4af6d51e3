"""The decision caseroute returns and the explanation record that says why."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from caseroute.domain.case import AttributeValue


class Outcome(StrEnum):
    """What happens to the case."""

    ASSIGN = "ASSIGN"
    ESCALATE = "ESCALATE"
    QUEUE = "QUEUE"
    EXCEPTION = "EXCEPTION"


class Priority(StrEnum):
    """Work priority attached to the decision (set by the deciding rule)."""

    LOW = "low"
    NORMAL = "normal"
    HIGH = "high"
    URGENT = "urgent"


class SlaRisk(StrEnum):
    """State of an SLA clock at ``now`` against the ruleset's at-risk threshold."""

    OK = "ok"
    AT_RISK = "at_risk"
    BREACHED = "breached"


@dataclass(frozen=True, slots=True)
class SlaStatus:
    """One SLA clock evaluated at ``now``."""

    name: str
    minutes_remaining: float
    risk: SlaRisk


@dataclass(frozen=True, slots=True)
class SentimentSummary:
    """Sentiment signals over the replies (``None`` fields: there were no replies)."""

    count: int
    latest: float | None
    minimum: float | None
    change: float | None
    consecutive_negative: int


@dataclass(frozen=True, slots=True)
class Signals:
    """Values derived from the case before any rule runs; rules read them, the record keeps them.

    Attributes:
        case_age_minutes: Minutes from ``case.created_at`` to ``now`` (time-to-triage so far).
        sla_clocks: Every clock, most urgent first.
        sla: The most urgent clock, or ``None`` when the case has none.
        sentiment: Sentiment summary.
        sla_at_risk_minutes: Threshold used for ``at_risk``.
        negative_sentiment: Threshold used to count negative replies.
        sentiment_window: Replies looked back over for ``change``.
    """

    case_age_minutes: float
    sla_clocks: tuple[SlaStatus, ...]
    sla: SlaStatus | None
    sentiment: SentimentSummary
    sla_at_risk_minutes: float
    negative_sentiment: float
    sentiment_window: int


@dataclass(frozen=True, slots=True)
class ClauseTrace:
    """One condition of a rule, with its value on this case.

    Attributes:
        text: The condition as the operator wrote it, e.g. ``case.urgency == 'critical'``.
        value: Whether it held.
        actual: The case's values it read, e.g. ``case.urgency = 'routine'``.
    """

    text: str
    value: bool
    actual: str


@dataclass(frozen=True, slots=True)
class RuleTrace:
    """What one rule did for this case.

    Attributes:
        rule_id: The rule's id.
        description: The rule's description, for readers.
        fired: Whether its ``when`` held.
        decided: Whether it was the first rule that fired (first match decides).
        clauses: The conditions that made it fire (when fired) or fail (when not).
    """

    rule_id: str
    description: str
    fired: bool
    decided: bool
    clauses: tuple[ClauseTrace, ...]


@dataclass(frozen=True, slots=True)
class RuleResults:
    """The case rules' evaluation as data: what every rule trace is rendered from.

    Choosing the deciding rule needs only which leaf conditions held; the clause texts are the
    ruleset's own words and are rendered from its source when someone reads them
    (``engine.trace.explain_rules``). So this, not the text, is what the decision log stores.

    Attributes:
        true_leaves: Hex bitmask of the leaf conditions that held: bit ``i`` is the ``i``-th
            leaf of the compiled ruleset (``L<i>``); ``"0"`` when none held.
        fired: Ids of the rules whose ``when`` held, in rule order; the first decided. Lets a
            reader of the raw record see each rule's outcome, and guards rendering: a ruleset
            that evaluates the leaves to other rules is refused, never shown.
        actuals: The case's values each leaf read, as its clauses show them, keyed by the
            leaf's field paths joined with ``,``: ``("case.urgency", "case.urgency =
            'routine'")``; sorted by key. Masked exactly as clause values are.
    """

    true_leaves: str
    fired: tuple[str, ...]
    actuals: tuple[tuple[str, str], ...]


AGENT_CHECKS = (
    "consent",
    "declined",
    "status",
    "role",
    "licence",
    "territory",
    "skills",
    "language",
    "capacity",
)
"""Every eligibility check matching applies to an agent, in the order it applies them: a
``CheckFailure.check`` is one of these. The names are data here, not in the engine, so the rule
language, which may not import the engine, can refuse a golden case's ``excluded`` naming
another (``golden.unknown_check``)."""


@dataclass(frozen=True, slots=True)
class CheckFailure:
    """One eligibility check an agent failed, with expected vs actual."""

    check: str
    expected: str
    actual: str

    def __str__(self) -> str:
        return f"{self.check}: needs {self.expected}, has {self.actual}"


@dataclass(frozen=True, slots=True)
class AgentVerdict:
    """Whether one agent could take the case, and if not, every check it failed."""

    agent_id: str
    eligible: bool
    failures: tuple[CheckFailure, ...]


@dataclass(frozen=True, slots=True)
class RankedCandidate:
    """An eligible agent's place in the ranking and the criterion values that put it there."""

    rank: int
    agent_id: str
    criteria: tuple[tuple[str, AttributeValue | None], ...]


@dataclass(frozen=True, slots=True)
class MatchingTrace:
    """How agents were matched and ranked for the deciding rule's requirements.

    Attributes:
        requirements: Each check that applied, in words (``licence: RN valid in US-TX``).
        considered: Agents on the roster.
        eligible: Agents that passed every check.
        exclusion_counts: Failed-check name -> number of agents that failed it.
        agents: Per-agent verdicts (empty when the caller switched detail off).
        ranking_criteria: Criteria in order; ``agent_id`` is always the final tie-break.
        ranking: Eligible agents, best first (truncated to the top when detail is off).
        failed_masks: When detail is off: failed-check name -> hex bitmask of the agents that
            failed it (bit ``i`` is ``roster.agents[i]``). Cheap to build, so the audit record
            names every agent's failed checks even for summary explanations.
    """

    requirements: tuple[str, ...]
    considered: int
    eligible: int
    exclusion_counts: tuple[tuple[str, int], ...]
    agents: tuple[AgentVerdict, ...]
    ranking_criteria: tuple[str, ...]
    ranking: tuple[RankedCandidate, ...]
    failed_masks: tuple[tuple[str, str], ...] = ()


class StepStatus(StrEnum):
    """Where a relaxation ladder step stands at the decision instant."""

    PASSED = "passed"  # in force, and a later step is in force too
    ACTIVE = "active"  # the latest step in force
    PENDING = "pending"  # its time has not come
    NEVER = "never"  # it does not apply to this case's urgency


@dataclass(frozen=True, slots=True)
class LadderStepTrace:
    """One step of the deciding rule's relaxation ladder, for this case.

    Attributes:
        name: The step's name in the ruleset.
        status: Passed, active, pending or never.
        at: The instant the step takes (or took) effect: the wait anchor plus its delay;
            ``None`` when it never applies to this case.
        after_minutes: Its delay for this case's urgency; ``None`` when it never applies.
        relaxes: Requirements it stops requiring.
        prefers: Of those, the ones kept as ranking preferences.
        why: The ruleset's plain-language reason.
        eligible: Agents on this roster eligible with this step and every earlier one in force.
    """

    name: str
    status: StepStatus
    at: datetime | None
    after_minutes: float | None
    relaxes: tuple[str, ...]
    prefers: tuple[str, ...]
    why: str
    eligible: int


@dataclass(frozen=True, slots=True)
class RelaxationTrace:
    """Soft requirements of the deciding rule and how far its ladder has relaxed them.

    Attributes:
        ladder: The ladder's name (empty when the rule has soft requirements but no ladder).
        anchor: Which input waiting counts from: ``created_at`` or ``waiting_since``.
        anchor_at: That instant.
        waiting_minutes: Minutes from the anchor to ``now``.
        hard: Requirements in force that never relax (licence, consent, ... as they apply).
        soft: Requirements the rule lets its ladder relax.
        relaxed: Soft requirements no longer required at ``now``, in the order they relaxed.
        preferences: Requirements that rank eligible agents instead of excluding them.
        eligible_as_written: Agents eligible with nothing relaxed (same roster).
        steps: Every step, in ladder order.
        next_relaxation_at: When the next step takes effect that could change the decision;
            ``None``: no step is pending, or (nobody being eligible) none would make an
            agent on this roster eligible (the summary then names them).
        summary: One line a supervisor can read, e.g. ``language relaxed at 10:42 after 12
            min waiting; licence never relaxes``.
    """

    ladder: str
    anchor: str
    anchor_at: datetime
    waiting_minutes: float
    hard: tuple[str, ...]
    soft: tuple[str, ...]
    relaxed: tuple[str, ...]
    preferences: tuple[str, ...]
    eligible_as_written: int
    steps: tuple[LadderStepTrace, ...]
    next_relaxation_at: datetime | None
    summary: str


class ContinuityOutcome(StrEnum):
    """What continuity of care did for this decision."""

    ASSIGNED_PREFERRED = "assigned_preferred"  # a preferred agent was eligible and chosen
    HELD_FOR_PREFERRED = "held_for_preferred"  # queued: a preferred agent may free up in time
    ASSIGNED_OTHER = "assigned_other"  # no preferred agent could take it; the best other did
    NONE_ELIGIBLE = "none_eligible"  # nobody could take it (the case queues or escalates)


@dataclass(frozen=True, slots=True)
class PreferredAgentTrace:
    """One preferred agent the case named, and exactly why it was or was not chosen.

    Attributes:
        agent_id: The agent.
        reason: Why the case prefers them (``previous_contact``, ...).
        last_contact_at: Last contact, when given.
        status: Stable code: ``chosen``, ``ranked_lower``, ``held_for``, ``not_eligible``,
            ``unavailable``, ``outside_window``, ``not_on_roster``, ``declined``.
        detail: In words: ``not licensed in US-CA``, ``at capacity 5/5``, ``hold expired
            10:31``.
    """

    agent_id: str
    reason: str
    last_contact_at: datetime | None
    status: str
    detail: str


@dataclass(frozen=True, slots=True)
class ContinuityTrace:
    """Continuity of care for the deciding rule: preference ranks, it never admits.

    Attributes:
        outcome: What continuity did.
        window_days: Preferences with a last contact older than this were ignored.
        hold_minutes: How long this case may wait for a preferred agent (by urgency).
        hold_until: The anchor plus the hold; ``None`` when the case may not be held.
        preferred: Every preferred agent the case named, in its order.
    """

    outcome: ContinuityOutcome
    window_days: float
    hold_minutes: float
    hold_until: datetime | None
    preferred: tuple[PreferredAgentTrace, ...]


@dataclass(frozen=True, slots=True)
class Explanation:
    """The full record of why a decision came out as it did; built while deciding.

    Attributes:
        decision_id: Identifier of the decision.
        ruleset_name: Name of the ruleset that decided.
        ruleset_version: Its version.
        ruleset_sha256: sha256 of its source file bytes.
        caseroute_version: caseroute's version.
        engine: Which evaluator(s) ran, e.g. ``durable_rules 2.0.28 (cross-checked by python)``.
        now: The instant the decision was made for (an input, never the clock).
        input_sha256: sha256 of the canonical JSON of case + roster.
        signals: Derived signals the rules read.
        data_problems: Business-invalid data found in the case (each makes an EXCEPTION).
        rules: Every rule in order with fired / not fired and the clauses that say why.
        deciding_rule_id: The rule (or built-in check) that decided.
        matching: Agent matching and ranking, when the decision involved agents.
        reason_codes: Stable codes of the reasons for the outcome.
        relaxation: Soft requirements and the ladder, when the deciding rule has any.
        continuity: Preferred agents and why each was or was not chosen, when the case named
            any and the ruleset has a continuity policy.
        rule_results: The rules' evaluation as data (``rules`` is rendered from it and the
            ruleset); ``None`` when no rule was evaluated (a data problem), or for a decision
            rebuilt from a record or message that carries only ``rules``. Left out of equality:
            it is another form of ``rules``, which is compared.
    """

    decision_id: str
    ruleset_name: str
    ruleset_version: str
    ruleset_sha256: str
    caseroute_version: str
    engine: str
    now: datetime
    input_sha256: str
    signals: Signals
    data_problems: tuple[str, ...]
    rules: tuple[RuleTrace, ...]
    deciding_rule_id: str
    matching: MatchingTrace | None
    reason_codes: tuple[str, ...]
    relaxation: RelaxationTrace | None = None
    continuity: ContinuityTrace | None = None
    rule_results: RuleResults | None = field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class Decision:
    """The routing decision for one case.

    Attributes:
        decision_id: Identifier of this decision.
        case_id: The case it is for.
        outcome: ASSIGN / ESCALATE / QUEUE / EXCEPTION.
        queue: Queue the case goes to (for ASSIGN, the queue the work belongs to).
        agent_id: Agent assigned (ASSIGN, or ESCALATE to an eligible senior); else ``None``.
        escalation_level: Level for ESCALATE; else ``None``.
        priority: Work priority.
        reason_codes: Stable reason codes.
        rule_id: The rule (or built-in check, ``data:...`` / ``engine:...``) that decided.
        explanation: Why.
        next_relaxation_at: The instant a relaxation step or a continuity hold could change
            this decision through time alone (ask again then); ``None``: nothing pending that
            could (a step after which nobody on the roster would be eligible does not count).
        held_for_preferred_until: For a QUEUE held for an unavailable preferred agent: when
            the hold ends and the best other agent becomes the choice.
    """

    decision_id: str
    case_id: str
    outcome: Outcome
    queue: str
    agent_id: str | None
    escalation_level: int | None
    priority: Priority
    reason_codes: tuple[str, ...]
    rule_id: str
    explanation: Explanation
    next_relaxation_at: datetime | None = None
    held_for_preferred_until: datetime | None = None
