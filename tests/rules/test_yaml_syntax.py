"""A YAML syntax error says, at the line to fix, what an operator wrote wrong and what to do.

The parser's own words ("while parsing a block mapping expected <block end>, but found
'<block mapping start>'") name no mistake an operator makes, and for an open quote or a key
with no space after its colon they pointed at a line after the mistake (an open quote on line
2 was reported at the line of the next quote, however far down).
"""

from __future__ import annotations

import pytest

from caseroute.domain.errors import RulesetError
from caseroute.rules.source import parse_yaml

INDENT = (
    "YAML syntax error: this line is not indented like the {kind} it is in (the {kind} that "
    "starts at line {line}): each key must line up exactly with the other keys of its "
    "mapping, and each `- ` item with the other items of its list. Check the indentation of "
    "this line and of the line above it"
)
COLON = (
    "YAML syntax error: a `: ` (colon and space) where no key can start. Either this line is "
    "indented deeper than the line above, whose key already has its value (line it up with "
    "the keys beside it), or the value before the `:` is text that holds `: ` (put it in "
    'quotes: `when: "..."`)'
)
TAB = (
    "YAML syntax error: a tab character; YAML indents and separates with spaces only. Replace "
    "the tab with spaces (2 for each level of indentation)"
)
QUOTE_OPEN = (
    'YAML syntax error: this line opens a quote (") that it does not close, so YAML reads '
    'everything up to the next " as one text and fails at line 5 (while parsing a block '
    "mapping expected <block end>, but found '<scalar>'). Close the quote on this line"
)
QUOTE_NEVER_CLOSED = (
    "YAML syntax error: this quote is never closed, so YAML reads the rest of the file as one "
    "text. Close the quote on this line"
)
NO_SPACE = (
    "YAML syntax error: this line reads as a key with no `: ` after it: a key is followed by "
    "a colon and a space (`priority: urgent`, not `priority:urgent`). Add the space, or quote "
    "the value if it is text"
)
BRACKET = (
    "YAML syntax error: the `[` at line 1 is not closed by `]` before this point, or an item "
    "in it holds `:` (quote such an item). Close the list"
)
STRAY = (
    "YAML syntax error: a `]` that closes nothing: no `[` is open before it. Remove it, or add "
    "the opening bracket where the list or mapping starts"
)
ESCAPE = (
    "YAML syntax error: a backslash in double quotes starts an escape, and this one is not a "
    "YAML escape. Write the text in single quotes ('...'), or double the backslash (\\\\)"
)
BRACE = (
    "YAML syntax error: the `{` at line 1 is not closed by `}` before this point, or a value "
    "in it holds `: ` or `,` (quote such a value). Close it"
)
OTHER = (
    "YAML syntax error: while scanning for the next token found character '@' that cannot "
    "start any token. Check indentation and quoting near this line (quote expressions that "
    "contain `:` or start with a quote)"
)
CUT_SHORT = (
    "YAML syntax error: the file ends in the middle of a value: it was cut short (a save or "
    "copy interrupted), or a `[` or `{` is never closed. Restore the rest of the file, or "
    "close the bracket"
)


