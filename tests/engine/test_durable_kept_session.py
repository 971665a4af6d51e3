"""durable_rules matcher: one session per shard kept for the matcher's life, the fact retracted."""

from __future__ import annotations

from typing import Any, cast

import pytest

from caseroute.engine.durable import (
    CASE_FACT_ID,
    INIT_FACT_ID,
    KEPT_SID,
    DurableLeafMatcher,
    DurableStateError,
    fnv1a32,
)
from caseroute.engine.durable_codegen import durable_shards
from caseroute.engine.pyeval import PythonLeafEvaluator
from caseroute.testing import CATCH_ALL_RULE, compile_text, ruleset_with_rules

RULES = (
    "  - id: a\n    when: case.classification_confidence > 0.5\n    then: {route: {queue: q}}\n"
    "  - id: b\n    when: case.intent == 'clinical'\n    then: {route: {queue: q}}\n"
)


class _Recorder:
    """The engine module, recording each call's name (and raising once when told to)."""

    def __init__(self, real: Any) -> None:
        self.real = real
        self.calls: list[str] = []
        self.fail_on: str | None = None

    def __getattr__(self, name: str) -> Any:
        function = getattr(self.real, name)

        def call(*args: Any) -> Any:
            self.calls.append(name)
            if name == self.fail_on and f'"{CASE_FACT_ID}"' in str(args[-1])[:12]:
                self.fail_on = None
                raise RuntimeError("engine failure")
            return function(*args)

        return call


@pytest.fixture
def matcher() -> Any:
    """A matcher over two leaf rules and the catch-all, its engine calls recorded."""
    compiled = compile_text(ruleset_with_rules(RULES + CATCH_ALL_RULE))
    made = DurableLeafMatcher(durable_shards(compiled), "kept")
    made._dre = cast("Any", _Recorder(made._dre))
    yield made, PythonLeafEvaluator(compiled.leaves)
    made.close()


def _fact(confidence: float, intent: str) -> dict[str, Any]:
    return {"case": {"classification_confidence": confidence, "intent": intent, "flags": []}}


def test_the_kept_session_id_collides_with_no_fact_id() -> None:
    """The kept sid and its hidden state fact's id hash apart from the fixed fact ids."""
    hashes = {fnv1a32(x) for x in (KEPT_SID, f"sid-{KEPT_SID}", INIT_FACT_ID, CASE_FACT_ID)}
    assert len(hashes) == 4


def test_a_session_is_made_once_and_never_deleted_per_call(matcher: Any) -> None:
    """Three calls: the init fact is asserted once, each case fact retracted, no delete_state."""
    m, _ = matcher
    for _ in range(3):
        m.true_leaves(_fact(0.9, "clinical"))
    calls = m._dre.calls
    assert calls.count("assert_fact") == 1 + 3
    assert calls.count("retract_fact") == 3
    assert calls.count("delete_state") == 0


def test_each_call_sees_only_its_own_fact(matcher: Any) -> None:
    """Alternating facts (all leaves, none, one) each get the Python evaluator's leaves."""
    m, python = matcher
    facts = [_fact(0.9, "clinical"), _fact(0.1, "admin"), _fact(0.9, "admin")] * 20
    got = [m.true_leaves(f) for f in facts]
    assert [python.true_leaves(f) for f in facts] == got
    assert frozenset() == got[1]


def test_an_engine_failure_deletes_the_session_and_the_next_call_starts_a_new_one(
    matcher: Any,
) -> None:
    """A raising assert: the session is deleted; the next call re-asserts init and is right."""
    m, python = matcher
    m.true_leaves(_fact(0.9, "clinical"))
    m._dre.fail_on = "assert_fact"
    with pytest.raises(RuntimeError, match="engine failure"):
        m.true_leaves(_fact(0.9, "clinical"))
    assert m._dre.calls[-1] == "delete_state"
    m._dre.calls.clear()
    fact = _fact(0.1, "clinical")
    assert python.true_leaves(fact) == m.true_leaves(fact)
    assert m._dre.calls.count("assert_fact") == 2  # __init again, then the case fact


def test_a_failing_retraction_deletes_the_session_too(matcher: Any) -> None:
    """A raising retract: the session (holding the case fact) is deleted, the next is fresh."""
    m, python = matcher
    m._dre.fail_on = "retract_fact"
    with pytest.raises(RuntimeError, match="engine failure"):
        m.true_leaves(_fact(0.9, "clinical"))
    assert m._dre.calls[-1] == "delete_state"
    fact = _fact(0.1, "admin")
    assert python.true_leaves(fact) == m.true_leaves(fact)


def test_close_deletes_the_kept_session_before_the_ruleset() -> None:
    """close(): delete_state for the session made, then delete_ruleset."""
    compiled = compile_text(ruleset_with_rules(RULES + CATCH_ALL_RULE))
    m = DurableLeafMatcher(durable_shards(compiled), "closing")
    recorder = _Recorder(m._dre)
    m._dre = cast("Any", recorder)
    m.true_leaves(_fact(0.9, "clinical"))
    recorder.calls.clear()
    m.close()
    assert recorder.calls == ["delete_state", "delete_ruleset"]


def test_close_without_a_call_deletes_only_the_ruleset() -> None:
    """A matcher never asked made no session: close() deletes the ruleset alone."""
    compiled = compile_text(ruleset_with_rules(RULES + CATCH_ALL_RULE))
    m = DurableLeafMatcher(durable_shards(compiled), "unused")
    recorder = _Recorder(m._dre)
    m._dre = cast("Any", recorder)
    m.close()
    assert recorder.calls == ["delete_ruleset"]


def test_a_case_fact_left_by_a_failed_cleanup_fails_that_call_and_the_session_is_renewed(
    matcher: Any,
) -> None:
    """Retract and delete both fail: the next call's assert (code 2) raises, not empty leaves."""
    m, python = matcher
    real = m._dre.real
    deletes = []

    def delete_fails_once(handle: int, sid: str) -> None:
        deletes.append(sid)
        if len(deletes) == 1:
            raise RuntimeError("delete failed")
        real.delete_state(handle, sid)

    m._dre.real = _Patched(real, delete_state=delete_fails_once)
    m._dre.fail_on = "retract_fact"
    with pytest.raises(RuntimeError, match="delete failed"):
        m.true_leaves(_fact(0.9, "clinical"))  # the session still holds this case fact
    with pytest.raises(DurableStateError, match="result code 2") as raised:
        m.true_leaves(_fact(0.9, "clinical"))
    assert raised.value.code == 2
    assert m._dre.calls[-1] == "delete_state"
    fact = _fact(0.9, "clinical")
    assert python.true_leaves(fact) == m.true_leaves(fact) != frozenset()


class _Patched:
    """The engine module with some functions replaced."""

    def __init__(self, real: Any, **replaced: Any) -> None:
        self.real = real
        self.replaced = replaced

    def __getattr__(self, name: str) -> Any:
        return self.replaced.get(name) or getattr(self.real, name)


def test_sessions_renewed_where_nothing_fires_do_not_crash(matcher: Any) -> None:
    """3,000 kept sessions deleted after a failure and made again (init fact first) are safe."""
    m, python = matcher
    fact = _fact(0.1, "admin")  # no leaf true: the session's only action is its __init
    for _ in range(3000):
        m._dre.fail_on = "retract_fact"
        with pytest.raises(RuntimeError, match="engine failure"):
            m.true_leaves(fact)
    assert m._dre.calls.count("delete_state") == 3000
    assert python.true_leaves(fact) == m.true_leaves(fact) == frozenset()
