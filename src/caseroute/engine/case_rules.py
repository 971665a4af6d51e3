"""Case-level rule evaluation: durable_rules as engine of record, Python as the cross-check."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from caseroute.domain.errors import withheld_cause
from caseroute.engine.durable import DurableLeafMatcher
from caseroute.engine.durable_codegen import durable_shards
from caseroute.engine.facts import Fact
from caseroute.engine.pyeval import PythonLeafEvaluator
from caseroute.engine.trace import TracePlan, plan_traces
from caseroute.rules.model import CompiledRuleset

log = logging.getLogger("caseroute.engine")


class EngineKind(StrEnum):
    """Which evaluator decides: durable_rules (default) or the pure-Python one."""

    DURABLE = "durable"
    PYTHON = "python"


class LeafMatcher(Protocol):
    """Anything that can say which leaves hold for a fact."""

    label: str

    def true_leaves(self, fact: Fact) -> frozenset[str]:
        """Ids of the leaves that hold."""
        ...


@dataclass(frozen=True, slots=True)
class LeafEvaluation:
    """Leaf values for one fact, leaves on which the evaluators disagreed, and engine failure.

    ``engine_error`` (the exception's type name, never its text) is set when the engine of
    record raised; ``truth`` then holds the Python evaluator's values (for the explanation
    only: the decision becomes an EXCEPTION).
    """

    truth: dict[str, bool]
    disagreements: tuple[str, ...]
    engine_error: str | None = None


class LoadedRuleset:
    """A compiled ruleset with its evaluators built; what ``decide`` runs.

    Thread-safe: the Python evaluator is immutable and the durable matcher serialises engine
    access with a process-wide lock.
    """

    def __init__(self, compiled: CompiledRuleset, matcher: LeafMatcher | None) -> None:
        """Wrap a compiled ruleset; ``matcher`` None means the Python evaluator alone decides."""
        self.compiled = compiled
        self.trace_plan: TracePlan = plan_traces(compiled)
        """Choosing and explaining, prepared once (``engine.trace``)."""
        self._python = PythonLeafEvaluator(compiled.leaves)
        self._matcher = matcher
        self.engine_label = (
            f"{matcher.label} (cross-checked by python)" if matcher is not None else "python"
        )

    def evaluate(self, fact: Fact) -> LeafEvaluation:
        """Evaluate every leaf with the engine of record and cross-check with Python.

        Args:
            fact: The case fact.

        Returns:
            The engine of record's leaf values and the ids where the evaluators differ.
        """
        python = self._python.true_leaves(fact)
        if self._matcher is None:
            record = python
        else:
            try:
                record = self._matcher.true_leaves(fact)
            except Exception as exc:  # noqa: BLE001 - any engine failure is an EXCEPTION decision
                # The type and the frames, not the message: an engine's error text may quote
                # the fact, which holds case values (patient names, notes).
                log.error(  # noqa: TRY400 - exc_info would print the message
                    "engine %s failed: %s", self._matcher.label, withheld_cause(exc)
                )
                # The caller sees the type only: engine text is exception text, and callers never
                # get exception text (it may name server internals or quote the fact).
                return LeafEvaluation(self._truth(python), (), type(exc).__name__)
        differ = tuple(sorted(record ^ python, key=lambda leaf_id: int(leaf_id[1:])))
        return LeafEvaluation(self._truth(record), differ)

    def _truth(self, true_leaves: frozenset[str]) -> dict[str, bool]:
        return {leaf_id: leaf_id in true_leaves for leaf_id in self.compiled.leaves}

    def close(self) -> None:
        """Release engine-side resources."""
        if isinstance(self._matcher, DurableLeafMatcher):
            self._matcher.close()


def prepare_ruleset(
    compiled: CompiledRuleset,
    engine: EngineKind = EngineKind.DURABLE,
    *,
    matcher: LeafMatcher | None = None,
) -> LoadedRuleset:
    """Build the evaluators for a compiled ruleset.

    Args:
        compiled: The compiled ruleset.
        engine: Engine of record.
        matcher: Use this matcher as the engine of record instead (tests, other engines).

    Returns:
        A ruleset ``decide`` can run.

    Raises:
        EngineUnavailableError: If durable_rules is selected but cannot be imported.
        EngineValidationError: If durable_rules rejects the compiled definitions.
    """
    if matcher is None and engine is EngineKind.DURABLE:
        # Code generation happens here, per engine: the compiled ruleset is engine-neutral.
        label = f"{compiled.name}@{compiled.version}"
        reads = [path for leaf in compiled.leaves.values() for path in leaf.paths]
        matcher = DurableLeafMatcher(durable_shards(compiled), label, reads=reads)
    return LoadedRuleset(compiled, matcher)
