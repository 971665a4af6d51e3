"""durable_rules code generation: the guarded leaf-probe shards for a compiled ruleset's IR.

The language package (``rules/``) produces engine-neutral leaves; this module alone knows how
durable_rules 2.0.28 must be spoken to (``shared/research/durable_rules.md``). The matcher
(``durable.py``) and the subprocess validation (``durable_check.py``, fed by ``durable.py``)
both use the shards built here, so what is validated is exactly what decides.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from caseroute.engine.durable_json import to_durable_json
from caseroute.rules.ir import Leaf, LeafKind
from caseroute.rules.model import CompiledRuleset

MAX_SHARD_WEIGHT = 60  # durable_rules fails (error 303) past 64 simultaneously true alpha tests
FACT_TYPE = "case"  # type tag every probe tests first: nothing then matches the state fact

# Invariant: MAX_LIST_VALUES <= MAX_SHARD_WEIGHT, so the heaviest leaf (an `in` list) fits in one
# shard and packing never splits a leaf; the condition pass refuses longer lists with file:line
# (expr.list_size), which is why this engine limit surfaces at load time and in `rules check`.

_DURABLE_OPS = {"!=": "$neq", "<": "$lt", "<=": "$lte", ">": "$gt", ">=": "$gte"}


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


def leaf_weight(leaf: Leaf) -> int:
    """Alpha tests a leaf's probe adds to its shard: one per ``in`` value, else one."""
    return len(leaf.value) if leaf.kind is LeafKind.ONE_OF and isinstance(leaf.value, tuple) else 1


def emit_durable_shards(leaves: Iterable[Leaf]) -> tuple[str, ...]:
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
        w = leaf_weight(leaf)
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


def durable_shards(compiled: CompiledRuleset) -> tuple[str, ...]:
    """The durable_rules definitions for a compiled ruleset (what ``prepare_ruleset`` loads).

    Args:
        compiled: The compiled ruleset.

    Returns:
        One JSON definition per shard, leaves in id order.
    """
    return emit_durable_shards(compiled.leaves.values())
