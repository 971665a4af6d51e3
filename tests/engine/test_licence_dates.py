"""Licence expiry and dated compact membership in holds and next_relaxation_at, both engines."""

from datetime import UTC, date, datetime, timedelta

import pytest

from caseroute.domain.case import ContinuityReason, Intent, PreferredAgent
from caseroute.domain.decision import Decision, Outcome
from caseroute.domain.roster import Agent, Capacity, Licence
from caseroute.engine.case_rules import EngineKind, prepare_ruleset
from caseroute.engine.decide import decide
from caseroute.engine.licence_dates import licence_changes_at, licence_gain_instants
from caseroute.engine.matching import build_need
from caseroute.rules.model import RouteAction
from caseroute.testing import (
    CATCH_ALL_RULE,
    MINIMAL_HEADER,
    compile_text,
    make_agent,
    make_case,
    make_roster,
    ruleset_with_rules,
)

HEADER = (
    MINIMAL_HEADER
    + """\
compacts:
  - name: NLC
    licence_types: [RN]
    members:
      - {jurisdiction: US-TX, since: 2018-01-19}
      - {jurisdiction: US-PA, since: 2026-11-22}
      - {jurisdiction: US-NJ, since: 2018-01-19, until: 2026-11-20}
ladders:
  lang:
    - step: any-language
      after: 30m
      relax: [language]
      why: Anyone licensed after half an hour.
continuity:
  window: 365d
  hold: {routine: 15m}
"""
)
RULES = """\
  - id: clinical
    when: case.intent == 'clinical'
    then: {route: {queue: clinical, reason: clinical, soft: [language], ladder: lang}}
"""
TEXT = ruleset_with_rules(RULES + CATCH_ALL_RULE, HEADER)
LOADED = {kind: prepare_ruleset(compile_text(TEXT), kind) for kind in EngineKind}
OTHER = make_agent("other")
# Texas's clocks run from UTC-7 (El Paso, summer) to UTC-5 (Houston, summer): a Texas date
# ends for every part of it at 05:00 UTC the next day, and begins for every part at 07:00 UTC.
LAST_DAY_ENDS = datetime(2026, 11, 21, 5, 0, tzinfo=UTC)
PA_JOINS = datetime(2026, 11, 22, 7, 0, tzinfo=UTC)


def _pref(agent_id: str, now: datetime) -> PreferredAgent:
    return PreferredAgent(agent_id, ContinuityReason.PREVIOUS_CONTACT, now - timedelta(days=3))


def _decide(
    kind: EngineKind, now: datetime, *agents: Agent, created: datetime, **case: object
) -> Decision:
    built = make_case(created_at=created, **case)
    return decide(built, make_roster(*agents), LOADED[kind], now)


@pytest.mark.parametrize("kind", list(EngineKind))
def test_a_hold_ends_when_the_preferred_agents_licence_expires(kind: EngineKind) -> None:
    """Held 04:50 + 15 min for a nurse whose licence ends at 05:00: the hold ends at 05:00."""
    busy = make_agent(
        "pref", capacity=Capacity(5, 5), licences=(Licence("RN", "US-TX", date(2026, 11, 20)),)
    )
    now = LAST_DAY_ENDS - timedelta(minutes=5)
    created = now - timedelta(minutes=5)
    prefs = (_pref("pref", now),)
    decision = _decide(kind, now, busy, OTHER, created=created, preferred_agents=prefs)
    assert (decision.outcome, decision.reason_codes) == (
        Outcome.QUEUE,
        ("clinical", "held_for_preferred_agent"),
    )
    assert (decision.held_for_preferred_until, decision.next_relaxation_at) == (
        LAST_DAY_ENDS,
        LAST_DAY_ENDS,
    )
    continuity = decision.explanation.continuity
    assert continuity is not None
    assert continuity.hold_until == created + timedelta(minutes=15)  # the ruleset's hold
    assert continuity.preferred[0].detail == (
        "at capacity 5/5; case held until 05:00, not 05:05: the last agent held for is not "
        "licensed where the patient is from then (RN US-TX expired 2026-11-20)"
    )
    # The instant named is the instant the decision changes: the best other nurse.
    later = _decide(kind, LAST_DAY_ENDS, busy, OTHER, created=created, preferred_agents=prefs)
    assert (later.outcome, later.agent_id) == (Outcome.ASSIGN, "other")


