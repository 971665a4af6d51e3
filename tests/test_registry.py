"""The ruleset registry: atomic reload, last good version on failure, closing after last use."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from caseroute.domain.decision import Decision
from caseroute.domain.errors import EngineValidationError
from caseroute.engine.case_rules import EngineKind, LoadedRuleset
from caseroute.engine.decide import decide
from caseroute.grpc_api.server import ServerConfig, build_server
from caseroute.registry import RulesetRegistry, RulesetStatus, VersionInfo
from caseroute.rules.model import CompiledRuleset
from caseroute.service import DecideCommand
from caseroute.testing import (
    CATCH_ALL_RULE,
    NOW,
    GatedMatcher,
    audit_config,
    audited_core,
    make_agent,
    make_case,
    make_roster,
    ruleset_with_rules,
)

WAIT_S = 30.0  # an upper bound for an event that should come at once; never a sleep


def _text(name: str, version: str) -> str:
    return (
        ruleset_with_rules(CATCH_ALL_RULE)
        .replace("ruleset: test\n", f"ruleset: {name}\n")
        .replace('version: "1"\n', f'version: "{version}"\n')
    )


def _write(root: Path, directory: str, name: str, version: str) -> Path:
    (root / directory).mkdir(exist_ok=True)
    path = root / directory / "ruleset.yaml"
    path.write_text(_text(name, version))
    return path


class _Tracked(LoadedRuleset):
    """A loaded ruleset that counts its ``close`` calls."""

    def __init__(self, compiled: CompiledRuleset) -> None:
        self.gate = GatedMatcher(compiled.leaves, blocking=False)
        super().__init__(compiled, self.gate)
        self.closed = 0

    def close(self) -> None:
        """Count the close."""
        self.closed += 1
        super().close()


class _Builder:
    """A ``RulesetPreparer`` that remembers every ruleset it prepared."""

    def __init__(self) -> None:
        self.built: list[_Tracked] = []

    def __call__(self, compiled: CompiledRuleset, engine: EngineKind) -> LoadedRuleset:
        assert engine is EngineKind.PYTHON
        ruleset = _Tracked(compiled)
        self.built.append(ruleset)
        return ruleset


def _clock() -> Iterator[datetime]:
    minute = 0
    while True:
        yield NOW + timedelta(minutes=minute)
        minute += 1


@pytest.fixture
def builder() -> _Builder:
    """A builder of tracked rulesets."""
    return _Builder()


@pytest.fixture
def registry(builder: _Builder) -> Iterator[RulesetRegistry]:
    """An empty registry building with ``builder``; its clock ticks a minute per reload."""
    ticks = _clock()
    reg = RulesetRegistry(prepare=builder, clock=lambda: next(ticks))
    yield reg
    reg.close()


def _command(request_id: str) -> DecideCommand:
    return DecideCommand(request_id, "", "", (make_case(),), make_roster(make_agent()), NOW)


def test_reload_swaps_to_the_new_version_and_closes_the_unused_old_one(
    registry: RulesetRegistry, builder: _Builder, tmp_path: Path
) -> None:
    """After a reload new calls get the new version; the replaced one, unused, is closed."""
    _write(tmp_path, "r", "routing", "1")
    registry.reload(tmp_path, EngineKind.PYTHON)
    old = builder.built[0]
    _write(tmp_path, "r", "routing", "2")
    registry.reload(tmp_path, EngineKind.PYTHON)
    new = builder.built[1]
    assert new is registry.resolve("", "")
    expected_closed = (1, 0)
    assert expected_closed == (old.closed, new.closed)
    assert {
        "routing": RulesetStatus(
            name="routing",
            active_version="2",
            shadow_version=None,
            previous_versions=(),
            versions=(VersionInfo("2", new.compiled.sha256, new.compiled.path),),
            last_reload=NOW + timedelta(minutes=1),
            last_error=None,
        )
    } == registry.status()


def test_unchanged_source_keeps_its_prepared_ruleset(
    registry: RulesetRegistry, builder: _Builder, tmp_path: Path
) -> None:
    """A reload of an unchanged file keeps serving the same prepared ruleset (no new engine)."""
    _write(tmp_path, "r", "routing", "1")
    registry.reload(tmp_path, EngineKind.PYTHON)
    registry.reload(tmp_path, EngineKind.PYTHON)
    (first,) = builder.built
    assert (first, 0) == (registry.resolve("", ""), first.closed)


def test_in_flight_call_finishes_on_its_version_and_old_closes_after_release(
    registry: RulesetRegistry, builder: _Builder, tmp_path: Path
) -> None:
    """A call that started before a reload decides with the old version, closed only after it."""
    _write(tmp_path, "r", "routing", "1")
    registry.reload(tmp_path, EngineKind.PYTHON)
    old = builder.built[0]
    old.gate.blocking = True
    core = audited_core(registry, tmp_path / "audit")
    results: list[Decision] = []
    call = threading.Thread(target=lambda: results.extend(core.decide(_command("a")).decisions))
    call.start()
    assert old.gate.entered.wait(WAIT_S)
    _write(tmp_path, "r", "routing", "2")
    registry.reload(tmp_path, EngineKind.PYTHON)
    closed_while_in_flight = old.closed
    later = core.decide(_command("b")).decisions[0]
    old.gate.release.set()
    call.join(WAIT_S)
    core.audit.close()
    expected = (0, "2", ["1"], 1)
    assert expected == (
        closed_while_in_flight,
        later.explanation.ruleset_version,
        [d.explanation.ruleset_version for d in results],
        old.closed,
    )


def test_close_waits_for_a_ruleset_in_use(
    registry: RulesetRegistry, builder: _Builder, tmp_path: Path
) -> None:
    """Closing the registry while a call holds a ruleset closes it at the call's release."""
    _write(tmp_path, "r", "routing", "1")
    registry.reload(tmp_path, EngineKind.PYTHON)
    (held,) = builder.built
    with registry.acquire("", "") as ruleset:
        registry.close()
        during = held.closed
    assert (held, 0, 1) == (ruleset, during, held.closed)


