"""Properties of adaptive routing over random ladders, rosters, cases and decision instants."""

from dataclasses import replace
from datetime import date, datetime, timedelta
from functools import cache, lru_cache

from hypothesis import given
from hypothesis import strategies as st

from caseroute.domain.case import (
    Case,
    Channel,
    ContinuityReason,
    Intent,
    PreferredAgent,
    RequiredSkill,
    Urgency,
)
from caseroute.domain.decision import Decision, Outcome, StepStatus
from caseroute.domain.roster import Agent, AgentStatus, Capacity, Licence, Role, Roster
from caseroute.engine.case_rules import EngineKind, LoadedRuleset, prepare_ruleset
from caseroute.engine.decide import decide
from caseroute.engine.matching import MissingDataError, build_need, check_agent
from caseroute.engine.selection import select_agent
from caseroute.rules.ladder_checks import rule_requirements
from caseroute.rules.model import HARD_REQUIREMENTS, Ladder, LadderStep, Requirements
from caseroute.testing import MINIMAL_HEADER, NOW, compile_text, ruleset_with_rules

PLACES = ["US-TX", "US-CA"]
SOFT = ("language", "territory", "skills")
CHECK_OF = {"territory": "territory", "skills": "skills", "language": "language", "roles": "role"}
STEP_NAMES = ("any-language", "any-territory", "any-skill")
STEP_RELAX = ("prefer: [language]", "relax: [territory]", "relax: [skills]")
MS = timedelta(milliseconds=1)
laters = st.one_of(st.integers(0, 20), st.integers(0, 240))
"""Minutes after NOW to decide at: often within a hold or before a step, sometimes long after."""

# Per urgency, three non-decreasing delays in minutes (None: the urgency never reaches the step;
# once a step is missing for an urgency, later steps are too, so the listed order always holds).
delays = st.lists(st.sampled_from([0, 1, 5, 10, 30, 60]), min_size=3, max_size=3).map(sorted)
urgency_delays = st.tuples(delays, st.integers(0, 3)).map(
    lambda pair: tuple(m if i < pair[1] else None for i, m in enumerate(pair[0]))
)
Delays = tuple[tuple[int | None, ...], ...]
plans: st.SearchStrategy[tuple[Delays, int]] = st.tuples(
    st.tuples(urgency_delays, urgency_delays, urgency_delays),
    st.sampled_from([0, 15, 30, 30]),
)
"""(delays per urgency in Urgency order, routine hold in minutes)."""


@lru_cache(maxsize=512)
def _ruleset(delays: Delays, hold: int) -> LoadedRuleset:
    """A ruleset whose routes and senior escalations hold language, territory, skills soft."""
    steps = []
    for i, name in enumerate(STEP_NAMES):
        after = ", ".join(
            f"{urgency.value}: {per[i]}m"
            for urgency, per in zip(Urgency, delays, strict=True)
            if per[i] is not None
        )
        steps.append(
            f"    - step: {name}\n      after: {{{after}}}\n      {STEP_RELAX[i]}\n"
            f"      why: Waited long enough.\n"
        )
    header = (
        MINIMAL_HEADER
        + "ladders:\n  waiting:\n"
        + "".join(steps)
        + f"continuity:\n  window: 365d\n  hold: {{routine: {hold}m}}\n"
    )
    adaptive = "soft: [language, territory, skills], ladder: waiting"
    rules = (
        "  - id: complaint\n"
        "    when: case.intent == 'complaint'\n"
        "    then: {escalate: {queue: complaints, level: 2, reason: complaint, "
        f"assign: {{roles: [senior, manager], {adaptive}}}}}}}\n"
        "  - id: routed\n"
        "    when: true\n"
        f"    then: {{route: {{queue: by_intent, reason: routed, {adaptive}}}}}\n"
    )
    compiled = compile_text(ruleset_with_rules(rules, header))
    assert not compiled.warnings or all(
        # The test header enforces no consent constraint (lint.no_consent) and licenses
        # clinical only (lint.no_licence for prescription).
        w.code in {"ladders.step_unreachable", "lint.no_consent", "lint.no_licence"}
        for w in compiled.warnings
    )
    return prepare_ruleset(compiled, EngineKind.PYTHON)


