"""Relaxation ladders at the decision instant: which soft requirements still apply, and when next.

Pure functions of the rule's requirements, the case's urgency, its wait anchor and ``now``: no
timers and no state, so replay reproduces the exact step. Hard requirements never relax: the
relaxed set is always intersected with the rule's own ``soft`` list, whatever the ladder says
(the compiler rejects such a ladder too; this is the second lock).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from caseroute.domain.case import Urgency
from caseroute.domain.decision import LadderStepTrace, RelaxationTrace, StepStatus
from caseroute.rules.model import LadderStep, Requirements


def shift(at: datetime, delta: timedelta) -> datetime | None:
    """``at + delta``, or ``None`` past the calendar's ends (year 1 / 9999).

    Instants near the ends are valid input; a step, hold or window that would fall beyond
    them never comes, which is what ``None`` means wherever an instant is optional.
    """
    try:
        return at + delta
    except OverflowError:
        return None


@dataclass(frozen=True, slots=True)
class StepState:
    """One ladder step for this case: when it takes effect and whether it has."""

    step: LadderStep
    at: datetime | None
    after_minutes: float | None
    in_force: bool
    drops: tuple[str, ...] = ()
    """Soft requirements this step (in force or pending) stops requiring that no earlier step
    in force already did: what the summary names, never a hard or non-soft one."""


@dataclass(frozen=True, slots=True)
class Relaxation:
    """The ladder's state for one case at ``now``.

    Attributes:
        anchor: Which input waiting counts from (``created_at`` or ``waiting_since``).
        anchor_at: That instant.
        now: The decision instant.
        steps: Each step's state, in ladder order.
        relaxed: Soft requirements no longer required, in the order their steps took effect.
        preferences: Requirements that rank instead of exclude (the rule's ``prefer`` plus
            what in-force steps turned into preferences).
        next_at: When the next pending step that relaxes something still required takes
            effect; ``None`` when none is pending (or, after ``pass_idle_steps``, none that
            could change the decision).
        idle: Pending steps that relax something still required but make no agent on this
            roster eligible, passed over by ``pass_idle_steps`` (earliest first): the summary
            says why they set no next relaxation.
    """

    anchor: str
    anchor_at: datetime
    now: datetime
    steps: tuple[StepState, ...]
    relaxed: tuple[str, ...]
    preferences: tuple[str, ...]
    next_at: datetime | None
    idle: tuple[StepState, ...] = ()

    @property
    def waiting_minutes(self) -> float:
        """Minutes from the anchor to ``now``."""
        return (self.now - self.anchor_at).total_seconds() / 60.0


def plan_relaxation(
    req: Requirements,
    urgency: Urgency,
    anchor: str,
    anchor_at: datetime,
    now: datetime,
    applies: frozenset[str] | None = None,
) -> Relaxation:
    """Work out the ladder's state for one case.

    Args:
        req: The deciding action's requirements (soft list, preferences and ladder).
        urgency: The case's urgency (delays are per urgency).
        anchor: Name of the anchor input, for the explanation.
        anchor_at: The instant waiting counts from; must not be after ``now``.
        now: The decision instant.
        applies: The soft-able requirements that apply to this case at all (a language step
            changes nothing for a case without a preferred language); ``None``: all.

    Returns:
        Relaxed requirements, preferences, each step's state and the next relaxation instant.
    """
    soft = set(req.soft)
    relaxed: list[str] = []
    preferences: list[str] = [n for n in req.prefer if applies is None or n in applies]
    states = []
    next_at: datetime | None = None
    steps = req.ladder.steps if req.ladder is not None else ()
    for step in steps:
        minutes = step.after.get(urgency)
        at = None if minutes is None else shift(anchor_at, timedelta(minutes=minutes))
        in_force = at is not None and at <= now
        # Invariant: only the rule's own soft requirements ever relax (hard ones never do).
        effective = [
            n
            for n in step.relaxes
            if n in soft and n not in relaxed and (applies is None or n in applies)
        ]
        states.append(StepState(step, at, minutes, in_force, tuple(effective)))
        if in_force:
            relaxed += effective
            preferences += [n for n in step.prefer if n in effective and n not in preferences]
        elif at is not None and effective and (next_at is None or at < next_at):
            next_at = at
    return Relaxation(
        anchor, anchor_at, now, tuple(states), tuple(relaxed), tuple(preferences), next_at
    )


def relaxed_by(plan: Relaxation, at: datetime, soft: tuple[str, ...]) -> frozenset[str]:
    """The soft requirements every step in force at ``at`` relaxes (whatever the listed order).

    Args:
        plan: The ladder's state.
        at: An instant at or after ``plan.now``.
        soft: The rule's soft requirements (only they ever relax).

    Returns:
        The names no longer required at ``at``.
    """
    return frozenset(
        name
        for state in plan.steps
        if state.at is not None and state.at <= at
        for name in state.step.relaxes
        if name in soft
    )


def pass_idle_steps(plan: Relaxation, helps: Callable[[StepState], bool]) -> Relaxation:
    """``plan`` with its next step the earliest pending one that could change the decision.

    A pending step that relaxes something still required but after which, by ``helps``, no
    agent would be eligible changes nothing a caller acts on: promising it as the next
    relaxation would have the orchestrator ask again for nothing (review R33a L1). Such steps
    are kept in ``idle`` so the summary says why they set no next relaxation.

    Args:
        plan: The ladder's state.
        helps: Whether a pending step (with every step in force by its instant) could change
            the decision; callers answer True whenever unsure.

    Returns:
        The plan with ``next_at`` the first step that helps (``None``: none does) and ``idle``
        the steps passed over before it.
    """
    pending = sorted(
        (s for s in plan.steps if not s.in_force and s.at is not None and s.drops),
        key=lambda s: s.at or plan.now,
    )
    idle: list[StepState] = []
    for state in pending:
        if helps(state):
            return replace(plan, next_at=state.at, idle=tuple(idle))
        idle.append(state)
    return replace(plan, next_at=None, idle=tuple(idle))


_DERIVED_MAX = 256
_DERIVED: dict[tuple[int, object], tuple[Requirements, Requirements]] = {}


def derived_requirements(
    req: Requirements, key: object, build: Callable[[], Requirements]
) -> Requirements:
    """``build()``, remembered for this requirements object and ``key``.

    An action's requirements live as long as their compiled ruleset, and each decision derives
    the same variants from them (with a ladder's relaxed names dropped, without preferences):
    ``dataclasses.replace`` cost ~5 us a variant. Keyed by identity, each entry keeps the
    object it was built from (so its id is never reused while the entry lives) and is checked
    against it; bounded (a few rulesets' actions x their ladder levels).
    """
    memo = (id(req), key)
    found = _DERIVED.get(memo)
    if found is not None and found[0] is req:
        return found[1]
    value = build()
    if len(_DERIVED) >= _DERIVED_MAX:
        _DERIVED.clear()
    _DERIVED[memo] = (req, value)
    return value


def relaxed_requirements(req: Requirements, dropped: tuple[str, ...]) -> Requirements:
    """The requirements with ``dropped`` no longer applied (preferences are never required).

    Args:
        req: The action's requirements.
        dropped: Soft requirement names to stop applying.

    Returns:
        Requirements as they apply to eligibility (one object per ``req`` and ``dropped``).
    """
    if not dropped and not req.prefer:
        return req
    return derived_requirements(req, ("relaxed", dropped), lambda: _relaxed(req, dropped))


def _relaxed(req: Requirements, dropped: tuple[str, ...]) -> Requirements:
    names = set(dropped) | set(req.prefer)
    return replace(
        req,
        territory=req.territory and "territory" not in names,
        language=req.language and "language" not in names,
        case_skills=req.case_skills and "skills" not in names,
        skills=() if "skills" in names else req.skills,
        roles=None if "roles" in names else req.roles,
    )


def clock_text(at: datetime, now: datetime) -> str:
    """``HH:MM`` (UTC) on the decision's day, else ``YYYY-MM-DD HH:MM``.

    A case that waited days must not read as if its step came this morning.
    """
    # strftime's texts, built without it (~1.5 us a call); its %Y pads years below 1000
    # differently across platforms, so those years still go through it.
    if at.date() == now.date():
        return f"{at.hour:02d}:{at.minute:02d}"
    if at.year >= 1000:
        return f"{at.year}-{at.month:02d}-{at.day:02d} {at.hour:02d}:{at.minute:02d}"
    return at.strftime("%Y-%m-%d %H:%M")


def _summary(plan: Relaxation, hard: tuple[str, ...]) -> str:
    parts = [
        f"{', '.join(state.drops)} relaxed at {clock_text(state.at, plan.now)} after "
        f"{state.after_minutes:g} min waiting"
        for state in plan.steps
        if state.in_force and state.at is not None and state.drops
    ]
    if not parts:
        # Whole minutes waited (floor): a rounded "10 min" beside a pending 10-minute step
        # would read as a contradiction.
        parts.append(f"nothing relaxed after {int(plan.waiting_minutes)} min waiting")
    if plan.idle:
        listed = [
            f"{', '.join(s.drops)} at {clock_text(s.at, plan.now)}" for s in plan.idle if s.at
        ]
        text = listed[-1] if len(listed) == 1 else f"{', '.join(listed[:-1])} and {listed[-1]}"
        verb = "makes" if len(listed) == 1 else "make"
        lead = "" if plan.next_at is not None else "no next step: "
        parts.append(f"{lead}{text} {verb} no agent on this roster eligible")
    for state in plan.steps:
        if state.at is not None and state.at == plan.next_at and not state.in_force:
            names = state.drops
            if names:
                verb = "relaxes" if len(names) == 1 else "relax"
                parts.append(f"{', '.join(names)} {verb} at {clock_text(state.at, plan.now)}")
    if hard:
        parts.append(f"{', '.join(hard)} never {'relaxes' if len(hard) == 1 else 'relax'}")
    return "; ".join(parts)


def relaxation_trace(
    plan: Relaxation,
    req: Requirements,
    hard: tuple[str, ...],
    eligible_as_written: int,
    eligible_by_step: tuple[int, ...],
) -> RelaxationTrace:
    """The explanation's view of the ladder.

    Args:
        plan: The ladder's state.
        req: The action's requirements.
        hard: Requirements in force that never relax, in words order (``licence``, ...).
        eligible_as_written: Eligible agents with nothing relaxed.
        eligible_by_step: Eligible agents with each step (and the earlier ones) in force.

    Returns:
        The trace, with the supervisor's one-line summary.
    """
    last_in_force = max((i for i, s in enumerate(plan.steps) if s.in_force), default=-1)
    steps = []
    for i, state in enumerate(plan.steps):
        if state.at is None:
            status = StepStatus.NEVER
        elif not state.in_force:
            status = StepStatus.PENDING
        else:
            status = StepStatus.ACTIVE if i == last_in_force else StepStatus.PASSED
        steps.append(
            LadderStepTrace(
                state.step.name,
                status,
                state.at,
                state.after_minutes,
                state.step.relaxes,
                state.step.prefer,
                state.step.why,
                eligible_by_step[i],
            )
        )
    return RelaxationTrace(
        ladder=req.ladder.name if req.ladder is not None else "",
        anchor=plan.anchor,
        anchor_at=plan.anchor_at,
        waiting_minutes=round(plan.waiting_minutes, 3),
        hard=hard,
        soft=req.soft,
        relaxed=plan.relaxed,
        preferences=plan.preferences,
        eligible_as_written=eligible_as_written,
        steps=tuple(steps),
        next_relaxation_at=plan.next_at,
        summary=_summary(plan, hard),
    )
