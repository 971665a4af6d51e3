"""Relaxation ladders at decide time: step statuses and times, anchors, counts and summaries."""

from datetime import date, datetime, timedelta, timezone

import pytest

from caseroute.domain.case import Intent, RequiredSkill, Urgency
from caseroute.domain.decision import Decision, Outcome, RelaxationTrace, StepStatus
from caseroute.domain.errors import RequestError
from caseroute.domain.roster import Licence, Roster
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
  lang-then-territory:
    - step: any-language
      after: {routine: 10m, urgent: 10m, critical: 0m}
      prefer: [language]
      why: A nurse with an interpreter beats a longer wait.
    - step: any-territory
      after: {routine: 30m, urgent: 30m}
      relax: [territory]
      why: After half an hour anyone licensed may take it.
  together:
    - step: anyone
      after: 10m
      relax: [territory]
      prefer: [language]
      why: Both at once.
"""
)


def _ruleset(route: str) -> LoadedRuleset:
    """Clinical cases take ``route`` (inside a flow mapping); everything else the catch-all."""
    rules = (
        "  - id: clinical\n"
        "    when: case.intent == 'clinical'\n"
        f"    then: {{route: {{queue: clinical, reason: clinical, {route}}}}}\n" + CATCH_ALL_RULE
    )
    return prepare_ruleset(compile_text(ruleset_with_rules(rules, HEADER)))


LADDER = _ruleset("soft: [language, territory], ladder: lang-then-territory")
TOGETHER = _ruleset("soft: [language, territory], ladder: together")
# Texas RNs; only en-tx covers the case's region, only es-ca speaks its language.
ROSTER = make_roster(
    make_agent("en-tx"),
    make_agent("es-ca", languages=frozenset({"es"}), territories=frozenset({"US-CA"})),
    make_agent("fr-ca", languages=frozenset({"fr"}), territories=frozenset({"US-CA"})),
)


def _at(hh: int, mm: int) -> datetime:
    return NOW.replace(hour=hh, minute=mm)


def _decide(
    waited: float,
    loaded: LoadedRuleset = LADDER,
    roster: Roster = ROSTER,
    now: datetime = NOW,
    **case: object,
) -> Decision:
    values: dict[str, object] = {
        "preferred_language": "es",
        "created_at": NOW - timedelta(minutes=waited),
    }
    values.update(case)
    return decide(make_case(**values), roster, loaded, now)


def _trace(decision: Decision) -> RelaxationTrace:
    assert decision.explanation.relaxation is not None
    return decision.explanation.relaxation


def _steps(decision: Decision) -> list[tuple[str, StepStatus, datetime | None, int]]:
    return [(s.name, s.status, s.at, s.eligible) for s in _trace(decision).steps]


def test_before_any_step_both_are_pending_with_absolute_times() -> None:
    """At 5 min both steps are pending, timed from created_at; nobody meets the rule as written."""
    decision = _decide(5)
    assert [
        ("any-language", StepStatus.PENDING, _at(10, 5), 1),
        ("any-territory", StepStatus.PENDING, _at(10, 25), 3),
    ] == _steps(decision)
    assert (Outcome.QUEUE, ("clinical", "no_eligible_agent"), _at(10, 5)) == (
        decision.outcome,
        decision.reason_codes,
        decision.next_relaxation_at,
    )
    trace = _trace(decision)
    assert ("created_at", _at(9, 55), 5.0, 0) == (
        trace.anchor,
        trace.anchor_at,
        trace.waiting_minutes,
        trace.eligible_as_written,
    )
    assert (
        trace.soft,
        trace.relaxed,
        trace.preferences,
        trace.hard,
    ) == (("language", "territory"), (), (), ("licence",))
    assert (
        trace.summary
    ) == "nothing relaxed after 5 min waiting; language relaxes at 10:05; licence never relaxes"


def test_the_latest_step_in_force_is_active_and_the_next_pending() -> None:
    """At 12 min the language step is active, territory pending; the English speaker gets it."""
    decision = _decide(12)
    assert [
        ("any-language", StepStatus.ACTIVE, _at(9, 58), 1),
        ("any-territory", StepStatus.PENDING, _at(10, 18), 3),
    ] == _steps(decision)
    assert ("en-tx", ("clinical", "relaxed_language"), _at(10, 18)) == (
        decision.agent_id,
        decision.reason_codes,
        decision.next_relaxation_at,
    )
    assert _trace(decision).summary == (
        "language relaxed at 09:58 after 10 min waiting; territory relaxes at 10:18; "
        "licence never relaxes"
    )


def test_earlier_steps_in_force_are_passed() -> None:
    """At 31 min the language step has passed, territory is active, and nothing is pending."""
    decision = _decide(31)
    assert [
        ("any-language", StepStatus.PASSED, _at(9, 39), 1),
        ("any-territory", StepStatus.ACTIVE, _at(9, 59), 3),
    ] == _steps(decision)
    assert (
        decision.agent_id,
        decision.reason_codes,
        decision.next_relaxation_at,
    ) == ("es-ca", ("clinical", "relaxed_language", "relaxed_territory"), None)
    trace = _trace(decision)
    assert (trace.relaxed, trace.preferences) == (("language", "territory"), ("language",))
    assert trace.summary == (
        "language relaxed at 09:39 after 10 min waiting; territory relaxed at 09:59 after "
        "30 min waiting; licence never relaxes"
    )


def test_a_step_takes_effect_at_its_exact_instant() -> None:
    """A step whose time equals now is in force (active), not pending."""
    decision = _decide(10)
    assert [s.status for s in _trace(decision).steps] == [StepStatus.ACTIVE, StepStatus.PENDING]
    assert decision.agent_id == "en-tx"


def test_a_kept_preference_ranks_speakers_first_but_excludes_nobody() -> None:
    """After `prefer: [language]` the Spanish speaker ranks first and the others stay eligible."""
    matching = _decide(31).explanation.matching
    assert matching is not None
    assert matching.eligible == 3
    assert matching.ranking_criteria[:2] == ("prefers language", "lowest_utilisation")
    assert [(c.agent_id, dict(c.criteria)["prefers language"]) for c in matching.ranking] == [
        ("es-ca", True),
        ("en-tx", False),
        ("fr-ca", False),
    ]


def test_waiting_since_overrides_created_at() -> None:
    """Waiting counts from waiting_since when given, however old the case is."""
    decision = _decide(120, waiting_since=NOW - timedelta(minutes=5))
    trace = _trace(decision)
    assert ("waiting_since", _at(9, 55), 5.0) == (
        trace.anchor,
        trace.anchor_at,
        trace.waiting_minutes,
    )
    assert [s.status for s in trace.steps] == [StepStatus.PENDING, StepStatus.PENDING]
    assert _at(10, 5) == decision.next_relaxation_at


@pytest.mark.parametrize(
    ("case", "field"),
    [
        ({"created_at": NOW + timedelta(minutes=1)}, "case.created_at"),
        (
            {"created_at": NOW - timedelta(hours=1), "waiting_since": NOW + timedelta(seconds=1)},
            "case.waiting_since",
        ),
    ],
)
def test_an_anchor_after_now_is_a_request_error_naming_the_field(
    case: dict[str, object], field: str
) -> None:
    """Negative waiting is refused, naming the anchor that was used."""
    with pytest.raises(RequestError) as caught:
        decide(make_case(**case), ROSTER, LADDER, NOW)
    assert [field] == [v.field for v in caught.value.violations]
    assert "after now (2026-11-21T10:00:00Z)" in caught.value.violations[0].message


def test_an_anchor_after_now_is_accepted_without_ladders_or_continuity() -> None:
    """A ruleset that never counts waiting time does not care about the anchor."""
    plain = prepare_ruleset(compile_text(ruleset_with_rules(CATCH_ALL_RULE)))
    case = make_case(waiting_since=NOW + timedelta(hours=1))
    decision = decide(case, ROSTER, plain, NOW)
    assert (decision.outcome, decision.agent_id) == (Outcome.ASSIGN, "en-tx")


def test_a_zero_delay_relaxes_critical_cases_at_once_and_a_missing_one_never() -> None:
    """Critical: language relaxed at the anchor; the territory step has no delay, so never."""
    decision = _decide(0, urgency=Urgency.CRITICAL)
    assert [
        ("any-language", StepStatus.ACTIVE, _at(10, 0), 1),
        ("any-territory", StepStatus.NEVER, None, 1),
    ] == _steps(decision)
    assert (decision.agent_id, decision.next_relaxation_at) == ("en-tx", None)
    assert [s.after_minutes for s in _trace(decision).steps] == [0.0, None]
    assert (
        _trace(decision).summary
    ) == "language relaxed at 10:00 after 0 min waiting; licence never relaxes"


def test_per_urgency_delays_differ_for_the_same_wait() -> None:
    """After 5 min a critical case has relaxed language; a routine one has not."""
    assert _decide(5, urgency=Urgency.CRITICAL).agent_id == "en-tx"
    assert _decide(5, urgency=Urgency.ROUTINE).agent_id is None


@pytest.mark.parametrize("waited", [0, 5, 12, 29, 31, 200])
def test_eligible_counts_per_step_equal_deciding_at_that_step(waited: float) -> None:
    """Each step's predicted count is the eligible count of a decision taken at its time."""
    decision = _decide(waited)
    created = NOW - timedelta(minutes=waited)
    trace = _trace(decision)
    as_written = _decide(waited, now=created, created_at=created)
    assert as_written.explanation.matching is not None
    assert trace.eligible_as_written == as_written.explanation.matching.eligible
    for step in trace.steps:
        assert step.at is not None
        later = decide(
            make_case(preferred_language="es", created_at=created), ROSTER, LADDER, step.at
        )
        assert later.explanation.matching is not None
        assert step.eligible == later.explanation.matching.eligible


