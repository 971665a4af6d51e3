"""What a caller gets when the rule engine cannot load or fails outside a decision."""

import logging
import subprocess
from pathlib import Path
from typing import Any

import grpc
import grpc_testing
import pytest

from caseroute.domain.errors import EngineUnavailableError, EngineValidationError
from caseroute.engine import durable
from caseroute.engine.case_rules import EngineKind
from caseroute.engine.durable_codegen import durable_shards
from caseroute.grpc_api.servicer import RoutingServicer
from caseroute.service import RoutingCore, RulesetRegistry, load_registry
from caseroute.testing import (
    CATCH_ALL_RULE,
    REFERENCE_RULESET,
    audited_core,
    compile_text,
    ruleset_with_rules,
)
from caseroute.v1 import routing_pb2 as pb

from .conftest import decide_request

SERVICE = pb.DESCRIPTOR.services_by_name["RoutingService"]
SECRET = "/opt/caseroute/secret/durable_rules_engine.so: undefined symbol PyEval_CallObject"  # noqa: S105 - a path, not a password
"""Engine error text quoting a server path: it must reach the log, never the caller."""
NOTHING_LOADED = (
    "no ruleset is loaded on this server; its operators must fix the rulesets (the server log "
    "lists every problem) and restart or reload it; retry later or call another server"
)


def _decide(core: Any) -> tuple[grpc.StatusCode, str]:
    server = grpc_testing.server_from_dictionary(
        {SERVICE: RoutingServicer(core)}, grpc_testing.strict_real_time()
    )
    rpc = server.invoke_unary_unary(SERVICE.methods_by_name["Decide"], (), decide_request(), None)
    _, _, code, details = rpc.termination()
    return code, details


def _unimportable() -> Any:
    raise EngineUnavailableError(f"durable_rules cannot be imported ({SECRET})")


def _rejecting(_shards: tuple[str, ...], _timeout: float = 0.0) -> None:
    raise EngineValidationError(f"durable_rules crashed validating the ruleset: {SECRET}")


@pytest.mark.parametrize("broken", ["import", "validation"])
def test_an_engine_that_cannot_load_leaves_the_server_unavailable(
    broken: str,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """durable_rules unimportable or rejecting the ruleset: UNAVAILABLE, cause only in the log."""
    if broken == "import":
        monkeypatch.setattr(durable, "load_engine_module", _unimportable)
    else:
        monkeypatch.setattr(durable, "validate_in_subprocess", _rejecting)
    with caplog.at_level(logging.ERROR, logger="caseroute.service"):
        registry = load_registry(REFERENCE_RULESET.parent, EngineKind.DURABLE)
    assert registry.names() == []
    core = audited_core(registry, tmp_path)
    assert _decide(core) == (grpc.StatusCode.UNAVAILABLE, NOTHING_LOADED)
    assert core.audit.head()[0] == 0
    core.audit.close()
    versions = sorted(p for p in REFERENCE_RULESET.parent.iterdir() if p.is_dir())
    assert [r.getMessage() for r in caplog.records] == [
        f"ruleset {version} not loaded" for version in versions
    ]
    for logged in caplog.records:
        assert logged.exc_info is not None
        assert SECRET in str(logged.exc_info[1])


class _FailingCore:
    """A core whose decide raises ``error`` (an engine failure outside any decision)."""

    registry = RulesetRegistry()  # the servicer reads its safeguarding flags before deciding

    def __init__(self, error: Exception) -> None:
        self.error = error

    def decide(self, *_args: object) -> RoutingCore:
        raise self.error


def test_an_engine_validation_failure_during_a_call_is_internal_with_a_reference() -> None:
    """EngineValidationError is not the caller's fault: INTERNAL, generic text, no detail."""
    core = _FailingCore(EngineValidationError(f"all sessions in use: {SECRET}"))
    assert _decide(core) == (
        grpc.StatusCode.INTERNAL,
        "internal error; quote reference 'req-1' to the caseroute operators",
    )


def test_an_engine_that_becomes_unavailable_during_a_call_is_unavailable() -> None:
    """EngineUnavailableError during a call: UNAVAILABLE (retry elsewhere)."""
    code, _ = _decide(_FailingCore(EngineUnavailableError("durable_rules went away")))
    assert code is grpc.StatusCode.UNAVAILABLE


def test_engine_unavailable_text_never_reaches_the_caller() -> None:
    """The engine's own error text (paths, symbols) stays in the log."""
    _, details = _decide(_FailingCore(EngineUnavailableError(f"cannot import ({SECRET})")))
    assert SECRET not in details


TINY = ruleset_with_rules(CATCH_ALL_RULE)
"""A small valid ruleset (safeguarding and a catch-all)."""


def test_a_first_test_validates_the_tiny_ruleset() -> None:
    """Validation passes for a good ruleset (and is remembered for this test only)."""
    durable.validate_in_subprocess(durable_shards(compile_text(TINY)))


def test_validation_is_not_skipped_because_an_earlier_test_passed_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A crashing validation process is reported even for definitions an earlier test passed."""

    def segfault(argv: list[str], **_kwargs: object) -> subprocess.CompletedProcess[str]:
        return subprocess.CompletedProcess(argv, -11, "", "Segmentation fault\n")

    monkeypatch.setattr(subprocess, "run", segfault)  # the module durable.py calls
    with pytest.raises(EngineValidationError) as exc:
        durable.validate_in_subprocess(durable_shards(compile_text(TINY)))
    assert str(exc.value) == (
        "durable_rules rejected this ruleset in a validation process: Segmentation fault"
    )
