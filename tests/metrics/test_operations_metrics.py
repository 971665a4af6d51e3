"""Metrics of the decision log, the ruleset lifecycle and shadow evaluation, on real objects."""

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry
from tests.test_shadow import WAIT_S, write_shadow_tree

from caseroute.audit.store import SqliteAuditStore
from caseroute.domain.errors import AuditUnavailableError
from caseroute.engine.case_rules import EngineKind
from caseroute.lifecycle import RulesetLifecycle
from caseroute.metrics import MetricsRecorder, define_metrics
from caseroute.registry import RulesetRegistry
from caseroute.service import DecideCommand, RoutingCore
from caseroute.shadow import ShadowRunner
from caseroute.testing import NOW, audit_config, make_agent, make_case, make_roster


def _command(request_id: str) -> DecideCommand:
    return DecideCommand(request_id, "", "", (make_case(),), make_roster(make_agent()), NOW)


class Observed:
    """Routing 1 active and 2 in shadow, a core with its log and shadow runner, all metered."""

    def __init__(self, tmp_path: Path) -> None:
        self.root = write_shadow_tree(tmp_path / "rulesets")
        config = audit_config(tmp_path / "audit")
        self.store = config.open_store()
        assert isinstance(self.store, SqliteAuditStore)
        self.life = RulesetLifecycle(
            RulesetRegistry(), self.root, EngineKind.PYTHON, audit=self.store
        )
        self.core = RoutingCore(self.life.registry, self.store, config.masker(), lambda: NOW)
        self.core.shadow = ShadowRunner(self.life.registry, self.store)
        self.collector = CollectorRegistry()
        MetricsRecorder(define_metrics(self.collector)).observe(self.core, self.life)

    def value(self, name: str, **labels: str) -> float | None:
        """One sample's value (None: never set)."""
        return self.collector.get_sample_value(name, labels)

    def close(self) -> None:
        """Stop the shadow worker and close the log."""
        assert self.core.shadow is not None
        self.core.shadow.close()
        self.store.close()


@pytest.fixture
def observed(tmp_path: Path) -> Iterator[Observed]:
    """The metered setup, loaded."""
    setup = Observed(tmp_path)
    setup.life.load()
    yield setup
    setup.close()


def test_loads_and_reloads_count_by_result_and_name_what_serves(observed: Observed) -> None:
    """Load ok: 1 active and 2 shadow; the shadow removed: it reads 0; a broken version: errors."""
    version = "caseroute_ruleset_version_info"
    assert observed.value("caseroute_reloads_total", action="load", result="ok") == 1.0
    assert observed.value(version, ruleset="routing", role="active", version="1") == 1.0
    assert observed.value(version, ruleset="routing", role="shadow", version="2") == 1.0
    (observed.root / "routing" / "serving.yaml").write_text("active: '1'\n")
    observed.life.reload(actor="test")
    assert observed.value("caseroute_reloads_total", action="reload", result="ok") == 1.0
    assert observed.value(version, ruleset="routing", role="shadow", version="2") == 0.0
    assert observed.value(version, ruleset="routing", role="active", version="1") == 1.0
    broken = observed.root / "routing" / "3" / "ruleset.yaml"
    broken.parent.mkdir()
    broken.write_text("ruleset: routing\nversion: '3'\nrules: [\n")
    observed.life.reload(actor="test")
    assert observed.value("caseroute_reloads_total", action="reload", result="errors") == 1.0
    assert observed.value(version, ruleset="routing", role="active", version="1") == 1.0


def test_a_shadow_disagreement_counts_once_under_each_kind_it_found(observed: Observed) -> None:
    """Live ASSIGN, shadow ESCALATE: one disagreeing comparison; kinds as stored in the log."""
    observed.core.decide(_command("r1"))
    assert observed.core.shadow is not None
    assert observed.core.shadow.wait_idle(WAIT_S)
    (stored,) = observed.store.shadow_results("routing")
    assert {"outcome", "queue", "deciding_rule", "escalation"} <= set(stored.differences)
    comparisons = "caseroute_shadow_comparisons_total"
    assert observed.value(comparisons, ruleset="routing", version="2", result="disagree") == 1.0
    assert observed.value(comparisons, ruleset="routing", version="2", result="agree") is None
    kinds = {
        kind: observed.value(
            "caseroute_shadow_differences_total", ruleset="routing", version="2", kind=kind
        )
        for kind in ("outcome", "agent", "queue", "priority", "deciding_rule", "escalation")
    }
    assert kinds == {k: (1.0 if k in stored.differences else None) for k in kinds}


def test_every_commit_of_the_log_is_timed_and_sized(observed: Observed) -> None:
    """Load events, a decision and a shadow result: three one-append transactions."""
    observed.core.decide(_command("r1"))
    assert observed.core.shadow is not None
    assert observed.core.shadow.wait_idle(WAIT_S)
    assert observed.store.commits == 3
    size = "caseroute_audit_commit_size"
    assert (
        observed.value(f"{size}_count"),
        observed.value(f"{size}_sum"),
        observed.value(f"{size}_bucket", le="1.0"),
        observed.value("caseroute_audit_commit_seconds_count"),
        observed.value("caseroute_audit_write_failures_total"),
    ) == (3.0, 3.0, 3.0, 3.0, 0.0)


def test_a_failed_commit_counts_the_appends_it_refused(
    observed: Observed, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The disk fails once: the decision is refused and counted; the next one commits."""
    commit = observed.store._commit
    calls: list[int] = []

    def fail_once(conn: sqlite3.Connection, batch: list[object]) -> None:
        calls.append(1)
        if len(calls) == 1:
            raise sqlite3.OperationalError("disk I/O error")
        commit(conn, batch)  # type: ignore[arg-type]

    monkeypatch.setattr(observed.store, "_commit", fail_once)
    with pytest.raises(AuditUnavailableError):
        observed.core.decide(_command("r1"))
    observed.core.decide(_command("r2"))
    assert observed.value("caseroute_audit_write_failures_total") == 1.0
    decisions = observed.value(
        "caseroute_decisions_total", ruleset="routing", version="1", outcome="ASSIGN"
    )
    assert decisions == 1.0


class _Failing:
    """An observer of the log, shadow runner and lifecycle that fails on every call."""

    def committed(self, *_: object, **__: object) -> None:
        raise RuntimeError

    def commit_failed(self, *_: object, **__: object) -> None:
        raise RuntimeError

    def shadow_compared(self, *_: object, **__: object) -> None:
        raise RuntimeError

    def shadow_dropped(self, *_: object, **__: object) -> None:
        raise RuntimeError

    def lifecycle_done(self, *_: object, **__: object) -> None:
        raise RuntimeError


def test_a_failing_observer_stops_no_commit_shadow_run_or_reload(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The log commits, the shadow compares and stores, reloads swap; each failure is logged."""
    setup = Observed(tmp_path)
    failing = _Failing()
    setup.store.observer = failing
    assert setup.core.shadow is not None
    setup.core.shadow.observer = failing
    setup.life.observer = failing
    try:
        setup.life.load()
        setup.core.decide(_command("r1"))
        assert setup.core.shadow.wait_idle(WAIT_S)
        assert len(setup.store.shadow_results("routing")) == 1
        assert setup.life.registry.names() == ["routing"]
    finally:
        setup.close()
    logged = {r.getMessage().split(":", 1)[0] for r in caplog.records if r.levelname == "ERROR"}
    assert logged == {
        "commit observer failed",
        "shadow observer failed",
        "lifecycle observer failed",
    }
