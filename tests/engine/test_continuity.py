"""Continuity of care: preferred agents rank first among the eligible, holds, and the words why."""

from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from caseroute.domain.case import ContinuityReason, Intent, PreferredAgent, Urgency
from caseroute.domain.decision import ContinuityTrace, Decision, Outcome
from caseroute.domain.errors import RequestError
from caseroute.domain.roster import Agent, AgentStatus, Capacity, Licence, Role, Roster
from caseroute.engine.case_rules import EngineKind, LoadedRuleset, prepare_ruleset
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

CONTINUITY = """\
continuity:
  window: 365d
  hold: {routine: 15m}
"""
RULES = """\
  - id: complaint
    when: case.intent == 'complaint'
    then: {escalate: {queue: complaints, level: 2, reason: complaint, assign: {roles: [senior]}}}
  - id: clinical
    when: case.intent == 'clinical'
    then: {route: {queue: clinical, reason: clinical}}
  - id: billing
    when: case.intent == 'billing'
    then: {route: {queue: billing, reason: billing, continuity: false}}
"""
LADDER = """\
ladders:
  lang:
    - step: any-language
      after: 3m
      prefer: [language]
      why: Speakers first, but do not wait long for one.
"""


def _loaded(header: str, rules: str) -> LoadedRuleset:
    return prepare_ruleset(compile_text(ruleset_with_rules(rules + CATCH_ALL_RULE, header)))


RULESET = _loaded(MINIMAL_HEADER + CONTINUITY, RULES)
FREE = make_agent("a-free", capacity=Capacity(5, 0))  # ranks first on utilisation
NURSE = make_agent("p-nurse", capacity=Capacity(5, 4))
BUSY = make_agent("p-busy", capacity=Capacity(5, 5))
CALIFORNIAN = make_agent("p-ca", licences=(Licence("RN", "US-CA", date(2030, 1, 1)),))


def _pref(agent_id: str, days_ago: float | None = 3) -> PreferredAgent:
    last = None if days_ago is None else NOW - timedelta(days=days_ago)
    return PreferredAgent(agent_id, ContinuityReason.PREVIOUS_CONTACT, last)


def _decide(
    *agents: Agent,
    prefs: tuple[PreferredAgent, ...],
    waited: float = 5,
    loaded: LoadedRuleset = RULESET,
    **case: object,
) -> Decision:
    values: dict[str, object] = {
        "created_at": NOW - timedelta(minutes=waited),
        "preferred_agents": prefs,
    }
    values.update(case)
    return decide(make_case(**values), make_roster(*agents), loaded, NOW)


def _trace(decision: Decision) -> ContinuityTrace:
    assert decision.explanation.continuity is not None
    return decision.explanation.continuity


def _preferred(decision: Decision) -> list[tuple[str, str, str]]:
    return [(p.agent_id, p.status, p.detail) for p in _trace(decision).preferred]


def _at(hh: int, mm: int) -> datetime:
    return NOW.replace(hour=hh, minute=mm)


def test_an_eligible_preferred_agent_is_chosen_over_a_better_ranked_other() -> None:
    """Continuity ranks first among the eligible: the busier preferred nurse gets the case."""
    decision = _decide(FREE, NURSE, prefs=(_pref("p-nurse"),))
    assert (decision.outcome, decision.agent_id, decision.reason_codes) == (
        Outcome.ASSIGN,
        "p-nurse",
        ("clinical", "continuity_of_care"),
    )
    trace = _trace(decision)
    assert (trace.outcome, trace.window_days, trace.hold_minutes, trace.hold_until) == (
        "assigned_preferred",
        365.0,
        15.0,
        _at(10, 10),
    )
    assert _preferred(decision) == [
        ("p-nurse", "chosen", "eligible and ranked first among the preferred")
    ]
    assert _trace(decision).preferred[0].reason == "previous_contact"
    assert _trace(decision).preferred[0].last_contact_at == NOW - timedelta(days=3)
    # The preference lapses when that contact leaves the 365-day window: time alone then
    # changes who ranks first, so that is when to ask again.
    assert decision.next_relaxation_at == NOW - timedelta(days=3) + timedelta(days=365)


def test_the_ranking_shows_the_preferred_agent_criterion_first() -> None:
    """`preferred agent` leads the criteria; each shows its place in the case's list or None."""
    matching = _decide(FREE, NURSE, prefs=(_pref("p-nurse"),)).explanation.matching
    assert matching is not None
    assert matching.ranking_criteria[:2] == ("preferred agent", "lowest_utilisation")
    assert [(c.agent_id, c.criteria[0]) for c in matching.ranking] == [
        ("p-nurse", ("preferred agent", 1)),
        ("a-free", ("preferred agent", None)),
    ]