def test_steps_relaxing_two_requirements_name_both() -> None:
    """One step relaxing territory and preferring language names both, plural verb."""
    before, after = _decide(5, TOGETHER), _decide(15, TOGETHER)
    assert (
        (_trace(before).summary)
        == "nothing relaxed after 5 min waiting; territory, language relax at 10:05; "
        "licence never relaxes"
    )
    assert (
        _trace(after).summary
    ) == "territory, language relaxed at 09:55 after 10 min waiting; licence never relaxes"
    assert (
        after.agent_id,
        after.reason_codes,
    ) == ("es-ca", ("clinical", "relaxed_territory", "relaxed_language"))


def test_the_summary_names_only_what_the_rule_holds_soft() -> None:
    """A shared step relaxing language is silent about it for a rule that never requires it."""
    loaded = _ruleset("language: false, soft: [territory], ladder: together")
    assert (
        _trace(_decide(5, loaded)).summary
    ) == "nothing relaxed after 5 min waiting; territory relaxes at 10:05; licence never relaxes"
    decision = _decide(15, loaded)
    assert (
        _trace(decision).summary
    ) == "territory relaxed at 09:55 after 10 min waiting; licence never relaxes"
    assert _trace(decision).relaxed == ("territory",)


def test_a_rule_without_soft_requirements_has_no_ladder_trace() -> None:
    """Non-adaptive routes carry no relaxation and no next_relaxation_at."""
    decision = _decide(60, intent=Intent.GENERAL)
    assert (decision.explanation.relaxation, decision.next_relaxation_at) == (None, None)


