"""Limits of the ruleset language that exist because of the engine of record (durable_rules).

They are language constants, not engine code: the loader and the condition pass enforce them
with ``file:line`` diagnostics, so a ruleset that passes ``rules check`` never reaches an engine
limit at decision time. The engine's own code generation (``engine/durable_codegen.py``) relies
on them and says where.
"""

from __future__ import annotations

MAX_MAGNITUDE = 1e18
"""Largest magnitude (exclusive) of a number in a ruleset or a case: durable_rules reads a
number's positional text back as a 64-bit integer, and larger doubles would overflow it."""

MAX_LIST_VALUES = 50
"""Most values in one ``in [...]`` list: each value is one ``$or`` branch, i.e. one alpha test,
and one leaf must fit in one durable_rules shard (``MAX_SHARD_WEIGHT``, error 303 past 64)."""