@pytest.mark.parametrize("kind", list(EngineKind))
def test_a_hold_ends_when_the_issuing_state_leaves_the_compact(kind: EngineKind) -> None:
    """A New Jersey multistate nurse for a Texas patient; NJ leaves the NLC after 20 November.

    New Jersey's 20 November ends at 04:00 UTC (UTC-4 in summer is its greatest offset), before
    the 04:05 the ruleset's hold would run to.
    """
    nj = Licence("RN", "US-NJ", date(2030, 1, 1), multistate=True)
    busy = make_agent("pref", capacity=Capacity(5, 5), licences=(nj,))
    leaves = datetime(2026, 11, 21, 4, 0, tzinfo=UTC)
    now = leaves - timedelta(minutes=5)
    created = now - timedelta(minutes=5)
    prefs = (_pref("pref", now),)
    decision = _decide(kind, now, busy, OTHER, created=created, preferred_agents=prefs)
    assert (decision.outcome, decision.held_for_preferred_until, decision.next_relaxation_at) == (
        Outcome.QUEUE,
        leaves,
        leaves,
    )
    later = _decide(kind, leaves, busy, OTHER, created=created, preferred_agents=prefs)
    assert (later.outcome, later.agent_id) == (Outcome.ASSIGN, "other")


@pytest.mark.parametrize("kind", list(EngineKind))
def test_a_queue_names_the_instant_a_compact_membership_admits_a_nurse(kind: EngineKind) -> None:
    """Nobody licensed in Texas but a Pennsylvania multistate nurse: ask again when PA joins.

    Never early: an hour before, she is still not licensed there.
    """
    pa = make_agent("pa", licences=(Licence("RN", "US-PA", date(2030, 1, 1), multistate=True),))
    now = datetime(2026, 11, 21, 10, 0, tzinfo=UTC)
    decision = _decide(kind, now, pa, created=now)
    assert (decision.outcome, decision.next_relaxation_at) == (Outcome.QUEUE, PA_JOINS)
    matching = decision.explanation.matching
    assert matching is not None
    assert matching.requirements[1:3] == (
        "licence: RN valid in US-TX on 2026-11-21",
        (
            "licence dates: pa is licensed in US-TX from 2026-11-22 07:00 (a compact "
            "membership starts)"
        ),
    )
    hour_before = _decide(kind, PA_JOINS - timedelta(hours=1), pa, created=now)
    assert (hour_before.outcome, hour_before.next_relaxation_at) == (Outcome.QUEUE, PA_JOINS)
    at = _decide(kind, PA_JOINS, pa, created=now)
    assert (at.outcome, at.agent_id) == (Outcome.ASSIGN, "pa")


def test_a_membership_that_admits_nobody_eligible_sets_no_next_relaxation() -> None:
    """The PA nurse is at capacity: PA joining changes nothing, so nothing to ask again for."""
    pa = make_agent(
        "pa",
        capacity=Capacity(5, 5),
        licences=(Licence("RN", "US-PA", date(2030, 1, 1), multistate=True),),
    )
    now = datetime(2026, 11, 21, 10, 0, tzinfo=UTC)
    decision = _decide(EngineKind.PYTHON, now, pa, created=now)
    assert (decision.outcome, decision.next_relaxation_at) == (Outcome.QUEUE, None)


