"""Compile a ruleset: YAML source -> ``CompiledRuleset`` (IR + durable_rules leaf-probe shards).

Named passes, each collecting every problem it finds (a load reports all of them at once):

1. ``schema``     - YAML shape and types (``schema.py``).
2. ``conditions`` - parse each ``when``, resolve fields/params, type-check, lower to IR leaves.
3. ``ordering``   - unique ids, catch-all last, nothing unreachable, safeguarding rule first.
4. ``queues``     - every ``by_intent`` target resolves for every intent.
5. ``durable``    - emit guarded durable_rules probe rules, sharded to stay under engine limits.
6. ``lint``       - warnings that do not block loading (``lint.py``).
"""

from __future__ import annotations

import difflib
import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from caseroute.domain.case import Intent
from caseroute.domain.codec import normalise_flag
from caseroute.domain.errors import Problem, RulesetError, Severity
from caseroute.rules import expr as ast
from caseroute.rules.durable_json import to_durable_json
from caseroute.rules.fields import ATTRIBUTE_PREFIX, CASE_FIELDS, FieldType, Kind
from caseroute.rules.ir import (
    AllOf,
    AnyOf,
    Cond,
    Const,
    Leaf,
    LeafKind,
    LeafRef,
    NotOf,
    is_catch_all,
)
from caseroute.rules.lint import lint_ruleset
from caseroute.rules.model import (
    CompiledRuleset,
    EscalateAction,
    QueueTarget,
    RouteAction,
    Rule,
    Scalar,
)
from caseroute.rules.schema import FLAG_RE, RawRule, RawRuleset, read_ruleset
from caseroute.rules.source import Node, SourceFile, read_yaml

RULESET_FILE = "ruleset.yaml"
MAX_RULESET_BYTES = 256 * 1024  # the reference ruleset is 10 KB; 256 KiB parses in ~3 s worst case
MAX_SHARD_WEIGHT = 60  # durable_rules fails (error 303) past 64 simultaneously true alpha tests
MAX_LIST_VALUES = 50  # an `in` list expands to one $or branch per value inside one shard
FACT_TYPE = "case"  # type tag every probe tests first: nothing then matches the state fact

_FLIP = {"==": "==", "!=": "!=", "<": ">", "<=": ">=", ">": "<", ">=": "<="}
_DURABLE_OPS = {"!=": "$neq", "<": "$lt", "<=": "$lte", ">": "$gt", ">=": "$gte"}


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
            return line + 1, 0
        return line, column + offset

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


