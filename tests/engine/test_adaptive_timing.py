"""When time alone changes an adaptive decision: applicable steps, lapsing preferences, dates."""

from datetime import UTC, datetime, timedelta

from caseroute.domain.case import ContinuityReason, Intent, PreferredAgent
from caseroute.domain.decision import Decision, Outcome
from caseroute.domain.roster import Capacity, Role
from caseroute.engine.case_rules import LoadedRuleset, prepare_ruleset
from caseroute.engine.decide import decide
from caseroute.testing import (
    CATCH_ALL_RULE,
    MINIMAL_HEADER,
    NOW,
    compile_text,
    make_agent,
    make_case,
    make_roster,
    ruleset_with_rules,
)

HEADER = (
    MINIMAL_HEADER
    + """\
ladders:
  lang:
    - step: any-language
      after: 10m
      prefer: [language]
      why: Speakers first, but do not wait long for one.
    - step: any-territory
      after: 30m
      relax: [territory]
      why: After half an hour anyone licensed may take it.
continuity:
  window: 30d
  hold: {routine: 15m}
"""
)
RULES = """\
  - id: clinical
    when: case.intent == 'clinical'
    then:
      route: {queue: clinical, reason: clinical, soft: [language, territory], ladder: lang}
  - id: senior
    when: case.intent == 'complaint'
    then: {route: {queue: complaints, reason: complaint, roles: [senior], territory: false}}
"""
LOADED: LoadedRuleset = prepare_ruleset(
    compile_text(ruleset_with_rules(RULES + CATCH_ALL_RULE, HEADER))
)
TEXAN = make_agent("tx", languages=frozenset({"en"}))


def _decide(*agents: object, waited: float = 5, **case: object) -> Decision:
    values: dict[str, object] = {"created_at": NOW - timedelta(minutes=waited)}
    values.update(case)
    return decide(make_case(**values), make_roster(*agents), LOADED, NOW)  # type: ignore[arg-type]


def _pref(agent_id: str, days_ago: float) -> PreferredAgent:
    return PreferredAgent(
        agent_id, ContinuityReason.PREVIOUS_CONTACT, NOW - timedelta(days=days_ago)
    )


def test_a_language_step_does_not_set_the_next_relaxation_for_a_case_without_a_language() -> None:
    """No preferred language: the 10-minute language step changes nothing, so ask again at 30."""
    decision = _decide(make_agent("ca", territories=frozenset({"US-CA"})), waited=5)
    assert decision.outcome is Outcome.QUEUE
    assert decision.next_relaxation_at == NOW + timedelta(minutes=25)
    relaxation = decision.explanation.relaxation
    assert relaxation is not None
    assert relaxation.summary == (
        "nothing relaxed after 5 min waiting; territory relaxes at 10:25; licence never relaxes"
    )


def test_after_the_language_step_a_case_without_a_language_has_relaxed_nothing() -> None:
    """Twelve minutes waited, no preferred language: nothing is reported relaxed."""
    decision = _decide(TEXAN, waited=12)
    assert (decision.outcome, decision.agent_id, decision.reason_codes) == (
        Outcome.ASSIGN,
        "tx",
        ("clinical",),
    )
    relaxation = decision.explanation.relaxation
    assert relaxation is not None
    assert (relaxation.relaxed, relaxation.preferences) == ((), ())


def test_a_case_with_a_language_still_relaxes_it_and_says_so() -> None:
    """Preferred language es, 12 minutes: language relaxed and reported, speakers rank first."""
    decision = _decide(TEXAN, waited=12, preferred_language="es")
    assert (decision.outcome, decision.reason_codes) == (
        Outcome.ASSIGN,
        ("clinical", "relaxed_language"),
    )
    assert decision.next_relaxation_at == NOW + timedelta(minutes=18)


def test_steps_on_an_earlier_day_are_dated_in_the_summary() -> None:
    """A case that waited two days words its steps with their date, not just a clock time."""
    decision = _decide(TEXAN, waited=2 * 24 * 60, preferred_language="es")
    relaxation = decision.explanation.relaxation
    assert relaxation is not None
    assert relaxation.summary == (
        "language relaxed at 2026-11-19 10:10 after 10 min waiting; territory relaxed at "
        "2026-11-19 10:30 after 30 min waiting; licence never relaxes"
    )