@pytest.mark.parametrize("kind", list(EngineKind))
def test_two_preferred_agents_with_one_reason_show_the_place_that_ranked_them(
    kind: EngineKind,
) -> None:
    """Same reason, the busier listed first: each shows its place in the list, not a tie."""
    loaded = prepare_ruleset(
        compile_text(ruleset_with_rules(RULES + CATCH_ALL_RULE, MINIMAL_HEADER + CONTINUITY)),
        kind,
    )
    decision = _decide(FREE, NURSE, prefs=(_pref("p-nurse"), _pref("a-free")), loaded=loaded)
    matching = decision.explanation.matching
    assert matching is not None
    assert [(c.agent_id, c.criteria[0]) for c in matching.ranking] == [
        ("p-nurse", ("preferred agent", 1)),
        ("a-free", ("preferred agent", 2)),
    ]


def test_preferred_agents_rank_in_the_order_the_case_lists_them() -> None:
    """Of two eligible preferred agents the first listed wins; the other is ranked lower."""
    decision = _decide(FREE, NURSE, prefs=(_pref("p-nurse"), _pref("a-free")))
    assert decision.agent_id == "p-nurse"
    assert _preferred(decision) == [
        ("p-nurse", "chosen", "eligible and ranked first among the preferred"),
        ("a-free", "ranked_lower", "eligible, but another preferred agent ranked higher"),
    ]


def test_a_preferred_agent_failing_a_hard_requirement_is_never_chosen() -> None:
    """Preference never admits: an unlicensed preferred nurse is skipped, and the words say why."""
    decision = _decide(FREE, CALIFORNIAN, prefs=(_pref("p-ca"),))
    assert (decision.outcome, decision.agent_id, decision.reason_codes) == (
        Outcome.ASSIGN,
        "a-free",
        ("clinical",),
    )
    assert _trace(decision).outcome == "assigned_other"
    assert _preferred(decision) == [
        ("p-ca", "not_eligible", "not licensed in US-TX (RN US-CA (single-state))")
    ]


def test_a_busy_preferred_agent_holds_a_routine_case() -> None:
    """Routine case, preferred agent at capacity: QUEUE until anchor + 15 min, asked again then."""
    decision = _decide(FREE, BUSY, prefs=(_pref("p-busy"),))
    assert (decision.outcome, decision.agent_id, decision.queue, decision.reason_codes) == (
        Outcome.QUEUE,
        None,
        "clinical",
        ("clinical", "held_for_preferred_agent"),
    )
    assert (decision.held_for_preferred_until, decision.next_relaxation_at) == (
        _at(10, 10),
        _at(10, 10),
    )
    assert _trace(decision).outcome == "held_for_preferred"
    assert _preferred(decision) == [
        ("p-busy", "held_for", "at capacity 5/5; case held until 10:10")
    ]


def test_an_away_preferred_agent_holds_too() -> None:
    """Presence is transient like capacity: an away preferred agent also holds the case."""
    away = make_agent("p-away", status=AgentStatus.AWAY)
    decision = _decide(FREE, away, prefs=(_pref("p-away"),))
    assert decision.reason_codes == ("clinical", "held_for_preferred_agent")
    assert _preferred(decision) == [("p-away", "held_for", "status away; case held until 10:10")]


def test_once_the_hold_expires_the_best_other_agent_is_chosen() -> None:
    """Waited 20 min with a 15 min hold: the best other agent, and the words give the expiry."""
    decision = _decide(FREE, BUSY, prefs=(_pref("p-busy"),), waited=20)
    assert (decision.outcome, decision.agent_id, decision.reason_codes) == (
        Outcome.ASSIGN,
        "a-free",
        ("clinical",),
    )
    assert (decision.held_for_preferred_until, decision.next_relaxation_at) == (None, None)
    assert _trace(decision).outcome == "assigned_other"
    assert _preferred(decision) == [
        ("p-busy", "unavailable", "at capacity 5/5; hold expired 09:55")
    ]


def test_the_hold_ends_exactly_at_anchor_plus_hold() -> None:
    """At the hold's end the case is no longer held (the hold is half-open)."""
    decision = _decide(FREE, BUSY, prefs=(_pref("p-busy"),), waited=15)
    assert decision.agent_id == "a-free"


def test_the_hold_counts_from_waiting_since() -> None:
    """An old case re-queued 2 min ago is held until waiting_since + 15 min."""
    decision = _decide(FREE, BUSY, prefs=(_pref("p-busy"),), waited=600, waiting_since=_at(9, 58))
    assert decision.held_for_preferred_until == _at(10, 13)


