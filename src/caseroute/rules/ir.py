"""The intermediate form both evaluators run: unique leaf conditions and boolean trees over them.

Leaves are the only thing durable_rules evaluates (one probe rule per leaf); ``and``/``or``/
``not`` are combined in Python, because durable_rules has no NOT and its ``$or`` double-fires.
Semantics are closed-world: a leaf that reads a missing field is false (``not`` of it is true).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

Scalar = str | int | float | bool


class LeafKind(StrEnum):
    """The four shapes of leaf condition."""

    COMPARE = "compare"  # path <op> constant, or path <op> path
    ONE_OF = "one_of"  # path in [constants]
    CONTAINS = "contains"  # constant in list-path
    EXISTS = "exists"  # path is present


COMPARE_OPS = ("==", "!=", "<", "<=", ">", ">=")


@dataclass(frozen=True, slots=True)
class Leaf:
    """One atomic condition over the case fact.

    Attributes:
        leaf_id: Stable id within a compiled ruleset (``L0``, ``L1``...); probe rule name.
        kind: Shape.
        path: Dotted field path read.
        op: Comparison operator (COMPARE only).
        value: Constant (COMPARE/CONTAINS), tuple of constants (ONE_OF), else ``None``.
        ref: Second field path for field-to-field comparisons, else ``None``.
    """

    leaf_id: str
    kind: LeafKind
    path: str
    op: str | None = None
    value: Scalar | tuple[Scalar, ...] | None = None
    ref: str | None = None

    @property
    def key(self) -> tuple[object, ...]:
        """Identity of the condition, ignoring the id (equal leaves are evaluated once)."""
        return (self.kind, self.path, self.op, _typed(self.value), self.ref)

    @property
    def paths(self) -> tuple[str, ...]:
        """Every field path the leaf reads."""
        return (self.path,) if self.ref is None else (self.path, self.ref)


def _typed(value: object) -> object:
    # 1 == True == 1.0 in Python; keep them distinct as condition keys.
    if isinstance(value, tuple):
        return tuple(_typed(v) for v in value)
    return (type(value).__name__, value)


@dataclass(frozen=True, slots=True)
class LeafRef:
    """Use of a leaf inside a rule, with the text the operator wrote for it."""

    leaf_id: str
    text: str


@dataclass(frozen=True, slots=True)
class AllOf:
    """True when every child is true."""

    children: tuple[Cond, ...]


@dataclass(frozen=True, slots=True)
class AnyOf:
    """True when some child is true."""

    children: tuple[Cond, ...]


@dataclass(frozen=True, slots=True)
class NotOf:
    """True when the child is false."""

    child: Cond


@dataclass(frozen=True, slots=True)
class Const:
    """A constant condition (``true`` is the catch-all)."""

    value: bool
    text: str


Cond = LeafRef | AllOf | AnyOf | NotOf | Const


def is_catch_all(cond: Cond) -> bool:
    """Whether a condition is the constant ``true`` (the catch-all rule)."""
    return isinstance(cond, Const) and cond.value


def leaf_ids(cond: Cond) -> list[str]:
    """Every leaf id a condition uses, in source order (with repeats)."""
    if isinstance(cond, LeafRef):
        return [cond.leaf_id]
    if isinstance(cond, AllOf | AnyOf):
        return [leaf for child in cond.children for leaf in leaf_ids(child)]
    if isinstance(cond, NotOf):
        return leaf_ids(cond.child)
    return []


def evaluate_cond(cond: Cond, truth: dict[str, bool]) -> bool:
    """Combine leaf truth values into the condition's value.

    Args:
        cond: The condition tree.
        truth: Leaf id -> value, for every leaf the tree uses.

    Returns:
        Whether the condition holds.
    """
    if isinstance(cond, LeafRef):
        return truth[cond.leaf_id]
    if isinstance(cond, AllOf):
        return all(evaluate_cond(c, truth) for c in cond.children)
    if isinstance(cond, AnyOf):
        return any(evaluate_cond(c, truth) for c in cond.children)
    if isinstance(cond, NotOf):
        return not evaluate_cond(cond.child, truth)
    return cond.value


def _literal_values(
    cond: Cond,
    leaves: dict[str, Leaf],
    of_leaf: Callable[[Leaf], frozenset[str] | None],
    meet: Callable[[list[frozenset[str]]], frozenset[str]],
) -> frozenset[str] | None:
    """The one walk behind ``pinned_values`` and ``required_members``.

    A leaf gives its values (``of_leaf``, ``None`` when it says nothing of the field); an
    ``and`` combines its parts that say something (``meet``); an ``or`` says something only
    when every branch does, and then the union of theirs; ``not`` and constants say nothing.
    """
    if isinstance(cond, LeafRef):
        return of_leaf(leaves[cond.leaf_id])
    if isinstance(cond, AllOf):
        parts = [
            p for c in cond.children if (p := _literal_values(c, leaves, of_leaf, meet)) is not None
        ]
        return meet(parts) if parts else None
    if isinstance(cond, AnyOf):
        branches = [_literal_values(c, leaves, of_leaf, meet) for c in cond.children]
        if any(b is None for b in branches):
            return None
        return frozenset().union(*(b for b in branches if b is not None))
    return None  # not, constants: nothing is said


def pinned_values(cond: Cond, leaves: dict[str, Leaf], path: str) -> frozenset[str] | None:
    """The values ``path`` must take for ``cond`` to hold, when the condition says so literally.

    Args:
        cond: A rule's compiled condition.
        leaves: The ruleset's leaves by id.
        path: A field path such as ``case.patient_location``.

    Returns:
        The values (``path == v``, ``path in [...]``, their ``and``, and ``or`` of branches
        that all pin it), or ``None`` when the condition leaves the field open.
    """

    def of_leaf(leaf: Leaf) -> frozenset[str] | None:
        if leaf.path != path or leaf.ref is not None:
            return None
        if leaf.kind is LeafKind.COMPARE and leaf.op == "==" and isinstance(leaf.value, str):
            return frozenset({leaf.value})
        if leaf.kind is LeafKind.ONE_OF and isinstance(leaf.value, tuple):
            return frozenset(str(v) for v in leaf.value)
        return None

    return _literal_values(cond, leaves, of_leaf, lambda parts: frozenset.intersection(*parts))


def required_members(cond: Cond, leaves: dict[str, Leaf], path: str) -> frozenset[str] | None:
    """The values a list field must hold one of for ``cond`` to hold, when it says so literally.

    ``'GB-ENG' in case.region_areas`` requires GB-ENG; an ``and`` requires what each part does;
    an ``or`` requires one of its branches' (None if a branch requires none). Like
    ``pinned_values``, a value of an ``or`` is reported alone: that branch never assigns.

    Args:
        cond: A rule's compiled condition.
        leaves: The ruleset's leaves by id.
        path: A list field path such as ``case.region_areas``.

    Returns:
        The values, or ``None`` when the condition requires none.
    """

    def of_leaf(leaf: Leaf) -> frozenset[str] | None:
        if leaf.kind is LeafKind.CONTAINS and leaf.path == path and isinstance(leaf.value, str):
            return frozenset({leaf.value})
        return None

    return _literal_values(cond, leaves, of_leaf, lambda parts: frozenset().union(*parts))
