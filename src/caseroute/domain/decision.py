"""The decision caseroute returns and the explanation record that says why."""

from __future__ import annotations

from dataclasses import dataclass
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
