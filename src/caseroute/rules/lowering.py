"""The condition pass: each rule's ``when`` parsed, type-checked and lowered to IR leaves.

Fields and params are resolved, types checked, and every condition lowered to the
engine-neutral IR (``ir.py``); every problem is collected, none stops the pass.
"""

from __future__ import annotations

import difflib
import json
from dataclasses import dataclass, field

from caseroute.domain.errors import Problem, Severity
from caseroute.domain.flag_spelling import normalise_flag
from caseroute.domain.reader import FLAG_SHAPE, IDENTIFIER, short_flag
from caseroute.rules import expr as ast
from caseroute.rules.fields import ATTRIBUTE_PREFIX, CASE_FIELDS, FieldType, Kind
from caseroute.rules.ir import AllOf, AnyOf, Cond, Const, Leaf, LeafKind, LeafRef, NotOf
from caseroute.rules.limits import MAX_LIST_VALUES
from caseroute.rules.model import Scalar
from caseroute.rules.schema import FLAG_RE, RawRuleset
from caseroute.rules.source import Node

_FLIP = {"==": "==", "!=": "!=", "<": ">", "<=": ">=", ">": "<", ">=": "<="}


@dataclass(slots=True)
class _Context:
    """State shared by the condition pass."""

    file: str
    source_lines: list[str]
    params: dict[str, Scalar | tuple[Scalar, ...]]
    attributes: dict[str, FieldType]
    problems: list[Problem] = field(default_factory=list)
    leaves: dict[tuple[object, ...], Leaf] = field(default_factory=dict)
    params_used: set[str] = field(default_factory=set)
    param_lines: dict[str, int] = field(default_factory=dict)
    rule_id: str = ""
    node: Node | None = None
    text: str = ""

    def error(
        self,
        code: str,
        message: str,
        span: ast.Span | None = None,
        severity: Severity = Severity.ERROR,
    ) -> None:
        line, column = self.position(span.start if span else 0)
        self.problems.append(
            Problem(code, message, self.file, line, column, self.rule_id, severity)
        )

    def position(self, offset: int) -> tuple[int, int]:
        """File line/column of a character offset in the current condition."""
        assert self.node is not None  # noqa: S101 - set before any condition is lowered
        line, column = self.node.line, self.node.column
        text = self.source_lines[line - 1] if 0 < line <= len(self.source_lines) else ""
        start = text[column - 1 : column] if column > 0 else ""
        if start in ("'", '"'):
            column += 1
        elif start in ("|", ">"):  # block scalar: the text starts on the next line
            return self._block_position(line, offset)
        return line, column + offset

    def _block_position(self, line: int, offset: int) -> tuple[int, int]:
        """Line/column of ``offset`` in a block scalar written from the line after ``line``.

        Each source line's text (indentation dropped) appears in the condition in order,
        joined by a newline (``|``) or a space (``>``), so finding them one after another
        maps the offset back to the line it was written on.
        """
        cursor = 0
        end = (line + 1, 0)  # past the last line read: "found end of condition" points there
        for number in range(line + 1, len(self.source_lines) + 1):
            written = self.source_lines[number - 1]
            content = written.strip()
            if not content:
                continue
            at = self.text.find(content, cursor)
            if at < 0:  # a line after the block
                break
            indent = len(written) - len(written.lstrip())
            if offset <= at + len(content):
                return number, indent + max(offset - at, 0) + 1
            cursor = at + len(content)
            end = (number, indent + len(content) + 1)
        return end

    def leaf(
        self,
        kind: LeafKind,
        path: str,
        op: str | None = None,
        value: Scalar | tuple[Scalar, ...] | None = None,
        ref: str | None = None,
    ) -> Leaf:
        probe = Leaf("", kind, path, op, value, ref)
        existing = self.leaves.get(probe.key)
        if existing is not None:
            return existing
        made = Leaf(f"L{len(self.leaves)}", kind, path, op, value, ref)
        self.leaves[probe.key] = made
        return made


