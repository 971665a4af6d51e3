"""Shadow evaluation edges: a version gone before its turn, a failing shadow, a failing store."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path

import pytest

from caseroute.audit.record import ShadowResult
from caseroute.audit.store import AuditSink
from caseroute.domain.decision import Decision
from caseroute.domain.errors import AuditUnavailableError
from caseroute.engine.case_rules import EngineKind, LeafEvaluation, LoadedRuleset
from caseroute.engine.decide import decide
from caseroute.engine.facts import Fact
from caseroute.engine.pyeval import PythonLeafEvaluator
from caseroute.lifecycle import RulesetLifecycle
from caseroute.registry import RulesetRegistry
from caseroute.rules.model import CompiledRuleset
from caseroute.shadow import ShadowJob, ShadowRunner
from caseroute.testing import (
    NOW,
    GatedMatcher,
    audit_config,
    make_agent,
    make_case,
    make_roster,
)
from tests.test_shadow import write_shadow_tree

WAIT_S = 30.0  # an upper bound for an event that should come at once; never a sleep
PHI = "Jane Doe 1961-02-03"
# The live decision (ASSIGN by `rest`, no escalation) against an error summary: every compared
# field but the (absent) escalation differs, and the error itself is one more kind.
ALL_DIFFER = ("outcome", "agent", "queue", "priority", "deciding_rule", "error")


class _Crashing:
    """A matcher whose engine fails with a message quoting case data."""

    label = "crashing"

    def true_leaves(self, fact: Fact) -> frozenset[str]:
        """Fail the way an engine bug would, quoting the fact."""
        del fact
        raise RuntimeError(f"engine fault on fact {PHI}")


class _DownLog:
    """A decision log whose shadow writes fail (the disk filled up, say)."""

    def append_shadow(
        self, results: Sequence[ShadowResult], dropped: int | Mapping[tuple[str, str], int] = 0
    ) -> None:
        """Always fail."""
        del results, dropped
        raise AuditUnavailableError("the decision log cannot be written")


@pytest.fixture
def rulesets(tmp_path: Path) -> Path:
    """Routing 1 routes by intent (active); 2 escalates everything (shadow)."""
    return write_shadow_tree(tmp_path / "rulesets")


@pytest.fixture
def store(tmp_path: Path) -> Iterator[AuditSink]:
    """A fresh decision log."""
    sink = audit_config(tmp_path / "audit").open_store()
    yield sink
    sink.close()


def _live(registry: RulesetRegistry, decision_id: str) -> tuple[Decision, str]:
    with registry.acquire("routing", "1") as ruleset:
        decision = decide(
            make_case(), make_roster(make_agent()), ruleset, NOW, decision_id=decision_id
        )
        return decision, ruleset.compiled.sha256


def _job(registry: RulesetRegistry, decision_id: str) -> ShadowJob:
    live, sha = _live(registry, decision_id)
    return ShadowJob(make_case(), make_roster(make_agent()), NOW, live, "routing", "1", sha, "2")


ShadowFactory = Callable[[CompiledRuleset], LoadedRuleset]


class _CrashingRuleset(LoadedRuleset):
    """A ruleset whose evaluation fails outside the engine guard (a bug), quoting case data."""

    def evaluate(self, fact: Fact) -> LeafEvaluation:
        """Fail the way a bug would, quoting the fact."""
        del fact
        raise RuntimeError(f"evaluator bug on fact {PHI}")


def _lifecycle(
    rulesets: Path, store: AuditSink, shadow: ShadowFactory | None = None
) -> RulesetLifecycle:
    def prepare(compiled: CompiledRuleset, engine: EngineKind) -> LoadedRuleset:
        del engine
        if compiled.version == "2" and shadow is not None:
            return shadow(compiled)
        return LoadedRuleset(compiled, PythonLeafEvaluator(compiled.leaves))

    registry = RulesetRegistry(prepare=prepare)
    life = RulesetLifecycle(registry, rulesets, EngineKind.PYTHON, audit=store)
    life.load()
    return life


def test_a_shadow_version_removed_before_its_turn_is_an_error_comparison(
    rulesets: Path, store: AuditSink
) -> None:
    """Job b waits while 2 is removed: a stored `error` comparison, never a crash or a hang."""
    gates: list[GatedMatcher] = []

    def gated(compiled: CompiledRuleset) -> LoadedRuleset:
        gates.append(GatedMatcher(compiled.leaves))
        return LoadedRuleset(compiled, gates[-1])

    life = _lifecycle(rulesets, store, gated)
    (gate,) = gates
    runner = ShadowRunner(life.registry, store)
    assert runner.submit(_job(life.registry, "d-a"))
    assert gate.entered.wait(WAIT_S)  # the worker now holds job a (and version 2)
    assert runner.submit(_job(life.registry, "d-b"))
    (rulesets / "routing" / "serving.yaml").write_text("active: '1'\n")
    (rulesets / "routing" / "2" / "ruleset.yaml").unlink()
    life.reload("admin:alice")
    gate.release.set()
    assert runner.wait_idle(WAIT_S)
    runner.close()
    a, b = store.shadow_results("routing")
    assert (a.decision_id, a.shadow["outcome"], a.shadow_sha256 != "") == ("d-a", "ESCALATE", True)
    assert (b.decision_id, b.shadow, b.shadow_sha256, b.differences) == (
        "d-b",
        {"error": "RulesetNotFoundError"},
        "",
        ALL_DIFFER,
    )
    assert (runner.evaluated, runner.disagreed, runner.store_failures) == (2, 2, 0)


def test_an_engine_failure_in_the_shadow_is_an_exception_decision_compared(
    rulesets: Path, store: AuditSink
) -> None:
    """The shadow's engine raises: like a live call, an EXCEPTION decision, compared as such."""
    life = _lifecycle(rulesets, store, lambda compiled: LoadedRuleset(compiled, _Crashing()))
    runner = ShadowRunner(life.registry, store)
    assert runner.submit(_job(life.registry, "d-1"))
    assert runner.wait_idle(WAIT_S)
    runner.close()
    (result,) = store.shadow_results("routing")
    assert (result.shadow["outcome"], result.shadow["rule_id"], result.differences) == (
        "EXCEPTION",
        "engine:error",
        ("outcome", "agent", "queue", "priority", "deciding_rule"),
    )


