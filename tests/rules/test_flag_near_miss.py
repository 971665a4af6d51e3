"""lint.flag_near_miss: a hard flag in `constraints` that misspells a flag callers send."""

import pytest

from caseroute.domain.decision import Outcome
from caseroute.engine.case_rules import EngineKind, prepare_ruleset
from caseroute.engine.decide import decide
from caseroute.testing import (
    CATCH_ALL_RULE,
    NOW,
    compile_text,
    make_agent,
    make_case,
    make_roster,
    ruleset_with_rules,
)

# Lines: 5 `constraints:`, 6 safeguarding, 7 consent (when added), 8 licence; rules from 12,
# a rule added after the safeguarding rule at 15.
BASE = ruleset_with_rules(CATCH_ALL_RULE)
LICENCE = "  licence: {clinical: [RN]}\n"


def _with_consent(flag: str, extra_rules: str = "") -> str:
    """BASE with `consent: {flag: <flag>}` at line 7 (its value at column 19)."""
    text = BASE.replace(LICENCE, f"  consent: {{flag: {flag}}}\n" + LICENCE, 1)
    return text.replace("  - id: rest\n", extra_rules + "  - id: rest\n", 1)


def _near_misses(text: str) -> list[tuple[str, str]]:
    """The lint.flag_near_miss warnings of a ruleset text, as (location, message)."""
    compiled = compile_text(text, "r.yaml")
    return [(p.location, p.message) for p in compiled.warnings if p.code == "lint.flag_near_miss"]


def test_a_consent_flag_one_letter_from_consent_missing_is_warned_about_at_its_line() -> None:
    """`consent_mising` gets a warning at its flag, naming the conventional spelling."""
    message = (
        "constraints.consent.flag `consent_mising` looks like a misspelling of "
        "`consent_missing`, caseroute's conventional consent flag: a case sent with "
        "`consent_missing` is an EXCEPTION (ambiguous_flag), never queued for consent; "
        "write `consent_missing` here if that is what callers send, else keep "
        "`consent_mising` and make sure callers send it"
    )
    assert [("r.yaml:7:19", message)] == _near_misses(_with_consent("consent_mising"))


def test_a_misspelt_safeguarding_flag_is_warned_about_at_its_line() -> None:
    """`safegaurding` (the first rule spelling it the same) gets a warning at its flag."""
    text = BASE.replace("{flag: safeguarding,", "{flag: safegaurding,", 1).replace(
        "'safeguarding' in case.flags", "'safegaurding' in case.flags", 1
    )
    ((where, message),) = _near_misses(text)
    said = "never escalated to the safeguarding queue; write `safeguarding` here" in message
    expected = ("r.yaml:6:24", True)
    assert expected == (where, said)


def test_a_consent_flag_misspelling_the_flag_a_rule_tests_names_that_rule() -> None:
    """A flag of the ruleset's own (not the conventional one) is judged against rules' tests."""
    rule = (
        "  - id: vip\n    when: \"'consent_revoked' in case.flags\"\n"
        "    then: {route: {queue: general}}\n"
    )
    text = _with_consent("consent_revokd", rule)
    ((where, message),) = _near_misses(text)
    named = message[message.index("`consent_revoked`") : message.index(" tests:") + 7]
    expected = ("r.yaml:7:19", "`consent_revoked`, the flag rule `vip` (line 15) tests:")
    assert expected == (where, named)


@pytest.mark.parametrize("flag", ["consent_missing", "no_consent", "consent_required"])
def test_a_consent_flag_that_is_a_name_of_its_own_is_not_warned_about(flag: str) -> None:
    """The conventional spelling, and names sharing only a word with it, are left alone."""
    assert _near_misses(_with_consent(flag)) == []


def test_a_conventional_flag_is_not_blamed_for_a_rule_testing_a_near_spelling() -> None:
    """`safeguarding` itself: the rule testing `safeguardng` is the misspelt one (look-alike)."""
    rule = (
        "  - id: r\n    when: \"'safeguardng' in case.flags\"\n"
        "    then: {route: {queue: general}}\n"
    )
    text = _with_consent("consent_missing", rule)
    compiled = compile_text(text, "r.yaml")
    codes = [p.code for p in compiled.warnings]
    assert ("lint.flag_look_alike" in codes, "lint.flag_near_miss" in codes) == (True, False)


def test_the_warning_changes_no_decision_a_near_miss_case_is_still_never_assigned() -> None:
    """Fail safe as before: `consent_missing` against `consent_mising` is an EXCEPTION."""
    ruleset = prepare_ruleset(
        compile_text(_with_consent("consent_mising"), "r.yaml"), EngineKind.PYTHON
    )
    case = make_case(flags=("consent_missing",))
    decision = decide(case, make_roster(make_agent()), ruleset, NOW)
    expected = (Outcome.EXCEPTION, None)
    assert expected == (decision.outcome, decision.agent_id)
