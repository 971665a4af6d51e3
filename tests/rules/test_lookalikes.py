"""Text pasted from a document: a look-alike of an ASCII character is named, with what to type.

A condition with typographic quotes (U+2018 and U+2019 around `prescription`, as a word
processor writes them) failed with "unexpected character", and an indentation holding a
non-breaking space with a YAML error about indentation: the text looked right, and nothing said
why not.
"""

from __future__ import annotations

import pytest

from caseroute.domain.errors import RulesetError
from caseroute.rules.source import parse_yaml
from caseroute.testing import REFERENCE_RULESET, compile_text

TEXT = (REFERENCE_RULESET / "ruleset.yaml").read_text()
PASTED = "(text copied from a document or web page?)"


def _problems(old: str, new: str) -> list[tuple[str, int, int, str]]:
    """Code, line, column and message of each problem of TEXT with ``old`` replaced."""
    assert old in TEXT, old
    with pytest.raises(RulesetError) as exc:
        compile_text(TEXT.replace(old, new, 1))
    return [(p.code, p.line, p.column, p.message) for p in exc.value.problems]


@pytest.mark.parametrize(
    ("new", "column", "advice"),
    [
        (
            "    when: case.intent == \u2018prescription\u2019\n",
            26,
            (
                "'\u2018' (U+2018 LEFT SINGLE QUOTATION MARK) looks like ' but is not it "
                f"{PASTED}: type a plain ' instead"
            ),
        ),
        (
            "    when: case.intent == 'prescription' and sentiment.latest <= \u20130.5\n",
            65,
            (
                "'\u2013' (U+2013 EN DASH) looks like - but is not it "
                f"{PASTED}: type a plain - instead"
            ),
        ),
    ],
    ids=["typographic-quote", "en-dash"],
)
def test_a_look_alike_in_a_condition_is_named(new: str, column: int, advice: str) -> None:
    """expr.syntax at the character, saying what it is and what to type."""
    char = advice[1]
    expected = [
        (
            "expr.syntax",
            188,
            column,
            f"cannot read condition: unexpected character {char!r}: {advice}",
        )
    ]
    assert expected == _problems("    when: case.intent == 'prescription'\n", new)


@pytest.mark.parametrize(
    ("text", "where", "advice"),
    [
        (
            "then:\n  route: x\n \u00a0priority: urgent\n",
            (3, 2),
            (
                "'\\xa0' (U+00A0 NO-BREAK SPACE) looks like a space but is not it "
                f"{PASTED}: type a plain space instead"
            ),
        ),
        (
            "then:\n  route: x\n  priority\uff1a urgent\nnext: 1\n",
            (3, 11),
            (
                "'\uff1a' (U+FF1A FULLWIDTH COLON) looks like : but is not it "
                f"{PASTED}: type a plain : instead"
            ),
        ),
    ],
    ids=["no-break-space-in-indentation", "full-width-colon"],
)
def test_a_look_alike_yaml_trips_on_is_named(
    text: str, where: tuple[int, int], advice: str
) -> None:
    """yaml.syntax at the character itself, not an indentation or colon message."""
    with pytest.raises(RulesetError) as exc:
        parse_yaml(text, "f.yaml")
    expected = [("yaml.syntax", *where, f"YAML syntax error: {advice}")]
    assert expected == [(p.code, p.line, p.column, p.message) for p in exc.value.problems]


def test_a_typographic_quote_in_a_description_is_not_blamed_for_an_indentation_error() -> None:
    """Look-alikes in a value are text: only indentation and a key's colon are looked at."""
    text = "description: the patient\u2019s case\nthen:\n  a: b\n    c: d\n"
    with pytest.raises(RulesetError) as exc:
        parse_yaml(text, "f.yaml")
    (problem,) = exc.value.problems
    assert "U+2019" not in problem.message


def test_a_no_break_space_in_text_far_above_an_indentation_error_is_not_blamed() -> None:
    """A description's text may hold one; the error lines below are judged on their own."""
    text = (
        "description: |\n  text\n  \u00a0more text\nowner: o\nversion: '1'\n"
        "rules:\n  - id: a\n - id: b\n"
    )
    with pytest.raises(RulesetError) as exc:
        parse_yaml(text, "f.yaml")
    (problem,) = exc.value.problems
    expected = (8, False)  # at the list item out of line, and no look-alike named
    assert expected == (problem.line, "U+00A0" in problem.message)
