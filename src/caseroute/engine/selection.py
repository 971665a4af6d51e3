"""Choose an agent under one action: relax soft requirements, match, rank, apply continuity.

Order of work: the ladder's state at ``now`` (``relaxation.py``) gives the requirements in
force; matching (``matching.py``) finds who is eligible under them and the hard constraints;
ranking orders the eligible with preferred agents first (``continuity.py``), then agents who
meet the soft preferences, then the ruleset's criteria; continuity may hold a route for an
unavailable preferred agent. Preference ranks; it never admits: nothing here adds an agent
that matching excluded.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime

from caseroute.domain.case import Case
from caseroute.domain.decision import ContinuityTrace, MatchingTrace, RelaxationTrace
from caseroute.domain.roster import Agent, Roster
from caseroute.engine.continuity import settle, sort_preferred
from caseroute.engine.licence_dates import licence_gain_instants
from caseroute.engine.matching import (
    CHECK_ORDER,
    MissingDataError,
    Need,
    build_need,
    check_masks,
    describe_need,
    match_agents,
    unmatched_declined,
)
from caseroute.engine.ranking import Criterion, SortKey, rank_candidates
from caseroute.engine.relaxation import (
    Relaxation,
    StepState,
    clock_text,
    derived_requirements,
    pass_idle_steps,
    plan_relaxation,
    relaxation_trace,
    relaxed_by,
    relaxed_requirements,
)
from caseroute.engine.roster_index import RosterIndex, index_for
from caseroute.rules.model import CompiledRuleset, RankingCriterion, Requirements

RANKING_SHOWN_WITHOUT_DETAIL = 10


@dataclass(frozen=True, slots=True)
class Selection:
    """Who gets the case under one action, and the adaptive parts of why.

    Attributes:
        matching: Matching and ranking trace.
        chosen: The agent chosen, or ``None`` (nobody eligible, or held for a preferred one).
        relaxation: The ladder's trace, when the action has soft requirements.
        continuity: Preferred agents' trace, when continuity applied.
        held_until: When a hold for a preferred agent ends (the case is queued until then).
        next_at: When time alone could change this choice (a pending step or a hold's end).
    """

    matching: MatchingTrace
    chosen: str | None
    relaxation: RelaxationTrace | None
    continuity: ContinuityTrace | None
    held_until: datetime | None
    next_at: datetime | None


def _applies(case: Case, req: Requirements) -> frozenset[str]:
    """Soft-able requirements that bind this case at all (nothing to relax otherwise)."""
    out = set()
    if req.territory:
        out.add("territory")
    if req.language and case.preferred_language is not None:
        out.add("language")
    if req.skills or (req.case_skills and case.required_skills):
        out.add("skills")
    if req.roles is not None:
        out.add("roles")
    return frozenset(out)


def is_adaptive(req: Requirements) -> bool:
    """Whether an action has soft requirements, preferences or a ladder."""
    return bool(req.ladder is not None or req.soft or req.prefer)


def _eligible_count(
    case: Case, req: Requirements, ruleset: CompiledRuleset, now: datetime, index: RosterIndex
) -> int:
    try:
        need = build_need(case, req, ruleset, now)
    except MissingDataError:
        return 0  # the data the requirement reads is missing: nobody can be checked
    mask = index.everyone
    for value in check_masks(need, index).values():
        mask &= value
    return mask.bit_count()


def _strict_masks(
    case: Case, req: Requirements, ruleset: CompiledRuleset, now: datetime, index: RosterIndex
) -> dict[str, int] | None:
    """Each check's passing mask with every requirement applied, preferences included.

    Every relaxed level's eligibility is an AND over a subset of these (dropping a soft
    requirement drops its check and changes no other mask), so one resolution serves the
    step counts and the preference masks. ``None`` when a requirement reads case data that is
    missing (each level is then resolved on its own).
    """
    try:
        strict = derived_requirements(req, "strict", lambda: replace(req, prefer=()))
        return check_masks(build_need(case, strict, ruleset, now), index)
    except MissingDataError:
        return None


def _count_without(
    strict: dict[str, int], index: RosterIndex, names: set[str] | frozenset[str]
) -> int:
    # Only soft-able names map to a check: a hard one listed by hand (past the compiler) is
    # never skipped, so it keeps excluding.
    skipped = {_CHECK_OF[name] for name in names if name in _CHECK_OF}
    mask = index.everyone
    for check, value in strict.items():
        if check not in skipped:
            mask &= value
    return mask.bit_count()


def _step_counts(
    case: Case,
    req: Requirements,
    plan: Relaxation,
    ruleset: CompiledRuleset,
    now: datetime,
    index: RosterIndex,
    strict: dict[str, int] | None,
) -> tuple[int, tuple[int, ...]]:
    """Eligible agents as written and with each step (and the earlier ones) in force."""
    soft = set(req.soft)
    dropped: list[str] = []
    levels = []
    for state in plan.steps:
        if state.at is not None:
            dropped += [n for n in state.step.relaxes if n in soft and n not in dropped]
        levels.append(tuple(dropped))
    if strict is not None:
        prefer = set(req.prefer)
        return _count_without(strict, index, prefer), tuple(
            _count_without(strict, index, prefer | set(level)) for level in levels
        )
    as_written = _eligible_count(case, relaxed_requirements(req, ()), ruleset, now, index)
    return as_written, tuple(
        _eligible_count(case, relaxed_requirements(req, level), ruleset, now, index)
        for level in levels
    )


_CHECK_OF = {"territory": "territory", "skills": "skills", "language": "language", "roles": "role"}
"""Soft requirement name (as written in YAML) -> the matching check that tests it."""


def _only(req: Requirements, name: str) -> Requirements:
    """``req`` with ``name`` as its only soft-able requirement (hard constraints unchanged)."""
    return replace(
        req,
        territory=req.territory and name == "territory",
        language=req.language and name == "language",
        case_skills=req.case_skills and name == "skills",
        skills=req.skills if name == "skills" else (),
        roles=req.roles if name == "roles" else None,
        soft=(),
        prefer=(),
    )


def _preference_masks(
    case: Case,
    req: Requirements,
    names: tuple[str, ...],
    ruleset: CompiledRuleset,
    now: datetime,
    index: RosterIndex,
    strict: dict[str, int] | None,
) -> dict[str, int]:
    """Per preference, the mask of agents who meet it (only preferences that apply to the case).

    From the strict masks when every requirement could be resolved; otherwise each preference
    is resolved on its own, so data one of them lacks (a territory preference without a case
    region) drops that preference alone, never the others.
    """
    if strict is not None:
        return {n: strict[_CHECK_OF[n]] for n in names if _CHECK_OF.get(n, "") in strict}
    out = {}
    for name in names:
        try:
            need = build_need(case, _only(req, name), ruleset, now)
        except MissingDataError:
            continue  # e.g. a territory preference without a case region: nobody is preferred
        masks = check_masks(need, index)
        check = _CHECK_OF.get(name)
        if check is not None and check in masks:
            out[name] = masks[check]
    return out


def _hard(need: Need, req: Requirements) -> tuple[str, ...]:
    """Requirements that apply to this case and never relax (the summary's last clause)."""
    soft = set(req.soft) | set(req.prefer)
    applies = {
        "territory": need.region is not None,
        "skills": bool(need.skills),
        "language": need.language is not None,
        "roles": need.roles is not None,
    }
    out = []
    if need.consent_flag is not None:
        out.append("consent")
    if need.licence_types is not None:
        out.append("licence")
    out += [name for name in _BY_CHECK if applies[name] and name not in soft]
    return tuple(out)


_BY_CHECK = sorted(_CHECK_OF, key=lambda name: CHECK_ORDER.index(_CHECK_OF[name]))
"""Soft-able names in the order matching checks them (``roles`` is the ``role`` check)."""


def _known_keys(
    index: RosterIndex, criteria: tuple[RankingCriterion, ...], skill: str | None
) -> dict[str, tuple[SortKey | str, ...]]:
    """The ranking keys of this index's agents under ``criteria`` and ``skill``, kept on it.

    They read the agent alone, and the index lives exactly as long as its agents do unchanged
    (a batch's index after an assignment starts empty), so ``rank_candidates`` fills this as
    agents are first ranked and later decisions reuse them. At most one entry per agent.
    """
    key = ("rank-keys", criteria, skill)
    found = index.recall(key)
    if isinstance(found, dict):
        return found
    known: dict[str, tuple[SortKey | str, ...]] = {}
    index.remember(key, known)
    return known


@dataclass(frozen=True, slots=True)
class _StepHelps:
    """Whether a pending step could change a decision under which nobody is eligible now.

    Conservative: True whenever unsure. A step helps when, with it (and every step in force by
    its instant) applied, some agent on this roster would be eligible; when the case may still
    be held for a preferred agent the step could turn from not eligible into unavailable (a
    hold changes the decision, with nobody eligible). Where a licence is required, who is
    licensed is taken at the step's instant, not at ``now``: a licence may lapse, or a compact
    membership begin, by then (``licence_dates``).
    """

    case: Case
    req: Requirements
    plan: Relaxation
    ruleset: CompiledRuleset
    now: datetime
    index: RosterIndex
    strict: dict[str, int] | None
    need: Need
    hold_until: datetime | None

    def __call__(self, state: StepState) -> bool:
        at = state.at
        if at is None:
            return False
        if self.hold_until is not None and at < self.hold_until:
            return True
        names = relaxed_by(self.plan, at, self.req.soft)
        if self.need.licence_types is not None:
            relaxed = relaxed_requirements(self.req, tuple(sorted(names)))
            return _eligible_count(self.case, relaxed, self.ruleset, at, self.index) > 0
        if self.strict is not None:
            return _count_without(self.strict, self.index, names | set(self.req.prefer)) > 0
        relaxed = relaxed_requirements(self.req, tuple(sorted(names)))
        return _eligible_count(self.case, relaxed, self.ruleset, self.now, self.index) > 0


def _licence_gain(
    case: Case,
    req: Requirements,
    plan: Relaxation | None,
    ruleset: CompiledRuleset,
    now: datetime,
    index: RosterIndex,
    need: Need,
    eligible: int,
    preferred: int,
) -> tuple[datetime, str] | None:
    """The first instant a compact membership starting could change this choice, and who.

    At each instant a membership starts (``licence_gain_instants``), with every ladder step
    in force by then: an agent not licensed now who would then be eligible (with someone
    eligible, they may rank first; with nobody, they take the case), or one of ``preferred``
    newly licensed (nobody eligible: the case may then be held for them).

    Args:
        case: The case.
        req: The action's requirements.
        plan: The ladder's state, or ``None``.
        ruleset: For hard constraints and compacts.
        now: The decision instant.
        index: The roster's index.
        need: The need in force at ``now``.
        eligible: Mask of the agents eligible now.
        preferred: Mask of preferred agents not eligible now whose licence would make them
            ones to hold for (0 when the case cannot be held).

    Returns:
        (the instant, the first such agent's id), or ``None``.
    """
    instants = licence_gain_instants(need, now)
    if not instants:
        return None
    unlicensed = index.everyone & ~check_masks(need, index).get("licence", index.everyone)
    for at in instants:
        names = relaxed_by(plan, at, req.soft) if plan is not None else frozenset()
        try:
            later = build_need(case, relaxed_requirements(req, tuple(sorted(names))), ruleset, at)
        except MissingDataError:  # pragma: no cover - the need at `now` resolved the same data
            return None
        masks = check_masks(later, index)
        mask = index.everyone
        for value in masks.values():
            mask &= value
        gained = (mask & ~eligible | masks.get("licence", 0) & preferred) & unlicensed
        if gained:
            return at, index.agents[(gained & -gained).bit_length() - 1].agent_id
    return None


def _preferred_criterion(case: Case, eligible: dict[str, str]) -> Criterion:
    """Rank eligible preferred agents first, in the case's order, and show that order.

    The value shown is the agent's 1-based place in ``case.preferred_agents`` (its first
    mention), the sort key itself: two preferred agents with the same reason never show a tie
    that the list's order decided. The reason is in the continuity trace; renderers add it.
    Agents the case does not prefer (or that are not eligible) show ``None`` and rank after.
    """
    place: dict[str, int] = {}
    for i, pref in enumerate(case.preferred_agents, 1):
        if pref.agent_id in eligible:
            place.setdefault(pref.agent_id, i)
    last = len(case.preferred_agents) + 1

    def preferred(agent: Agent) -> tuple[int, int | None]:
        at = place.get(agent.agent_id)
        return (last if at is None else at), at

    return preferred


def _preference_criterion(mask: int, position: dict[str, int]) -> Criterion:
    def meets(agent: Agent) -> tuple[int, bool]:
        met = bool(mask >> position[agent.agent_id] & 1)
        return (0 if met else 1), met

    return meets


def select_agent(
    case: Case,
    roster: Roster,
    req: Requirements,
    ruleset: CompiledRuleset,
    now: datetime,
    *,
    detail: bool,
    may_hold: bool,
) -> Selection:
    """Match, rank and choose under one action's requirements.

    Args:
        case: The case.
        roster: The roster snapshot.
        req: The action's requirements.
        ruleset: For hard constraints, ranking, ladders and the continuity policy.
        now: The decision instant.
        detail: Keep a verdict per agent (see ``match_agents``).
        may_hold: Whether continuity may hold the case for a preferred agent (routes only).

    Returns:
        The selection.

    Raises:
        MissingDataError: If a requirement in force needs case data that is missing.
    """
    plan = None
    if is_adaptive(req):
        anchor = "waiting_since" if case.waiting_since is not None else "created_at"
        # In UTC, like every other instant of a decision: a case stamped with another offset
        # (the Python API allows it) must time steps and word the summary as its UTC twin.
        anchor_at = case.wait_anchor.astimezone(UTC)
        plan = plan_relaxation(req, case.urgency, anchor, anchor_at, now, _applies(case, req))
    current = relaxed_requirements(req, plan.relaxed if plan is not None else ())
    if plan is not None and plan.relaxed:
        # Missing data is judged on the requirements as written, before any step relaxes them:
        # a missing region stays missing data (EXCEPTION, missing_region) even once a soft
        # territory has relaxed, so the decision never turns into an assignment through time
        # alone. Waiting cannot find a local agent for an unknown region, and the data gets
        # fixed sooner in the exceptions queue than by waiting for the step.
        build_need(case, relaxed_requirements(req, ()), ruleset, now)
    need = build_need(case, current, ruleset, now)
    result = match_agents(need, roster, detail=detail)
    index = index_for(roster)
    strict = _strict_masks(case, req, ruleset, now, index) if plan is not None else None
    leading: list[tuple[str, Criterion]] = []
    view = None
    policy = ruleset.continuity
    if policy is not None and req.continuity and case.preferred_agents:
        eligible_ids = {a.agent_id for a in result.eligible}
        view = sort_preferred(case, policy, need, index, eligible_ids, now)
        leading.append(("preferred agent", _preferred_criterion(case, view.reasons)))
    if plan is not None and plan.preferences:
        masks = _preference_masks(case, req, plan.preferences, ruleset, now, index, strict)
        position = index.positions()
        leading += [
            (f"prefers {name}", _preference_criterion(mask, position))
            for name, mask in masks.items()
        ]
    skill = (
        case.required_skills[0].name
        if case.required_skills
        else (need.skills[0].name if need.skills else None)
    )
    # A summary shows the first ten: only they get their values worked out.
    keep = None if detail else RANKING_SHOWN_WITHOUT_DETAIL
    ranking = rank_candidates(
        result.eligible,
        ruleset.ranking,
        skill,
        now,
        leading,
        keep=keep,
        known=_known_keys(index, ruleset.ranking, skill),
    )
    chosen = ranking[0].agent_id if ranking else None
    continuity = None
    held_until = None
    lapses_at = None
    if view is not None and policy is not None:
        continuity, held_until = settle(view, policy, chosen, may_hold, case.urgency.value, now)
        if held_until is not None:
            chosen = None
        lapses_at = view.lapses_at(chosen, held_until is not None)
    gain = None
    if not result.eligible:
        # Nobody can take the case now: a compact membership starting may admit someone (an
        # assignment is acted on at once, and a held case changes when its hold ends).
        preferred_mask = 0
        if view is not None and may_hold and view.hold_until is not None:
            index_of = index.positions()
            for t in view.traces:
                if t.status == "not_eligible":
                    preferred_mask |= 1 << index_of[t.agent_id]
        gain = _licence_gain(case, req, plan, ruleset, now, index, need, 0, preferred_mask)
    relaxation = None
    if plan is not None and plan.next_at is not None and not result.eligible:
        # Nobody is eligible: a pending step after which nobody would be either changes
        # nothing, so it is no reason to ask again (review R33a L1).
        may_turn_unavailable = (
            view is not None and may_hold and any(t.status == "not_eligible" for t in view.traces)
        )
        plan = pass_idle_steps(
            plan,
            _StepHelps(
                case,
                req,
                plan,
                ruleset,
                now,
                index,
                strict,
                need,
                view.hold_until if view is not None and may_turn_unavailable else None,
            ),
        )
    next_at = plan.next_at if plan is not None else None
    for instant in (held_until, lapses_at, gain[0] if gain is not None else None):
        if instant is not None and (next_at is None or instant < next_at):
            next_at = instant
    licence_line = None
    if gain is not None and gain[0] == next_at:
        licence_line = (
            f"licence dates: {gain[1]} is licensed in {need.location} from "
            f"{clock_text(gain[0], now)} (a compact membership starts)"
        )
    if plan is not None:
        as_written, by_step = _step_counts(case, req, plan, ruleset, now, index, strict)
        relaxation = relaxation_trace(plan, req, _hard(need, req), as_written, by_step)
    requirements = describe_need(need)
    unmatched = unmatched_declined(need, index)
    if unmatched:
        # Beside the declined check: an id nobody on the roster has is likely a typo, and the
        # agent who declined may then be offered the case again (review R33a L4).
        at = next(i for i, line in enumerate(requirements) if line.startswith("declined: ")) + 1
        requirements = (
            *requirements[:at],
            *(f"declined id {d} matches no agent on the roster" for d in unmatched),
            *requirements[at:],
        )
    if licence_line is not None:
        # Beside the licence check: why time alone changes this decision then.
        at = next(
            (i + 1 for i, line in enumerate(requirements) if line.startswith("licence: ")),
            len(requirements),
        )
        requirements = (*requirements[:at], licence_line, *requirements[at:])
    trace = MatchingTrace(
        requirements=requirements,
        considered=len(roster.agents),
        eligible=len(result.eligible),
        exclusion_counts=result.exclusion_counts,
        agents=result.verdicts,
        ranking_criteria=(
            *(label for label, _ in leading),
            *(c.value for c in ruleset.ranking),
            "agent_id",
        ),
        ranking=tuple(ranking),
        failed_masks=result.failed_masks,
    )
    return Selection(trace, chosen, relaxation, continuity, held_until, next_at)