AGENT_IDS = ["a", "b", "c", "d", "e", "f"]
_RN = {place: Licence("RN", place, date(2030, 1, 1)) for place in PLACES}
# Biased towards agents who pass most checks, so holds and continuity are common.
LICENCES = [
    (_RN["US-TX"], _RN["US-CA"]),
    (_RN["US-TX"], _RN["US-CA"]),
    (_RN["US-TX"],),
    (_RN["US-CA"],),
    (Licence("LPN", "US-TX", date(2030, 1, 1)),),
    (),
]
TERRITORIES = [frozenset({"US-TX"}), frozenset({"US-CA"}), frozenset()]
LANGUAGES = [frozenset({"en"}), frozenset({"es"}), frozenset()]


# Strategies are built once (per agent id for _agent), not on every draw: building them per draw
# spent most of these tests' time in Hypothesis's own strategy caching and validation.
@cache
def _agent(agent_id: str) -> st.SearchStrategy[Agent]:
    return st.builds(
        Agent,
        agent_id=st.just(agent_id),
        role=st.sampled_from([Role.AGENT, Role.SENIOR, Role.MANAGER]),
        status=st.sampled_from([AgentStatus.AVAILABLE, AgentStatus.AVAILABLE, AgentStatus.AWAY]),
        capacity=st.builds(Capacity, max=st.integers(1, 3), active=st.integers(0, 3)),
        licences=st.sampled_from(LICENCES),
        territories=st.sampled_from([frozenset(PLACES), frozenset(PLACES), *TERRITORIES]),
        skills=st.dictionaries(st.just("clinical-triage"), st.integers(0, 4), max_size=1),
        languages=st.sampled_from([frozenset({"en", "es"}), *LANGUAGES]),
        seniority=st.integers(0, 5),
    )


AGENT_COUNTS = st.integers(0, len(AGENT_IDS))


@st.composite
def rosters(draw: st.DrawFn) -> Roster:
    """Up to six agents with distinct ids, each drawn independently."""
    count = draw(AGENT_COUNTS)
    return Roster("snap", NOW, tuple(draw(_agent(agent_id)) for agent_id in AGENT_IDS[:count]))


preferred = st.builds(
    PreferredAgent,
    agent_id=st.sampled_from([*AGENT_IDS[:4], "ghost"]),
    reason=st.sampled_from(list(ContinuityReason)),
    # Within the 365-day window whatever the instant tested: the window never expires here.
    last_contact_at=st.one_of(
        st.none(), st.integers(0, 300).map(lambda d: NOW - timedelta(days=d))
    ),
)


CREATED_MINUTES = st.integers(0, 45)
WAITING_SINCE = st.one_of(st.none(), st.integers(0, 20).map(lambda m: NOW - timedelta(minutes=m)))
INTENTS = st.sampled_from([Intent.CLINICAL, Intent.GENERAL] * 2 + [Intent.COMPLAINT])
URGENCIES = st.sampled_from([Urgency.ROUTINE, Urgency.ROUTINE, Urgency.URGENT, Urgency.CRITICAL])
LOCATIONS = st.sampled_from(PLACES)
REGIONS = st.sampled_from([*PLACES, *PLACES, None])
REQUIRED_SKILL_LISTS = st.lists(
    st.builds(RequiredSkill, st.just("clinical-triage"), st.integers(0, 4)), max_size=1
)
PREFERRED_LANGUAGES = st.sampled_from(["en", "es", None])
FLAG_SETS = st.sampled_from(
    [
        *[frozenset[str]()] * 4,
        frozenset({"consent_missing"}),
        frozenset({"safeguarding"}),
    ]
)
DECLINED = st.frozensets(st.sampled_from(AGENT_IDS), max_size=2)
PREFERRED_LISTS = st.lists(preferred, max_size=3)


@st.composite
def cases(draw: st.DrawFn) -> Case:
    """A case without SLA clocks or sentiment, so only the ladder and holds depend on time.

    Mostly routine, flag-free cases with a region and preferred agents on the roster, so
    holds, steps and continuity are all common; the rest still appear.
    """
    created = NOW - timedelta(minutes=draw(CREATED_MINUTES))
    since = draw(WAITING_SINCE)
    # Never before created_at: such a case is an EXCEPTION (review R33a L3, pinned in
    # tests/engine/test_wait_anchor.py), which would leave nothing adaptive to test here.
    since = None if since is None else max(since, created)
    return Case(
        case_id="C-A",
        created_at=created,
        channel=Channel.PHONE,
        intent=draw(INTENTS),
        urgency=draw(URGENCIES),
        patient_location=draw(LOCATIONS),
        region=draw(REGIONS),
        required_skills=tuple(draw(REQUIRED_SKILL_LISTS)),
        preferred_language=draw(PREFERRED_LANGUAGES),
        flags=draw(FLAG_SETS),
        waiting_since=since,
        declined_agents=draw(DECLINED),
        preferred_agents=tuple(draw(PREFERRED_LISTS)),
    )


