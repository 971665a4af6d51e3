"""durable_rules code generation from the engine-neutral IR: guards, sharding, the limits."""

import hashlib
import json
from dataclasses import fields

from caseroute.engine.durable_codegen import (
    MAX_SHARD_WEIGHT,
    durable_condition,
    durable_shards,
    leaf_weight,
)
from caseroute.rules.limits import MAX_LIST_VALUES
from caseroute.rules.model import CompiledRuleset
from caseroute.testing import CATCH_ALL_RULE, compile_text, reference_compiled, ruleset_with_rules


def _rule(rule_id: str, when: str, then: str = "{route: {queue: q}}") -> str:
    return f"  - id: {rule_id}\n    when: {when}\n    then: {then}\n"


def test_durable_conditions_carry_the_guards() -> None:
    """Field refs get an existence guard; every probe tests the type tag; dotted keys only."""
    compiled = compile_text(
        ruleset_with_rules(_rule("a", "sentiment.latest < sentiment.minimum") + CATCH_ALL_RULE)
    )
    ref_leaf = next(leaf for leaf in compiled.leaves.values() if leaf.ref is not None)
    assert durable_condition(ref_leaf) == {
        "$and": [
            {"$ex": {"sentiment.minimum": 1}},
            {"$lt": {"sentiment.latest": {"$m": "sentiment.minimum"}}},
        ]
    }
    shard = json.loads(durable_shards(compiled)[0])
    assert shard["__init"] == {"all": [{"m": {"t": "__init"}}]}
    probe = shard[ref_leaf.leaf_id]["all"][0]["m"]["$and"]
    assert probe[0] == {"t": "case"}


def test_many_leaves_are_sharded_under_the_engine_limit() -> None:
    """More than 60 conditions are split so no shard has over 60 alpha tests."""
    rules = "".join(
        _rule(f"r{i}", f"case.classification_confidence > {i / 100}") for i in range(130)
    )
    compiled = compile_text(ruleset_with_rules(rules + CATCH_ALL_RULE))
    sizes = [len(json.loads(s)) - 1 for s in durable_shards(compiled)]
    assert sum(sizes) == 131
    assert max(sizes) <= MAX_SHARD_WEIGHT
    assert len(sizes) == 3


def test_the_reference_rulesets_shards_are_byte_identical_to_the_compilers_old_output() -> None:
    """Moving codegen into the engine changed no byte of what durable_rules is given."""
    shards = durable_shards(reference_compiled())
    digest = hashlib.sha256("\n".join(shards).encode()).hexdigest()
    assert (
        len(shards),
        digest,
    ) == (1, "c8dca586f827362341557c167ae2f72ceaf1bc13801617f8f7ee2574de2d596c")


def test_the_longest_in_list_fits_one_shard_so_no_leaf_is_split() -> None:
    """A full `in` list that does not fit beside 11 tests starts a new shard, never split."""
    values = ", ".join(f"'r{i}'" for i in range(MAX_LIST_VALUES))
    rules = "".join(_rule(f"r{i}", f"case.classification_confidence > {i / 10}") for i in range(10))
    rules += _rule("b", f'"case.region in [{values}]"')
    compiled = compile_text(ruleset_with_rules(rules + CATCH_ALL_RULE))
    shards = [json.loads(s) for s in durable_shards(compiled)]
    weights = [sum(leaf_weight(compiled.leaves[k]) for k in s if k != "__init") for s in shards]
    assert MAX_LIST_VALUES <= MAX_SHARD_WEIGHT
    assert weights == [11, MAX_LIST_VALUES]


def test_a_compiled_ruleset_carries_no_engine_specific_form() -> None:
    """The language's output is engine-neutral: no durable_rules definitions on it."""
    assert {"leaves", "rules"} <= {f.name for f in fields(CompiledRuleset)}
    assert [f.name for f in fields(CompiledRuleset) if "durable" in f.name] == []
