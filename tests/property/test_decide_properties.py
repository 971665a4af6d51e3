"""Properties of decide() over random cases and rosters under the reference ruleset."""

import json
from collections import Counter
from dataclasses import replace
from datetime import date, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from caseroute.domain.case import Case, Channel, Intent, RequiredSkill, Tier, Urgency
from caseroute.domain.decision import Outcome
from caseroute.domain.decision_codec import decision_from_dict, decision_to_dict, to_jsonable
from caseroute.domain.roster import Agent, AgentStatus, Capacity, Licence, Role, Roster
from caseroute.engine.case_rules import EngineKind
from caseroute.engine.decide import decide
from caseroute.engine.matching import (
    CHECK_ORDER,
    MissingDataError,
    build_need,
    check_agent,
    match_agents,
)
from caseroute.engine.trace import explain_with
from caseroute.rules.model import Requirements
from caseroute.testing import NOW, clock, reading, reference_ruleset

PYTHON = reference_ruleset(EngineKind.PYTHON)
DURABLE = reference_ruleset(EngineKind.DURABLE)
PLACES = ["US-TX", "US-FL", "US-CA", "US-PA", "GB-ENG"]
SKILLS = ["clinical-triage", "billing", "medication-review"]

licences = st.builds(
    Licence,
    type=st.sampled_from(["RN", "LPN", "APRN", "pharmacist"]),
    jurisdiction=st.sampled_from([*PLACES, "GB", "US"]),
    expires_on=st.sampled_from([date(2026, 11, 20), date(2026, 11, 21), date(2030, 1, 1)]),
    multistate=st.booleans(),
)
agents = st.builds(
    Agent,
    agent_id=st.text("abcdefgh", min_size=1, max_size=4),
    role=st.sampled_from(list(Role)),
    status=st.sampled_from(list(AgentStatus)),
    capacity=st.builds(Capacity, max=st.integers(0, 4), active=st.integers(0, 4)),
    licences=st.lists(licences, max_size=2).map(tuple),
    territories=st.frozensets(st.sampled_from([*PLACES, "US"]), max_size=2),
    skills=st.dictionaries(st.sampled_from(SKILLS), st.integers(0, 5), max_size=2),
    languages=st.frozensets(st.sampled_from(["en", "es", "fr"]), max_size=2),
    last_assigned_at=st.one_of(
        st.none(), st.integers(1, 600).map(lambda m: NOW - timedelta(minutes=m))
    ),
    seniority=st.integers(0, 20),
)
rosters = st.lists(agents, max_size=12, unique_by=lambda a: a.agent_id.casefold()).map(
    lambda found: Roster("snap", NOW, tuple(found))
)
cases = st.builds(
    Case,
    case_id=st.just("C-P"),
    created_at=st.integers(0, 3000).map(lambda m: NOW - timedelta(minutes=m)),
    channel=st.sampled_from(list(Channel)),
    intent=st.sampled_from(list(Intent)),
    urgency=st.sampled_from(list(Urgency)),
    patient_location=st.one_of(st.none(), st.sampled_from(PLACES)),
    region=st.one_of(st.none(), st.sampled_from(PLACES)),
    tier=st.sampled_from(list(Tier)),
    required_skills=st.lists(
        st.builds(RequiredSkill, st.sampled_from(SKILLS), st.integers(0, 4)), max_size=2
    ).map(tuple),
    preferred_language=st.one_of(st.none(), st.sampled_from(["en", "es", "fr"])),
    sentiment=st.lists(st.builds(reading, st.floats(-1, 1), st.integers(1, 100)), max_size=3).map(
        tuple
    ),
    sla_clocks=st.lists(
        st.builds(clock, st.sampled_from(["ack", "rtt"]), st.integers(-120, 600)),
        max_size=2,
        unique_by=lambda c: c.name,
    ).map(tuple),
    flags=st.frozensets(st.sampled_from(["safeguarding", "vip", "consent_missing"]), max_size=2),
)