def _known_paths(ctx: _Context) -> list[str]:
    return [
        *CASE_FIELDS,
        *(ATTRIBUTE_PREFIX + a for a in ctx.attributes),
        *(f"params.{p}" for p in ctx.params),
    ]


_Resolved = tuple[str, FieldType] | tuple[None, Scalar | tuple[Scalar, ...]] | None


def _resolve(ctx: _Context, path: ast.PathRef) -> _Resolved:
    """A field (path, type), a param constant (None, value), or None after reporting."""
    dotted = path.dotted
    if path.parts[0] == "params":
        name = ".".join(path.parts[1:])
        if name in ctx.params:
            ctx.params_used.add(name)
            return None, ctx.params[name]
        hint = difflib.get_close_matches(name, list(ctx.params), n=1)
        tip = f" (did you mean `params.{hint[0]}`?)" if hint else "; define it under `params:`"
        ctx.error("expr.unknown_param", f"unknown param `{dotted}`{tip}", path.span)
        return None
    if dotted.startswith(ATTRIBUTE_PREFIX):
        key = dotted.removeprefix(ATTRIBUTE_PREFIX)
        if key in ctx.attributes:
            return dotted, ctx.attributes[key]
        ctx.error(
            "expr.undeclared_attribute",
            f"case attribute `{key}` is not declared; add `{key}: string|number|boolean` "
            "under `attributes:` so its type can be checked",
            path.span,
        )
        return None
    if dotted in CASE_FIELDS:
        return dotted, CASE_FIELDS[dotted]
    hint = difflib.get_close_matches(dotted, _known_paths(ctx), n=1, cutoff=0.7)
    tip = f" (did you mean `{hint[0]}`?)" if hint else "; run `caseroute rules fields` for the list"
    ctx.error("expr.unknown_field", f"unknown field `{dotted}`{tip}", path.span)
    return None


REGION_PATHS = ("case.region", "case.region_areas")
"""Fields holding territory codes: a tested value must have a code's shape to ever match."""


def _param_origin(ctx: _Context, operand: ast.Operand | ast.ListLiteral) -> str:
    """`` (in `params.x`, line 22: fix it there)`` when ``operand`` reads a param, else ``""``.

    A wrong value in a param is reported at each condition reading it, whose text does not
    show the value: the operator is told where the value is written.
    """
    if not isinstance(operand, ast.PathRef) or operand.parts[0] != "params":
        return ""
    name = ".".join(operand.parts[1:])
    line = ctx.param_lines.get(name)  # always there: an unknown param was refused before
    return f" (a value of `params.{name}`, line {line}: fix it there)" if line else ""


def _literal_fits(
    ctx: _Context, ftype: FieldType, path: str, value: object, span: ast.Span, origin: str = ""
) -> bool:
    """Whether a constant has the field's type; reports a problem when not.

    ``origin`` says where the constant is written when it is not in the condition itself
    (``_param_origin``).
    """
    if ftype.kind is Kind.NUMBER:
        ok = isinstance(value, int | float) and not isinstance(value, bool)
    elif ftype.kind is Kind.BOOLEAN:
        ok = isinstance(value, bool)
    else:  # strings, enums and string lists all hold text
        ok = isinstance(value, str)
    if not ok:
        shown = f"'{value}'" if isinstance(value, str) else json.dumps(value)
        ctx.error(
            "expr.type_mismatch",
            f"`{path}` is {ftype.describe()} but is compared with {shown}{origin}"
            f"{_type_tip(ftype)}",
            span,
        )
        return False
    if path in REGION_PATHS and isinstance(value, str) and not IDENTIFIER.fullmatch(value):
        # Requests refuse such a region, so the test never held, and a rule meant for
        # Scotland quietly matched nobody: an error, like a value an enum never has.
        ctx.error(
            "expr.unknown_value",
            f"no region code is {value!r}{origin}: codes are letters, digits and _ . : / -, "
            "starting with a letter or digit (a request with another region is refused), so "
            "this test never holds as written; write the code as cases send it, such as GB-SCT",
            span,
        )
        return False
    if ftype.kind is Kind.ENUM and value not in ftype.values:
        hint = difflib.get_close_matches(str(value), ftype.values, n=1)
        tip = f" (did you mean '{hint[0]}'?)" if hint else ""
        ctx.error(
            "expr.unknown_value",
            f"`{path}` is never '{value}'{origin}; it is {ftype.describe()}{tip}",
            span,
        )
        return False
    return True


