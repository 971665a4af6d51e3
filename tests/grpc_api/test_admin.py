"""RulesetAdmin end to end: each RPC through a real server over a real lifecycle, and its errors."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from caseroute.domain.errors import (
    AuditUnavailableError,
    Problem,
    RulesetNotFoundError,
    RulesetStateError,
    Severity,
)
from caseroute.engine.case_rules import EngineKind
from caseroute.grpc_api.auth import AuthConfig
from caseroute.grpc_api.server import RunningServer, ServerConfig, build_server
from caseroute.lifecycle import LifecycleOutcome, RulesetChange, RulesetInfo, RulesetText
from caseroute.rules.compiler import MAX_RULESET_BYTES
from caseroute.testing import CATCH_ALL_RULE, audit_config, ruleset_with_rules
from caseroute.v1 import admin_pb2 as apb
from caseroute.v1 import admin_pb2_grpc
from caseroute.v1 import routing_pb2_grpc as pb_grpc

from .conftest import decide_request
from .test_auth import ALICE, bearer, token_file

AT = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)


def ruleset_text(name: str, version: str, queue: str = "general") -> str:
    """A small valid ruleset source ``name@version``."""
    return (
        ruleset_with_rules(CATCH_ALL_RULE)
        .replace("ruleset: test\n", f"ruleset: {name}\n")
        .replace('version: "1"\n', f'version: "{version}"\n')
        .replace("description: test ruleset", f"description: {queue} ruleset")
    )


def rulesets_tree(root: Path) -> Path:
    """``routing`` versions 1 and 2 under ``root``, serving.yaml naming 1 active."""
    for version in ("1", "2"):
        path = root / "routing" / version / "ruleset.yaml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(ruleset_text("routing", version))
    (root / "routing" / "serving.yaml").write_text("active: '1'\n")
    return root


@contextmanager
def admin_server(tmp_path: Path, *, admin: Any = None, **settings: Any) -> Iterator[RunningServer]:
    """A started server over ``tmp_path/rulesets`` accepting alice's admin token."""
    rulesets = rulesets_tree(tmp_path / "rulesets")
    tokens = token_file(tmp_path / "admin.tokens", f"alice {ALICE}\n")
    config = ServerConfig(
        rulesets=rulesets,
        port=0,
        engine=EngineKind.PYTHON,
        audit=audit_config(tmp_path / "audit"),
        auth=AuthConfig(admin_token_file=tokens),
        reload_interval_s=0,
        **settings,
    )
    server = build_server(config, reuse_port=False, admin=admin)
    try:
        server.load(config)
        yield server
    finally:
        server.stop(1)


@pytest.fixture
def served(tmp_path: Path) -> Iterator[RunningServer]:
    """The real lifecycle behind RulesetAdmin."""
    with admin_server(tmp_path) as server:
        yield server


def _call(server: RunningServer, method: str, request: Any) -> Any:
    with grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        stub = admin_pb2_grpc.RulesetAdminStub(channel)
        return getattr(stub, method)(request, timeout=30, metadata=bearer(ALICE))


def _refusal(server: RunningServer, method: str, request: Any) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.RpcError) as exc:
        _call(server, method, request)
    error: Any = exc.value
    return error.code(), error.details()


def _changes(outcome: apb.LifecycleOutcome) -> list[tuple[str, str, str, str]]:
    return [(c.ruleset_name, c.role, c.from_version, c.to_version) for c in outcome.changes]


def test_list_rulesets_shows_versions_active_and_relative_paths(served: RunningServer) -> None:
    """ListRulesets: every version with sha256 and a path relative to the rulesets dir."""
    reply = _call(served, "ListRulesets", apb.ListRulesetsRequest())
    (status,) = reply.rulesets
    assert (status.name, status.active_version, status.shadow_version, status.last_error) == (
        "routing",
        "1",
        "",
        "",
    )
    assert [(v.version, v.path, len(v.sha256)) for v in status.versions] == [
        ("1", "routing/1/ruleset.yaml", 64),
        ("2", "routing/2/ruleset.yaml", 64),
    ]
    assert status.HasField("last_reload")