def _problem(text: str) -> tuple[str, int, int, str]:
    """Code, line, column and message of the one problem ``text`` has."""
    with pytest.raises(RulesetError) as exc:
        parse_yaml(text, "f.yaml")
    (problem,) = exc.value.problems
    return problem.code, problem.line, problem.column, problem.message


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("then:\n  route: x\n\tpriority: urgent\n", (3, 1, TAB)),
        ('ruleset: r\nversion: "1.0\ndescription: >\n  text\nowner: "o"\n', (2, 10, QUOTE_OPEN)),
        ("a: 'x\nb: 1\n", (1, 4, QUOTE_NEVER_CLOSED)),
        ("then:\n  route: x\n  priority:urgent\nnext: 1\n", (3, 3, NO_SPACE)),
        ("route:\n  licence: RN\n    soft: x\n", (3, 9, COLON)),
        (
            "then:\n  route:\n    queue: q\n  licence: [RN]\n    soft: [x]\n",
            (5, 5, INDENT.format(kind="mapping", line=2)),
        ),
        ("rules:\n  - id: a\n   - id: b\n", (3, 4, INDENT.format(kind="list", line=2))),
        ("statuses: [available\nranking: []\n", (2, 8, BRACKET)),
        ("ruleset: [\n", (2, 1, CUT_SHORT)),
        ("statuses: [available]]\n", (1, 22, STRAY)),
        ('when: "case\\q"\n', (1, 13, ESCAPE)),
        ("route: {queue: q\nnext: 1\n", (2, 5, BRACE)),
        ("@rules: []\n", (1, 1, OTHER)),
    ],
    ids=[
        "tab",
        "quote-left-open",
        "quote-never-closed",
        "no-space-after-colon",
        "deeper-than-a-key-with-its-value",
        "key-short-of-its-mapping",
        "list-item-out-of-line",
        "bracket-left-open",
        "file-cut-short",
        "stray-bracket",
        "unknown-escape",
        "brace-left-open",
        "anything-else-keeps-the-parser-words",
    ],
)
def test_a_syntax_error_names_the_mistake_at_its_line(
    text: str, expected: tuple[int, int, str]
) -> None:
    """The line and column to fix, and the mistake in an operator's words."""
    assert ("yaml.syntax", *expected) == _problem(text)


def test_a_quote_closed_on_its_own_line_is_not_blamed() -> None:
    """Quoted values closed where they open are left alone: the indentation is the mistake."""
    text = "when: \"'safeguarding' in case.flags\"\nname: 'it''s'\nthen:\n  a: b\n    c: d\n"
    expected = ("yaml.syntax", 5, 6, COLON)
    assert expected == _problem(text)


def test_an_apostrophe_opening_a_line_of_block_text_is_not_an_open_quote() -> None:
    """`'tis` under `description: >` is text: the list item out of line is the mistake."""
    text = (
        "description: >\n  'tis the season\nwhen: \"'x' in case.flags\"\n"
        "rules:\n  - id: a\n - id: b\n"
    )
    expected = ("yaml.syntax", 6, 2, INDENT.format(kind="mapping", line=1))
    assert expected == _problem(text)


def test_a_quoted_text_over_several_lines_is_read_past_to_the_quote_left_open() -> None:
    """A valid two-line quoted value above is not blamed; the one left open below it is."""
    text = 'a: "multi\n  line"\nb: "x\n\nc: 1\nd: "y" z\n'
    code, line, column, message = _problem(text)
    expected = ("yaml.syntax", 3, 4, True)
    opens = message.startswith('YAML syntax error: this line opens a quote (") that it does not')
    assert expected == (code, line, column, opens)


@pytest.mark.parametrize(
    "when",
    ["'safeguarding' in case.flags", "'case.intent == 'clinical''"],
    ids=["condition-starting-with-a-quote", "the-same-quote-inside"],
)
def test_a_quoted_value_ended_early_is_a_quoting_mistake_not_an_indentation_one(
    when: str,
) -> None:
    """A value whose opening quote closes mid-line is blamed at that quote, with the quoting fix."""
    text = f"rules:\n  - id: a\n    when: {when}\n    then: x\n"
    code, line, column, message = _problem(text)
    expected = ("yaml.syntax", 3, 11, True, False)
    quoting = message.startswith("YAML syntax error: this value starts with a quote (')")
    assert expected == (code, line, column, quoting, "indented" in message)


def test_a_unicode_line_separator_does_not_shift_the_lines_read() -> None:
    """U+2028 in a plain value above: the quoting mistake is still read on the parser's line."""
    text = "description: one\u2028two\nrules:\n  - id: a\n    when: 'x' in case.flags\n"
    code, line, column, message = _problem(text)
    expected = ("yaml.syntax", 4, 11, True)
    quoting = message.startswith("YAML syntax error: this value starts with a quote (')")
    assert expected == (code, line, column, quoting)


def test_a_unicode_line_separator_in_block_text_is_named() -> None:
    """U+2028 pasted into `>` text breaks it there: named, not called an indentation mistake."""
    text = "description: >\n  one\u2028two\nowner: o\n"
    code, line, column, message = _problem(text)
    expected = ("yaml.syntax", 2, 6, True)
    assert expected == (code, line, column, "U+2028 LINE SEPARATOR" in message)