def _type_tip(ftype: FieldType) -> str:
    if ftype.kind is Kind.NUMBER:
        return "; compare it with a number such as 3 or -0.5 (no quotes)"
    if ftype.kind is Kind.BOOLEAN:
        return "; compare it with true or false"
    return "; put the value in quotes, e.g. 'text'"


def _lower(ctx: _Context, node: ast.Expr) -> Cond | None:
    text = ctx.text[node.span.start : node.span.end]
    if isinstance(node, ast.BoolOp):
        children = [_lower(ctx, operand) for operand in node.operands]
        if any(c is None for c in children):
            return None
        kids = tuple(c for c in children if c is not None)
        return AllOf(kids) if node.op == "and" else AnyOf(kids)
    if isinstance(node, ast.Negation):
        child = _lower(ctx, node.operand)
        return None if child is None else NotOf(child)
    if isinstance(node, ast.Exists):
        resolved = _resolve(ctx, node.path)
        if resolved is None or resolved[0] is None:
            if resolved is not None:
                ctx.error(
                    "expr.type_mismatch", "exists() takes a field, not a param", node.path.span
                )
            return None
        return LeafRef(ctx.leaf(LeafKind.EXISTS, resolved[0]).leaf_id, text)
    if isinstance(node, ast.Truth):
        return _lower_truth(ctx, node, text)
    if isinstance(node, ast.Compare):
        return _lower_compare(ctx, node, text)
    return _lower_membership(ctx, node, text)


def _lower_truth(ctx: _Context, node: ast.Truth, text: str) -> Cond | None:
    operand = node.operand
    if isinstance(operand, ast.Literal):
        if isinstance(operand.value, bool):
            return Const(operand.value, text)
        ctx.error(
            "expr.not_a_condition",
            f"{text} is a value, not a condition; compare it with a field",
            node.span,
        )
        return None
    resolved = _resolve(ctx, operand)
    if resolved is None:
        return None
    path, ftype = resolved
    if path is None:
        if isinstance(ftype, bool):
            return Const(ftype, text)
        ctx.error("expr.not_a_condition", f"`{text}` is a constant, not a condition", node.span)
        return None
    assert isinstance(ftype, FieldType)  # noqa: S101 - _resolve pairs a path with its type
    if ftype.kind is not Kind.BOOLEAN:
        # A list is tested by membership: the advice was `case.region_areas == ...`, itself an
        # error (expr.type_mismatch), so following it led from one error to another.
        fix = (
            f"test one value, e.g. `'value' in {path}` (`==` on a list is an error)"
            if ftype.kind is Kind.STRING_LIST
            else f"compare it, e.g. `{path} == ...`"
        )
        ctx.error(
            "expr.not_a_condition",
            f"`{path}` is {ftype.describe()}, not true/false; {fix}",
            node.span,
        )
        return None
    return LeafRef(ctx.leaf(LeafKind.COMPARE, path, "==", value=True).leaf_id, text)


