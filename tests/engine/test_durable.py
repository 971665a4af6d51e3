import json
import threading

import pytest

from caseroute.domain.errors import EngineValidationError
from caseroute.engine.durable import (
    CASE_FACT_ID,
    INIT_FACT_ID,
    DurableLeafMatcher,
    SessionPool,
    fnv1a32,
    validate_in_subprocess,
)
from caseroute.engine.durable_codegen import durable_shards
from caseroute.engine.pyeval import PythonLeafEvaluator
from caseroute.testing import CATCH_ALL_RULE, compile_text, ruleset_with_rules


def test_fnv1a_matches_the_engines_hash_and_its_measured_collision() -> None:
    """Same hash as durable_rules: the colliding ids found in research collide here too."""
    assert fnv1a32("") == 0x811C9DC5
    assert fnv1a32("agent-33049") == fnv1a32("agent-625200")


def test_session_ids_never_collide_with_each_other_or_fact_ids() -> None:
    """Every sid, its hidden state id and the fixed fact ids hash differently."""
    pool = SessionPool(size=500)
    sids = [pool.acquire() for _ in range(500)]
    hashes = [fnv1a32(x) for s in sids for x in (s, f"sid-{s}")]
    hashes += [fnv1a32(INIT_FACT_ID), fnv1a32(CASE_FACT_ID)]
    assert len(set(hashes)) == len(hashes)
    with pytest.raises(EngineValidationError):
        pool.acquire()


def test_bad_definition_is_rejected_in_a_subprocess() -> None:
    """A definition durable_rules refuses (here `$in`, error 202) fails validation cleanly."""
    bad = json.dumps({"r": {"all": [{"m": {"$in": {"x": [1, 2]}}}]}})
    with pytest.raises(EngineValidationError, match="rejected"):
        validate_in_subprocess((bad,))


def test_sessions_where_nothing_fires_do_not_crash() -> None:
    """3,000 decisions, no leaf true, in one kept session are safe (renewals: kept-session file)."""
    compiled = compile_text(ruleset_with_rules(CATCH_ALL_RULE))
    matcher = DurableLeafMatcher(durable_shards(compiled), "nofire")
    try:
        for _ in range(3000):
            assert matcher.true_leaves({"case": {"flags": []}}) == frozenset()
    finally:
        matcher.close()


def test_more_true_leaves_than_one_shard_allows() -> None:
    """130 simultaneously true conditions (error 303 past 64 in one ruleset) all report."""
    rules = "".join(
        f"  - id: r{i}\n    when: case.classification_confidence >= {i / 1000}\n"
        "    then: {route: {queue: q}}\n"
        for i in range(130)
    )
    compiled = compile_text(ruleset_with_rules(rules + CATCH_ALL_RULE))
    matcher = DurableLeafMatcher(durable_shards(compiled), "wide")
    try:
        fact = {"case": {"classification_confidence": 0.5, "flags": []}}
        assert matcher.true_leaves(fact) == PythonLeafEvaluator(compiled.leaves).true_leaves(fact)
        assert len(matcher.true_leaves(fact)) == 130
    finally:
        matcher.close()


def test_concurrent_threads_get_their_own_results() -> None:
    """Eight threads deciding different facts each get the Python evaluator's answer."""
    compiled = compile_text(
        ruleset_with_rules(
            "  - id: a\n    when: case.classification_confidence > 0.5\n"
            "    then: {route: {queue: q}}\n" + CATCH_ALL_RULE
        )
    )
    matcher = DurableLeafMatcher(durable_shards(compiled), "threads")
    python = PythonLeafEvaluator(compiled.leaves)
    errors: list[str] = []

    def work(seed: int) -> None:
        for i in range(300):
            fact = {
                "case": {
                    "classification_confidence": ((seed * 300 + i) % 100) / 100,
                    "flags": ["safeguarding"] if i % 3 == 0 else [],
                }
            }
            if matcher.true_leaves(fact) != python.true_leaves(fact):
                errors.append(f"thread {seed} fact {fact}")

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    matcher.close()
    assert errors == []