def test_get_ruleset_returns_the_active_source_or_a_pinned_one(served: RunningServer) -> None:
    """GetRuleset: "" version is the active one; a named version its own text; unknown NOT_FOUND."""
    active = _call(served, "GetRuleset", apb.GetRulesetRequest(name="routing"))
    pinned = _call(served, "GetRuleset", apb.GetRulesetRequest(name="routing", version="2"))
    assert (active.version, active.text) == ("1", ruleset_text("routing", "1"))
    assert (pinned.version, pinned.text) == ("2", ruleset_text("routing", "2"))
    code, _ = _refusal(served, "GetRuleset", apb.GetRulesetRequest(name="routing", version="9"))
    assert code == grpc.StatusCode.NOT_FOUND


def test_get_ruleset_without_a_name_is_invalid_argument_naming_the_field(
    served: RunningServer,
) -> None:
    """A missing name is INVALID_ARGUMENT naming `name`."""
    assert _refusal(served, "GetRuleset", apb.GetRulesetRequest()) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        (
            "invalid request: 1 problem(s); first: name: is required (every problem is in the "
            "google.rpc.BadRequest details)"
        ),
    )


def test_validate_ruleset_returns_every_diagnostic_and_activates_nothing(
    served: RunningServer,
) -> None:
    """ValidateRuleset: structured diagnostics with file:line; the served state is unchanged."""
    good = _call(
        served,
        "ValidateRuleset",
        apb.ValidateRulesetRequest(source=ruleset_text("routing", "3"), file_name="r.yaml"),
    )
    bad_text = ruleset_text("routing", "3").replace("ruleset: routing\n", "rulset: routing\n")
    bad = _call(
        served,
        "ValidateRuleset",
        apb.ValidateRulesetRequest(source=bad_text, file_name="r.yaml"),
    )
    listed = _call(served, "ListRulesets", apb.ListRulesetsRequest())
    # A warning only: the test ruleset enforces no consent constraint (lint.no_consent).
    assert (good.valid, [d.code for d in good.diagnostics]) == (
        True,
        ["lint.no_consent", "lint.no_licence"],
    )
    assert bad.valid is False
    lints = {"lint.no_consent", "lint.no_licence"}
    assert {(d.file, d.severity) for d in bad.diagnostics if d.code not in lints} == {
        ("r.yaml", apb.SEVERITY_ERROR)
    }
    assert all(d.code and d.line > 0 for d in bad.diagnostics)
    assert [v.version for v in listed.rulesets[0].versions] == ["1", "2"]


def test_validate_refuses_new_content_for_a_version_that_has_decided(
    served: RunningServer,
) -> None:
    """Review R37b 9: ValidateRuleset said ok; the reload then refused the same file.

    Version 1 decided (one Decide); an edit of it is versions.changed_after_deciding at its
    `version:` line, as a reload reports it. A version that never decided still validates.
    """
    with grpc.insecure_channel(f"127.0.0.1:{served.port}") as channel:
        pb_grpc.RoutingServiceStub(channel).Decide(decide_request("decided-1"), timeout=30)
    edited = ruleset_text("routing", "1", queue="clinical")
    refused = _call(
        served,
        "ValidateRuleset",
        apb.ValidateRulesetRequest(source=edited, file_name="ruleset.yaml"),
    )
    draft = _call(
        served,
        "ValidateRuleset",
        apb.ValidateRulesetRequest(source=ruleset_text("routing", "2", "x"), file_name="r.yaml"),
    )
    errors = [(d.code, d.file, d.line) for d in refused.diagnostics if d.severity == 1]
    assert refused.valid is False
    assert errors == [("versions.changed_after_deciding", "ruleset.yaml", 2)]
    assert draft.valid is True


