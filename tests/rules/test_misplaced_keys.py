"""A key written at the wrong depth is told where it belongs, not the keys this place allows.

Indentation is where YAML puts a key: `priority:` two spaces short lands in the rule instead of
its `then`, `licence:` at column 1 leaves `constraints`. The message listed the keys the wrong
place allows ("allowed: id, when, then, description"), which never mention `priority`, so the
operator was not told the one thing to change: the indentation.
"""

from __future__ import annotations

import pytest

from caseroute.domain.errors import RulesetError
from caseroute.testing import REFERENCE_RULESET, compile_text

TEXT = (REFERENCE_RULESET / "ruleset.yaml").read_text()
TAIL = "; check its indentation (YAML reads a key's place from how far it is indented)"
ROUTE = "      route:\n        queue: clinical\n        reason: clinical\n"
SG_ACTION = "      escalate: {queue: safeguarding, level: 1, reason: safeguarding_concern}\n"


def _unknown_keys(old: str, new: str) -> list[tuple[int, str]]:
    """Line and message of each schema.unknown_key for TEXT with ``old`` replaced by ``new``."""
    assert old in TEXT, old
    with pytest.raises(RulesetError) as exc:
        compile_text(TEXT.replace(old, new, 1))
    return [(p.line, p.message) for p in exc.value.problems if p.code == "schema.unknown_key"]


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (
            SG_ACTION + "      priority: urgent\n",
            SG_ACTION + "    priority: urgent\n",
            (
                132,
                "unknown field `priority` in rule `safeguarding`: `priority` belongs under "
                "`then` (beside `route`, `escalate` or `exception`)" + TAIL,
            ),
        ),
        (
            "        soft: [language]\n        ladder: language\n\n  - id: prescription",
            (
                "        soft: [language]\n        ladder: language\n        priority: high\n\n"
                "  - id: prescription"
            ),
            (
                185,
                "unknown field `priority` in `route`: `priority` belongs under `then` (beside "
                "the action, not inside it)" + TAIL,
            ),
        ),
        (
            ROUTE + "        licence: [RN]\n",
            "      licence: [RN]\n" + ROUTE,
            (
                179,
                "unknown field `licence` in `then`: `licence` belongs under `route` (or an "
                "escalation's `assign`)" + TAIL,
            ),
        ),
        (
            "        assign: {roles: [senior], prefer: [language]}\n",
            "        licence: [RN]\n        assign: {roles: [senior], prefer: [language]}\n",
            (155, "unknown field `licence` in `escalate`: `licence` belongs under `assign`" + TAIL),
        ),
        (
            (
                "  licence:                                                  # licence valid "
                "where the patient is\n"
            ),
            "licence:\n",
            (
                29,
                "unknown field `licence` in the ruleset file: `licence` belongs under "
                "`constraints`" + TAIL,
            ),
        ),
    ],
    ids=[
        "priority-in-the-rule",
        "priority-in-route",
        "licence-in-then",
        "licence-in-escalate",
        "licence-at-top-level",
    ],
)
def test_a_mis_indented_key_is_told_where_it_belongs(
    old: str, new: str, expected: tuple[int, str]
) -> None:
    """The key's line, and where it goes instead of the keys this place allows."""
    assert [expected] == _unknown_keys(old, new)


def test_a_misspelt_key_still_gets_its_did_you_mean() -> None:
    """`priorty` in `then` is a spelling, not a place: "did you mean `priority`?"."""
    expected = [(132, "unknown field `priorty` in `then` (did you mean `priority`?)")]
    assert expected == _unknown_keys(
        SG_ACTION + "      priority: urgent\n", SG_ACTION + "      priorty: urgent\n"
    )