def _literal_fits(
    ctx: _Context, ftype: FieldType, path: str, value: object, span: ast.Span
) -> bool:
    """Whether a constant has the field's type; reports a problem when not."""
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
            f"`{path}` is {ftype.describe()} but is compared with {shown}{_type_tip(ftype)}",
            span,
        )
        return False
    if ftype.kind is Kind.ENUM and value not in ftype.values:
        hint = difflib.get_close_matches(str(value), ftype.values, n=1)
        tip = f" (did you mean '{hint[0]}'?)" if hint else ""
        ctx.error(
            "expr.unknown_value",
            f"`{path}` is never '{value}'; it is {ftype.describe()}{tip}",
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
        ctx.error(
            "expr.not_a_condition",
            f"`{path}` is {ftype.describe()}, not true/false; compare it, e.g. `{path} == ...`",
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
    if not _literal_fits(ctx, ftype, path, value, node.span):
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
        if not all(_literal_fits(ctx, ftype, path, v, node.span) for v in values):
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
        if isinstance(value, tuple) or not _literal_fits(ctx, ftype, path, value, node.span):
            return None
        if path == "case.flags" and not FLAG_RE.fullmatch(str(value)):
            ctx.error(
                "expr.unknown_value",
                f"case flags are trimmed, lower-cased and `-` folded to `_` on input, so "
                f"{value!r} is never in case.flags; write {normalise_flag(str(value))!r}",
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


def _compile_conditions(raw: RawRuleset, ctx: _Context) -> dict[str, Cond]:
    conditions: dict[str, Cond] = {}
    for rule in raw.rules:
        ctx.rule_id, ctx.node, ctx.text = rule.rule_id, rule.when_node, rule.when_text
        try:
            tree = ast.parse_expression(rule.when_text)
        except ast.ExprSyntaxError as exc:
            ctx.error(exc.code, f"cannot read condition: {exc.message}", ast.Span(exc.offset, 0))
            continue
        cond = _lower(ctx, tree)
        if cond is not None:
            conditions[rule.rule_id] = cond
    return conditions


def _check_ordering(raw: RawRuleset, conditions: dict[str, Cond], file: str) -> list[Problem]:
    problems: list[Problem] = []
    first_line: dict[str, int] = {}
    for rule in raw.rules:
        if rule.rule_id in first_line:
            problems.append(
                Problem(
                    "rules.duplicate_id",
                    f"rule id `{rule.rule_id}` is already used at line "
                    f"{first_line[rule.rule_id]}; give each rule its own id",
                    file,
                    rule.line,
                    0,
                    rule.rule_id,
                )
            )
        else:
            first_line[rule.rule_id] = rule.line
    catch_all = next(
        (r for r in raw.rules if r.rule_id in conditions and is_catch_all(conditions[r.rule_id])),
        None,
    )
    if raw.rules and catch_all is None:
        problems.append(
            Problem(
                "rules.missing_catch_all",
                "the last rule must be a catch-all (`when: true`) so "
                "every case gets a decision; add one at the end",
                file,
                raw.rules[-1].line,
                0,
                raw.rules[-1].rule_id,
            )
        )
    elif catch_all is not None and catch_all is not raw.rules[-1]:
        after = [r.rule_id for r in raw.rules[raw.rules.index(catch_all) + 1 :]]
        problems.append(
            Problem(
                "rules.unreachable",
                f"rules after the catch-all `{catch_all.rule_id}` can never "
                f"fire: {', '.join(after)}; move the catch-all to the end",
                file,
                catch_all.line,
                0,
                catch_all.rule_id,
            )
        )
    if not raw.rules:
        problems.append(
            Problem(
                "rules.empty", "`rules` is empty; add at least a catch-all", file, raw.rules_line, 0
            )
        )
    return problems


def _check_safeguarding(
    raw: RawRuleset, conditions: dict[str, Cond], leaves: dict[str, Leaf], file: str
) -> list[Problem]:
    """Safeguarding is a hard constraint: rule 1 must escalate flagged cases to its queue."""
    c = raw.constraints
    if c is None or not raw.rules:
        return []
    first = raw.rules[0]
    cond = conditions.get(first.rule_id)
    leaf = leaves.get(cond.leaf_id) if isinstance(cond, LeafRef) else None
    is_flag_test = (
        leaf is not None
        and leaf.kind is LeafKind.CONTAINS
        and leaf.path == "case.flags"
        and leaf.value == c.safeguarding_flag
    )
    action = first.action
    escalates = (
        isinstance(action, EscalateAction)
        and action.queue.name == c.safeguarding_queue
        and action.assign is None
    )
    if is_flag_test and escalates:
        return []
    return [
        Problem(
            "constraints.safeguarding_first",
            f"safeguarding is a hard constraint: the first rule must be `when: \"'"
            f"{c.safeguarding_flag}' in case.flags\"` with `escalate: {{queue: "
            f"{c.safeguarding_queue}, ...}}` and no `assign`, so flagged cases escalate regardless "
            f"of capacity; rule `{first.rule_id}` is first instead",
            file,
            first.line,
            0,
            first.rule_id,
        )
    ]


def _check_queues(raw: RawRuleset, file: str) -> list[Problem]:
    users = [r for r in raw.rules if r.uses_by_intent]
    missing = [i.value for i in Intent if i not in raw.queues]
    if not users or not missing:
        return []
    return [
        Problem(
            "queues.incomplete",
            f"rule `{users[0].rule_id}` routes `by_intent`, but `queues:` has "
            f"no queue for intent(s) {', '.join(missing)}; add them",
            file,
            raw.queues_line or users[0].line,
            0,
            users[0].rule_id,
        )
    ]


def durable_condition(leaf: Leaf) -> dict[str, Any]:
    """The durable_rules condition for one leaf, with the guards its measured defects need.

    Args:
        leaf: The leaf.

    Returns:
        A durable_rules JSON condition (dotted keys only: the nested-object form matches
        every fact, measured).
    """
    path = leaf.path
    if leaf.kind is LeafKind.EXISTS:
        return {"$ex": {path: 1}}
    if leaf.kind is LeafKind.CONTAINS:
        return {"$iany": {path: {"$i": leaf.value}}}
    if leaf.kind is LeafKind.ONE_OF:
        assert isinstance(leaf.value, tuple)  # noqa: S101
        branches = [{path: v} for v in leaf.value]
        return branches[0] if len(branches) == 1 else {"$or": branches}
    op = leaf.op or "=="
    if leaf.ref is not None:
        # A missing $m reference makes every comparison true (measured): guard its presence.
        right: dict[str, Any] = {"$m": leaf.ref}
        test = {path: right} if op == "==" else {_DURABLE_OPS[op]: {path: right}}
        return {"$and": [{"$ex": {leaf.ref: 1}}, test]}
    return {path: leaf.value} if op == "==" else {_DURABLE_OPS[op]: {path: leaf.value}}


def _leaf_weight(leaf: Leaf) -> int:
    return len(leaf.value) if leaf.kind is LeafKind.ONE_OF and isinstance(leaf.value, tuple) else 1


def emit_durable_shards(leaves: list[Leaf]) -> tuple[str, ...]:
    """Pack leaf probes into durable_rules ruleset definitions.

    Every probe is ``type tag AND leaf`` (so nothing matches the session's hidden state fact),
    each shard stays within ``MAX_SHARD_WEIGHT`` alpha tests (error 303 past 64), and each has
    an ``__init`` rule: a session must run one action before ``delete_state`` or it can crash.

    Args:
        leaves: Unique leaves, in id order.

    Returns:
        One JSON definition per shard (empty when there are no leaves).
    """
    shards: list[dict[str, Any]] = []
    current: dict[str, Any] = {}
    weight = 0
    for leaf in leaves:
        w = _leaf_weight(leaf)
        if current and weight + w > MAX_SHARD_WEIGHT:
            shards.append(current)
            current, weight = {}, 0
        current[leaf.leaf_id] = {
            "all": [{"m": {"$and": [{"t": FACT_TYPE}, durable_condition(leaf)]}}]
        }
        weight += w
    if current:
        shards.append(current)
    for shard in shards:
        shard["__init"] = {"all": [{"m": {"t": "__init"}}]}
    return tuple(to_durable_json(dict(sorted(s.items()))) for s in shards)


def compile_source(source: SourceFile) -> CompiledRuleset:
    """Compile a parsed ruleset file.

    Args:
        source: The YAML file.

    Returns:
        The compiled ruleset (lint warnings in ``warnings``).

    Raises:
        RulesetError: With every error (and warning) found, if any error was found.
    """
    raw, problems = read_ruleset(source.root, source.path)
    ctx = _Context(source.path, source.text.splitlines(), raw.params, raw.attributes)
    conditions = _compile_conditions(raw, ctx)
    problems += ctx.problems
    leaves = {leaf.leaf_id: leaf for leaf in ctx.leaves.values()}
    problems += _check_ordering(raw, conditions, source.path)
    problems += _check_safeguarding(raw, conditions, leaves, source.path)
    problems += _check_queues(raw, source.path)
    rules = tuple(
        _rule(r, conditions[r.rule_id], raw.queues)
        for r in raw.rules
        if r.rule_id in conditions and r.action is not None
    )
    problems += lint_ruleset(raw, rules, leaves, ctx.params_used, source.path)
    if raw.constraints is None and not any(
        p.code.startswith("schema.") and "constraints" in p.message for p in problems
    ):
        problems.append(
            Problem("schema.missing_key", "`constraints` needs `safeguarding`", source.path, 1, 0)
        )
    if any(p.severity is Severity.ERROR for p in problems) or raw.constraints is None:
        raise RulesetError(sorted(problems, key=lambda p: (p.line, p.column, p.code)))
    return CompiledRuleset(
        name=raw.name,
        version=raw.version,
        description=raw.description,
        owner=raw.owner,
        path=source.path,
        sha256=source.sha256,
        source_text=source.text,
        params=raw.params,
        signals=raw.signals,
        attributes=raw.attributes,
        constraints=raw.constraints,
        compacts=raw.compacts,
        statuses=raw.statuses,
        ranking=raw.ranking,
        queues=raw.queues,
        leaves=leaves,
        rules=rules,
        durable_shards=emit_durable_shards(list(leaves.values())),
        warnings=tuple(problems),
    )


def _rule(raw: RawRule, cond: Cond, queues: dict[Intent, str]) -> Rule:
    action = raw.action
    assert action is not None  # noqa: S101 - filtered by the caller
    if isinstance(action, RouteAction | EscalateAction) and action.queue.name is None:
        action = replace(action, queue=QueueTarget(None, dict(queues)))
    return Rule(raw.rule_id, raw.description, cond, raw.when_text, action, raw.priority, raw.line)


def ruleset_file(path: Path) -> Path:
    """The YAML file for a ruleset path: the file itself, or ``ruleset.yaml`` in a directory."""
    return path / RULESET_FILE if path.is_dir() else path


def load_ruleset(path: Path) -> CompiledRuleset:
    """Read and compile a ruleset from a file or a ruleset directory.

    Args:
        path: ``rulesets/<name>/`` or a YAML file.

    Returns:
        The compiled ruleset.

    Raises:
        RulesetError: With every problem found (a file over ``MAX_RULESET_BYTES`` is refused
            unread).
    """
    return compile_source(read_yaml(ruleset_file(path), MAX_RULESET_BYTES))
