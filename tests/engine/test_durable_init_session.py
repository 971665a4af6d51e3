"""A kept session whose ``__init`` action did not run is never deleted, and the next call works.

``shared/research/durable_rules.md`` (§3.2): deleting a durable_rules session in which no action
ever ran frees uninitialised pointers and can segfault. When asserting or draining a new kept
session's ``__init`` fact fails, the matcher leaves that session alone (``delete_ruleset``
frees it with the ruleset) and starts the shard's next one under a fresh session id, at most
``MAX_ABANDONED_SESSIONS`` times; after that each call fails (an EXCEPTION decision).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any, cast

import pytest

from caseroute.domain.decision import Outcome
from caseroute.engine.case_rules import LoadedRuleset
from caseroute.engine.decide import decide
from caseroute.engine.durable import (
    INIT_FACT_ID,
    KEPT_SID,
    MAX_ABANDONED_SESSIONS,
    SESSION_IDS,
    DurableLeafMatcher,
    DurableSessionError,
    DurableStateError,
    fnv1a32,
)
from caseroute.engine.durable_codegen import durable_shards
from caseroute.engine.pyeval import PythonLeafEvaluator
from caseroute.testing import (
    CATCH_ALL_RULE,
    NOW,
    compile_text,
    make_agent,
    make_case,
    make_roster,
    ruleset_with_rules,
)

RULES = (
    "  - id: a\n    when: case.classification_confidence > 0.5\n    then: {route: {queue: q}}\n"
    "  - id: b\n    when: case.intent == 'clinical'\n    then: {route: {queue: q}}\n"
)


_SID = re.compile(r'"sid": ?"([^"]*)"')


class _Engine:
    """The engine module, each call recorded as (name, sid); a name can be made to fail."""

    def __init__(self, real: Any) -> None:
        self.real = real
        self.calls: list[tuple[str, str]] = []
        self.init_fails: Callable[[str], Any] | None = None
        """Replaces the ``__init`` fact's ``assert_fact`` (given the fact) while set."""
        self.init_drain_fails = 0
        """How many ``__init`` drains to fail (``start_action_for_state`` raising)."""
        self._init_offsets: set[int] = set()

    def __getattr__(self, name: str) -> Any:
        function = getattr(self.real, name)

        def call(*args: Any) -> Any:
            text = str(args[-1])
            found = _SID.search(text)
            sid = found.group(1) if found else ""
            self.calls.append((name, sid or (str(args[1]) if name == "delete_state" else "")))
            is_init = name == "assert_fact" and f'"{INIT_FACT_ID}"' in text
            if is_init and self.init_fails is not None:
                return self.init_fails(text)
            if name == "start_action_for_state" and args[1] in self._init_offsets:
                self._init_offsets.discard(args[1])
                if self.init_drain_fails:
                    self.init_drain_fails -= 1
                    raise RuntimeError("drain failed")
            result = function(*args)
            if is_init:
                self._init_offsets.add(result[1])
            return result

        return call

    def named(self, name: str) -> list[str]:
        """The sids of every call to ``name``, in order."""
        return [sid for called, sid in self.calls if called == name]


def _raise(*_: Any) -> Any:
    raise RuntimeError("Could not assert fact, error code: 101")


@pytest.fixture
def matcher() -> Iterator[tuple[DurableLeafMatcher, _Engine, PythonLeafEvaluator]]:
    """A matcher over two leaf rules and the catch-all (one shard), its engine calls recorded."""
    compiled = compile_text(ruleset_with_rules(RULES + CATCH_ALL_RULE))
    made = DurableLeafMatcher(durable_shards(compiled), "init")
    engine = _Engine(made._dre)
    made._dre = cast("Any", engine)
    yield made, engine, PythonLeafEvaluator(compiled.leaves)
    made.close()


def _fact(confidence: float, intent: str) -> dict[str, Any]:
    return {"case": {"classification_confidence": confidence, "intent": intent, "flags": []}}


