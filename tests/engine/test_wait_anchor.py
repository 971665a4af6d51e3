"""The wait anchor: a ruleset counting waiting refuses a negative wait, except for safeguarding."""

from datetime import timedelta

import pytest

from caseroute.domain.decision import Outcome
from caseroute.domain.errors import RequestError
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

HOLD = MINIMAL_HEADER + "continuity: {window: 30d, hold: {routine: 15m}}\n"


def _ruleset(header: str = HOLD) -> LoadedRuleset:
    return prepare_ruleset(compile_text(ruleset_with_rules(CATCH_ALL_RULE, header)))


def test_a_waiting_since_after_now_is_refused_naming_the_field() -> None:
    """waiting_since a minute after now -> RequestError on case.waiting_since, saying what to do."""
    case = make_case(waiting_since=NOW + timedelta(minutes=1))
    with pytest.raises(RequestError) as caught:
        decide(case, make_roster(make_agent()), _ruleset(), NOW)
    assert [v.field for v in caught.value.violations] == ["case.waiting_since"]
    assert caught.value.violations[0].message.startswith(
        "is 2026-11-21T10:01:00Z, after now (2026-11-21T10:00:00Z); ruleset test@1 counts "
        "waiting time from it"
    )


def test_without_waiting_since_created_at_is_the_anchor_that_is_named() -> None:
    """No waiting_since and created_at after now -> the violation names case.created_at."""
    case = make_case(created_at=NOW + timedelta(seconds=1))
    with pytest.raises(RequestError) as caught:
        decide(case, make_roster(make_agent()), _ruleset(), NOW)
    assert [v.field for v in caught.value.violations] == ["case.created_at"]


def test_a_ruleset_that_does_not_count_waiting_accepts_a_future_created_at() -> None:
    """Without ladders or continuity the anchor is not read: the decision is made as before."""
    case = make_case(created_at=NOW + timedelta(seconds=1))
    decision = decide(case, make_roster(make_agent()), _ruleset(MINIMAL_HEADER), NOW)
    assert decision.outcome is Outcome.ASSIGN


def test_a_safeguarding_case_is_escalated_even_with_a_future_anchor() -> None:
    """Clock skew never stops a safeguarding escalation: the flag wins, no RequestError."""
    case = make_case(waiting_since=NOW + timedelta(minutes=5), flags=frozenset({"safeguarding"}))
    decision = decide(case, make_roster(make_agent()), _ruleset(), NOW)
    assert (decision.outcome, decision.queue) == (Outcome.ESCALATE, "safeguarding")


# Review R33a L3(a): a waiting_since before created_at moved the anchor earlier than the case
# existed, so ladders relaxed and holds expired early on data that cannot be trusted.
LADDER = (
    MINIMAL_HEADER
    + "ladders:\n  lang:\n    - {step: any-language, after: 10m, prefer: [language], why: Wait.}\n"
)
LADDER_RULE = (
    "  - id: clinical\n"
    "    when: case.intent == 'clinical'\n"
    "    then: {route: {queue: clinical, reason: clinical, soft: [language], ladder: lang}}\n"
)


def test_a_waiting_since_before_created_at_is_an_exception_under_continuity() -> None:
    """waiting_since a minute before created_at -> EXCEPTION, reason and detail naming both."""
    case = make_case(
        created_at=NOW - timedelta(minutes=5), waiting_since=NOW - timedelta(minutes=6)
    )
    decision = decide(case, make_roster(make_agent()), _ruleset(), NOW)
    assert (decision.outcome, decision.queue, decision.agent_id, decision.reason_codes) == (
        Outcome.EXCEPTION,
        "exceptions",
        None,
        ("invalid_case_data", "waiting_since_before_created_at"),
    )
    assert decision.explanation.data_problems == (
        (
            "case.waiting_since: 2026-11-21T09:54:00Z is before created_at "
            "2026-11-21T09:55:00Z; ruleset test@1 counts waiting time from it, so the wait "
            "cannot be trusted"
        ),
    )


def test_a_waiting_since_before_created_at_is_an_exception_under_a_ladder() -> None:
    """A ladder alone counts waiting too: the same EXCEPTION, never a step relaxed early."""
    loaded = prepare_ruleset(compile_text(ruleset_with_rules(LADDER_RULE + CATCH_ALL_RULE, LADDER)))
    case = make_case(waiting_since=NOW - timedelta(days=1), preferred_language="es")
    decision = decide(case, make_roster(make_agent()), loaded, NOW)
    assert (decision.outcome, decision.reason_codes) == (
        Outcome.EXCEPTION,
        ("invalid_case_data", "waiting_since_before_created_at"),
    )


def test_waiting_since_equal_to_created_at_is_accepted() -> None:
    """An anchor at the very instant the case was created is a true anchor."""
    case = make_case(waiting_since=NOW - timedelta(minutes=5))
    decision = decide(case, make_roster(make_agent()), _ruleset(), NOW)
    assert decision.outcome is Outcome.ASSIGN


def test_a_ruleset_that_does_not_count_waiting_ignores_an_early_waiting_since() -> None:
    """Without ladders or continuity the anchor is never read: decided as before."""
    case = make_case(waiting_since=NOW - timedelta(days=1))
    decision = decide(case, make_roster(make_agent()), _ruleset(MINIMAL_HEADER), NOW)
    assert decision.outcome is Outcome.ASSIGN


def test_a_safeguarding_case_with_an_early_waiting_since_still_escalates() -> None:
    """Untrustworthy wait data never stops the safeguarding escalation."""
    case = make_case(waiting_since=NOW - timedelta(days=1), flags=frozenset({"safeguarding"}))
    decision = decide(case, make_roster(make_agent()), _ruleset(), NOW)
    assert (decision.outcome, decision.queue) == (Outcome.ESCALATE, "safeguarding")