def test_urgent_cases_are_never_held() -> None:
    """No hold for urgent cases: the best other agent takes it at once."""
    decision = _decide(FREE, BUSY, prefs=(_pref("p-busy"),), urgency=Urgency.URGENT)
    assert (decision.agent_id, decision.held_for_preferred_until) == ("a-free", None)
    assert _trace(decision).hold_until is None
    assert _preferred(decision) == [
        ("p-busy", "unavailable", "at capacity 5/5; urgent cases are not held")
    ]


def test_escalations_are_never_held() -> None:
    """An escalation assigns the best other senior even within a routine hold."""
    free_senior = make_agent("s-free", role=Role.SENIOR)
    busy_senior = make_agent("s-busy", role=Role.SENIOR, capacity=Capacity(3, 3))
    decision = _decide(free_senior, busy_senior, prefs=(_pref("s-busy"),), intent=Intent.COMPLAINT)
    assert (decision.outcome, decision.agent_id, decision.held_for_preferred_until) == (
        Outcome.ESCALATE,
        "s-free",
        None,
    )
    assert _preferred(decision) == [
        ("s-busy", "unavailable", "at capacity 3/3; escalations are never held")
    ]


def test_an_escalation_still_prefers_an_eligible_preferred_senior() -> None:
    """Escalations use continuity for ranking: the preferred senior gets it."""
    busier = make_agent("s-pref", role=Role.SENIOR, capacity=Capacity(3, 2))
    decision = _decide(
        make_agent("s-free", role=Role.SENIOR),
        busier,
        prefs=(_pref("s-pref"),),
        intent=Intent.COMPLAINT,
    )
    assert (decision.agent_id, decision.reason_codes) == (
        "s-pref",
        ("complaint", "continuity_of_care"),
    )


def test_a_contact_outside_the_window_is_ignored_with_the_reason() -> None:
    """A last contact older than the window does not count, and the trace says so."""
    decision = _decide(FREE, NURSE, prefs=(_pref("p-nurse", days_ago=400),))
    assert decision.agent_id == "a-free"
    assert _preferred(decision) == [
        (
            "p-nurse",
            "outside_window",
            "last contact 2025-10-17 is outside the 365-day continuity window",
        )
    ]


def test_a_preferred_agent_without_a_last_contact_counts() -> None:
    """A named clinician with no last-contact time is within any window."""
    decision = _decide(FREE, NURSE, prefs=(_pref("p-nurse", days_ago=None),))
    assert decision.agent_id == "p-nurse"


def test_preferred_agents_off_the_roster_or_who_declined_are_named() -> None:
    """Every preferred agent gets a status, even those that cannot be considered at all."""
    decision = _decide(
        FREE,
        NURSE,
        prefs=(_pref("ghost"), _pref("p-nurse")),
        declined_agents=frozenset({"p-nurse"}),
    )
    assert (decision.agent_id, _trace(decision).outcome) == ("a-free", "assigned_other")
    assert _preferred(decision) == [
        ("ghost", "not_on_roster", "not on the roster snapshot"),
        ("p-nurse", "declined", "declined this case"),
    ]


def test_nobody_eligible_and_nobody_to_wait_for_queues() -> None:
    """No eligible agent and no unavailable preferred one: no_eligible_agent, none_eligible."""
    decision = _decide(CALIFORNIAN, prefs=(_pref("p-ca"),))
    assert (decision.outcome, decision.reason_codes) == (
        Outcome.QUEUE,
        ("clinical", "no_eligible_agent"),
    )
    assert _trace(decision).outcome == "none_eligible"


def test_a_route_with_continuity_off_ignores_preferred_agents() -> None:
    """`continuity: false` on a route: no trace and the ordinary ranking."""
    decision = _decide(FREE, NURSE, prefs=(_pref("p-nurse"),), intent=Intent.BILLING)
    assert (decision.agent_id, decision.explanation.continuity) == ("a-free", None)


def test_next_relaxation_at_is_the_earlier_of_hold_end_and_next_step() -> None:
    """Held until 10:13 with a step due at 10:01: ask at 10:01; once it passed, at the hold end."""
    loaded = _loaded(
        MINIMAL_HEADER + CONTINUITY + LADDER,
        RULES.replace("reason: clinical}", "reason: clinical, soft: [language], ladder: lang}"),
    )
    busy = make_agent("p-busy", capacity=Capacity(5, 5), languages=frozenset({"es"}))
    early = _decide(
        FREE, busy, prefs=(_pref("p-busy"),), waited=2, loaded=loaded, preferred_language="es"
    )
    assert (early.held_for_preferred_until, early.next_relaxation_at) == (
        _at(10, 13),
        _at(10, 1),
    )
    late = _decide(
        FREE, busy, prefs=(_pref("p-busy"),), waited=4, loaded=loaded, preferred_language="es"
    )
    assert (late.held_for_preferred_until, late.next_relaxation_at) == (_at(10, 11), _at(10, 11))


