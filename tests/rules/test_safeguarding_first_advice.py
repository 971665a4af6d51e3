"""`constraints.safeguarding_first` says what is wrong with rule 1 and what to write instead.

It said only "rule `safeguarding` is first instead", the same words for a misspelt queue, an
`assign:`, a narrowed condition and a moved rule, so an operator whose first rule *was* the
safeguarding rule was left to guess what the check wanted.
"""

from __future__ import annotations

import pytest

from caseroute.domain.errors import RulesetError
from caseroute.testing import REFERENCE_RULESET, compile_text

TEXT = (REFERENCE_RULESET / "ruleset.yaml").read_text()
RULE_1 = "    when: \"'safeguarding' in case.flags\"\n"
ACTION_1 = "escalate: {queue: safeguarding, level: 1, reason: safeguarding_concern}"
HEADLINE = (
    "safeguarding is a hard constraint: the first rule must be `when: \"'safeguarding' in "
    'case.flags"` with `escalate: {queue: safeguarding, ...}` and no `assign`, so flagged cases '
    "escalate regardless of capacity; rule `safeguarding` is first, and "
)


def _advice(*edits: tuple[str, str]) -> str:
    """The safeguarding_first message for TEXT with each edit applied, after the headline."""
    text = TEXT
    for old, new in edits:
        assert old in text, old
        text = text.replace(old, new, 1)
    with pytest.raises(RulesetError) as exc:
        compile_text(text)
    (problem,) = [p for p in exc.value.problems if p.code == "constraints.safeguarding_first"]
    headline, advice = problem.message.split("is first, and ", 1)
    flag = "safegaurding" if "flag: safegaurding" in text else "safeguarding"
    assert HEADLINE.replace("'safeguarding'", f"'{flag}'") == headline + "is first, and "
    return advice


@pytest.mark.parametrize(
    ("edits", "expected"),
    [
        (
            [(ACTION_1, ACTION_1.replace("queue: safeguarding", "queue: safeguardng"))],
            (
                "it escalates to queue `safeguardng`, not `safeguarding` (the queue "
                "`constraints.safeguarding` names): make them the same"
            ),
        ),
        (
            [(ACTION_1, ACTION_1[:-1] + ", assign: {roles: [senior]}}")],
            "it has `assign:`, which would hand a flagged case to an agent: remove it",
        ),
        (
            [(ACTION_1, "route: {queue: safeguarding, reason: safeguarding_concern}")],
            "it routes instead of escalating: write `escalate:`",
        ),
        (
            [(ACTION_1, "exception: {queue: safeguarding, reason: safeguarding_concern}")],
            "it raises an exception instead of escalating: write `escalate:`",
        ),
        (
            [(RULE_1, RULE_1.replace('flags"', "flags and case.urgency == 'critical'\""))],
            (
                "its `when` is `'safeguarding' in case.flags and case.urgency == 'critical'`: "
                "write `when: \"'safeguarding' in case.flags\"` alone"
            ),
        ),
        (
            [
                (
                    "{flag: safeguarding, queue: safeguarding}",
                    "{flag: safegaurding, queue: safeguarding}",
                )
            ],
            (
                "it tests flag `safeguarding`, while `constraints.safeguarding.flag` is "
                "`safegaurding`: make them the same (check the spelling of both)"
            ),
        ),
        (
            [
                (RULE_1, "    when: \"'vip' in case.flags\"\n    then: {route: {queue: vip}}\n"),
                (
                    f"    then:\n      {ACTION_1}",
                    f"  - id: sg\n{RULE_1}    then:\n      {ACTION_1}",
                ),
            ],
            (
                "its `when` is `'vip' in case.flags`; rule `sg` (line 131) tests the flag: move "
                "it first"
            ),
        ),
    ],
    ids=["queue", "assign", "route", "exception", "when-narrowed", "flag-misspelt", "moved-down"],
)
def test_rule_1_is_told_what_is_wrong_and_what_to_write(
    edits: list[tuple[str, str]], expected: str
) -> None:
    """Each mistake in rule 1 is named, with the change that fixes it."""
    assert expected == _advice(*edits)


def test_several_mistakes_in_rule_1_are_each_named() -> None:
    """A misspelt queue and an `assign:` together: both, in one finding."""
    expected = (
        "it escalates to queue `sg`, not `safeguarding` (the queue `constraints.safeguarding` "
        "names): make them the same; and it has `assign:`, which would hand a flagged case to "
        "an agent: remove it"
    )
    assert expected == _advice(
        (
            ACTION_1,
            ACTION_1.replace("queue: safeguarding", "queue: sg")[:-1]
            + ", assign: {roles: [senior]}}",
        )
    )