BOOSTS = st.integers(0, 2)
BOOSTED_STATUSES = st.sampled_from([AgentStatus.AVAILABLE, AgentStatus.AWAY])
BOOSTED_URGENCIES = st.sampled_from([Urgency.ROUTINE, Urgency.ROUTINE, Urgency.URGENT])
WAITED_MINUTES = st.integers(0, 20)


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[Case, Roster]:
    """A case and roster; mostly the case's first preferred agent is busy but otherwise fit.

    That agent fails only on capacity (or presence), so holds are common, not a rarity
    Hypothesis would seldom reach.
    """
    case, roster = draw(cases()), draw(rosters())
    boost = draw(BOOSTS) > 0
    if roster.agents and boost:
        fit = replace(
            roster.agents[0],
            role=Role.SENIOR,
            licences=LICENCES[0],
            territories=frozenset(PLACES),
            skills={"clinical-triage": 4},
            languages=frozenset({"en", "es"}),
            status=draw(BOOSTED_STATUSES),
            capacity=Capacity(2, 2),
        )
        roster = replace(roster, agents=(fit, *roster.agents[1:]))
        first = PreferredAgent(fit.agent_id, ContinuityReason.PREVIOUS_CONTACT, None)
        case = replace(
            case,
            preferred_agents=(first, *case.preferred_agents),
            declined_agents=case.declined_agents - {fit.agent_id},
            urgency=draw(BOOSTED_URGENCIES),
            waiting_since=max(NOW - timedelta(minutes=draw(WAITED_MINUTES)), case.created_at),
        )
    return case, roster


def _eligible(decision: Decision) -> frozenset[str]:
    matching = decision.explanation.matching
    if matching is None:
        return frozenset()
    return frozenset(v.agent_id for v in matching.agents if v.eligible)


def _visible(decision: Decision) -> tuple[object, ...]:
    """What a caller acts on: outcome, agent, queue, rule, reasons, and when to ask again."""
    return (
        decision.outcome,
        decision.agent_id,
        decision.queue,
        decision.rule_id,
        decision.reason_codes,
        decision.held_for_preferred_until,
        decision.next_relaxation_at,
    )


@given(plan=plans, scenario=scenarios(), later=laters)
def test_pools_never_shrink_as_waiting_time_grows(
    plan: tuple[Delays, int], scenario: tuple[Case, Roster], later: int
) -> None:
    """Whoever is eligible at t1 is eligible at every t2 >= t1."""
    case, roster = scenario
    loaded = _ruleset(*plan)
    first = decide(case, roster, loaded, NOW)
    second = decide(case, roster, loaded, NOW + timedelta(minutes=later))
    assert _eligible(first) <= _eligible(second)


def _in_force(req: Requirements, relaxed: tuple[str, ...]) -> Requirements:
    """Independent statement of the requirements in force once ``relaxed`` are dropped."""
    gone = set(relaxed) | set(req.prefer)
    return Requirements(
        licence_types=req.licence_types,
        skills=() if "skills" in gone else req.skills,
        case_skills=req.case_skills and "skills" not in gone,
        territory=req.territory and "territory" not in gone,
        language=req.language and "language" not in gone,
        roles=None if "roles" in gone else req.roles,
    )


@given(plan=plans, scenario=scenarios(), later=laters)
def test_the_chosen_agent_meets_every_requirement_in_force(
    plan: tuple[Delays, int], scenario: tuple[Case, Roster], later: int
) -> None:
    """Preferred or not, the agent chosen passes every check under the requirements in force."""
    case, roster = scenario
    loaded = _ruleset(*plan)
    now = NOW + timedelta(minutes=later)
    decision = decide(case, roster, loaded, now)
    if decision.agent_id is None:
        return
    rule = next(r for r in loaded.compiled.rules if r.rule_id == decision.rule_id)
    req = rule_requirements(rule)
    relaxation = decision.explanation.relaxation
    assert req is not None
    assert relaxation is not None
    need = build_need(case, _in_force(req, relaxation.relaxed), loaded.compiled, now)
    agent = next(a for a in roster.agents if a.agent_id == decision.agent_id)
    assert check_agent(need, agent) == []
    assert decision.agent_id not in case.declined_agents
    continuity = decision.explanation.continuity
    if "continuity_of_care" in decision.reason_codes:
        assert continuity is not None
        assert continuity.outcome == "assigned_preferred"
        assert decision.agent_id in {p.agent_id for p in case.preferred_agents}
    if continuity is not None:
        for pref in continuity.preferred:
            if pref.status != "chosen":
                assert pref.agent_id != decision.agent_id