def test_times_are_utc_whatever_offset_the_case_was_stamped_with() -> None:
    """A +02:00 created_at gives the same UTC step times and summary as its UTC equal."""
    local = (NOW - timedelta(minutes=12)).astimezone(timezone(timedelta(hours=2)))
    decision = _decide(12, created_at=local)
    assert _steps(decision) == _steps(_decide(12))
    assert [s.at.utcoffset() for s in _trace(decision).steps] == [timedelta(0)] * 2  # type: ignore[union-attr]
    assert _trace(decision).anchor_at.utcoffset() == timedelta(0)
    assert _trace(decision).summary == _trace(_decide(12)).summary


def test_waiting_minutes_in_the_summary_are_whole_minutes_waited() -> None:
    """9.9 min waited reads "after 9 min", never a rounded 10 beside a pending 10-minute step."""
    decision = _decide(9.9)
    assert _trace(decision).summary == (
        "nothing relaxed after 9 min waiting; language relaxes at 10:00; licence never relaxes"
    )


# Review R33a L1: a QUEUE promised a next_relaxation_at even when no pending step could make
# anyone eligible, so the orchestrator asked again for nothing.
UNLICENSED = make_agent("lpn-ca", licences=(), languages=frozenset({"es"}), territories=frozenset())


def test_no_next_relaxation_when_every_agent_fails_a_hard_constraint_no_step_relaxes() -> None:
    """Nobody licensed: both steps pending, neither helps, so no next_relaxation_at, and why."""
    decision = _decide(5, roster=make_roster(UNLICENSED))
    assert (decision.outcome, decision.next_relaxation_at) == (Outcome.QUEUE, None)
    trace = _trace(decision)
    assert [(s.status, s.eligible) for s in trace.steps] == [(StepStatus.PENDING, 0)] * 2
    assert trace.next_relaxation_at is None
    assert trace.summary == (
        "nothing relaxed after 5 min waiting; no next step: language at 10:05 and "
        "territory at 10:25 make no agent on this roster eligible; licence never relaxes"
    )


