"""``caseroute_audit_write_failures_total`` counts writes the log refused, answered or not.

A retry reaching a worker that never saw it is appended there; when that transaction fails (the
disk refused it) the log is read and the stored decisions answer the retry. The write still
failed, so it counts, as its HELP text and docs/operations.md say: the metric is the disk's
refusals (the alert on it), not the callers refused (``caseroute_requests_refused_total``).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from caseroute.audit.store import SqliteAuditStore
from caseroute.domain.errors import AuditUnavailableError
from caseroute.engine.case_rules import EngineKind
from caseroute.metrics import MetricsRecorder, define_metrics
from caseroute.registry import RulesetRegistry
from caseroute.service import RoutingCore
from caseroute.testing import audit_config, reference_ruleset
from tests.service.two_workers import command


class _Worker:
    """A core over the shared SQLite log, metered, whose commits can be made to fail."""

    def __init__(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        config = audit_config(tmp_path)
        registry = RulesetRegistry()
        registry.add(reference_ruleset(EngineKind.PYTHON))
        store = config.open_store()
        assert isinstance(store, SqliteAuditStore)
        self.store = store
        self.core = RoutingCore(registry, store, config.masker())
        self.collector = CollectorRegistry()
        MetricsRecorder(define_metrics(self.collector)).observe(self.core)
        self._monkeypatch = monkeypatch

    def fail_writes(self) -> None:
        """Every transaction fails as a full or broken disk fails it; reads still work."""

        def fail(*_: object) -> None:
            raise sqlite3.OperationalError("disk I/O error")

        self._monkeypatch.setattr(self.store, "_commit", fail)

    def value(self, name: str, **labels: str) -> float | None:
        """One sample."""
        return self.collector.get_sample_value(name, labels)

    def close(self) -> None:
        """Close its log and rulesets."""
        self.store.close()
        self.core.registry.close()


@pytest.fixture
def workers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[_Worker, _Worker]]:
    """Two workers over one decision log."""
    made = (_Worker(tmp_path, monkeypatch), _Worker(tmp_path, monkeypatch))
    yield made
    for worker in made:
        worker.close()


def test_a_retry_answered_from_the_log_after_its_write_failed_counts_as_a_write_failure(
    workers: tuple[_Worker, _Worker],
) -> None:
    """The retry is answered (a replay) and its failed transaction counts 1; a new call 1 more."""
    first, second = workers
    stored = first.core.decide(command())
    second.fail_writes()
    again = second.core.decide(command())
    answered = (again.replayed, again.decisions == stored.decisions)
    after_retry = (
        second.value("caseroute_audit_write_failures_total"),
        second.value(
            "caseroute_decision_replays_total",
            ruleset=stored.decisions[0].explanation.ruleset_name,
        ),
        second.core.audit_refusals,
    )
    with pytest.raises(AuditUnavailableError):
        second.core.decide(command("new-1"))
    assert (answered, after_retry) == ((True, True), (1.0, 1.0, 0))
    assert (second.value("caseroute_audit_write_failures_total"), second.core.audit_refusals) == (
        2.0,
        1,
    )


def test_the_help_text_says_an_answered_retry_still_counts(
    workers: tuple[_Worker, _Worker],
) -> None:
    """The metric's HELP: failed writes, a retry answered from the log included."""
    first, _ = workers
    (family,) = [m for m in first.collector.collect() if m.name == "caseroute_audit_write_failures"]
    assert family.documentation == (
        "Appends whose decision-log transaction failed (the disk or database refused it). A "
        "decision among them is refused with UNAVAILABLE, unless it is a retry the log then "
        "answers from its stored record, which still counts; the health probe's empty write "
        "counts too."
    )
