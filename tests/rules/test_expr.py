import pytest

from caseroute.rules.expr import (
    BoolOp,
    Compare,
    Exists,
    ExprSyntaxError,
    Literal,
    Membership,
    Negation,
    PathRef,
    parse_expression,
)


def test_precedence_not_binds_tighter_than_and_than_or() -> None:
    """`a or not b and c` parses as `a or ((not b) and c)`."""
    tree = parse_expression("case.x == 1 or not exists(case.y) and case.z == 2")
    assert isinstance(tree, BoolOp)
    assert tree.op == "or"
    right = tree.operands[1]
    assert isinstance(right, BoolOp)
    assert right.op == "and"
    assert isinstance(right.operands[0], Negation)
    assert isinstance(right.operands[0].operand, Exists)


def test_spans_quote_the_source_exactly() -> None:
    """Each node's span slices back to the text the operator wrote."""
    text = "sentiment.latest <= params.neg and 'vip' in case.flags"
    tree = parse_expression(text)
    assert isinstance(tree, BoolOp)
    assert [text[o.span.start : o.span.end] for o in tree.operands] == [
        "sentiment.latest <= params.neg",
        "'vip' in case.flags",
    ]


def test_literals_and_lists() -> None:
    """Numbers, strings with escapes, booleans and `not in` lists parse to values."""
    tree = parse_expression(r"case.a not in ['x', 'it\'s', -1.5, 2, true]")
    assert isinstance(tree, Membership)
    assert tree.negated
    assert isinstance(tree.left, PathRef)
    assert [i.value for i in tree.right.items] == ["x", "it's", -1.5, 2, True]  # type: ignore[union-attr]
    compare = parse_expression("3 > case.n")
    assert isinstance(compare, Compare)
    assert compare.left == Literal(3, compare.left.span)


@pytest.mark.parametrize(
    ("text", "offset", "message"),
    [
        ("case.x = 1", 7, "`=` is not a comparison; use `==`"),
        ("case.x ==", 9, "expected a field, a value or `(`, found end of condition"),
        ("case.x == 'a", 10, 'unexpected character "\'" (strings need matching quotes)'),
        (
            "case.intent == 'prescription\u2019",
            28,
            (
                "the string opened with \"'\" is not closed: '\u2019' (U+2019 RIGHT SINGLE "
                "QUOTATION MARK) looks like ' but is not it (text copied from a document or web "
                "page?): type a plain ' instead"
            ),
        ),
        (
            "case.x == 1 case.y == 2",
            12,
            "unexpected `case` after a complete condition; join conditions with `and` / `or`",
        ),
        ("(case.x == 1", 12, "expected `)` to close `(`, found end of condition"),
        ("case.x in [case.y]", 11, "lists may only hold constants ('text', numbers, true/false)"),
        ("", 0, "empty condition; write one, or `true` for a catch-all"),
    ],
)
def test_syntax_errors_point_at_the_problem(text: str, offset: int, message: str) -> None:
    """Errors carry the character offset and say what was expected."""
    with pytest.raises(ExprSyntaxError) as exc:
        parse_expression(text)
    assert (exc.value.offset, exc.value.message) == (offset, message)