def test_no_next_relaxation_when_the_pending_steps_relax_what_nobody_fails() -> None:
    """The only agent speaks the language and covers the region but lacks a hard skill level."""
    speaker = make_agent("es-tx", languages=frozenset({"es"}), skills={"clinical-triage": 1})
    decision = _decide(
        5, roster=make_roster(speaker), required_skills=(RequiredSkill("clinical-triage", 3),)
    )
    assert (decision.outcome, decision.next_relaxation_at) == (Outcome.QUEUE, None)
    assert "no next step: language at 10:05 and territory at 10:25 make no agent" in (
        _trace(decision).summary
    )


def test_next_relaxation_skips_a_step_that_helps_nobody_to_the_one_that_does() -> None:
    """Only a Californian speaks Spanish: the language step alone helps nobody; territory does."""
    decision = _decide(5, roster=make_roster(ROSTER.agents[1]))
    assert (decision.outcome, decision.next_relaxation_at) == (Outcome.QUEUE, _at(10, 25))
    trace = _trace(decision)
    assert trace.next_relaxation_at == _at(10, 25)
    assert trace.summary == (
        "nothing relaxed after 5 min waiting; language at 10:05 makes no agent on this roster "
        "eligible; territory relaxes at 10:25; licence never relaxes"
    )


def test_a_step_is_still_reported_when_a_dated_compact_may_license_someone_by_then() -> None:
    """Unsure is kept: a step on a later local day may find a compact in force by then."""
    header = MINIMAL_HEADER + (
        "compacts:\n"
        "  - name: NLC\n"
        "    licence_types: [RN]\n"
        "    members:\n"
        "      - {jurisdiction: US-CA, since: 2018-01-19}\n"
        "      - {jurisdiction: US-TX, since: 2026-11-23}\n"
        "ladders:\n"
        "  slow:\n"
        "    - {step: any-territory, after: 3d, relax: [territory], why: Anyone licensed.}\n"
    )
    rules = (
        "  - id: clinical\n"
        "    when: case.intent == 'clinical'\n"
        "    then: {route: {queue: clinical, reason: clinical, soft: [territory], "
        "ladder: slow}}\n" + CATCH_ALL_RULE
    )
    loaded = prepare_ruleset(compile_text(ruleset_with_rules(rules, header)))
    californian = make_agent(
        "rn-ca",
        licences=(Licence("RN", "US-CA", date(2030, 1, 1), multistate=True),),
        territories=frozenset({"US-CA"}),
    )
    decision = _decide(5, loaded, make_roster(californian), preferred_language=None)
    assert decision.outcome is Outcome.QUEUE
    assert _trace(decision).steps[0].eligible == 0  # as licensed today
    assert decision.next_relaxation_at == NOW + timedelta(days=3, minutes=-5)
    later = decide(
        make_case(created_at=NOW - timedelta(minutes=5)),
        make_roster(californian),
        loaded,
        NOW + timedelta(days=3, minutes=-5),
    )
    assert (later.outcome, later.agent_id) == (Outcome.ASSIGN, "rn-ca")