def _half_written(path: Path, name: str, version: str) -> str:
    """Write the first half of a ruleset (a save cut short); return its one problem."""
    text = _text(name, version)
    path.write_text(text[: len(text) // 2])
    return (
        f"{path}:9:5: error yaml.syntax: YAML syntax error: the file ends in the middle of a "
        "value: it was cut short (a save or copy interrupted), or a `[` or `{` is never "
        "closed. Restore the rest of the file, or close the bracket"
    )


def test_reload_with_a_broken_ruleset_keeps_its_last_good_version(
    registry: RulesetRegistry, builder: _Builder, tmp_path: Path
) -> None:
    """A half-written file keeps its last good version serving; the others reload; status says."""
    alpha_path = _write(tmp_path, "a", "alpha", "1")
    _write(tmp_path, "b", "beta", "1")
    registry.reload(tmp_path, EngineKind.PYTHON)
    alpha = registry.resolve("alpha", "")
    problem = _half_written(alpha_path, "alpha", "2")
    _write(tmp_path, "b", "beta", "2")
    registry.reload(tmp_path, EngineKind.PYTHON)
    status = registry.status()
    assert (alpha, 0, "2") == (
        registry.resolve("alpha", ""),
        builder.built[0].closed,
        registry.resolve("beta", "").compiled.version,
    )
    assert (
        RulesetStatus(
            name="alpha",
            active_version="1",
            shadow_version=None,
            previous_versions=(),
            versions=(VersionInfo("1", alpha.compiled.sha256, alpha.compiled.path),),
            last_reload=NOW + timedelta(minutes=1),
            last_error=problem,
        )
        == status["alpha"]
    )
    assert (None, [f"{alpha_path.parent}: 1 problem(s)"]) == (
        status["beta"].last_error,
        registry.load_errors,
    )


def test_fixed_file_clears_the_error(
    registry: RulesetRegistry, builder: _Builder, tmp_path: Path
) -> None:
    """Once the broken file is fixed, the next reload activates it and clears its error."""
    path = _write(tmp_path, "a", "alpha", "1")
    registry.reload(tmp_path, EngineKind.PYTHON)
    _half_written(path, "alpha", "2")
    registry.reload(tmp_path, EngineKind.PYTHON)
    _write(tmp_path, "a", "alpha", "2")
    registry.reload(tmp_path, EngineKind.PYTHON)
    status = registry.status()["alpha"]
    expected: tuple[str, None, list[str], int] = ("2", None, [], 1)
    assert expected == (
        status.active_version,
        status.last_error,
        registry.load_errors,
        builder.built[0].closed,
    )


def test_restart_with_a_broken_file_serves_the_valid_ones(
    registry: RulesetRegistry, tmp_path: Path
) -> None:
    """A fresh load serves every valid ruleset and reports the broken one by directory name."""
    _write(tmp_path, "a", "alpha", "1")
    problem = _half_written(_write(tmp_path, "broken-dir", "broken", "1"), "broken", "1")
    registry.reload(tmp_path, EngineKind.PYTHON)
    expected = (["alpha"], "1")
    assert expected == (registry.names(), registry.resolve("", "").compiled.version)
    assert (
        RulesetStatus(
            name="broken-dir",
            active_version=None,
            shadow_version=None,
            previous_versions=(),
            versions=(),
            last_reload=NOW,
            last_error=problem,
        )
        == registry.status()["broken-dir"]
    )


def test_status_keeps_the_first_problems_and_says_how_many_more(
    registry: RulesetRegistry, tmp_path: Path
) -> None:
    """A file with six problems: status keeps five (file:line first) and counts the rest."""
    (tmp_path / "x").mkdir()
    path = tmp_path / "x" / "ruleset.yaml"
    path.write_text("rules: []\n")
    registry.reload(tmp_path, EngineKind.PYTHON)
    expected = "\n".join(
        [
            f"{path}:1: error rules.empty: `rules` is empty; add at least a catch-all",
            *(
                f"{path}:1:1: error schema.missing_key: `{key}` is required in the ruleset file"
                for key in ("ruleset", "version", "description", "owner")
            ),
            "... and 1 more problem(s); the server log lists every one",
        ]
    )
    assert expected == registry.status()["x"].last_error


def test_engine_failure_is_reported_by_type_only(tmp_path: Path) -> None:
    """An engine refusal or crash is reported in status by type, never its text (server paths)."""

    def refuse(_compiled: CompiledRuleset, _engine: EngineKind) -> LoadedRuleset:
        raise EngineValidationError("durable_rules crashed: /srv/secret/engine.so")

    _write(tmp_path, "a", "alpha", "1")
    registry = RulesetRegistry(prepare=refuse, clock=lambda: NOW)
    registry.reload(tmp_path, EngineKind.PYTHON)
    expected = (
        f"{tmp_path / 'a'}: could not be loaded (EngineValidationError); the server log has the "
        "detail; fix the file and reload"
    )
    assert expected == registry.status()["alpha"].last_error


def test_durable_engine_reload_decides_with_the_new_version(tmp_path: Path) -> None:
    """With durable_rules, a reload activates the new version and the old one's engine closes."""
    rulesets = tmp_path / "rulesets"
    rulesets.mkdir()
    _write(rulesets, "r", "routing", "1")
    registry = RulesetRegistry()
    registry.reload(rulesets, EngineKind.DURABLE)
    core = audited_core(registry, tmp_path)
    first = core.decide(_command("a")).decisions[0]
    _write(rulesets, "r", "routing", "2")
    registry.reload(rulesets, EngineKind.DURABLE)
    second = core.decide(_command("b")).decisions[0]
    core.audit.close()
    registry.close()
    engine = "durable_rules 2.0.28 (cross-checked by python)"
    expected = (("1", engine), ("2", engine))
    assert expected == tuple(
        (d.explanation.ruleset_version, d.explanation.engine) for d in (first, second)
    )


THREADS = 8
DECISIONS_PER_THREAD = 200
RELOADS = 20


def test_reload_under_concurrent_decides(
    registry: RulesetRegistry, builder: _Builder, tmp_path: Path
) -> None:
    """8 threads x 200 decisions across 20 reloads: no failure, each decision one of the two."""
    _write(tmp_path, "r", "routing", "1")
    registry.reload(tmp_path, EngineKind.PYTHON)
    case, roster = make_case(), make_roster(make_agent())
    done = threading.Condition()
    counts = {"decided": 0, "reloaded": 0}
    versions: list[str] = []
    failures: list[BaseException] = []
    step = THREADS * DECISIONS_PER_THREAD // (RELOADS + 1)

    def decide_many() -> None:
        try:
            for _ in range(DECISIONS_PER_THREAD):
                with done:  # never more than `step` decisions ahead of the reloads
                    done.wait_for(
                        lambda: counts["reloaded"] >= min(RELOADS, counts["decided"] // step),
                        WAIT_S,
                    )
                with registry.acquire("", "") as ruleset:
                    decision = decide(case, roster, ruleset, NOW)
                    assert not ruleset.closed  # type: ignore[attr-defined]
                with done:
                    versions.append(decision.explanation.ruleset_version)
                    counts["decided"] += 1
                    done.notify_all()
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            failures.append(exc)

    def reload_between_decisions() -> None:
        # Each reload waits for `step` more decisions and the decisions wait for the reloads,
        # so the two interleave whatever the scheduler does.
        for i in range(RELOADS):
            wanted = (i + 1) * step
            with done:
                done.wait_for(lambda: counts["decided"] >= wanted, WAIT_S)  # noqa: B023 - waited on here
            _write(tmp_path, "r", "routing", "2" if i % 2 == 0 else "1")
            registry.reload(tmp_path, EngineKind.PYTHON)
            with done:
                counts["reloaded"] += 1
                done.notify_all()

    threads = [threading.Thread(target=decide_many) for _ in range(THREADS)]
    threads.append(threading.Thread(target=reload_between_decisions))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(WAIT_S * 4)
    replaced = builder.built[:-1]
    assert ([], THREADS * DECISIONS_PER_THREAD, {"1", "2"}) == (
        failures,
        len(versions),
        set(versions),
    )
    expected_closed = (RELOADS + 1, [1] * RELOADS, 0)
    assert expected_closed == (
        len(builder.built),
        [r.closed for r in replaced],
        builder.built[-1].closed,
    )


def test_server_reload_keeps_its_registry_and_serving(tmp_path: Path) -> None:
    """RunningServer.load reloads the core's own registry; a broken file keeps it SERVING."""
    rulesets = tmp_path / "rulesets"
    rulesets.mkdir()
    path = _write(rulesets, "a", "alpha", "1")
    config = ServerConfig(
        rulesets=rulesets, port=0, engine=EngineKind.PYTHON, audit=audit_config(tmp_path)
    )
    server = build_server(config, reuse_port=False)
    try:
        registry = server.core.registry
        server.load(config)
        loaded = registry.resolve("", "")
        _half_written(path, "alpha", "2")
        server.load(config)
        with grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
            stub: Any = health_pb2_grpc.HealthStub(channel)  # typeshed stub lacks Check
            health = stub.Check(health_pb2.HealthCheckRequest(), timeout=WAIT_S).status
        assert (registry, loaded, health_pb2.HealthCheckResponse.SERVING) == (
            server.core.registry,
            server.core.registry.resolve("", ""),
            health,
        )
    finally:
        server.stop(1)


def test_one_version_with_two_contents_is_refused_naming_both_files(
    registry: RulesetRegistry, builder: _Builder, tmp_path: Path
) -> None:
    """Same name and version, different content: an error naming both files; the first stays."""
    first = _write(tmp_path, "a", "routing", "1")
    registry.reload(tmp_path, EngineKind.PYTHON)
    serving = builder.built[0]
    second = tmp_path / "b" / "ruleset.yaml"
    second.parent.mkdir()
    second.write_text(_text("routing", "1").replace("queue", "queue ", 1))  # other bytes
    registry.reload(tmp_path, EngineKind.PYTHON)
    status = registry.status()["routing"]
    expected_error = (
        f"{second}:2: error versions.duplicate: ruleset routing version 1 is already defined "
        f"by {first} with other content (sha256 {serving.compiled.sha256[:12]}… vs "
        f"{builder.built[-1].compiled.sha256[:12]}…); a published version never changes: "
        "give one of them a new version"
    )
    assert (serving, 0, "1", expected_error) == (
        registry.resolve("", ""),
        serving.closed,
        status.active_version,
        status.last_error,
    )
    assert builder.built[-1].closed == 1  # the refused one was built, then closed


def test_the_serving_content_of_a_version_is_kept_whatever_the_path_order(
    registry: RulesetRegistry, builder: _Builder, tmp_path: Path
) -> None:
    """A clashing copy that sorts first does not replace the content that was serving."""
    serving_path = _write(tmp_path, "b", "routing", "1")
    registry.reload(tmp_path, EngineKind.PYTHON)
    serving = builder.built[0]
    copy = tmp_path / "a" / "ruleset.yaml"
    copy.parent.mkdir()
    copy.write_text(_text("routing", "1").replace("queue", "queue ", 1))
    registry.reload(tmp_path, EngineKind.PYTHON)
    refused = builder.built[-1]
    assert (registry.resolve("", ""), serving.closed, refused.closed) == (serving, 0, 1)
    assert registry.status()["routing"].last_error == (
        f"{copy}:2: error versions.duplicate: ruleset routing version 1 is already defined "
        f"by {serving_path} with other content (sha256 {serving.compiled.sha256[:12]}… vs "
        f"{refused.compiled.sha256[:12]}…); "
        "a published version never changes: give one of them a new version"
    )


def test_reload_after_close_is_refused_and_builds_nothing(
    registry: RulesetRegistry, builder: _Builder, tmp_path: Path
) -> None:
    """A reload racing shutdown must not build engines nobody will ever close."""
    _write(tmp_path, "r", "routing", "1")
    registry.close()
    with pytest.raises(RuntimeError, match="registry is closed"):
        registry.reload(tmp_path, EngineKind.PYTHON)
    assert builder.built == []