def _rank_key(agent: Agent, skill: str | None) -> tuple[float, int, float, str]:
    """Independent statement of the reference ranking: utilisation, level, idle, agent_id."""
    idle = float("-inf") if agent.last_assigned_at is None else agent.last_assigned_at.timestamp()
    level = agent.skills.get(skill, 0) if skill else 0
    return (agent.capacity.active / agent.capacity.max, -level, idle, agent.agent_id)


@given(case=cases, roster=rosters)
def test_decisions_are_deterministic_and_engine_independent(case: Case, roster: Roster) -> None:
    """Same input, same decision; durable_rules and Python decide identically."""
    first = to_jsonable(decide(case, roster, PYTHON, NOW))
    assert first == to_jsonable(decide(case, roster, PYTHON, NOW))
    durable = to_jsonable(decide(case, roster, DURABLE, NOW))
    durable["explanation"]["engine"] = first["explanation"]["engine"]
    assert durable == first


def _leading_key(criteria: tuple[tuple[str, object], ...]) -> tuple[int, ...]:
    """0 for each leading criterion met (a preferred agent, a soft preference), else 1."""
    return tuple(
        0 if value not in (None, False) else 1
        for label, value in criteria
        if label == "preferred agent" or label.startswith("prefers ")
    )


@settings(max_examples=300)
@given(case=cases, roster=rosters)
def test_verdicts_and_ranking_are_consistent(case: Case, roster: Roster) -> None:
    """Excluded agents name failing checks; no eligible agent outranks the chosen one."""
    decision = decide(case, roster, PYTHON, NOW)
    matching = decision.explanation.matching
    if matching is None:
        assert decision.agent_id is None
        return
    by_id = {a.agent_id: a for a in roster.agents}
    eligible = [v.agent_id for v in matching.agents if v.eligible]
    for verdict in matching.agents:
        assert verdict.eligible == (not verdict.failures)
        for failure in verdict.failures:
            assert failure.check in CHECK_ORDER
            assert failure.expected
            assert failure.actual
    assert matching.eligible == len(eligible)
    assert sorted(c.agent_id for c in matching.ranking) == sorted(eligible)
    if decision.agent_id is None:
        assert eligible == []
        return
    assert decision.agent_id in eligible
    assert matching.ranking[0].agent_id == decision.agent_id
    chosen = by_id[decision.agent_id]
    # The skill compared is the one the explanation names ("<skill> level"; "skill level": none).
    labels = [label for label, _ in matching.ranking[0].criteria]
    (level_label,) = [label for label in labels if label.endswith(" level")]
    skill = None if level_label == "skill level" else level_label.removesuffix(" level")
    for candidate in matching.ranking:
        shown = dict(candidate.criteria)
        agent = by_id[candidate.agent_id]
        assert shown[level_label] == (agent.skills.get(skill, 0) if skill else 0)
    if skill is not None:
        assert skill in {s.name for s in case.required_skills} | {"clinical-triage"}
    # Adaptive rules rank first by continuity and the soft preferences met (issue 15), then by
    # the ruleset's criteria: compare the leading keys the explanation shows, then the rest.
    leading = {c.agent_id: _leading_key(c.criteria) for c in matching.ranking}
    for other in eligible:
        assert (leading[chosen.agent_id], _rank_key(chosen, skill)) <= (
            leading[other],
            _rank_key(by_id[other], skill),
        )
    assert chosen.capacity.active < chosen.capacity.max
    assert "consent_missing" not in case.flags
    assert "safeguarding" not in case.flags


@given(case=cases, roster=rosters)
def test_hard_constraints_hold(case: Case, roster: Roster) -> None:
    """Safeguarding always escalates to its queue; licensed intents only reach licensed agents."""
    decision = decide(case, roster, PYTHON, NOW)
    if "safeguarding" in case.flags:
        assert (decision.outcome, decision.queue, decision.agent_id) == (
            Outcome.ESCALATE,
            "safeguarding",
            None,
        )
    if decision.agent_id is not None and case.intent in (Intent.CLINICAL, Intent.PRESCRIPTION):
        needed = "RN" if case.intent is Intent.CLINICAL else "pharmacist"
        agent = next(a for a in roster.agents if a.agent_id == decision.agent_id)
        assert any(lic.type == needed and lic.expires_on >= NOW.date() for lic in agent.licences)


