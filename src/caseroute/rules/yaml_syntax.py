"""A YAML syntax error in an operator's words, at the line to fix, with what to do.

The parser words its errors for parser authors ("while parsing a block mapping expected
<block end>, but found '<block mapping start>'") and places them where it gave up, which for
the commonest mistakes is not where the mistake is: a quote left open on line 12 is found on
line 75, a key with no space after its colon on the line after it. The operator mistakes that
make a YAML file unreadable are few (a tab, a line indented unlike its neighbours, a missing
space after `:`, a quote or bracket left open, `: ` inside an unquoted value), so each gets
words here; anything else keeps the parser's own words.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from ruamel.yaml.error import MarkedYAMLError

from caseroute.rules.lookalikes import lookalike

_SEPARATORS = "\x85\u2028\u2029"
"""Unicode line breaks: the parser breaks block text at them but does not count them as lines."""
_GENERIC = (
    "Check indentation and quoting near this line (quote expressions that contain `:` or "
    "start with a quote)"
)
_BLOCK_START = re.compile(r"""^\s*(?:-\s+)?[^#'"]*:\s+[|>][-+0-9]*\s*(?:#.*)?$""")
"""A line whose key's value is block text (``description: >``): the lines below are text."""
_OPEN_QUOTE = re.compile(r"""^\s*(?:-\s+)?(?:[^\s#'"][^:#]*:\s+)?(["'])""")
"""A line whose value (of a key, of a list item, or the line itself) starts with a quote."""


@dataclass(frozen=True, slots=True)
class SyntaxAdvice:
    """Where a YAML syntax error is to be fixed (1-based) and what to tell the operator."""

    line: int
    column: int
    message: str


def _unquoted(text: str, quote: str) -> str:
    r"""``text`` without the escaped quotes of its kind (``''`` in single, ``\\"`` in double)."""
    return text.replace("''", "") if quote == "'" else re.sub(r"\\.", "", text)


def _unclosed_quote(lines: list[str], upto: int) -> tuple[int, int, str] | None:
    """The line before ``upto`` (1-based) whose value opens a quote closed only on ``upto``.

    YAML lets a quoted text run over several lines, so a quote left open reads on to the next
    quote of its kind, however far, and the parser fails just after it. Rulesets write quoted
    values on one line, so a value opened and not closed on its line, whose text runs on to a
    quote on the very line the parser failed on, is the mistake. Lines of block text (under
    ``|`` or ``>``) are text, never the opening of a quote.
    """
    block_indent = -1  # the indentation of the key a block text belongs to, while in one
    skip_to = 0  # the last line of a quoted text over several lines, read past
    for number, text in enumerate(lines[: max(upto - 1, 0)], start=1):
        if number <= skip_to:
            continue
        indent = len(text) - len(text.lstrip())
        if block_indent >= 0 and (not text.strip() or indent > block_indent):
            continue  # a line of block text
        block_indent = indent if _BLOCK_START.match(text) else -1
        match = _OPEN_QUOTE.match(text)
        if match is None:
            continue
        quote = match.group(1)
        if quote in _unquoted(text[match.end() :], quote):
            continue  # closed on its own line
        closes = next(
            (n for n in range(number + 1, upto + 1) if quote in _unquoted(lines[n - 1], quote)),
            None,
        )
        if closes is None or closes == upto:
            # Still open at the failure (None) is not this quote's doing: YAML would have
            # said "end of stream" or named the escape.
            return (number, match.start(1) + 1, quote) if closes == upto else None
        skip_to = closes  # a quoted text over several lines, closed before: read past it
    return None


def _quote_closed_early(lines: list[str], line: int, column: int) -> tuple[int, str] | None:
    """The quote opening the value on ``line`` when it closes before ``column`` (1-based).

    ``when: 'safeguarding' in case.flags`` (a condition starting with a quote, unwrapped) and
    ``when: 'case.intent == 'clinical''`` (the quote it starts with, inside) both read as a
    quoted text ended early with more text after it on the line: the parser fails there
    with "expected <block end>", which is not an indentation mistake.
    """
    if not 1 <= line <= len(lines):
        return None
    text = lines[line - 1]
    match = _OPEN_QUOTE.match(text)
    if match is None or match.end() >= column:
        return None
    quote = match.group(1)
    if quote not in _unquoted(text[match.end() : column - 1], quote):
        return None
    return match.start(1) + 1, quote


def _lookalike_near(lines: list[str], first: int, last: int) -> tuple[int, int, str] | None:
    """A look-alike character YAML trips on, in lines ``first``..``last`` (1-based).

    Only where YAML reads structure: a non-breaking (or other Unicode) space in a line's
    indentation, which YAML does not count as indentation, and a full-width colon after a key.
    A typographic quote or dash inside a value is text to YAML, not a syntax error.
    """
    for number in range(max(first, 1), min(last, len(lines)) + 1):
        text = lines[number - 1]
        separator = next((i for i, char in enumerate(text) if char in _SEPARATORS), None)
        if separator is not None and number == last:  # the line the parser failed on
            char = text[separator]
            words = (
                f"{char!r} (U+{ord(char):04X} {unicodedata.name(char, '')}) is an invisible "
                "line break (text copied from a document or web page?), which YAML counts as "
                "a line break in block text and nowhere else: delete it, and press Enter "
                "where a new line is meant"
            )
            return number, separator + 1, words
        indent = text[: len(text) - len(text.lstrip())]
        found = lookalike(indent)
        if found is None:
            code = text.split("#", 1)[0]
            colon = code.find("\uff1a")
            found = lookalike(code[colon]) if colon >= 0 else None
            if found is not None:
                found = (colon, found[1])
        if found is not None:
            return number, found[0] + 1, found[1]
    return None


def advise(exc: MarkedYAMLError, text: str) -> SyntaxAdvice:
    """The line, column and words for a syntax error the parser raised on ``text``.

    Args:
        exc: The parser's error (its problem and context marks are 0-based).
        text: The document it was parsing.

    Returns:
        The advice: where to fix and what to write.
    """
    mark = exc.problem_mark or exc.context_mark
    line, column = (mark.line + 1, mark.column + 1) if mark is not None else (0, 0)
    context = exc.context_mark
    ctx_line = context.line + 1 if context is not None else 0
    problem = exc.problem or ""
    raw = " ".join(x for x in (exc.context, exc.problem) if x)
    # The parser's lines: str.splitlines also breaks at U+2028, U+2029 and U+0085, which the
    # parser's line count does not, and every line read below would be the wrong one.
    lines = re.split(r"\r\n|[\r\n]", text)
    if "'\\t'" in problem:
        return SyntaxAdvice(
            line,
            column,
            "YAML syntax error: a tab character; YAML indents and separates with spaces "
            "only. Replace the tab with spaces (2 for each level of indentation)",
        )
    if "'<stream end>'" in problem:
        return SyntaxAdvice(
            line,
            column,
            "YAML syntax error: the file ends in the middle of a value: it was cut short (a "
            "save or copy interrupted), or a `[` or `{` is never closed. Restore the rest of "
            "the file, or close the bracket",
        )
    if "unknown escape character" in problem:
        return SyntaxAdvice(
            line,
            column,
            "YAML syntax error: a backslash in double quotes starts an escape, and this one "
            "is not a YAML escape. Write the text in single quotes ('...'), or double the "
            "backslash (\\\\)",
        )
    stray = re.fullmatch(r"expected .*, but found '([\]}])'", problem)
    if stray is not None:
        return SyntaxAdvice(
            line,
            column,
            f"YAML syntax error: a `{stray.group(1)}` that closes nothing: no "
            f"`{'[' if stray.group(1) == ']' else '{'}` is open before it. Remove it, or add "
            "the opening bracket where the list or mapping starts",
        )
    if "quoted scalar" in (exc.context or "") and "end of stream" in problem and ctx_line:
        return SyntaxAdvice(
            ctx_line,
            context.column + 1 if context is not None else 0,
            "YAML syntax error: this quote is never closed, so YAML reads the rest of the "
            "file as one text. Close the quote on this line",
        )
    # Only near the failure: a look-alike far above it (in a description's text) is not blamed.
    suspect = _lookalike_near(lines, max(min(ctx_line or line, line - 1), line - 2), line)
    if suspect is not None:
        at, col, words = suspect
        return SyntaxAdvice(at, col, f"YAML syntax error: {words}")
    quote = _unclosed_quote(lines, line)
    if quote is not None:
        at, col, mark_char = quote
        return SyntaxAdvice(
            at,
            col,
            f"YAML syntax error: this line opens a quote ({mark_char}) that it does not "
            f"close, so YAML reads everything up to the next {mark_char} as one text and "
            f"fails at line {line} ({raw}). Close the quote on this line",
        )
    if "could not find expected ':'" in problem and ctx_line:
        return SyntaxAdvice(
            ctx_line,
            context.column + 1 if context is not None else 0,
            "YAML syntax error: this line reads as a key with no `: ` after it: a key is "
            "followed by a colon and a space (`priority: urgent`, not `priority:urgent`). "
            "Add the space, or quote the value if it is text",
        )
    if "mapping values are not allowed here" in problem:
        return SyntaxAdvice(
            line,
            column,
            "YAML syntax error: a `: ` (colon and space) where no key can start. Either this "
            "line is indented deeper than the line above, whose key already has its value "
            "(line it up with the keys beside it), or the value before the `:` is text that "
            'holds `: ` (put it in quotes: `when: "..."`)',
        )
    early = (
        _quote_closed_early(lines, line, column)
        if problem.startswith("expected <block end>")
        else None
    )
    if early is not None:
        col, mark_char = early
        fix = (
            "Put the whole value in double quotes (`when: \"'safeguarding' in case.flags\"`), "
            "or write each ' inside single quotes twice ('')"
            if mark_char == "'"
            else 'Put the whole value in single quotes, or write each " inside double quotes as \\"'
        )
        return SyntaxAdvice(
            line,
            col,
            f"YAML syntax error: this value starts with a quote ({mark_char}), so YAML reads "
            f"it as a text that ends at the next {mark_char} and finds more after it. {fix}",
        )
    if problem.startswith("expected <block end>") and ctx_line:
        kind = "list" if "collection" in (exc.context or "") else "mapping"
        return SyntaxAdvice(
            line,
            column,
            f"YAML syntax error: this line is not indented like the {kind} it is in (the "
            f"{kind} that starts at line {ctx_line}): each key must line up exactly with the "
            "other keys of its mapping, and each `- ` item with the other items of its list. "
            "Check the indentation of this line and of the line above it",
        )
    if problem.startswith("expected ',' or ']'") and ctx_line:
        return SyntaxAdvice(
            line,
            column,
            f"YAML syntax error: the `[` at line {ctx_line} is not closed by `]` before this "
            "point, or an item in it holds `:` (quote such an item). Close the list",
        )
    if problem.startswith("expected ',' or '}'") and ctx_line:
        return SyntaxAdvice(
            line,
            column,
            f"YAML syntax error: the `{{` at line {ctx_line} is not closed by `}}` before "
            "this point, or a value in it holds `: ` or `,` (quote such a value). Close it",
        )
    return SyntaxAdvice(line, column, f"YAML syntax error: {raw}. {_GENERIC}")
