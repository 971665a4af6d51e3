"""Parse rule conditions (``case.urgency == 'critical' and not exists(case.region)``) safely.

A hand-written recursive-descent parser: no ``eval``, no ``exec``, no Python AST. Every node
keeps its character span, so the compiler can point at the column and the explanation can
quote a clause exactly as the operator wrote it.

Grammar::

    expr    := or
    or      := and ("or" and)*
    and     := not ("and" not)*
    not     := "not" not | compare
    compare := operand [cmp_op operand | ["not"] "in" (list | path)]
    operand := path | literal | "exists" "(" path ")" | "(" expr ")"
    list    := "[" [literal ("," literal)*] "]"
    literal := 'text' | "text" | number | true | false
    cmp_op  := "==" | "!=" | "<" | "<=" | ">" | ">="
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from caseroute.rules.limits import MAX_MAGNITUDE
from caseroute.rules.lookalikes import lookalike

Scalar = str | int | float | bool

MAX_EXPRESSION_LENGTH = 2000
"""Longest condition text, in characters (the reference ruleset's longest is under 100)."""
MAX_EXPRESSION_DEPTH = 32
"""Deepest nesting of ``(`` and ``not``; keeps parsing and evaluation free of deep recursion."""
_MAX_NUMBER_TEXT = 40  # longer number text is out of range whatever it says


class ExprSyntaxError(Exception):
    """A condition does not parse; ``offset`` is the 0-based character position.

    ``code`` is the stable problem code: ``expr.syntax``, or a ``limit.*`` code when the text
    is too long, nested too deep, or holds a number the engine cannot represent.
    """

    def __init__(self, message: str, offset: int, code: str = "expr.syntax") -> None:
        super().__init__(message)
        self.message = message
        self.offset = offset
        self.code = code


@dataclass(frozen=True, slots=True)
class Span:
    """Half-open character range ``[start, end)`` in the condition text."""

    start: int
    end: int


@dataclass(frozen=True, slots=True)
class PathRef:
    """A dotted field reference such as ``case.urgency``."""

    parts: tuple[str, ...]
    span: Span

    @property
    def dotted(self) -> str:
        """The path as written with dots."""
        return ".".join(self.parts)


@dataclass(frozen=True, slots=True)
class Literal:
    """A string, number or boolean constant."""

    value: Scalar
    span: Span


@dataclass(frozen=True, slots=True)
class ListLiteral:
    """A bracketed list of constants, used with ``in``."""

    items: tuple[Literal, ...]
    span: Span


Operand = PathRef | Literal


@dataclass(frozen=True, slots=True)
class Compare:
    """``left op right`` with op one of ``== != < <= > >=``."""

    op: str
    left: Operand
    right: Operand
    span: Span


@dataclass(frozen=True, slots=True)
class Membership:
    """``left [not] in right``: a value in a list literal, or a constant in a list field."""

    left: Operand
    right: ListLiteral | PathRef
    negated: bool
    span: Span


@dataclass(frozen=True, slots=True)
class Exists:
    """``exists(path)``: the field is present in this case."""

    path: PathRef
    span: Span


@dataclass(frozen=True, slots=True)
class BoolOp:
    """``and`` / ``or`` over two or more operands."""

    op: str
    operands: tuple[Expr, ...]
    span: Span


@dataclass(frozen=True, slots=True)
class Negation:
    """``not operand``."""

    operand: Expr
    span: Span


@dataclass(frozen=True, slots=True)
class Truth:
    """A bare operand used as a condition: a boolean field or ``true``/``false``."""

    operand: Operand
    span: Span


Expr = Compare | Membership | Exists | BoolOp | Negation | Truth

_TOKEN_RE = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<number>-?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?)
  | (?P<string>'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")
  | (?P<op>==|!=|<=|>=|<|>|=)
  | (?P<punct>[()\[\],.])
  | (?P<word>[A-Za-z_][A-Za-z0-9_]*)
    """,
    re.VERBOSE | re.ASCII,  # ASCII: `\d` and `\s` must not match other scripts' digits/spaces
)
KEYWORDS = frozenset({"and", "or", "not", "in", "true", "false", "exists"})


@dataclass(frozen=True, slots=True)
class _Token:
    kind: str
    text: str
    start: int
    end: int


def _tokenize(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    pos = 0
    while pos < len(text):
        match = _TOKEN_RE.match(text, pos)
        if match is None:
            ch = text[pos]
            found = lookalike(ch)
            if found is not None:
                raise ExprSyntaxError(f"unexpected character {ch!r}: {found[1]}", pos)
            if ch in "'\"":
                # A string that never ends: its closing quote may be a look-alike that an
                # autocorrect typed (U+2019 after `'prescription`), the character to fix.
                closing = lookalike(text[pos + 1 :])
                if closing is not None:
                    raise ExprSyntaxError(
                        f"the string opened with {ch!r} is not closed: {closing[1]}",
                        pos + 1 + closing[0],
                    )
                raise ExprSyntaxError(
                    f"unexpected character {ch!r} (strings need matching quotes)", pos
                )
            raise ExprSyntaxError(f"unexpected character {ch!r}", pos)
        kind = match.lastgroup or ""
        if kind == "op" and match.group() == "=":
            raise ExprSyntaxError("`=` is not a comparison; use `==`", pos)
        if kind != "ws":
            tokens.append(_Token(kind, match.group(), match.start(), match.end()))
        pos = match.end()
    tokens.append(_Token("end", "", len(text), len(text)))
    return tokens


def _unquote(raw: str) -> str:
    body = raw[1:-1]
    return re.sub(r"\\(.)", r"\1", body)


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = _tokenize(text)
        self.i = 0
        self.depth = 0

    def enter(self, offset: int) -> None:
        """Count one level of ``(`` or ``not``; refuse nesting past the limit."""
        self.depth += 1
        if self.depth > MAX_EXPRESSION_DEPTH:
            raise ExprSyntaxError(
                f"condition is nested more than {MAX_EXPRESSION_DEPTH} levels deep (`(` and "
                "`not`); simplify it or split it into several rules",
                offset,
                "limit.expression_depth",
            )

    @property
    def tok(self) -> _Token:
        return self.tokens[self.i]

    def advance(self) -> _Token:
        tok = self.tokens[self.i]
        self.i += 1
        return tok

    def at_word(self, word: str) -> bool:
        return self.tok.kind == "word" and self.tok.text == word

    def expect(self, text: str, what: str) -> _Token:
        if self.tok.text != text or self.tok.kind not in ("punct", "op"):
            raise ExprSyntaxError(f"expected {what}, found {self._describe()}", self.tok.start)
        return self.advance()

    def _describe(self) -> str:
        return "end of condition" if self.tok.kind == "end" else f"`{self.tok.text}`"

    def parse(self) -> Expr:
        if self.tok.kind == "end":
            raise ExprSyntaxError("empty condition; write one, or `true` for a catch-all", 0)
        expr = self.parse_or()
        if self.tok.kind != "end":
            hint = ""
            if self.tok.kind == "word" and self.tok.text in ("AND", "OR", "NOT", "&&", "||"):
                hint = " (operators are lower case: and, or, not)"
            raise ExprSyntaxError(
                f"unexpected {self._describe()} after a complete condition{hint}; join "
                "conditions with `and` / `or`",
                self.tok.start,
            )
        return expr

    def parse_or(self) -> Expr:
        return self._bool("or", self.parse_and)

    def parse_and(self) -> Expr:
        return self._bool("and", self.parse_not)

    def _bool(self, op: str, sub: object) -> Expr:
        assert callable(sub)  # noqa: S101 - internal
        first: Expr = sub()
        operands = [first]
        while self.at_word(op):
            self.advance()
            operands.append(sub())
        if len(operands) == 1:
            return first
        return BoolOp(op, tuple(operands), Span(_span(operands[0]).start, _span(operands[-1]).end))

    def parse_not(self) -> Expr:
        if self.at_word("not"):
            start = self.advance().start
            self.enter(start)
            operand = self.parse_not()
            self.depth -= 1
            return Negation(operand, Span(start, _span(operand).end))
        return self.parse_compare()

    def parse_compare(self) -> Expr:
        if self.tok.kind == "punct" and self.tok.text == "(":
            self.enter(self.advance().start)
            inner = self.parse_or()
            self.expect(")", "`)` to close `(`")
            self.depth -= 1
            return inner
        if self.at_word("exists"):
            start = self.advance().start
            self.expect("(", "`(` after exists")
            path = self.parse_path()
            end = self.expect(")", "`)` to close exists(").end
            return Exists(path, Span(start, end))
        left = self.parse_operand()
        if self.tok.kind == "op":
            op = self.advance().text
            right = self.parse_operand()
            return Compare(op, left, right, Span(left.span.start, right.span.end))
        negated = False
        if self.at_word("not") and self.tokens[self.i + 1].text == "in":
            self.advance()
            negated = True
        if self.at_word("in"):
            self.advance()
            target: ListLiteral | PathRef
            if self.tok.kind == "punct" and self.tok.text == "[":
                target = self.parse_list()
            elif self.tok.kind == "word" and self.tok.text not in KEYWORDS:
                target = self.parse_path()
            else:
                raise ExprSyntaxError(
                    f"expected a list like ['a', 'b'] or a list field after `in`, found "
                    f"{self._describe()}",
                    self.tok.start,
                )
            return Membership(left, target, negated, Span(left.span.start, target.span.end))
        return Truth(left, left.span)

    def parse_operand(self) -> Operand:
        tok = self.tok
        if tok.kind == "number":
            self.advance()
            return Literal(_number(tok), Span(tok.start, tok.end))
        if tok.kind == "string":
            self.advance()
            return Literal(_unquote(tok.text), Span(tok.start, tok.end))
        if tok.kind == "word" and tok.text in ("true", "false"):
            self.advance()
            return Literal(tok.text == "true", Span(tok.start, tok.end))
        if tok.kind == "word" and tok.text not in KEYWORDS:
            return self.parse_path()
        raise ExprSyntaxError(
            f"expected a field, a value or `(`, found {self._describe()}", tok.start
        )

    def parse_path(self) -> PathRef:
        tok = self.tok
        if tok.kind != "word" or tok.text in KEYWORDS:
            raise ExprSyntaxError(f"expected a field name, found {self._describe()}", tok.start)
        self.advance()
        parts = [tok.text]
        end = tok.end
        while self.tok.kind == "punct" and self.tok.text == ".":
            self.advance()
            part = self.tok
            if part.kind != "word":
                raise ExprSyntaxError(
                    f"expected a name after `.`, found {self._describe()}", part.start
                )
            self.advance()
            parts.append(part.text)
            end = part.end
        return PathRef(tuple(parts), Span(tok.start, end))

    def parse_list(self) -> ListLiteral:
        start = self.expect("[", "`[`").start
        items: list[Literal] = []
        while not (self.tok.kind == "punct" and self.tok.text == "]"):
            operand = self.parse_operand()
            if not isinstance(operand, Literal):
                raise ExprSyntaxError(
                    "lists may only hold constants ('text', numbers, true/false)",
                    operand.span.start,
                )
            items.append(operand)
            if self.tok.kind == "punct" and self.tok.text == ",":
                self.advance()
            elif not (self.tok.kind == "punct" and self.tok.text == "]"):
                raise ExprSyntaxError(
                    f"expected `,` or `]` in list, found {self._describe()}", self.tok.start
                )
        end = self.advance().end
        return ListLiteral(tuple(items), Span(start, end))


def _number(tok: _Token) -> int | float:
    """The value of a number token, refused when the engine cannot represent it exactly."""
    number: int | float | None = None
    if len(tok.text) <= _MAX_NUMBER_TEXT:  # never int() thousands of digits
        number = float(tok.text) if any(c in tok.text for c in ".eE") else int(tok.text)
    if number is None or not math.isfinite(number) or abs(number) >= MAX_MAGNITUDE:
        shown = tok.text if len(tok.text) <= 20 else tok.text[:17] + "..."
        raise ExprSyntaxError(
            f"number {shown} is out of range: write a number between -1e18 and 1e18",
            tok.start,
            "limit.number",
        )
    return number


def _span(node: Expr) -> Span:
    return node.span


def parse_expression(text: str) -> Expr:
    """Parse one condition.

    Args:
        text: The condition as written in the ruleset.

    Returns:
        Its syntax tree.

    Raises:
        ExprSyntaxError: With the offending character offset and what was expected; also
            when the text is longer than ``MAX_EXPRESSION_LENGTH`` or nested deeper than
            ``MAX_EXPRESSION_DEPTH`` (codes ``limit.expression_length`` / ``_depth``).
    """
    if len(text) > MAX_EXPRESSION_LENGTH:
        raise ExprSyntaxError(
            f"condition is {len(text)} characters long; the limit is {MAX_EXPRESSION_LENGTH}. "
            "Split it into several rules, or move long lists into `params`",
            0,
            "limit.expression_length",
        )
    return _Parser(text).parse()
