"""Selection under adaptive rules: declined agents, preferences in ranking, the hard summary."""

from datetime import timedelta

import pytest

from caseroute.domain.case import ContinuityReason, Intent, PreferredAgent, Urgency
from caseroute.domain.decision import Decision, Outcome
from caseroute.domain.roster import Role, Roster
from caseroute.engine.case_rules import LoadedRuleset, prepare_ruleset
from caseroute.engine.decide import decide
from caseroute.engine.selection import select_agent
from caseroute.rules.model import Requirements
from caseroute.testing import (
    CATCH_ALL_RULE,
    MINIMAL_HEADER,
    NOW,
    compile_text,
    make_agent,
    make_case,
    make_roster,
    reference_ruleset,
    ruleset_with_rules,
)

HEADER = (
    MINIMAL_HEADER
    + """\
ladders:
  territory-later:
    - step: any-territory
      after: 10m
      relax: [territory]
      why: After ten minutes any territory will do.
"""
)


def _ruleset(route: str) -> LoadedRuleset:
    """A ruleset whose general enquiries take ``route`` (a flow mapping's inside)."""
    rules = (
        "  - id: general\n"
        "    when: case.intent == 'general'\n"
        f"    then: {{route: {{queue: general, reason: general, {route}}}}}\n" + CATCH_ALL_RULE
    )
    compiled = compile_text(ruleset_with_rules(rules, HEADER))
    return prepare_ruleset(compiled)


PREFERS = _ruleset(
    "roles: [senior], prefer: [roles, language], soft: [territory], ladder: territory-later"
)
SENIOR_SPANISH = make_agent("z-senior", role=Role.SENIOR, languages=frozenset({"es"}))
AGENT_ENGLISH = make_agent("a-agent")


def _general(minutes: float, **overrides: object) -> Decision:
    values: dict[str, object] = {
        "intent": Intent.GENERAL,
        "preferred_language": "es",
        "created_at": NOW - timedelta(minutes=minutes),
    }
    values.update(overrides)
    case = make_case(**values)
    return decide(case, make_roster(SENIOR_SPANISH, AGENT_ENGLISH), PREFERS, NOW)


def test_preferred_roles_rank_agents_in_those_roles_first() -> None:
    """`prefer: [roles]` ranks agents in the roles first (its mask is the `role` check)."""
    decision = _general(5)
    assert decision.explanation.matching is not None
    assert (decision.explanation.matching.ranking_criteria[:3]) == (
        "prefers roles",
        "prefers language",
        "lowest_utilisation",
    )
    assert [
        (c.agent_id, dict(c.criteria)["prefers roles"], dict(c.criteria)["prefers language"])
        for c in decision.explanation.matching.ranking
    ] == [("z-senior", True, True), ("a-agent", False, False)]
    assert decision.agent_id == "z-senior"


@pytest.mark.parametrize("waited", [5, 10, 20, 60 * 24 * 365])
def test_a_missing_region_stays_missing_data_once_a_soft_territory_relaxed(waited: float) -> None:
    """No region: EXCEPTION missing_region before and after the territory step (R33a L2)."""
    decision = _general(waited, region=None)
    assert (decision.outcome, decision.reason_codes, decision.next_relaxation_at) == (
        Outcome.EXCEPTION,
        ("missing_region",),
        None,
    )
    assert decision.explanation.data_problems == (
        "the action requires territory coverage but case.region is missing",
    )


@pytest.mark.parametrize("minute", [0, 1, 59])
def test_the_reference_billing_case_without_a_region_is_an_exception_at_any_time(
    minute: int,
) -> None:
    """Reference ruleset: a billing case with no region is missing_region before and after 10:01."""
    case = make_case(
        intent=Intent.BILLING,
        patient_location=None,
        region=None,
        created_at=NOW - timedelta(minutes=29),
    )
    decision = decide(
        case, make_roster(AGENT_ENGLISH), reference_ruleset(), NOW + timedelta(minutes=minute)
    )
    assert (decision.outcome, decision.reason_codes) == (Outcome.EXCEPTION, ("missing_region",))


def test_preference_never_admits() -> None:
    """Preferred roles and language rank; an agent failing only them is still eligible."""
    decision = _general(5)
    assert decision.explanation.matching is not None
    assert decision.explanation.matching.eligible == 2