def _lower_compare(ctx: _Context, node: ast.Compare, text: str) -> Cond | None:
    sides: list[_Resolved] = []
    for operand in (node.left, node.right):
        if isinstance(operand, ast.Literal):
            sides.append((None, operand.value))
        else:
            sides.append(_resolve(ctx, operand))
    left, right = sides
    if left is None or right is None:
        return None
    op = node.op
    if left[0] is None and right[0] is None:
        ctx.error(
            "expr.constant", f"`{text}` compares two constants; one side must be a field", node.span
        )
        return None
    if left[0] is None:  # constant on the left: flip so the field is first
        left, right, op = right, left, _FLIP[op]
    path, ftype = left
    assert path is not None  # noqa: S101 - the constant side was flipped to the right
    assert isinstance(ftype, FieldType)  # noqa: S101
    if ftype.kind is Kind.STRING_LIST:
        ctx.error(
            "expr.type_mismatch",
            f"`{path}` is a list; test membership with `'value' in {path}`",
            node.span,
        )
        return None
    if op not in ("==", "!=") and ftype.kind is not Kind.NUMBER:
        ctx.error(
            "expr.type_mismatch",
            f"`{op}` orders numbers, but `{path}` is "
            f"{ftype.describe()}; use == or != or `in [...]`",
            node.span,
        )
        return None
    if right[0] is not None:  # field against field
        ref, rtype = right
        assert isinstance(rtype, FieldType)  # noqa: S101
        if (rtype.kind, rtype.values) != (ftype.kind, ftype.values):
            ctx.error(
                "expr.type_mismatch",
                f"`{path}` is {ftype.describe()} but `{ref}` is "
                f"{rtype.describe()}; compare like with like",
                node.span,
            )
            return None
        return LeafRef(ctx.leaf(LeafKind.COMPARE, path, op, ref=ref).leaf_id, text)
    value = right[1]
    if isinstance(value, tuple):
        ctx.error(
            "expr.type_mismatch", f"`{text}` compares with a list; use `in` for lists", node.span
        )
        return None
    if not _literal_fits(ctx, ftype, path, value, node.span, _param_origin(ctx, node.right)):
        return None
    return LeafRef(ctx.leaf(LeafKind.COMPARE, path, op, value=value).leaf_id, text)


def _lower_membership(ctx: _Context, node: ast.Membership, text: str) -> Cond | None:
    left: _Resolved = (
        (None, node.left.value) if isinstance(node.left, ast.Literal) else _resolve(ctx, node.left)
    )
    if isinstance(node.right, ast.ListLiteral):
        right: _Resolved = (None, tuple(item.value for item in node.right.items))
    else:
        right = _resolve(ctx, node.right)
    if left is None or right is None:
        return None
    made: Cond | None = None
    if left[0] is not None and right[0] is None:  # field in [constants]
        path, ftype = left
        assert isinstance(ftype, FieldType)  # noqa: S101
        values = right[1] if isinstance(right[1], tuple) else None
        if values is None:
            ctx.error(
                "expr.type_mismatch",
                f"`in` needs a list on the right, e.g. `{path} in ['a', 'b']`",
                node.span,
            )
            return None
        if ftype.kind is Kind.STRING_LIST:
            ctx.error(
                "expr.type_mismatch",
                f"`{path}` is a list; test one value with `'value' in {path}`",
                node.span,
            )
            return None
        if not values or len(values) > MAX_LIST_VALUES:
            ctx.error(
                "expr.list_size",
                f"`in` lists need 1 to {MAX_LIST_VALUES} values, got {len(values)}",
                node.span,
            )
            return None
        origin = _param_origin(ctx, node.right)
        if not all(_literal_fits(ctx, ftype, path, v, node.span, origin) for v in values):
            return None
        unique = tuple(dict.fromkeys(values))
        made = LeafRef(ctx.leaf(LeafKind.ONE_OF, path, value=unique).leaf_id, text)
    elif left[0] is None and right[0] is not None:  # constant in list field
        path, ftype = right
        assert isinstance(ftype, FieldType)  # noqa: S101
        value = left[1]
        if ftype.kind is not Kind.STRING_LIST:
            ctx.error(
                "expr.type_mismatch",
                f"`{path}` is {ftype.describe()}, not a list; use `{path} == ...`",
                node.span,
            )
            return None
        if isinstance(value, tuple):
            # Reported, never dropped: a rule whose condition is not lowered is left out.
            shown = node.left.dotted if isinstance(node.left, ast.PathRef) else str(value)
            examples = " or ".join(f"{v!r} in {path}" for v in value[:2]) or f"'value' in {path}"
            ctx.error(
                "expr.type_mismatch",
                f"`{shown}` is a list, and `in` tests one value against `{path}`; test each "
                f"value, e.g. `{examples}`",
                node.span,
            )
            return None
        if not _literal_fits(ctx, ftype, path, value, node.span):
            return None
        # Never holding, like a value the field never has: an error, not lint. First the one
        # definition of a flag that requests share (domain/reader.py), on the input form.
        normal = normalise_flag(str(value)) if path == "case.flags" else ""
        short = short_flag(normal) if FLAG_RE.fullmatch(normal) else None
        if short is not None:
            ctx.error(
                "expr.unknown_value",
                f"{short}, and a request carrying one is refused (INVALID_ARGUMENT at "
                "`case.flags[i]`), so no case has it and this test never holds; write the flag "
                "in full",
                node.span,
            )
            return None
        if path == "case.flags" and not FLAG_RE.fullmatch(str(value)):
            # Suggest the input form only when it is a flag: '' or 'safe guarding' has none,
            # and "write ''" told the author to write what was refused.
            fix = f"write {normal!r}" if FLAG_RE.fullmatch(normal) else "write the flag in full"
            ctx.error(
                "expr.unknown_value",
                f"{value!r} is never in case.flags: a request's flags are trimmed, lower-cased "
                f"and have `-` folded to `_`, and must then be {FLAG_SHAPE}; {fix}",
                node.span,
            )
            return None
        made = LeafRef(ctx.leaf(LeafKind.CONTAINS, path, value=value).leaf_id, text)
    elif left[0] is None:
        ctx.error(
            "expr.constant", f"`{text}` tests constants only; one side must be a field", node.span
        )
    else:
        ctx.error(
            "expr.unsupported",
            f"`{text}` tests a field against another field's list; compare with constants instead",
            node.span,
        )
    if made is None:
        return None
    return NotOf(made) if node.negated else made