def test_validate_ruleset_refuses_a_source_over_the_compiler_limit(served: RunningServer) -> None:
    """A source over MAX_RULESET_BYTES is INVALID_ARGUMENT naming `source`, before compiling."""
    code, details = _refusal(
        served,
        "ValidateRuleset",
        apb.ValidateRulesetRequest(source="#" * (MAX_RULESET_BYTES + 1)),
    )
    assert (code, details) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        (
            f"invalid request: 1 problem(s); first: source: is {MAX_RULESET_BYTES + 1} bytes; a "
            f"ruleset file may be at most {MAX_RULESET_BYTES} bytes: split the ruleset or shorten "
            "it (every problem is in the google.rpc.BadRequest details)"
        ),
    )


def test_validate_ruleset_refuses_a_file_name_with_a_directory(served: RunningServer) -> None:
    """file_name is a name: a path is INVALID_ARGUMENT naming `file_name`."""
    code, details = _refusal(
        served,
        "ValidateRuleset",
        apb.ValidateRulesetRequest(source="x: 1\n", file_name="../etc/ruleset.yaml"),
    )
    assert (code, details) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        (
            "invalid request: 1 problem(s); first: file_name: is a name, not a path: drop the "
            "directory (every problem is in the google.rpc.BadRequest details)"
        ),
    )


def test_activate_then_rollback_switch_the_active_version_as_admin_identity(
    served: RunningServer,
) -> None:
    """ActivateRuleset and Rollback reply with the changes; the actor is admin:<identity>."""
    activated = _call(
        served, "ActivateRuleset", apb.ActivateRulesetRequest(name="routing", version="2")
    )
    after_activate = _call(served, "ListRulesets", apb.ListRulesetsRequest()).rulesets[0]
    rolled = _call(served, "Rollback", apb.RollbackRequest(name="routing"))
    after_rollback = _call(served, "ListRulesets", apb.ListRulesetsRequest()).rulesets[0]
    assert (activated.action, activated.actor, _changes(activated)) == (
        "activate",
        "admin:alice",
        [("routing", "active", "1", "2")],
    )
    assert (after_activate.active_version, list(after_activate.previous_versions)) == ("2", ["1"])
    assert (rolled.action, rolled.actor, _changes(rolled)) == (
        "rollback",
        "admin:alice",
        [("routing", "active", "2", "1")],
    )
    assert after_rollback.active_version == "1"
    recorded = [
        (e.action, e.actor, e.from_version, e.to_version) for e in served.core.audit.events()
    ]
    assert recorded[-2:] == [
        ("activate", "admin:alice", "1", "2"),
        ("rollback", "admin:alice", "2", "1"),
    ]


def test_decide_pinning_the_version_a_rollback_left_is_failed_precondition(
    served: RunningServer,
) -> None:
    """A caller pinned to the rolled-back version is refused, with what to pin instead.

    Review R36a M1: a rollback retired version 2, yet a Decide pinning it still decided.
    """
    request = decide_request("req-pinned")
    request.ruleset.name, request.ruleset.version = "routing", "2"
    _call(served, "ActivateRuleset", apb.ActivateRulesetRequest(name="routing", version="2"))
    _call(served, "Rollback", apb.RollbackRequest(name="routing"))
    with grpc.insecure_channel(f"127.0.0.1:{served.port}") as channel:
        stub = pb_grpc.RoutingServiceStub(channel)
        with pytest.raises(grpc.RpcError) as exc:
            stub.Decide(request, timeout=30)
        error: Any = exc.value
        assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert "version '2' is retired" in error.details()
        assert "pin the active version '1'" in error.details()
        assert served.core.audit.by_request("req-pinned") == []
        request.ruleset.version = "1"
        assert stub.Decide(request, timeout=30).decision.ruleset.version == "1"


def test_activate_an_unknown_version_is_not_found(served: RunningServer) -> None:
    """ActivateRuleset of a version nobody loaded: NOT_FOUND."""
    code, _ = _refusal(
        served, "ActivateRuleset", apb.ActivateRulesetRequest(name="routing", version="7")
    )
    assert code == grpc.StatusCode.NOT_FOUND


