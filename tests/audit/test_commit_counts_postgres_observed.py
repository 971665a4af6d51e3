"""The metrics observe the PostgreSQL decision log's commits too, not only SQLite's.

``MetricsRecorder.observe`` made itself the commit observer of a SQLite store only, so a server
on PostgreSQL never counted ``caseroute_audit_commit_size``, ``_seconds`` or
``caseroute_audit_write_failures_total``. Both stores are ``QueuedAppends`` with one observer.
"""

from __future__ import annotations

from pathlib import Path

from prometheus_client import CollectorRegistry

from caseroute.audit.location import PostgresLocation
from caseroute.audit.postgres import PostgresAuditSink
from caseroute.audit.store import SqliteAuditStore
from caseroute.engine.case_rules import EngineKind
from caseroute.metrics import MetricsRecorder, define_metrics
from caseroute.registry import RulesetRegistry
from caseroute.service import RoutingCore
from caseroute.testing import audit_config, reference_ruleset
from tests.pg import pg_server, pg_url
from tests.service.two_workers import CountingSink, command

__all__ = ["pg_server", "pg_url"]  # fixtures used here


def test_a_decision_and_a_probe_on_postgresql_are_observed(pg_url: str, tmp_path: Path) -> None:
    """One decision, one probe: a commit of 1 timed and sized, the probe not counted."""
    sink = PostgresAuditSink(PostgresLocation(pg_url))
    registry = RulesetRegistry()
    registry.add(reference_ruleset(EngineKind.PYTHON))
    core = RoutingCore(registry, sink, audit_config(tmp_path).masker())
    collector = CollectorRegistry()
    recorder = MetricsRecorder(define_metrics(collector))
    try:
        recorder.observe(core)
        core.decide(command())
        assert core.probe_audit()
        value = collector.get_sample_value
        assert (
            sink.observer is recorder,
            sink.commits,
            value("caseroute_audit_commit_size_count", {}),
            value("caseroute_audit_commit_size_sum", {}),
            value("caseroute_audit_commit_seconds_count", {}),
            value("caseroute_audit_write_failures_total", {}),
        ) == (True, 1, 1.0, 1.0, 1.0, 0.0)
    finally:
        sink.close()
        registry.close()


def test_a_sink_without_the_commit_hook_is_left_alone(tmp_path: Path) -> None:
    """A wrapping sink (no QueuedAppends): the core is observed, the sink gets no observer."""
    config = audit_config(tmp_path)
    store = config.open_store()
    assert isinstance(store, SqliteAuditStore)
    sink = CountingSink(store)
    registry = RulesetRegistry()
    registry.add(reference_ruleset(EngineKind.PYTHON))
    core = RoutingCore(registry, sink, config.masker())  # type: ignore[arg-type]  # a partial sink
    recorder = MetricsRecorder(define_metrics(CollectorRegistry()))
    try:
        recorder.observe(core)
        assert (core.observer is recorder, hasattr(sink, "observer")) == (True, False)
    finally:
        store.close()
        registry.close()