@dataclass(frozen=True, slots=True)
class LoweredConditions:
    """What the condition pass produces.

    Attributes:
        conditions: Rule position (``RawRule.index``) -> its lowered condition (only rules whose
            condition lowered). Keyed by position, not id: two rules sharing an id (already
            ``rules.duplicate_id``) keep their own conditions (review: the second one's
            condition was judged as the first's, giving false lint warnings).
        leaves: Leaf id -> leaf, unique conditions in id order (``L0``, ``L1``, ...).
        params_used: Params some condition reads (lint reports the others).
        problems: Every problem found, in rule order.
    """

    conditions: dict[int, Cond]
    leaves: dict[str, Leaf]
    params_used: frozenset[str]
    problems: tuple[Problem, ...]


def lower_conditions(raw: RawRuleset, file: str, source_text: str) -> LoweredConditions:
    """Parse and lower every rule's condition.

    Args:
        raw: The ruleset after the schema pass.
        file: The source file's path, for problems.
        source_text: The file's text (problem columns inside quoted or block scalars).

    Returns:
        The lowered conditions, the unique leaves and every problem found.
    """
    ctx = _Context(file, source_text.splitlines(), raw.params, raw.attributes)
    ctx.param_lines = raw.param_lines
    conditions: dict[int, Cond] = {}
    for rule in raw.rules:
        ctx.rule_id, ctx.node, ctx.text = rule.rule_id, rule.when_node, rule.when_text
        try:
            tree = ast.parse_expression(rule.when_text)
        except ast.ExprSyntaxError as exc:
            ctx.error(exc.code, f"cannot read condition: {exc.message}", ast.Span(exc.offset, 0))
            continue
        cond = _lower(ctx, tree)
        if cond is not None:
            conditions[rule.index] = cond
    leaves = {leaf.leaf_id: leaf for leaf in ctx.leaves.values()}
    return LoweredConditions(conditions, leaves, frozenset(ctx.params_used), tuple(ctx.problems))
