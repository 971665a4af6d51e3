"""The compiled plain-Python evaluator of the IR: closures per leaf, closed-world semantics.

It runs beside durable_rules on every decision (a cross-check) and alone with
``engine = "python"``. A leaf that reads a missing field is false, matching durable_rules once
the compiler's guards are in place.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from typing import Any

from caseroute.engine.facts import Fact
from caseroute.rules.ir import Leaf, LeafKind

MISSING: Any = object()
"""Sentinel for a path that is not in the fact."""

_OPS: dict[str, Callable[[Any, Any], bool]] = {
    "==": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}

Getter = Callable[[Fact], Any]
LeafFn = Callable[[Fact], bool]


def make_getter(path: str) -> Getter:
    """A function reading a dotted path from a fact, or ``MISSING``."""
    parts = tuple(path.split("."))
    if len(parts) == 2:  # most paths (``case.intent``): the loop below, unrolled
        outer, inner = parts

        def get_two(fact: Fact) -> Any:
            top: Any = fact
            if not isinstance(top, dict):
                return MISSING
            node = top.get(outer, MISSING)
            if not isinstance(node, dict):  # MISSING included
                return MISSING
            return node.get(inner, MISSING)

        return get_two

    def get(fact: Fact) -> Any:
        node: Any = fact
        for part in parts:
            if not isinstance(node, dict):
                return MISSING
            node = node.get(part, MISSING)
            if node is MISSING:
                return MISSING
        return node

    return get


def compile_leaf(leaf: Leaf) -> LeafFn:
    """Compile one leaf to a predicate over facts.

    Args:
        leaf: The leaf.

    Returns:
        A function fact -> bool.
    """
    get = make_getter(leaf.path)
    if leaf.kind is LeafKind.EXISTS:
        return lambda fact: get(fact) is not MISSING
    if leaf.kind is LeafKind.CONTAINS:
        wanted = leaf.value

        def contains(fact: Fact) -> bool:
            items = get(fact)
            return isinstance(items, list) and wanted in items

        return contains
    if leaf.kind is LeafKind.ONE_OF:
        assert isinstance(leaf.value, tuple)  # noqa: S101
        allowed = frozenset(leaf.value)

        def one_of(fact: Fact) -> bool:
            value = get(fact)
            return value is not MISSING and value in allowed

        return one_of
    compare = _OPS[leaf.op or "=="]
    if leaf.ref is not None:
        get_ref = make_getter(leaf.ref)

        def compare_fields(fact: Fact) -> bool:
            left, right = get(fact), get_ref(fact)
            return left is not MISSING and right is not MISSING and compare(left, right)

        return compare_fields
    constant = leaf.value

    def compare_constant(fact: Fact) -> bool:
        value = get(fact)
        return value is not MISSING and compare(value, constant)

    return compare_constant


class PythonLeafEvaluator:
    """Evaluates every leaf of a ruleset against a fact."""

    label = "python"

    def __init__(self, leaves: dict[str, Leaf]) -> None:
        """Compile the leaves once; evaluation is then allocation-light."""
        self._fns = tuple((leaf_id, compile_leaf(leaf)) for leaf_id, leaf in leaves.items())

    def true_leaves(self, fact: Fact) -> frozenset[str]:
        """Ids of the leaves that hold for the fact."""
        return frozenset(leaf_id for leaf_id, fn in self._fns if fn(fact))