def test_rollback_without_a_previous_version_is_failed_precondition(
    served: RunningServer,
) -> None:
    """Rollback with nothing to roll back to: FAILED_PRECONDITION and what to do."""
    assert _refusal(served, "Rollback", apb.RollbackRequest(name="routing")) == (
        grpc.StatusCode.FAILED_PRECONDITION,
        (
            "ruleset routing has no previously active version to roll back to (its serving.yaml "
            "lists none under `previous`); activate a version by name"
        ),
    )


def test_reload_picks_up_a_new_version_and_reports_a_broken_one(
    served: RunningServer, tmp_path: Path
) -> None:
    """Reload: a new version becomes servable; a broken file is listed in errors, not served."""
    new = tmp_path / "rulesets" / "routing" / "3" / "ruleset.yaml"
    new.parent.mkdir()
    new.write_text(ruleset_text("routing", "3"))
    broken = tmp_path / "rulesets" / "routing" / "4" / "ruleset.yaml"
    broken.parent.mkdir()
    broken.write_text("ruleset: routing\nversion: [\n")
    outcome = _call(served, "Reload", apb.ReloadRequest())
    status = _call(served, "ListRulesets", apb.ListRulesetsRequest()).rulesets[0]
    assert (outcome.action, outcome.actor, len(outcome.errors)) == (
        "reload",
        "admin:alice",
        1,
    )
    assert ([v.version for v in status.versions], status.active_version) == (["1", "2", "3"], "1")
    assert status.last_error.startswith("routing/4/ruleset.yaml:")


class FakeAdmin:
    """A RulesetAdminCore that raises a scripted error and remembers who called."""

    def __init__(self, error: Exception | None = None) -> None:
        """Raise ``error`` from every changing call (None: succeed)."""
        self.error = error
        self.actors: list[str] = []
        self.validated: list[tuple[str, str]] = []
        self.called = threading.Event()

    def list_rulesets(self) -> list[RulesetInfo]:
        """One ruleset, never reloaded."""
        return [RulesetInfo("routing", None, None, (), (), None, "routing/1/ruleset.yaml:3: x")]

    def get_source(self, name: str, version: str) -> RulesetText:
        """Unknown name or version."""
        raise RulesetNotFoundError(f"unknown ruleset {name}@{version}")

    def validate(self, text: str, file_name: str) -> list[Problem]:
        """One warning."""
        self.validated.append((text, file_name))
        return [Problem("lint.x", "consider y", file_name, 2, 3, "r1", Severity.WARNING)]

    def _outcome(self, action: str, actor: str) -> LifecycleOutcome:
        self.actors.append(actor)
        self.called.set()
        if self.error is not None:
            raise self.error
        change = RulesetChange("routing", "active", "1", "a" * 64, "2", "b" * 64)
        return LifecycleOutcome(action, actor, AT, (change,), ())

    def activate(self, name: str, version: str, actor: str) -> LifecycleOutcome:  # noqa: ARG002
        """Scripted."""
        return self._outcome("activate", actor)

    def rollback(self, name: str, actor: str) -> LifecycleOutcome:  # noqa: ARG002
        """Scripted."""
        return self._outcome("rollback", actor)

    def reload(self, actor: str) -> LifecycleOutcome:
        """Scripted."""
        return self._outcome("reload", actor)


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (
            RulesetStateError("ruleset routing cannot switch now; retry"),
            (grpc.StatusCode.FAILED_PRECONDITION, "ruleset routing cannot switch now; retry"),
        ),
        (
            AuditUnavailableError("the decision log refused the write; retry later"),
            (grpc.StatusCode.UNAVAILABLE, "the decision log refused the write; retry later"),
        ),
        (
            OSError("/srv/secret/path/serving.yaml: disk on fire"),
            (
                grpc.StatusCode.INTERNAL,
                "internal error; quote reference 'Reload' to the caseroute operators",
            ),
        ),
    ],
)
def test_lifecycle_errors_map_to_status_codes_without_server_detail(
    tmp_path: Path, error: Exception, expected: tuple[grpc.StatusCode, str]
) -> None:
    """RulesetStateError FAILED_PRECONDITION, AuditUnavailable UNAVAILABLE, a bug INTERNAL."""
    with admin_server(tmp_path, admin=FakeAdmin(error)) as server:
        assert _refusal(server, "Reload", apb.ReloadRequest()) == expected