@given(plan=plans, scenario=scenarios(), later=laters)
def test_holds_are_only_for_routes_and_unavailable_preferred_agents(
    plan: tuple[Delays, int], scenario: tuple[Case, Roster], later: int
) -> None:
    """A held case is a routed QUEUE for a preferred agent failing only presence or capacity."""
    case, roster = scenario
    loaded = _ruleset(*plan)
    now = NOW + timedelta(minutes=later)
    decision = decide(case, roster, loaded, now)
    if decision.held_for_preferred_until is None:
        assert "held_for_preferred_agent" not in decision.reason_codes
        return
    assert (decision.outcome, decision.agent_id, decision.rule_id) == (
        Outcome.QUEUE,
        None,
        "routed",
    )
    assert case.urgency is Urgency.ROUTINE
    assert now < decision.held_for_preferred_until == case.wait_anchor + timedelta(minutes=plan[1])
    continuity = decision.explanation.continuity
    assert continuity is not None
    held_for = [p.agent_id for p in continuity.preferred if p.status == "held_for"]
    assert held_for
    assert decision.next_relaxation_at is not None
    assert decision.next_relaxation_at <= decision.held_for_preferred_until


def _step_times(decision: Decision) -> dict[int, datetime]:
    relaxation = decision.explanation.relaxation
    if relaxation is None:
        return {}
    return {
        i: s.at for i, s in enumerate(relaxation.steps) if s.status is StepStatus.PENDING and s.at
    }


@given(plan=plans, scenario=scenarios())
def test_nothing_changes_before_next_relaxation_at_and_only_the_step_at_it(
    plan: tuple[Delays, int], scenario: tuple[Case, Roster]
) -> None:
    """At next - 1 ms the decision is unchanged; at next only the due step (or the hold) moved."""
    case, roster = scenario
    loaded = _ruleset(*plan)
    now_decision = decide(case, roster, loaded, NOW)
    due = now_decision.next_relaxation_at
    if due is None:
        return
    before = decide(case, roster, loaded, due - MS)
    assert _visible(before) == _visible(now_decision)
    assert before.explanation.relaxation is not None
    assert now_decision.explanation.relaxation is not None
    # A step relaxing nothing this case has (a language step, no preferred language) may pass
    # before `due` without changing anything, and so may a step after which nobody would be
    # eligible when nobody is now (review R33a L1): nothing else may relax before `due`.
    _assert_only_idle_steps_relaxed(before, now_decision, due)
    at = decide(case, roster, loaded, due)
    assert at.rule_id == now_decision.rule_id
    steps_due = [i for i, t in _step_times(now_decision).items() if t == due]
    relaxation = at.explanation.relaxation
    assert relaxation is not None
    # Counts per step are a function of the roster, not of time: the prediction stands.
    assert [s.eligible for s in relaxation.steps] == [
        s.eligible for s in now_decision.explanation.relaxation.steps
    ]
    if steps_due:
        active = max(steps_due)
        assert relaxation.steps[active].status is StepStatus.ACTIVE
        assert at.explanation.matching is not None
        assert at.explanation.matching.eligible == relaxation.steps[active].eligible
        assert list(_step_times(at)) == [i for i, t in _step_times(now_decision).items() if t > due]
    elif now_decision.held_for_preferred_until == due:
        # Not a step: the hold for a preferred agent ended.
        assert at.held_for_preferred_until is None
        assert "held_for_preferred_agent" not in at.reason_codes
        _assert_only_idle_steps_relaxed(at, now_decision, due)
    else:
        # Not a step nor a hold: a preferred agent's last contact left the continuity window.
        assert at.explanation.continuity is not None
        assert "outside_window" in {p.status for p in at.explanation.continuity.preferred}
        _assert_only_idle_steps_relaxed(at, now_decision, due)


