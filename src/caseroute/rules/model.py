"""Typed, validated ruleset contents: what the compiler produces and the engine consumes."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum

from caseroute.domain.case import Intent, RequiredSkill, Urgency
from caseroute.domain.decision import Priority
from caseroute.domain.errors import Problem
from caseroute.domain.flag_spelling import CONVENTIONAL
from caseroute.domain.roster import AgentStatus, Role
from caseroute.rules.fields import FieldType
from caseroute.rules.ir import Cond, Leaf

Scalar = str | int | float | bool


class RankingCriterion(StrEnum):
    """Ways to order eligible agents; ``agent_id`` always breaks remaining ties."""

    LOWEST_UTILISATION = "lowest_utilisation"
    HIGHEST_SKILL_LEVEL = "highest_skill_level"
    LONGEST_IDLE = "longest_idle"
    HIGHEST_SENIORITY = "highest_seniority"


SOFT_REQUIREMENTS = ("territory", "skills", "language", "roles")
"""Requirements a rule may mark soft (relaxed by a ladder or ranked as a preference)."""

HARD_REQUIREMENTS = ("consent", "declined", "status", "licence", "safeguarding", "capacity")
"""Never soft: a ruleset that marks one soft or relaxes it is rejected (``ladders.hard``).
``declined``: an agent who declined the case is never offered it again."""


@dataclass(frozen=True, slots=True)
class LadderStep:
    """One step of a relaxation ladder: after a wait, stop requiring some soft requirements.

    Attributes:
        name: Step name (unique in its ladder).
        after: Minutes of waiting before the step takes effect, per urgency; an urgency that
            is absent never reaches this step.
        relax: Requirements it stops requiring and drops altogether.
        prefer: Requirements it stops requiring but keeps as ranking preferences.
        why: The reason, in plain language, for the explanation.
        line: Line of the step in the source file.
    """

    name: str
    after: dict[Urgency, float]
    relax: tuple[str, ...]
    prefer: tuple[str, ...]
    why: str
    line: int

    @property
    def relaxes(self) -> tuple[str, ...]:
        """Every requirement the step stops requiring (dropped or kept as a preference)."""
        return (*self.relax, *self.prefer)


@dataclass(frozen=True, slots=True)
class Ladder:
    """An ordered relaxation ladder: steps are cumulative and take effect in the listed order.

    Invariant (checked by the compiler's ``ladders`` pass): for every urgency, each step's
    delay is at least the previous step's, so the pool of eligible agents only widens.
    """

    name: str
    steps: tuple[LadderStep, ...]
    line: int


@dataclass(frozen=True, slots=True)
class ContinuityPolicy:
    """Continuity of care: preferred agents rank first among the eligible, and may be waited for.

    Attributes:
        window_days: A preferred agent whose last contact is older than this is ignored.
        hold_minutes: Per urgency, how long after the wait anchor a case may be held for an
            eligible-but-unavailable preferred agent (absent: 0, never held).
        line: Line of the section in the source file.
    """

    window_days: float
    hold_minutes: dict[Urgency, float]
    line: int


@dataclass(frozen=True, slots=True)
class Requirements:
    """What an agent must satisfy to take the case under one action.

    Attributes:
        licence_types: Licence types accepted (valid at the patient location); ``None``: the
            action asks for none beyond the ruleset's hard licence constraint for the intent.
        skills: Skills the action requires in addition to the case's own.
        case_skills: Whether the case's required skills apply.
        territory: Whether the agent's territories must cover the case's region.
        language: Whether the agent must speak the case's preferred language (when given).
        roles: Roles accepted; ``None`` accepts any role.
        soft: Requirements the ladder may relax (subset of ``SOFT_REQUIREMENTS``).
        prefer: Requirements that never exclude, only rank (those met rank first).
        ladder: The relaxation ladder for the soft requirements.
        continuity: Whether the ruleset's continuity policy applies to this action.
    """

    licence_types: tuple[str, ...] | None = None
    skills: tuple[RequiredSkill, ...] = ()
    case_skills: bool = True
    territory: bool = True
    language: bool = True
    roles: tuple[Role, ...] | None = None
    soft: tuple[str, ...] = ()
    prefer: tuple[str, ...] = ()
    ladder: Ladder | None = None
    continuity: bool = True


@dataclass(frozen=True, slots=True)
class QueueTarget:
    """A fixed queue, or the queue the ruleset maps the case's intent to (``by_intent``)."""

    name: str | None
    by_intent: dict[Intent, str] = field(default_factory=dict)

    def resolve(self, intent: Intent) -> str:
        """The queue for a case with this intent."""
        return self.name if self.name is not None else self.by_intent[intent]

    def describe(self) -> str:
        """Text for explanations."""
        return self.name if self.name is not None else "by_intent"


@dataclass(frozen=True, slots=True)
class RouteAction:
    """Assign to the best eligible agent, else queue."""

    queue: QueueTarget
    requirements: Requirements
    reason: str


@dataclass(frozen=True, slots=True)
class EscalateAction:
    """Escalate: to an eligible agent meeting ``assign`` when given and found, else to a queue."""

    queue: QueueTarget
    level: int
    reason: str
    assign: Requirements | None


@dataclass(frozen=True, slots=True)
class ExceptionAction:
    """Route to an exceptions queue with a reason (business-invalid data)."""

    queue: str
    reason: str


Action = RouteAction | EscalateAction | ExceptionAction


@dataclass(frozen=True, slots=True)
class Rule:
    """One ordered rule: when its condition holds (and no earlier rule's did), its action decides.

    Attributes:
        rule_id: Unique id.
        description: What the rule is for, in words.
        when: Compiled condition.
        when_text: The condition as written.
        action: What to do.
        priority: Priority of the resulting work.
        line: Line of the rule in the source file.
    """

    rule_id: str
    description: str
    when: Cond
    when_text: str
    action: Action
    priority: Priority
    line: int


@dataclass(frozen=True, slots=True)
class CompactMember:
    """A jurisdiction's membership of a compact, from ``since`` to ``until`` (inclusive)."""

    jurisdiction: str
    since: date
    until: date | None = None

    def active_on(self, day: date) -> bool:
        """Whether the membership is in force on ``day``."""
        return self.since <= day and (self.until is None or day <= self.until)


@dataclass(frozen=True, slots=True)
class Compact:
    """An interstate licensure compact (e.g. the Nurse Licensure Compact), as dated data."""

    name: str
    licence_types: frozenset[str]
    members: tuple[CompactMember, ...]

    def members_on(self, day: date) -> frozenset[str]:
        """Jurisdictions that are members on ``day``."""
        return frozenset(m.jurisdiction for m in self.members if m.active_on(day))


@dataclass(frozen=True, slots=True)
class Register:
    """A national register whose licences cover only part of its country, as ruleset data.

    A licence recorded for a country covers all of it (``GB``: a UK-wide registration covers
    ``GB-NIR``) except where a register says otherwise: the GPhC registers pharmacists for
    Great Britain only (``covers: [GB-ENG, GB-SCT, GB-WLS]``); Northern Ireland's pharmacists
    are registered by the PSNI, recorded as ``GB-NIR``. Licence types are the ruleset's own
    words, so which of them a register holds is data, like a compact's.

    Attributes:
        name: The register (``GPhC``), named in the explanation.
        licence_types: The licence types it registers (matched in any letter case).
        jurisdiction: The code its licences are recorded under (``GB``).
        covers: The parts of ``jurisdiction`` its licences are valid in, sorted.
    """

    name: str
    licence_types: frozenset[str]
    jurisdiction: str
    covers: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Constraints:
    """Hard constraints: enforced by caseroute itself; no rule can relax them.

    Attributes:
        safeguarding_flag: Case flag that means a safeguarding concern.
        safeguarding_queue: Queue safeguarding cases escalate to; the first rule must do so.
        consent_flag: Case flag that forbids assigning the case to any agent (``None``: unused).
        licence_by_intent: Intent -> licence types one of which an agent must hold, valid at the
            patient location, to be given a case with that intent.
    """

    safeguarding_flag: str
    safeguarding_queue: str
    consent_flag: str | None
    licence_by_intent: dict[Intent, tuple[str, ...]]

    def hard_flags(self) -> tuple[tuple[str, str], ...]:
        """The hard-constraint flags, each with what it means (safeguarding, then consent)."""
        flags = [(self.safeguarding_flag, "safeguarding")]
        if self.consent_flag is not None:
            flags.append((self.consent_flag, "consent"))
        return tuple(flags)

    def conventional_flags(self) -> tuple[tuple[str, str], ...]:
        """The conventional hard flags (caseroute's) this ruleset does not name, with meanings.

        A case carrying one (or a near spelling) is never routed as unflagged either; the engine
        (``engine/flag_spelling.py``) and the lint (``lint.flag_look_alike``) both read this.
        """
        names = {name for name, _ in self.hard_flags()}
        return tuple((name, meaning) for name, meaning in CONVENTIONAL if name not in names)


@dataclass(frozen=True, slots=True)
class SignalSettings:
    """Thresholds for derived signals."""

    sla_at_risk_minutes: float = 60.0
    negative_sentiment: float = -0.5
    sentiment_window: int = 3


@dataclass(frozen=True, slots=True)
class CompiledRuleset:
    """A ruleset that passed every check; immutable and safe to share between threads.

    Engine-neutral: an engine builds its own form from ``leaves`` when the ruleset is prepared
    (durable_rules: ``engine.durable_codegen.durable_shards``).

    Attributes:
        name: Ruleset name.
        version: Version string.
        description: Purpose.
        owner: Who maintains it.
        path: Source file.
        sha256: sha256 of the source file bytes.
        params: Named constants.
        signals: Signal thresholds.
        attributes: Declared case attributes rules may read.
        constraints: Hard constraints.
        compacts: Licensure compacts.
        statuses: Agent statuses that can take work.
        ranking: Ranking criteria, in order.
        queues: Intent -> queue, for ``by_intent`` targets.
        leaves: Leaf id -> leaf (unique conditions).
        rules: Rules in order; the first that fires decides.
        warnings: Lint findings that do not block loading.
        source_text: The source file's text (sha256 is over it); the audit store keeps it so a
            record can be re-derived years later from the store alone.
        ladders: Relaxation ladders by name.
        continuity: Continuity-of-care policy; ``None``: preferred agents are not considered.
        registers: National registers whose licences cover only part of their country.
        areas: Territory nesting beyond ISO 3166-2: each area -> the area it lies within
            (``E54000027`` -> ``Y56``), for territory coverage only, never for licences.
    """

    name: str
    version: str
    description: str
    owner: str
    path: str
    sha256: str
    params: dict[str, Scalar | tuple[Scalar, ...]]
    signals: SignalSettings
    attributes: dict[str, FieldType]
    constraints: Constraints
    compacts: tuple[Compact, ...]
    statuses: tuple[AgentStatus, ...]
    ranking: tuple[RankingCriterion, ...]
    queues: dict[Intent, str]
    leaves: dict[str, Leaf]
    rules: tuple[Rule, ...]
    warnings: tuple[Problem, ...] = ()
    source_text: str = field(default="", repr=False)
    ladders: dict[str, Ladder] = field(default_factory=dict)
    continuity: ContinuityPolicy | None = None
    registers: tuple[Register, ...] = ()
    areas: dict[str, str] = field(default_factory=dict)