def test_a_membership_that_would_start_a_hold_is_named() -> None:
    """A busy preferred PA nurse becomes one to hold for at 07:00, within the hold: ask then."""
    pa = make_agent(
        "pa",
        capacity=Capacity(5, 5),
        licences=(Licence("RN", "US-PA", date(2030, 1, 1), multistate=True),),
    )
    now = PA_JOINS - timedelta(minutes=5)
    created = now - timedelta(minutes=5)
    prefs = (_pref("pa", now),)
    decision = _decide(EngineKind.PYTHON, now, pa, created=created, preferred_agents=prefs)
    assert (decision.outcome, decision.next_relaxation_at) == (Outcome.QUEUE, PA_JOINS)
    later = _decide(EngineKind.PYTHON, PA_JOINS, pa, created=created, preferred_agents=prefs)
    assert later.reason_codes == ("clinical", "held_for_preferred_agent")


def test_a_step_after_the_only_licence_lapses_is_not_a_next_step() -> None:
    """A Spanish case, one English nurse whose licence ends at 05:00, language relaxing at 05:10.

    After the step she would be eligible but for her licence: the step changes nothing, so it
    sets no next relaxation (it was promised, and the case then queued for nobody).
    """
    nurse = make_agent("en", licences=(Licence("RN", "US-TX", date(2026, 11, 20)),))
    now = LAST_DAY_ENDS - timedelta(minutes=20)
    decision = _decide(EngineKind.PYTHON, now, nurse, created=now, preferred_language="es")
    assert (decision.outcome, decision.next_relaxation_at) == (Outcome.QUEUE, None)
    relaxation = decision.explanation.relaxation
    assert relaxation is not None
    assert relaxation.summary == (
        "nothing relaxed after 0 min waiting; no next step: language at 05:10 makes no agent on "
        "this roster eligible; licence, territory never relax"
    )


def test_licence_changes_at_without_a_dated_change() -> None:
    """No licence required, none of an accepted type, or one that never expires: no instant."""
    now = datetime(2026, 11, 21, 10, 0, tzinfo=UTC)
    compiled = LOADED[EngineKind.PYTHON].compiled
    requirements = {
        rule.rule_id: rule.action.requirements
        for rule in compiled.rules
        if isinstance(rule.action, RouteAction)
    }
    unlicensed = build_need(make_case(intent=Intent.BILLING), requirements["rest"], compiled, now)
    need = build_need(make_case(), requirements["clinical"], compiled, now)
    lpn = make_agent("lpn", licences=(Licence("LPN", "US-TX", date(2026, 11, 21)),))
    forever = make_agent("f", licences=(Licence("RN", "US-TX", date.max),))
    assert licence_changes_at(unlicensed, lpn, now) is None
    assert licence_gain_instants(unlicensed, now) == []
    assert licence_changes_at(need, lpn, now) is None
    assert licence_changes_at(need, forever, now) is None


def test_instants_past_the_calendar_s_ends_never_come() -> None:
    """A membership dated year 1 has no midnight before it at a positive offset: skipped."""
    from caseroute.engine.licence_dates import _midnights  # the arithmetic, alone

    first = date(1, 1, 1)
    after = datetime(1, 1, 1, tzinfo=UTC)
    # GB's greatest offset is +1 h: its midnight would fall before year 1 (no such instant),
    # and at +0 it is not after `after`. US-TX's are negative: later in UTC, both kept.
    assert _midnights([first], ["GB"], after) == []
    assert _midnights([first], ["US-TX"], after) == [
        datetime(1, 1, 1, 5, tzinfo=UTC),
        datetime(1, 1, 1, 7, tzinfo=UTC),
    ]


def test_a_need_taken_on_its_own_day_is_the_same_need() -> None:
    """need_at of an instant on the same local days is the need itself; no licence: no check."""
    from caseroute.engine.matching import licence_failure, need_at

    now = datetime(2026, 11, 21, 10, 0, tzinfo=UTC)
    compiled = LOADED[EngineKind.PYTHON].compiled
    requirements = {
        rule.rule_id: rule.action.requirements
        for rule in compiled.rules
        if isinstance(rule.action, RouteAction)
    }
    need = build_need(make_case(), requirements["clinical"], compiled, now)
    assert need_at(need, now + timedelta(minutes=1)) is need
    unlicensed = build_need(make_case(intent=Intent.BILLING), requirements["rest"], compiled, now)
    assert licence_failure(unlicensed, make_agent("x")) is None
