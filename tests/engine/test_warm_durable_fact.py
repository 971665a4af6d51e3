"""durable_rules is sent only the parts of a fact its probes read, and finds the same leaves."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given, settings

from caseroute.engine.case_rules import EngineKind, prepare_ruleset
from caseroute.engine.durable import DurableLeafMatcher, needed_tree, take_needed
from caseroute.engine.durable_codegen import durable_shards
from caseroute.engine.pyeval import PythonLeafEvaluator
from caseroute.rules.model import CompiledRuleset
from caseroute.testing import CATCH_ALL_RULE, compile_text, ruleset_with_rules
from tests.property.test_differential import EXPRESSIONS, HEADER, facts


def test_needed_tree_keeps_whole_values_over_their_parts() -> None:
    """A path needed whole wins over longer paths into it, in either order."""
    tree = needed_tree(
        ["case.attributes.score", "case.attributes", "sla.risk", "case.intent", "flags"]
    )
    assert (tree) == {
        "case": {"attributes": True, "intent": True},
        "sla": {"risk": True},
        "flags": True,
    }
    assert needed_tree(["case.attributes", "case.attributes.x"]) == {"case": {"attributes": True}}


def test_take_needed_cuts_objects_and_keeps_other_values_as_they_are() -> None:
    """Needed parts of objects are cut; a non-object where parts were needed is kept whole."""
    fact = {
        "case": {"intent": "clinical", "tier": "gold", "attributes": "not an object"},
        "sentiment": {"latest": -0.3, "count": 2},
        "sla": {"risk": "ok"},
    }
    needed = needed_tree(["case.intent", "case.attributes.score", "sentiment.latest", "x.y"])
    assert take_needed(fact, needed) == {
        "case": {"intent": "clinical", "attributes": "not an object"},
        "sentiment": {"latest": -0.3},
    }


SUBSET = [e for i, e in enumerate(EXPRESSIONS) if i % 7 == 3]
"""A ruleset reading some fields only (every seventh zoo expression), refs and lists included."""


def _compile(expressions: list[str]) -> CompiledRuleset:
    rules = "".join(
        f'  - id: z{i}\n    when: "{e}"\n    then: {{route: {{queue: q}}}}\n'
        for i, e in enumerate(expressions)
    )
    return compile_text(ruleset_with_rules(rules + CATCH_ALL_RULE, HEADER))


@pytest.fixture(scope="module")
def matchers() -> Iterator[tuple[DurableLeafMatcher, DurableLeafMatcher, PythonLeafEvaluator]]:
    """The subset ruleset sent whole facts, and sent the parts its leaves read."""
    compiled = _compile(SUBSET)
    reads = [path for leaf in compiled.leaves.values() for path in leaf.paths]
    whole = DurableLeafMatcher(durable_shards(compiled), "whole")
    cut = DurableLeafMatcher(durable_shards(compiled), "cut", reads=reads)
    yield whole, cut, PythonLeafEvaluator(compiled.leaves)
    whole.close()
    cut.close()


@settings(max_examples=150)
@given(fact=facts)
def test_cut_facts_give_the_same_true_leaves(
    matchers: tuple[DurableLeafMatcher, DurableLeafMatcher, PythonLeafEvaluator],
    fact: dict[str, Any],
) -> None:
    """The engine finds the same leaves in the cut fact as in the whole one (and as Python)."""
    whole, cut, python = matchers
    expected = whole.true_leaves(fact)
    assert expected == cut.true_leaves(fact)
    assert expected == python.true_leaves(fact)


def test_prepared_rulesets_send_the_parts_their_leaves_read() -> None:
    """prepare_ruleset's durable matcher reads the tree of its leaves' paths."""
    compiled = _compile(["case.region == case.patient_location", "'vip' in case.flags"])
    loaded = prepare_ruleset(compiled, EngineKind.DURABLE)
    matcher = loaded._matcher
    try:
        assert isinstance(matcher, DurableLeafMatcher)
        needed = {"case": {"flags": True, "region": True, "patient_location": True}}
        assert needed == matcher._needed
    finally:
        loaded.close()
