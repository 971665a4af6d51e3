"""Roster lint with soft requirements: what a ladder always relaxes is not unsatisfiable."""

from datetime import date

from caseroute.engine.satisfiable import unsatisfiable_requirements
from caseroute.testing import (
    CATCH_ALL_RULE,
    MINIMAL_HEADER,
    compile_text,
    make_agent,
    make_roster,
    ruleset_with_rules,
)

DAY = date(2026, 11, 21)
LADDER = """\
ladders:
  any-language:
    - step: any-language
      after: {AFTER}
      relax: [language]
      why: An interpreter beats a long wait.
"""


def _codes(
    rule_then: str, after: str = "10m", when: str = "case.preferred_language == 'cy'"
) -> list[str]:
    rules = f"""\
  - id: welsh
    when: {when}
    then: {rule_then}
"""
    header = MINIMAL_HEADER + LADDER.replace("{AFTER}", after)
    ruleset = compile_text(ruleset_with_rules(rules + CATCH_ALL_RULE, header), "r.yaml")
    roster = make_roster(make_agent("a1", languages=frozenset({"en"})))
    return [p.code for p in unsatisfiable_requirements(ruleset, roster, "roster.json", DAY)]


def test_a_hard_language_nobody_speaks_is_unsatisfiable() -> None:
    """Without `soft`, a pinned language nobody speaks is still a finding."""
    then = "{route: {queue: general, territory: false}}"
    assert _codes(then) == ["roster.unsatisfiable_language"]


def test_a_soft_language_the_ladder_always_relaxes_is_not_a_finding() -> None:
    """Language soft and relaxed after 10 min for every urgency: nobody speaking it is fine."""
    then = "{route: {queue: general, territory: false, soft: [language], ladder: any-language}}"
    assert _codes(then) == []


def test_a_preferred_language_is_never_a_finding() -> None:
    """`prefer: [language]` only ranks, so no speaker on the roster is not a problem."""
    then = "{route: {queue: general, territory: false, prefer: [language]}}"
    assert _codes(then) == []


def test_a_soft_language_some_urgency_never_relaxes_is_still_a_finding() -> None:
    """The ladder relaxes language for routine cases only; a critical cy case can never assign."""
    then = "{route: {queue: general, territory: false, soft: [language], ladder: any-language}}"
    assert _codes(then, after="{routine: 10m}") == ["roster.unsatisfiable_language"]


def test_a_soft_language_relaxed_for_the_only_urgency_the_rule_sees_is_not_a_finding() -> None:
    """The rule only sees routine cases, and routine cases relax language: no finding."""
    then = "{route: {queue: general, territory: false, soft: [language], ladder: any-language}}"
    when = "case.preferred_language == 'cy' and case.urgency == 'routine'"
    assert _codes(then, after="{routine: 10m}", when=f'"{when}"') == []
