"""Retries answered from the decision log while its writes fail: health, refusals, metrics.

Two cores over one SQLite decision log stand for two worker processes (as in
``test_retry_from_log.py``): the second never saw the first's request, so a retry reaching it is
evaluated again and found by the append (or, when the append fails, by reading the log).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from caseroute.domain.errors import AuditUnavailableError
from caseroute.engine.case_rules import EngineKind
from caseroute.metrics import MetricsRecorder, define_metrics
from caseroute.registry import RulesetRegistry
from caseroute.service import RoutingCore
from caseroute.testing import (
    audit_config,
    reference_ruleset,
)
from tests.service.two_workers import command as _command
from tests.service.two_workers import sink as _sink
from tests.service.two_workers import two_workers


@pytest.fixture
def workers(tmp_path: Path) -> Iterator[tuple[RoutingCore, RoutingCore]]:
    """Two cores, each with its own registry and switchable store, over one decision log."""
    with two_workers(tmp_path) as cores:
        yield cores


def test_a_retry_answered_while_writes_fail_then_a_new_request_is_refused_and_counted(
    workers: tuple[RoutingCore, RoutingCore],
) -> None:
    """Health is told once; the refused new request after it counts 1, the answered retry 0."""
    first, second = workers
    first.decide(_command())
    heard: list[bool] = []
    second.watch_audit(heard.append)
    _sink(second).writable = False
    second.decide(_command())
    after_retry = (list(heard), second.audit_refusals)
    with pytest.raises(AuditUnavailableError):
        second.decide(_command("new-1"))
    _sink(second).writable = True
    second.decide(_command("new-2"))
    assert (after_retry, heard, second.audit_refusals) == (([False], 0), [False, True], 1)


def test_a_retry_evaluated_again_by_another_worker_counts_only_as_a_replay(
    tmp_path: Path,
) -> None:
    """Its metrics: 1 replay; no decision, triage time, commit or commit size of its own."""
    config = audit_config(tmp_path)
    cores, collectors = [], []
    for _ in range(2):
        registry = RulesetRegistry()
        registry.add(reference_ruleset(EngineKind.PYTHON))
        core = RoutingCore(registry, config.open_store(), config.masker())
        collectors.append(CollectorRegistry())
        MetricsRecorder(define_metrics(collectors[-1])).observe(core)
        cores.append(core)
    try:
        cores[0].decide(_command())
        again = cores[1].decide(_command())  # never seen there: evaluated, found on append
        explanation = again.decisions[0].explanation
        ruleset = {"ruleset": explanation.ruleset_name}
        decided = ruleset | {"version": explanation.ruleset_version, "outcome": "ASSIGN"}
        counts = [
            (
                c.get_sample_value("caseroute_decision_replays_total", ruleset),
                c.get_sample_value("caseroute_decisions_total", decided),
                c.get_sample_value("caseroute_audit_commit_size_count", {}),
                c.get_sample_value("caseroute_audit_commit_seconds_count", {}),
                getattr(core.audit, "commits", None),
            )
            for c, core in zip(collectors, cores, strict=True)
        ]
        assert (again.replayed, counts) == (
            True,
            [(None, 1.0, 1.0, 1.0, 1), (1.0, None, 0.0, 0.0, 0)],
        )
    finally:
        for core in cores:
            core.audit.close()
            core.registry.close()
