"""Lint warnings (rules/lint.py): legal rulesets that probably do not do what their author meant."""

from pathlib import Path

import pytest

from caseroute.domain.case import Intent
from caseroute.domain.decision import Outcome
from caseroute.domain.errors import Problem, RulesetError
from caseroute.domain.roster import Capacity
from caseroute.engine.case_rules import prepare_ruleset
from caseroute.engine.decide import decide
from caseroute.rules.compiler import load_ruleset
from caseroute.testing import (
    CATCH_ALL_RULE,
    MINIMAL_HEADER,
    NOW,
    REPO_ROOT,
    compile_text,
    make_agent,
    make_case,
    make_roster,
    ruleset_with_rules,
)

# Lines: 1-9 MINIMAL_HEADER, 10 `matching:` with its ranking, 11 `rules:`, 12-14 safeguarding,
# then the rules given.
EMPTY_RANKING = MINIMAL_HEADER + "matching: {statuses: [available], ranking: []}\n"
ESCALATE_ALL = (
    "  - id: rest\n    when: true\n    then: {escalate: {queue: general, level: 1, reason: r}}\n"
)
ASSIGN_SENIOR = (
    "  - id: senior\n    when: \"case.intent == 'complaint'\"\n"
    "    then: {escalate: {queue: complaints, level: 2, reason: r, assign: {roles: [senior]}}}\n"
)


def _problems(text: str) -> list[Problem]:
    """Warnings when the text compiles, else every problem."""
    try:
        return list(compile_text(text, "r.yaml").warnings)
    except RulesetError as exc:
        return list(exc.problems)


def _found(text: str, code: str) -> list[tuple[str, str | None, str]]:
    """(location, rule id, message) of each problem with ``code``."""
    return [(p.location, p.rule_id, p.message) for p in _problems(text) if p.code == code]


def test_an_empty_ranking_leaves_the_choice_to_agent_id_alone() -> None:
    """The premise of lint.no_ranking: with `ranking: []` the lower agent_id wins, busy or not."""
    agents = (
        make_agent("a1", capacity=Capacity(max=5, active=4)),
        make_agent("b2", capacity=Capacity(max=5, active=0)),
    )
    case = make_case(intent=Intent.GENERAL)
    chosen = {}
    for name, header in (("empty", EMPTY_RANKING), ("default", MINIMAL_HEADER)):
        loaded = prepare_ruleset(compile_text(ruleset_with_rules(CATCH_ALL_RULE, header)))
        decision = decide(case, make_roster(*agents), loaded, NOW)
        assert decision.outcome is Outcome.ASSIGN
        chosen[name] = decision.agent_id
    assert chosen == {"empty": "a1", "default": "b2"}


def test_an_empty_ranking_is_warned_at_its_line_naming_the_rules_that_assign() -> None:
    """`ranking: []` with rules that can assign: one lint.no_ranking at matching's line."""
    text = ruleset_with_rules(ASSIGN_SENIOR + CATCH_ALL_RULE, EMPTY_RANKING)
    message = (
        "`matching.ranking` is empty, so rules `senior` and `rest` choose among eligible agents "
        "by `agent_id` alone (the tie-breaker; only preferred agents and `prefer:` rank before "
        "it): the same agent takes every case until it is full. Add ranking criteria, e.g. "
        "`ranking: [lowest_utilisation, longest_idle]`, or remove `ranking:` for the default "
        "(lowest_utilisation, highest_skill_level, longest_idle)"
    )
    assert [("r.yaml:10", None, message)] == _found(text, "lint.no_ranking")


def test_an_empty_ranking_is_not_warned_when_no_rule_can_assign() -> None:
    """Escalations without `assign` pick no agent, so the ranking never matters."""
    text = ruleset_with_rules(ESCALATE_ALL, EMPTY_RANKING)
    assert _found(text, "lint.no_ranking") == []


@pytest.mark.parametrize(
    "matching",
    ["", "matching: {statuses: [available]}\n", "matching: {ranking: [longest_idle]}\n"],
    ids=["no-matching", "no-ranking-key", "one-criterion"],
)
def test_a_default_or_given_ranking_is_not_warned(matching: str) -> None:
    """Without `ranking:` the default criteria apply; one criterion is a ranking too."""
    text = ruleset_with_rules(CATCH_ALL_RULE, MINIMAL_HEADER + matching)
    assert _found(text, "lint.no_ranking") == []


def test_a_ranking_of_unknown_criteria_is_one_error_not_also_no_ranking() -> None:
    """`ranking: [fastest]` is schema.value; that nothing is left of it is not warned again."""
    text = ruleset_with_rules(CATCH_ALL_RULE, MINIMAL_HEADER + "matching: {ranking: [fastest]}\n")
    codes = [p.code for p in _problems(text)]
    assert (codes.count("schema.value"), codes.count("lint.no_ranking")) == (1, 0)


SHIPPED = sorted(
    path
    for home in (REPO_ROOT / "rulesets", REPO_ROOT / "examples")
    for path in home.rglob("ruleset.yaml")
)


@pytest.mark.parametrize("path", SHIPPED, ids=[str(p.relative_to(REPO_ROOT)) for p in SHIPPED])
def test_no_shipped_ruleset_is_warned_for_its_ranking(path: Path) -> None:
    """Every ruleset under rulesets/ and examples/ ranks by criteria, not agent_id alone."""
    assert [p.code for p in load_ruleset(path).warnings if p.code == "lint.no_ranking"] == []