def test_hard_roles_are_named_in_the_never_relaxes_clause() -> None:
    """Roles a rule requires and does not mark soft appear among what never relaxes."""
    loaded = _ruleset("roles: [senior], soft: [territory], ladder: territory-later")
    case = make_case(intent=Intent.GENERAL, created_at=NOW - timedelta(minutes=5))
    decision = decide(case, make_roster(SENIOR_SPANISH), loaded, NOW)
    assert decision.explanation.relaxation is not None
    assert decision.explanation.relaxation.hard == ("roles",)
    assert (
        decision.explanation.relaxation.summary
    ) == "nothing relaxed after 5 min waiting; territory relaxes at 10:05; roles never relaxes"


def _select(req: Requirements, roster: Roster, **case: object) -> tuple[str | None, object]:
    picked = select_agent(
        make_case(**case), roster, req, PREFERS.compiled, NOW, detail=True, may_hold=True
    )
    return picked.chosen, picked


def test_declined_agents_are_never_chosen_and_are_counted() -> None:
    """An agent who declined the case fails `declined`, even when they would rank first."""
    best = make_agent("a-best")
    other = make_agent("b-other")
    decision = decide(
        make_case(declined_agents=frozenset({"a-best"})),
        make_roster(best, other),
        PREFERS,
        NOW,
    )
    matching = decision.explanation.matching
    assert matching is not None
    assert decision.agent_id == "b-other"
    assert matching.exclusion_counts == (("declined", 1),)
    assert [(v.agent_id, tuple(f.check for f in v.failures)) for v in matching.agents] == [
        ("a-best", ("declined",)),
        ("b-other", ()),
    ]
    assert "declined: not a-best (declined the case)" in matching.requirements


def test_a_case_every_agent_declined_queues() -> None:
    """When everyone declined, nobody is offered the case again: it queues."""
    decision = decide(
        make_case(declined_agents=frozenset({"a1"})), make_roster(make_agent("a1")), PREFERS, NOW
    )
    assert (
        decision.outcome,
        decision.agent_id,
        decision.reason_codes,
    ) == (Outcome.QUEUE, None, ("routed", "no_eligible_agent"))


def test_a_step_relaxing_a_requirement_not_marked_soft_does_not_relax_it() -> None:
    """Fail-safe: a ladder step relaxing territory, without territory in `soft`, changes nothing."""
    ladder = PREFERS.compiled.ladders["territory-later"]
    req = Requirements(ladder=ladder)  # built directly: the compiler would reject it
    texan = make_agent("tx")
    chosen, picked = _select(
        req,
        make_roster(texan, make_agent("ca", territories=frozenset({"US-CA"}))),
        region="US-CA",
        urgency=Urgency.ROUTINE,
        intent=Intent.GENERAL,
        created_at=NOW - timedelta(hours=5),
    )
    assert chosen == "ca"
    chosen, picked = _select(
        req,
        make_roster(texan),
        region="US-CA",
        intent=Intent.GENERAL,
        created_at=NOW - timedelta(hours=5),
    )
    assert chosen is None
    relaxation = picked.relaxation  # type: ignore[attr-defined]
    assert (relaxation.relaxed, relaxation.next_relaxation_at) == ((), None)
    assert relaxation.summary == "nothing relaxed after 300 min waiting; territory never relaxes"


def test_preferred_agents_lead_then_soft_preferences_then_the_ruleset_criteria() -> None:
    """Ranking order: preferred agent, prefers <name>, the ruleset's criteria, agent_id."""
    header = HEADER + "continuity:\n  window: 365d\n"
    rules = (
        "  - id: general\n"
        "    when: case.intent == 'general'\n"
        "    then: {route: {queue: general, reason: general, prefer: [language]}}\n"
        + CATCH_ALL_RULE
    )
    loaded = prepare_ruleset(compile_text(ruleset_with_rules(rules, header)))
    case = make_case(
        intent=Intent.GENERAL,
        preferred_language="es",
        preferred_agents=(PreferredAgent("a-agent", ContinuityReason.CARE_TEAM, None),),
    )
    decision = decide(case, make_roster(SENIOR_SPANISH, AGENT_ENGLISH), loaded, NOW)
    matching = decision.explanation.matching
    assert matching is not None
    assert matching.ranking_criteria == (
        "preferred agent",
        "prefers language",
        "lowest_utilisation",
        "highest_skill_level",
        "longest_idle",
        "agent_id",
    )
    assert [(c.agent_id, c.criteria[:2]) for c in matching.ranking] == [
        ("a-agent", (("preferred agent", 1), ("prefers language", False))),
        ("z-senior", (("preferred agent", None), ("prefers language", True))),
    ]
    assert decision.reason_codes == ("general", "continuity_of_care")