def test_every_session_id_collides_with_no_other_nor_a_fact_id() -> None:
    """The kept sid first, then the spares: all, and their state facts' ids, hash apart."""
    ids = [*SESSION_IDS, *(f"sid-{s}" for s in SESSION_IDS), INIT_FACT_ID, "c"]
    assert (SESSION_IDS[0], len(SESSION_IDS)) == (KEPT_SID, 1 + MAX_ABANDONED_SESSIONS)
    assert len({fnv1a32(i) for i in ids}) == len(ids)


def test_a_failing_init_assert_deletes_no_session_and_the_next_call_uses_a_new_one(
    matcher: tuple[DurableLeafMatcher, _Engine, PythonLeafEvaluator],
) -> None:
    """The __init assert raises: no delete_state; the next call starts the next sid, right."""
    m, engine, python = matcher
    engine.init_fails = _raise
    with pytest.raises(RuntimeError, match="error code: 101"):
        m.true_leaves(_fact(0.9, "clinical"))
    assert engine.named("delete_state") == []
    engine.init_fails = None
    fact = _fact(0.9, "clinical")
    assert python.true_leaves(fact) == m.true_leaves(fact) != frozenset()
    assert engine.named("assert_fact") == [KEPT_SID, SESSION_IDS[1], SESSION_IDS[1]]
    assert engine.named("retract_fact") == [SESSION_IDS[1]]
    assert engine.named("delete_state") == []


def test_an_init_whose_action_did_not_run_deletes_no_session(
    matcher: tuple[DurableLeafMatcher, _Engine, PythonLeafEvaluator],
) -> None:
    """The __init fact taken but its drain raises: no delete_state; the next sid works."""
    m, engine, python = matcher
    engine.init_drain_fails = 1
    with pytest.raises(RuntimeError, match="drain failed"):
        m.true_leaves(_fact(0.1, "admin"))
    fact = _fact(0.1, "clinical")
    assert python.true_leaves(fact) == m.true_leaves(fact)
    assert engine.named("delete_state") == []
    assert engine.named("retract_fact") == [SESSION_IDS[1]]


def test_an_init_fact_that_fires_nothing_is_refused_without_a_delete(
    matcher: tuple[DurableLeafMatcher, _Engine, PythonLeafEvaluator],
) -> None:
    """assert_fact answers but no __init action runs (code 2): DurableSessionError, no delete."""
    m, engine, python = matcher
    engine.init_fails = lambda _: (2, 0)
    with pytest.raises(DurableSessionError, match="__init action did not run"):
        m.true_leaves(_fact(0.9, "clinical"))
    engine.init_fails = None
    fact = _fact(0.9, "admin")
    assert python.true_leaves(fact) == m.true_leaves(fact)
    assert engine.named("delete_state") == []


def test_after_the_last_spare_session_every_call_fails_without_touching_the_engine(
    matcher: tuple[DurableLeafMatcher, _Engine, PythonLeafEvaluator],
) -> None:
    """Each sid abandoned once: the next calls raise at once; close() deletes no session."""
    m, engine, _ = matcher
    engine.init_fails = _raise
    for _ in SESSION_IDS:
        with pytest.raises(RuntimeError, match="error code: 101"):
            m.true_leaves(_fact(0.9, "clinical"))
    assert engine.named("assert_fact") == list(SESSION_IDS)
    engine.init_fails = None
    engine.calls.clear()
    for _ in range(2):
        with pytest.raises(DurableSessionError, match="reload the ruleset"):
            m.true_leaves(_fact(0.9, "clinical"))
    assert engine.calls == []
    m.close()
    assert engine.calls == [("delete_ruleset", "")]


