"""The health check's probe of the decision log, as the metrics see it: no commit when it works.

``RoutingCore.probe_audit`` (called while the log is down, then by health checks) appends
nothing; a working log answers it without counting a commit, so dashboards show no commits of
size 0 and a commit rate of decisions only. A probe the disk refuses is a failed write.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from caseroute.audit.store import SqliteAuditStore
from caseroute.engine.case_rules import EngineKind
from caseroute.metrics import MetricsRecorder, define_metrics
from caseroute.registry import RulesetRegistry
from caseroute.service import RoutingCore
from caseroute.testing import audit_config, reference_ruleset
from tests.service.two_workers import command


class _Metered:
    """A core over a real SQLite log, its metrics collected."""

    def __init__(self, tmp_path: Path) -> None:
        config = audit_config(tmp_path)
        registry = RulesetRegistry()
        registry.add(reference_ruleset(EngineKind.PYTHON))
        store = config.open_store()
        assert isinstance(store, SqliteAuditStore)
        self.store = store
        self.core = RoutingCore(registry, store, config.masker())
        self.collector = CollectorRegistry()
        MetricsRecorder(define_metrics(self.collector)).observe(self.core)

    def counts(self) -> tuple[int, float | None, float | None, float | None]:
        """commits, commit_size count and sum, write failures."""
        value = self.collector.get_sample_value
        return (
            self.store.commits,
            value("caseroute_audit_commit_size_count", {}),
            value("caseroute_audit_commit_seconds_count", {}),
            value("caseroute_audit_write_failures_total", {}),
        )


@pytest.fixture
def metered(tmp_path: Path) -> Iterator[_Metered]:
    """A metered core; closed after the test."""
    made = _Metered(tmp_path)
    yield made
    made.store.close()
    made.core.registry.close()


def test_probes_of_a_working_log_count_no_commit(metered: _Metered) -> None:
    """Three probes around one decision: 1 commit, observed once, no failure."""
    assert metered.core.probe_audit()
    metered.core.decide(command())
    assert (metered.core.probe_audit(), metered.core.probe_audit()) == (True, True)
    assert metered.counts() == (1, 1.0, 1.0, 0.0)


def test_a_probe_the_disk_refuses_counts_as_a_write_failure(
    metered: _Metered, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The transaction fails: the probe reports False and one failed append is counted."""

    def fail(*_: object) -> None:
        raise sqlite3.OperationalError("disk I/O error")

    monkeypatch.setattr(metered.store, "_commit", fail)
    assert metered.core.probe_audit() is False
    assert metered.counts() == (0, 0.0, 0.0, 1.0)