REQUIREMENTS = [
    Requirements(),
    Requirements(
        licence_types=("RN",), skills=(RequiredSkill("clinical-triage", 3),), territory=False
    ),
    Requirements(roles=(Role.SENIOR, Role.MANAGER), case_skills=False, language=False),
]


@settings(max_examples=300)
@given(case=cases, roster=rosters, which=st.sampled_from(range(len(REQUIREMENTS))))
def test_indexed_matching_equals_checking_each_agent(
    case: Case, roster: Roster, which: int
) -> None:
    """The bitmask index finds exactly the agents, and counts, that per-agent checks find."""
    try:
        need = build_need(case, REQUIREMENTS[which], PYTHON.compiled, NOW)
    except MissingDataError:
        return
    result = match_agents(need, roster, detail=True)
    per_agent = {a.agent_id: [f.check for f in check_agent(need, a)] for a in roster.agents}
    assert [a.agent_id for a in result.eligible] == [k for k, v in per_agent.items() if not v]
    counts = Counter(check for failed in per_agent.values() for check in failed)
    assert dict(result.exclusion_counts) == dict(counts)
    assert {v.agent_id: [f.check for f in v.failures] for v in result.verdicts} == per_agent


declined_ids = st.frozensets(st.text("abcdABCD", min_size=1, max_size=3), max_size=3)


@settings(max_examples=300)
@given(case=cases, roster=rosters, declined=declined_ids, which=st.sampled_from(range(3)))
def test_declined_ids_exclude_the_same_agents_per_agent_and_by_index_in_any_case(
    case: Case, roster: Roster, declined: frozenset[str], which: int
) -> None:
    """R33a L4: declined ids match agent ids case-insensitively, per agent and by the index."""
    try:
        need = build_need(
            replace(case, declined_agents=declined), REQUIREMENTS[which], PYTHON.compiled, NOW
        )
    except MissingDataError:
        return
    folded = {d.casefold() for d in declined}
    per_agent = {
        a.agent_id: "declined" in [f.check for f in check_agent(need, a)] for a in roster.agents
    }
    assert per_agent == {a.agent_id: a.agent_id.casefold() in folded for a in roster.agents}
    for detail in (True, False):
        result = match_agents(need, roster, detail=detail)
        assert dict(result.exclusion_counts).get("declined", 0) == sum(per_agent.values())
    summary = match_agents(need, roster, detail=False)
    mask = int(dict(summary.failed_masks).get("declined", "0"), 16)
    assert [bool(mask >> i & 1) for i in range(len(roster.agents))] == list(per_agent.values())


@given(case=cases, roster=rosters, detail=st.booleans())
def test_stored_decisions_round_trip_exactly(case: Case, roster: Roster, detail: bool) -> None:
    """A decision stored as JSON comes back equal, so a retry gets exactly the first answer."""
    decision = decide(case, roster, PYTHON, NOW, agent_detail=detail)
    stored = json.loads(json.dumps(decision_to_dict(decision)))
    assert decision_from_dict(stored, explain_with(PYTHON.trace_plan)) == decision


@given(case=cases, roster=rosters)
def test_summary_failure_masks_name_the_same_checks_as_full_verdicts(
    case: Case, roster: Roster
) -> None:
    """Each agent's failed checks from a summary's masks equal the full explanation's."""
    full = decide(case, roster, PYTHON, NOW).explanation.matching
    summary = decide(case, roster, PYTHON, NOW, agent_detail=False).explanation.matching
    if full is None or summary is None:
        assert full == summary
        return
    from_masks = {
        (agent.agent_id, check)
        for check, mask in summary.failed_masks
        for i, agent in enumerate(roster.agents)
        if int(mask, 16) >> i & 1
    }
    from_verdicts = {(v.agent_id, f.check) for v in full.agents for f in v.failures}
    assert from_masks == from_verdicts