def test_the_hold_end_is_utc_whatever_offset_the_case_was_stamped_with() -> None:
    """A +02:00 created_at holds until the same UTC instant, and the words say 10:10."""
    local = (NOW - timedelta(minutes=5)).astimezone(timezone(timedelta(hours=2)))
    decision = _decide(FREE, BUSY, prefs=(_pref("p-busy"),), created_at=local)
    assert decision.held_for_preferred_until is not None
    assert decision.held_for_preferred_until.utcoffset() == timedelta(0)
    assert _preferred(decision) == [
        ("p-busy", "held_for", "at capacity 5/5; case held until 10:10")
    ]


def test_a_hold_past_the_calendar_end_is_skipped_and_the_words_say_why() -> None:
    """30 s before the calendar ends a routine hold cannot end: no hold, and the real reason.

    Review R34a F8: the detail said "routine cases are not held", though the ruleset holds
    them for 15 minutes; the hold was skipped because its end is past the last instant.
    """
    end = datetime(9999, 12, 31, 23, 59, 29, tzinfo=UTC)
    licence = (Licence("RN", "US-TX", date(9999, 12, 31)),)
    free = make_agent("a-free", capacity=Capacity(5, 0), licences=licence)
    away = make_agent("p-away", status=AgentStatus.AWAY, licences=licence)
    case = make_case(
        created_at=end - timedelta(minutes=5),
        preferred_agents=(
            PreferredAgent("p-away", ContinuityReason.PREVIOUS_CONTACT, end - timedelta(days=3)),
        ),
    )
    roster = Roster("snap-T1", end - timedelta(minutes=1), (free, away))
    decision = decide(case, roster, RULESET, end)
    assert (decision.outcome, decision.agent_id, decision.held_for_preferred_until) == (
        Outcome.ASSIGN,
        "a-free",
        None,
    )
    assert (_trace(decision).hold_minutes, _trace(decision).hold_until) == (15.0, None)
    assert _preferred(decision) == [
        (
            "p-away",
            "unavailable",
            (
                "status away; the hold would end after the end of 9999-12-31 UTC, the last day "
                "a decision can carry"
            ),
        )
    ]


def test_a_continuity_ruleset_refuses_an_anchor_after_now() -> None:
    """Holds count waiting time too: waiting_since after now is a request error naming it."""
    case = make_case(waiting_since=NOW + timedelta(minutes=1))
    with pytest.raises(RequestError) as caught:
        decide(case, make_roster(FREE), RULESET, NOW)
    assert [v.field for v in caught.value.violations] == ["case.waiting_since"]


# Review R33a L3(b): a last contact after `now` counted as inside the window, and kept the
# preference alive a window's length past the real one, on data that cannot be true.
def test_a_last_contact_after_now_is_an_exception_under_continuity() -> None:
    """last_contact_at a minute after now -> EXCEPTION naming the preferred agent's field."""
    decision = _decide(FREE, NURSE, prefs=(_pref("a-free"), _pref("p-nurse", -1 / (24 * 60))))
    assert (decision.outcome, decision.agent_id, decision.reason_codes) == (
        Outcome.EXCEPTION,
        None,
        ("invalid_case_data", "last_contact_after_now"),
    )
    assert decision.explanation.data_problems == (
        (
            "case.preferred_agents[1].last_contact_at: 2026-11-21T10:01:00Z is after now "
            "(2026-11-21T10:00:00Z); ruleset test@1 counts the continuity window from it"
        ),
    )


def test_a_last_contact_exactly_now_is_accepted() -> None:
    """A contact at the decision instant itself is a true last contact."""
    decision = _decide(FREE, NURSE, prefs=(_pref("p-nurse", 0),))
    assert (decision.outcome, decision.agent_id) == (Outcome.ASSIGN, "p-nurse")


def test_a_last_contact_after_now_is_ignored_without_continuity() -> None:
    """A ruleset without continuity never reads preferred agents: decided as before."""
    plain = _loaded(MINIMAL_HEADER, RULES)
    decision = _decide(FREE, NURSE, prefs=(_pref("p-nurse", -1),), loaded=plain)
    assert (decision.outcome, decision.agent_id) == (Outcome.ASSIGN, "a-free")


def test_a_last_contact_after_now_is_an_exception_even_where_a_rule_opts_out() -> None:
    """The data is judged for the ruleset, not the rule: a billing route without continuity."""
    decision = _decide(FREE, prefs=(_pref("a-free", -1),), intent=Intent.BILLING)
    assert decision.reason_codes == ("invalid_case_data", "last_contact_after_now")