def test_a_shard_out_of_sessions_decides_an_exception(
    matcher: tuple[DurableLeafMatcher, _Engine, PythonLeafEvaluator],
) -> None:
    """Through decide(): an engine that cannot start a session sends the case to exceptions."""
    m, engine, _ = matcher
    engine.init_fails = _raise
    for _ in SESSION_IDS:
        with pytest.raises(RuntimeError):
            m.true_leaves(_fact(0.9, "clinical"))
    compiled = compile_text(ruleset_with_rules(RULES + CATCH_ALL_RULE))
    loaded = LoadedRuleset(compiled, m)
    decision = decide(make_case(), make_roster(make_agent()), loaded, NOW)
    assert (decision.outcome, decision.rule_id, decision.reason_codes) == (
        Outcome.EXCEPTION,
        "engine:error",
        ("engine_error",),
    )


def test_a_case_failure_in_a_spare_session_deletes_that_session(
    matcher: tuple[DurableLeafMatcher, _Engine, PythonLeafEvaluator],
) -> None:
    """Its __init ran, so a later failure deletes it (by its sid) and the sid is made again."""
    m, engine, python = matcher
    engine.init_fails = _raise
    with pytest.raises(RuntimeError):
        m.true_leaves(_fact(0.9, "clinical"))
    engine.init_fails = None
    m.true_leaves(_fact(0.9, "clinical"))
    real = engine.real
    engine.real = _Patched(real, retract_fact=_raise)
    with pytest.raises(RuntimeError):
        m.true_leaves(_fact(0.9, "clinical"))
    engine.real = real
    assert engine.named("delete_state") == [SESSION_IDS[1]]
    fact = _fact(0.9, "admin")
    assert python.true_leaves(fact) == m.true_leaves(fact)
    assert engine.named("assert_fact")[-2:] == [SESSION_IDS[1], SESSION_IDS[1]]


class _Patched:
    """The engine module with some functions replaced."""

    def __init__(self, real: Any, **replaced: Any) -> None:
        self.real = real
        self.replaced = replaced

    def __getattr__(self, name: str) -> Any:
        return self.replaced.get(name) or getattr(self.real, name)


def test_a_failing_init_in_a_session_whose_init_ran_before_keeps_its_id(
    matcher: tuple[DurableLeafMatcher, _Engine, PythonLeafEvaluator],
) -> None:
    """Retract and delete failed (the session stays, acted); a raising re-init abandons nothing."""
    m, engine, python = matcher
    m.true_leaves(_fact(0.9, "clinical"))
    real = engine.real
    engine.real = _Patched(real, retract_fact=_raise, delete_state=_raise)
    with pytest.raises(RuntimeError):
        m.true_leaves(_fact(0.9, "clinical"))
    engine.real = real
    engine.init_fails = _raise
    with pytest.raises(RuntimeError, match="error code: 101"):
        m.true_leaves(_fact(0.9, "clinical"))
    engine.init_fails = None
    with pytest.raises(DurableStateError, match="result code 2"):  # the case fact still held
        m.true_leaves(_fact(0.9, "clinical"))
    fact = _fact(0.1, "admin")
    assert python.true_leaves(fact) == m.true_leaves(fact)
    assert set(engine.named("assert_fact")) == {KEPT_SID}
    assert engine.named("delete_state") == [KEPT_SID, KEPT_SID]


def test_an_action_a_retraction_starts_is_completed_and_not_taken_for_a_leaf(
    matcher: tuple[DurableLeafMatcher, _Engine, PythonLeafEvaluator],
) -> None:
    """The retraction's drain completes what it started; the rule it names is no true leaf."""
    m, engine, python = matcher
    real = engine.real
    started: list[str] = []

    def start(handle: int, offset: int) -> Any:
        if engine.calls[-2][0] == "retract_fact":
            started.append("a")
            return ("", '{"a": {"m": {}}}')
        return real.start_action_for_state(handle, offset)

    def complete(handle: int, offset: int) -> Any:
        if started and started[-1] == "a":
            started[-1] = "completed"
            return None
        return real.complete_and_start_action(handle, offset)

    engine.real = _Patched(real, start_action_for_state=start, complete_and_start_action=complete)
    fact = _fact(0.1, "admin")
    assert python.true_leaves(fact) == m.true_leaves(fact) == frozenset()
    assert started == ["completed"]