def test_a_crash_escaping_the_shadow_decide_is_an_error_comparison_without_case_data(
    rulesets: Path, store: AuditSink, caplog: pytest.LogCaptureFixture
) -> None:
    """A bug raising out of decide: an `error` comparison; the log withholds the message (PHI)."""
    life = _lifecycle(rulesets, store, lambda compiled: _CrashingRuleset(compiled, None))
    runner = ShadowRunner(life.registry, store)
    with caplog.at_level(logging.ERROR, "caseroute.shadow"):
        assert runner.submit(_job(life.registry, "d-1"))
        assert runner.wait_idle(WAIT_S)
        runner.close()
    (result,) = store.shadow_results("routing")
    assert (result.shadow, result.differences, result.shadow_sha256 != "") == (
        {"error": "RuntimeError"},
        ALL_DIFFER,
        True,
    )
    (message,) = caplog.messages
    assert message.splitlines()[0] == (
        "shadow decision d-1 under routing@2 failed: RuntimeError (message withheld: it may "
        "quote case values)"
    )
    assert PHI not in caplog.text


def test_a_store_failure_is_counted_and_never_blocks(
    rulesets: Path, store: AuditSink, caplog: pytest.LogCaptureFixture
) -> None:
    """The log refuses shadow results: they are counted lost, and wait_idle still returns."""
    life = _lifecycle(rulesets, store)
    runner = ShadowRunner(life.registry, _DownLog())  # type: ignore[arg-type]
    with caplog.at_level(logging.ERROR, "caseroute.shadow"):
        assert runner.submit(_job(life.registry, "d-1"))
        assert runner.wait_idle(WAIT_S)
        runner.close()
    assert (runner.evaluated, runner.disagreed, runner.store_failures, caplog.messages) == (
        1,
        1,
        1,
        ["shadow results not stored (1 lost)"],
    )
