"""Shadow evaluation: disagreements recorded beside the live decision, never slowing it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from caseroute.audit.store import AuditSink
from caseroute.engine.case_rules import EngineKind, LoadedRuleset
from caseroute.engine.pyeval import PythonLeafEvaluator
from caseroute.lifecycle import RulesetLifecycle
from caseroute.registry import RulesetRegistry
from caseroute.rules.model import CompiledRuleset
from caseroute.service import DecideCommand, RoutingCore
from caseroute.shadow import ShadowRunner
from caseroute.testing import (
    CATCH_ALL_RULE,
    NOW,
    GatedMatcher,
    audit_config,
    make_agent,
    make_case,
    make_roster,
    ruleset_with_rules,
)

WAIT_S = 30.0  # an upper bound for an event that should come at once; never a sleep
ESCALATE_ALL = """\
  - id: everything
    when: true
    then: {escalate: {queue: supervisors, reason: review}}
"""


def _write(root: Path, version: str, rules: str) -> None:
    path = root / "routing" / version / "ruleset.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        ruleset_with_rules(rules)
        .replace("ruleset: test\n", "ruleset: routing\n")
        .replace('version: "1"\n', f'version: "{version}"\n')
    )


def write_shadow_tree(root: Path) -> Path:
    """Routing 1 routes by intent (active); 2 escalates everything (shadow), under ``root``."""
    _write(root, "1", CATCH_ALL_RULE)
    _write(root, "2", ESCALATE_ALL)
    (root / "routing" / "serving.yaml").write_text("active: '1'\nshadow: '2'\n")
    return root


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


def _core(registry: RulesetRegistry, store: AuditSink, tmp_path: Path) -> RoutingCore:
    return RoutingCore(registry, store, audit_config(tmp_path / "audit").masker(), lambda: NOW)


def _command(request_id: str, *, version: str = "") -> DecideCommand:
    return DecideCommand(request_id, "", version, (make_case(),), make_roster(make_agent()), NOW)


def test_a_disagreement_is_recorded_and_the_live_decision_unchanged(
    rulesets: Path, store: AuditSink, tmp_path: Path
) -> None:
    """Live ASSIGN by intent, shadow ESCALATE: outcome, queue and rule differ; reply is live."""
    life = RulesetLifecycle(RulesetRegistry(), rulesets, EngineKind.PYTHON, audit=store)
    life.load()
    core = _core(life.registry, store, tmp_path)
    core.shadow = ShadowRunner(life.registry, store)
    (live,) = core.decide(_command("r1")).decisions
    assert core.shadow.wait_idle(WAIT_S)
    core.shadow.close()
    (result,) = store.shadow_results("routing")
    assert (live.outcome.value, live.rule_id) == ("ASSIGN", "rest")
    assert (
        result.decision_id,
        result.live_version,
        result.shadow_version,
        result.live["outcome"],
        result.shadow["outcome"],
        result.shadow["rule_id"],
    ) == (live.decision_id, "1", "2", "ASSIGN", "ESCALATE", "everything")
    assert {"outcome", "queue", "deciding_rule", "escalation"} <= set(result.differences)


def test_pinned_requests_are_not_shadowed(rulesets: Path, store: AuditSink, tmp_path: Path) -> None:
    """A caller pinning a version is not compared: the shadow compares with what serves."""
    life = RulesetLifecycle(RulesetRegistry(), rulesets, EngineKind.PYTHON, audit=store)
    life.load()
    core = _core(life.registry, store, tmp_path)
    core.shadow = ShadowRunner(life.registry, store)
    core.decide(_command("r1", version="1"))
    assert core.shadow.wait_idle(WAIT_S)
    core.shadow.close()
    assert store.shadow_results("routing") == []


def test_a_full_queue_drops_and_counts_without_blocking_the_live_call(
    rulesets: Path, store: AuditSink, tmp_path: Path
) -> None:
    """Worker held on job 1, queue of 1 holds job 2: jobs 3 and 4 are dropped, calls return."""
    gates: list[GatedMatcher] = []

    def prepare(compiled: CompiledRuleset, engine: EngineKind) -> LoadedRuleset:
        del engine
        if compiled.version != "2":
            return LoadedRuleset(compiled, PythonLeafEvaluator(compiled.leaves))
        gate = GatedMatcher(compiled.leaves)
        gates.append(gate)
        return LoadedRuleset(compiled, gate)

    registry = RulesetRegistry(prepare=prepare)
    life = RulesetLifecycle(registry, rulesets, EngineKind.PYTHON, audit=store)
    life.load()
    core = _core(registry, store, tmp_path)
    runner = ShadowRunner(registry, store, capacity=1)
    core.shadow = runner
    core.decide(_command("r1"))
    (gate,) = gates
    assert gate.entered.wait(WAIT_S)  # the worker now holds job 1
    for n in (2, 3, 4):  # each returns although the worker is stuck
        core.decide(_command(f"r{n}"))
    assert runner.dropped_total == 2
    gate.release.set()
    assert runner.wait_idle(WAIT_S)
    runner.close()
    (summary,) = store.shadow_summary("routing")
    assert (len(store.shadow_results("routing")), runner.evaluated) == (2, 2)
    assert summary.dropped == 2