def _assert_only_idle_steps_relaxed(later: Decision, earlier: Decision, due: datetime) -> None:
    """What ``later`` relaxed beyond ``earlier``: only steps due before ``due``, nobody eligible.

    Such steps changed nothing a caller acts on: ``earlier`` had nobody eligible and passed
    them over for its next_relaxation_at.
    """
    assert later.explanation.relaxation is not None
    assert earlier.explanation.relaxation is not None
    extra = set(later.explanation.relaxation.relaxed) - set(earlier.explanation.relaxation.relaxed)
    if not extra:
        return
    assert earlier.explanation.matching is not None
    assert earlier.explanation.matching.eligible == 0
    passed_over = {
        name
        for s in earlier.explanation.relaxation.steps
        if s.status is StepStatus.PENDING and s.at is not None and s.at < due
        for name in s.relaxes
    }
    assert extra <= passed_over


@given(plan=plans, scenario=scenarios())
def test_without_next_relaxation_at_no_pending_step_changes_the_decision(
    plan: tuple[Delays, int], scenario: tuple[Case, Roster]
) -> None:
    """No next_relaxation_at: deciding at each pending step's instant gives the same decision."""
    case, roster = scenario
    loaded = _ruleset(*plan)
    now_decision = decide(case, roster, loaded, NOW)
    if now_decision.next_relaxation_at is not None:
        return
    for at in sorted(set(_step_times(now_decision).values())):
        assert _visible(decide(case, roster, loaded, at)) == _visible(now_decision)


@given(plan=plans, scenario=scenarios(), later=laters)
def test_adaptive_decisions_are_deterministic(
    plan: tuple[Delays, int], scenario: tuple[Case, Roster], later: int
) -> None:
    """Same case, roster, ruleset and now: equal decisions, traces included."""
    case, roster = scenario
    loaded = _ruleset(*plan)
    now = NOW + timedelta(minutes=later)
    assert decide(case, roster, loaded, now) == decide(case, roster, loaded, now)


NAMES = [*HARD_REQUIREMENTS, "territory", "skills", "language", "roles"]
hostile_steps = st.lists(
    st.builds(
        LadderStep,
        name=st.sampled_from(["s1", "s2", "s3"]),
        after=st.dictionaries(st.sampled_from(list(Urgency)), st.sampled_from([0.0, 5.0, 30.0])),
        relax=st.lists(st.sampled_from(NAMES), max_size=4, unique=True).map(tuple),
        prefer=st.lists(st.sampled_from(NAMES), max_size=3, unique=True).map(tuple),
        why=st.just("whatever"),
        line=st.just(1),
    ),
    min_size=1,
    max_size=3,
)


@given(
    scenario=scenarios(),
    steps=hostile_steps,
    soft=st.lists(st.sampled_from(SOFT), unique=True).map(tuple),
    prefer=st.lists(st.sampled_from(NAMES), max_size=3, unique=True).map(tuple),
    roles=st.sampled_from([None, (Role.SENIOR,)]),
    later=st.integers(0, 120),
)
def test_a_hard_requirement_never_relaxes_whatever_the_ladder_says(
    scenario: tuple[Case, Roster],
    steps: list[LadderStep],
    soft: tuple[str, ...],
    prefer: tuple[str, ...],
    roles: tuple[Role, ...] | None,
    later: int,
) -> None:
    """Even requirements built past the compiler only ever drop soft-able requirements."""
    case, roster = scenario
    loaded = _ruleset(((0, 0, 0), (0, 0, 0), (0, 0, 0)), 0)
    ladder = Ladder("hostile", tuple(steps), 1)
    req = Requirements(roles=roles, soft=soft, prefer=prefer, ladder=ladder)
    now = NOW + timedelta(minutes=later)
    strict = replace(req, soft=(), prefer=(), ladder=None)
    try:
        need = build_need(case, strict, loaded.compiled, now)
        picked = select_agent(case, roster, req, loaded.compiled, now, detail=True, may_hold=True)
    except MissingDataError:
        return
    # Hard names (licence, consent, declined, status, capacity) never drop, wherever listed.
    allowed = {CHECK_OF[name] for name in (*soft, *prefer) if name in CHECK_OF}
    by_id = {a.agent_id: a for a in roster.agents}
    for verdict in picked.matching.agents:
        if verdict.eligible:
            failed = {f.check for f in check_agent(need, by_id[verdict.agent_id])}
            assert failed <= allowed
    if picked.relaxation is not None:
        assert set(picked.relaxation.relaxed) <= set(soft)