def test_outcome_and_diagnostics_convert_field_by_field(tmp_path: Path) -> None:
    """The LifecycleOutcome, Diagnostic and RulesetStatus messages carry every field."""
    fake = FakeAdmin()
    with admin_server(tmp_path, admin=fake) as server:
        outcome = _call(server, "Reload", apb.ReloadRequest())
        validated = _call(server, "ValidateRuleset", apb.ValidateRulesetRequest(source="x: 1\n"))
        listed = _call(server, "ListRulesets", apb.ListRulesetsRequest())
    expected_outcome = apb.LifecycleOutcome(action="reload", actor="admin:alice")
    expected_outcome.at.FromDatetime(AT)
    expected_outcome.changes.add(
        ruleset_name="routing",
        role="active",
        from_version="1",
        from_sha256="a" * 64,
        to_version="2",
        to_sha256="b" * 64,
    )
    assert outcome == expected_outcome
    assert validated == apb.ValidateRulesetResponse(
        diagnostics=[
            apb.Diagnostic(
                code="lint.x",
                severity=apb.SEVERITY_WARNING,
                file="ruleset.yaml",
                line=2,
                column=3,
                rule_id="r1",
                message="consider y",
            )
        ],
        valid=True,
    )
    assert fake.validated == [("x: 1\n", "ruleset.yaml")]
    assert listed == apb.ListRulesetsResponse(
        rulesets=[apb.RulesetStatus(name="routing", last_error="routing/1/ruleset.yaml:3: x")]
    )


def test_sighup_reloads_on_the_reload_thread_as_signal_actor(tmp_path: Path) -> None:
    """request_reload (SIGHUP's handler) makes the reload thread call reload(signal:SIGHUP)."""
    fake = FakeAdmin()
    with admin_server(tmp_path, admin=fake) as server:
        server.start_reload_triggers(0)
        server.request_reload()
        called = fake.called.wait(30)
    assert (called, fake.actors) == (True, ["signal:SIGHUP"])


@pytest.mark.parametrize("trigger", ["sighup", "admin-reload", "poll"])
def test_a_reload_that_loads_the_first_ruleset_turns_health_serving(
    tmp_path: Path, trigger: str
) -> None:
    """Started with nothing to serve, a reload by any trigger that loads a ruleset flips health."""
    rulesets = tmp_path / "rulesets"
    rulesets.mkdir()
    tokens = token_file(tmp_path / "admin.tokens", f"alice {ALICE}\n")
    interval = 0.05 if trigger == "poll" else 0
    config = ServerConfig(
        rulesets=rulesets,
        port=0,
        engine=EngineKind.PYTHON,
        audit=audit_config(tmp_path / "audit"),
        auth=AuthConfig(admin_token_file=tokens),
        reload_interval_s=interval,
    )
    server = build_server(config, reuse_port=False)
    try:
        server.load(config)
        with grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
            stub: Any = health_pb2_grpc.HealthStub(channel)  # typeshed's stub lacks Watch
            watch = stub.Watch(health_pb2.HealthCheckRequest(), timeout=30)
            before = next(watch).status
            rulesets_tree(rulesets)
            server.start_reload_triggers(interval)
            if trigger == "sighup":
                server.request_reload()
            elif trigger == "admin-reload":
                _call(server, "Reload", apb.ReloadRequest())
            after = next(watch).status
            watch.cancel()
    finally:
        server.stop(1)
    assert (before, after) == (
        health_pb2.HealthCheckResponse.NOT_SERVING,
        health_pb2.HealthCheckResponse.SERVING,
    )
