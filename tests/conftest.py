"""Shared pytest configuration: Hypothesis profiles, isolation of process-wide state, cores."""

import gc
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

from caseroute.engine import durable
from caseroute.engine.case_rules import EngineKind
from caseroute.service import RoutingCore, RulesetRegistry
from caseroute.testing import audited_core, reference_ruleset

settings.register_profile(
    "default",
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile("default")


@pytest.fixture(autouse=True)
def gc_thresholds_restored() -> Iterator[None]:
    """A test that runs ``serve`` in this process (its GC policy) leaves pytest's thresholds."""
    before = gc.get_threshold()
    yield
    gc.set_threshold(*before)


@pytest.fixture(autouse=True)
def fresh_engine_validations(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test validates durable_rules definitions itself, as a fresh server process would.

    The process remembers which definitions passed validation; without this, whether a test
    reaches the validation subprocess (and so whether its failure paths run) would depend on
    which tests ran before it.
    """
    monkeypatch.setattr(durable, "_validated", set())


@pytest.fixture
def python_sigint() -> Iterator[None]:
    """SIGINT handled as in an interactive Python (KeyboardInterrupt), then as it was.

    A suite started in the background (``pytest ... &``, nohup, some CI runners) inherits
    SIGINT ignored, and tests of the commands' Ctrl-C handling then saw SIG_IGN instead of
    the handler a user's terminal session has.
    """
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


@pytest.fixture(scope="session")
def registry() -> Iterator[RulesetRegistry]:
    """The reference ruleset, loaded once with the python engine (tests/grpc_api: durable_rules)."""
    reg = RulesetRegistry()
    reg.add(reference_ruleset(EngineKind.PYTHON))
    yield reg
    reg.close()


@pytest.fixture
def core(registry: RulesetRegistry, tmp_path: Path) -> Iterator[RoutingCore]:
    """A core over the ``registry`` fixture, recording to a fresh decision log."""
    made = audited_core(registry, tmp_path)
    yield made
    made.audit.close()