def test_a_chosen_preferred_agent_lapses_when_its_contact_leaves_the_window() -> None:
    """All steps passed; chosen for continuity, 20 days into a 30-day window: in 10 days."""
    other = make_agent("other", capacity=Capacity(5, 0))
    decision = _decide(TEXAN, other, waited=40, preferred_agents=(_pref("tx", 20),))
    assert (decision.agent_id, decision.reason_codes) == (
        "tx",
        ("clinical", "continuity_of_care", "relaxed_territory"),
    )
    assert decision.next_relaxation_at == NOW + timedelta(days=10)
    later = decide(
        make_case(created_at=NOW - timedelta(minutes=40), preferred_agents=(_pref("tx", 20),)),
        make_roster(TEXAN, other),
        LOADED,
        NOW + timedelta(days=10),
    )
    assert later.agent_id == "other"
    assert later.explanation.continuity is not None
    assert later.explanation.continuity.preferred[0].status == "outside_window"


def test_a_preferred_agent_not_chosen_never_sets_a_lapse() -> None:
    """Hold over, the busy preferred agent's lapse changes nothing: no next_relaxation_at."""
    busy = make_agent("busy", capacity=Capacity(5, 5))
    decision = _decide(TEXAN, busy, waited=40, preferred_agents=(_pref("busy", 20),))
    assert (decision.agent_id, decision.next_relaxation_at) == ("tx", None)


def test_a_hold_ends_early_when_the_only_preferred_agent_lapses() -> None:
    """Held for a busy agent whose contact leaves the window in 2 min: the hold ends then."""
    busy = make_agent("busy", capacity=Capacity(5, 5))
    prefs = (_pref("busy", 30 - 2 / (24 * 60)),)
    decision = _decide(TEXAN, busy, waited=5, preferred_agents=prefs)
    assert decision.outcome is Outcome.QUEUE
    # Not the ruleset's 10:10: from 10:02 the case goes to the best other agent.
    assert decision.held_for_preferred_until == NOW + timedelta(minutes=2)
    assert decision.next_relaxation_at == NOW + timedelta(minutes=2)
    assert decision.explanation.continuity is not None
    assert decision.explanation.continuity.preferred[0].detail == (
        "at capacity 5/5; case held until 10:02, not 10:10: the last agent held for leaves the "
        "continuity window then"
    )


def test_role_and_skill_failures_of_a_preferred_agent_are_worded() -> None:
    """A preferred agent who is not a senior is named with its role, not the raw check text."""
    decision = _decide(TEXAN, intent=Intent.COMPLAINT, preferred_agents=(_pref("tx", 1),))
    assert decision.explanation.continuity is not None
    detail = decision.explanation.continuity.preferred[0].detail
    assert detail == f"role {Role.AGENT.value}, not senior"


def test_instants_at_the_calendar_ends_never_crash_a_decision() -> None:
    """Year 9999: steps, holds and lapses past the end never come; year 1: all contacts count."""
    end = datetime(9999, 12, 31, 23, 55, tzinfo=UTC)
    start = datetime(1, 1, 1, 0, 5, tzinfo=UTC)
    busy = make_agent("busy", capacity=Capacity(5, 5))
    for now in (end, start):
        prefs = (PreferredAgent("busy", ContinuityReason.PREVIOUS_CONTACT, now),)
        case = make_case(created_at=now, preferred_agents=prefs)
        decision = decide(case, make_roster(busy), LOADED, now)
        relaxation = decision.explanation.relaxation
        assert relaxation is not None
        statuses = [s.status.value for s in relaxation.steps]
        if now is end:  # +10 min and the 15-min hold fall past 9999: never, and no hold
            assert (statuses, decision.next_relaxation_at) == (["never", "never"], None)
            assert decision.held_for_preferred_until is None
        else:
            assert statuses == ["pending", "pending"]
            assert decision.held_for_preferred_until == now + timedelta(minutes=15)


def test_a_step_that_would_start_a_hold_for_a_preferred_agent_is_still_reported() -> None:
    """Nobody eligible, but the language step makes a full preferred agent one to hold for."""
    full = make_agent("full", capacity=Capacity(5, 5))
    decision = _decide(full, preferred_language="es", preferred_agents=(_pref("full", 1),))
    assert (decision.outcome, decision.next_relaxation_at) == (
        Outcome.QUEUE,
        NOW + timedelta(minutes=5),
    )
    later = decide(
        make_case(
            created_at=NOW - timedelta(minutes=5),
            preferred_language="es",
            preferred_agents=(_pref("full", 1),),
        ),
        make_roster(full),
        LOADED,
        NOW + timedelta(minutes=5),
    )
    assert later.reason_codes == ("clinical", "held_for_preferred_agent")


def test_a_queue_nobody_on_the_roster_can_take_sets_no_next_relaxation() -> None:
    """Every agent at capacity: no pending step can make one eligible, so nothing to ask for."""
    full = make_agent("full", capacity=Capacity(5, 5))
    decision = _decide(full, preferred_language="es")
    assert (decision.outcome, decision.next_relaxation_at) == (Outcome.QUEUE, None)