def test_a_territory_preference_without_a_case_region_prefers_nobody() -> None:
    """No region: the territory preference is left out of the ranking; language still ranks."""
    loaded = _ruleset("prefer: [territory, language]")
    case = make_case(intent=Intent.GENERAL, region=None, preferred_language="es")
    decision = decide(case, make_roster(SENIOR_SPANISH, AGENT_ENGLISH), loaded, NOW)
    assert decision.explanation.matching is not None
    assert decision.explanation.matching.ranking_criteria[:2] == (
        "prefers language",
        "lowest_utilisation",
    )
    assert decision.agent_id == "z-senior"


def test_a_consent_flag_is_named_among_what_never_relaxes() -> None:
    """A flagged case under a ruleset with a consent constraint: consent leads the hard list."""
    header = HEADER.replace("constraints:\n", "constraints:\n  consent: {flag: consent_missing}\n")
    rules = (
        "  - id: clinical\n"
        "    when: case.intent == 'clinical'\n"
        "    then: {route: {queue: clinical, reason: clinical, soft: [territory], "
        "ladder: territory-later}}\n" + CATCH_ALL_RULE
    )
    loaded = prepare_ruleset(compile_text(ruleset_with_rules(rules, header)))
    case = make_case(flags=frozenset({"consent_missing"}), created_at=NOW - timedelta(minutes=30))
    decision = decide(case, make_roster(AGENT_ENGLISH), loaded, NOW)
    assert decision.reason_codes == ("clinical", "no_eligible_agent", "consent_missing")
    assert decision.explanation.relaxation is not None
    assert decision.explanation.relaxation.summary == (
        "territory relaxed at 09:40 after 10 min waiting; consent, licence never relax"
    )


# Review R33a L4: declined ids were compared with roster ids case-sensitively, so a declined
# "A-BEST" did not exclude roster agent "a-best", who could be offered the case again.
@pytest.mark.parametrize("detail", [True, False])
def test_a_declined_id_in_another_letter_case_still_excludes_the_agent(detail: bool) -> None:
    """Declined "A-Best" excludes roster agent "a-best", per agent and by the index's masks."""
    decision = decide(
        make_case(declined_agents=frozenset({"A-Best"})),
        make_roster(make_agent("a-best"), make_agent("b-other")),
        PREFERS,
        NOW,
        agent_detail=detail,
    )
    matching = decision.explanation.matching
    assert matching is not None
    assert (decision.agent_id, matching.exclusion_counts) == ("b-other", (("declined", 1),))
    if detail:
        assert [v.agent_id for v in matching.agents if not v.eligible] == ["a-best"]
    else:
        assert matching.failed_masks == (("declined", "1"),)
    assert not any("matches no agent" in line for line in matching.requirements)


def test_a_preferred_agent_declined_in_another_letter_case_is_named_as_declined() -> None:
    """Continuity names the preferred agent "declined", whatever case the declined id is in."""
    ruleset = prepare_ruleset(
        compile_text(
            ruleset_with_rules(CATCH_ALL_RULE, MINIMAL_HEADER + "continuity: {window: 30d}\n")
        )
    )
    prefs = (PreferredAgent("a-best", ContinuityReason.CARE_TEAM),)
    decision = decide(
        make_case(declined_agents=frozenset({"A-BEST"}), preferred_agents=prefs),
        make_roster(make_agent("a-best"), make_agent("b-other")),
        ruleset,
        NOW,
    )
    continuity = decision.explanation.continuity
    assert continuity is not None
    assert decision.agent_id == "b-other"
    assert [(p.agent_id, p.status) for p in continuity.preferred] == [("a-best", "declined")]


def test_a_declined_id_matching_no_agent_is_named_in_the_explanation() -> None:
    """A declined id nobody on the roster has (a typo?) is named, once, beside the check."""
    decision = decide(
        make_case(declined_agents=frozenset({"a-bset", "B-OTHER", "zz-gone"})),
        make_roster(make_agent("a-best"), make_agent("b-other")),
        PREFERS,
        NOW,
    )
    matching = decision.explanation.matching
    assert matching is not None
    assert decision.agent_id == "a-best"
    at = matching.requirements.index("declined: not B-OTHER, a-bset, zz-gone (declined the case)")
    assert matching.requirements[at + 1 : at + 3] == (
        "declined id a-bset matches no agent on the roster",
        "declined id zz-gone matches no agent on the roster",
    )
