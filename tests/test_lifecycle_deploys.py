"""Ruleset lifecycle under real deploys and restarts (review R32a F1, F2, F6).

- F1: a version directory, or the whole rulesets directory, missing for one poll (``rm -rf &&
  cp``, ``git checkout``, ``rsync --delete``) unloaded the active version: every unpinned
  request got NOT_FOUND, the reload said "ok", and the chain recorded a change to none.
- F2: an edited published file keeps serving from memory, but activate / rollback could point
  serving.yaml at such a version, and a server whose default ruleset had no active version
  (a respawned worker, a restart) still reported SERVING.
- F6: Reload / Activate / Rollback replies carried absolute server paths.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2

from caseroute.audit.store import AuditSink
from caseroute.domain.errors import RulesetStateError
from caseroute.engine.case_rules import EngineKind
from caseroute.grpc_api.server import ROUTING_SERVICE, ServerConfig, build_server
from caseroute.lifecycle import RulesetLifecycle
from caseroute.registry import RulesetRegistry
from caseroute.registry.build import MISSING_GRACE
from caseroute.rules.compiler import load_ruleset
from caseroute.service import DecideCommand, RoutingCore
from caseroute.testing import NOW, audit_config, make_agent, make_case, make_roster
from tests.grpc_api.test_server import _health
from tests.test_lifecycle_edges import _events, _lifecycle, _served, _serving, _version, root, store

__all__ = ["root", "store"]  # fixtures


def test_an_active_version_missing_for_one_poll_keeps_serving(root: Path, store: AuditSink) -> None:
    """Its directory gone, serving.yaml still naming it: 1 serves, the reload says why."""
    life = _lifecycle(root, store)
    moved = root.parent / "aside"
    shutil.move(root / "routing" / "1", moved)
    outcome = life.reload("poll")
    assert _served(life) == [("routing", "1", None, ())]
    assert life.registry.resolve("", "").compiled.version == "1"
    assert outcome.changes == ()
    assert outcome.errors == ("routing/1: missing",)
    (info,) = life.list_rulesets()
    assert info.last_error is not None
    assert info.last_error.startswith(
        "routing/serving.yaml:1: error versions.missing: ruleset routing version 1 is named by "
        "its serving.yaml but its directory routing/1 is missing; still serving 1"
    )
    shutil.move(moved, root / "routing" / "1")
    restored = life.reload("poll")
    assert (restored.changes, restored.errors, _served(life)) == (
        (),
        (),
        [("routing", "1", None, ())],
    )
    assert _events(store) == [("load", "startup", "routing", "active", "", "1")]


def test_a_version_the_pointer_no_longer_names_is_dropped(root: Path) -> None:
    """Removing a version is still possible: point serving.yaml elsewhere, then remove it."""
    life = _lifecycle(root)
    _serving(root, "routing", "active: '2'\n")
    shutil.rmtree(root / "routing" / "1")
    outcome = life.reload("admin:alice")
    assert (outcome.errors, _served(life)) == ((), [("routing", "2", None, ())])
    assert [v.version for v in life.registry.status()["routing"].versions] == ["2"]


def test_a_rulesets_directory_missing_for_one_poll_keeps_every_ruleset(
    root: Path, store: AuditSink
) -> None:
    """`mv rulesets rulesets.old && mv rulesets.new rulesets`: the gap unloads nothing."""
    life = _lifecycle(root, store)
    aside = root.parent / "rulesets.old"
    root.rename(aside)
    outcome = life.reload("poll")
    assert (outcome.changes, outcome.errors) == ((), ("rulesets: missing or empty",))
    assert _served(life) == [("routing", "1", None, ())]
    assert life.registry.resolve("routing", "2").compiled.version == "2"
    root.mkdir()  # an empty directory is the same moment of a copy
    empty = life.reload("poll")
    # Named relative, never the server's path (review R32d F8: an existing empty directory
    # was not stripped from the reply or ListRulesets).
    assert (empty.changes, empty.errors) == ((), ("rulesets: missing or empty",))
    (info,) = life.list_rulesets()
    assert info.last_error is not None
    assert str(root.parent) not in info.last_error
    root.rmdir()
    aside.rename(root)
    assert life.reload("poll").errors == ()
    assert _events(store) == [("load", "startup", "routing", "active", "", "1")]


def test_activate_refuses_a_decided_version_whose_file_no_longer_gives_it(
    root: Path, store: AuditSink
) -> None:
    """Version 2 decided, then edited: activation refused, serving.yaml untouched."""
    life = _lifecycle(root, store)
    life.activate("routing", "2", "admin:alice")
    core = RoutingCore(life.registry, store, audit_config(root.parent / "audit").masker())
    core.decide(DecideCommand("req-1", "", "", (make_case(),), make_roster(make_agent()), NOW))
    life.rollback("routing", "admin:alice")
    pointer = root / "routing" / "serving.yaml"
    before = pointer.read_text()
    edited = root / "routing" / "2" / "ruleset.yaml"
    edited.write_text(edited.read_text() + "# reviewed\n")
    with pytest.raises(RulesetStateError) as exc:
        life.activate("routing", "2", "admin:alice")
    message = str(exc.value)
    assert message.startswith(
        "cannot activate ruleset routing version 2: its file routing/2/ruleset.yaml now holds "
        "other content ("
    )
    assert "a restarted or respawned worker could not serve it" in message
    assert str(root) not in message
    assert (pointer.read_text(), _served(life)) == (before, [("routing", "1", None, ())])


def test_activate_follows_an_edit_of_a_version_that_never_decided(root: Path) -> None:
    """Version 2 edited after the last load, never decided: activation serves the file's content.

    An activation first follows the directory as it is (the pointer lock's reload), so the
    version it points at is the one a restarted worker would load.
    """
    life = _lifecycle(root)
    edited = root / "routing" / "2" / "ruleset.yaml"
    edited.write_text(edited.read_text() + "# reviewed\n")
    life.activate("routing", "2", "admin:alice")
    assert life.registry.resolve("", "").compiled.sha256 == load_ruleset(edited).sha256


def test_rollback_refuses_a_version_whose_file_no_longer_loads(root: Path) -> None:
    """1 active, then 2: 1's file broken since; rolling back to it is refused, 2 serves."""
    life = _lifecycle(root)
    life.activate("routing", "2", "admin:alice")
    (root / "routing" / "1" / "ruleset.yaml").write_text("rules: [\n")
    life.reload("poll")  # 1 fails to load and is kept from memory
    with pytest.raises(RulesetStateError, match="cannot roll back to ruleset routing version 1"):
        life.rollback("routing", "admin:alice")
    assert _served(life) == [("routing", "2", None, ("1",))]


def test_admin_replies_name_paths_relative_to_the_rulesets_directory(root: Path) -> None:
    """A failing version in a reload's errors: `routing/2: ...`, never the server's path."""
    life = _lifecycle(root)
    (root / "routing" / "2" / "ruleset.yaml").write_text("rules: [\n")
    outcome = life.reload("admin:alice")
    assert outcome.errors == ("routing/2: 1 problem(s)",)


@contextmanager
def _served_health(
    root: Path, tmp_path: Path
) -> Iterator[tuple[Callable[[], int], Callable[[], None]]]:
    """A real server on ``root``: RoutingService's health, and a reload of ``root``."""
    config = ServerConfig(
        rulesets=root, port=0, engine=EngineKind.PYTHON, audit=audit_config(tmp_path / "a")
    )
    server = build_server(config, reuse_port=False)
    try:
        server.load(config)
        with grpc.insecure_channel(f"127.0.0.1:{server.port}") as chan:
            yield (lambda: _health(chan, ROUTING_SERVICE)), (lambda: server.load(config))
    finally:
        server.stop(1)


def test_health_is_not_serving_while_the_default_ruleset_has_no_active_version(
    root: Path, tmp_path: Path
) -> None:
    """Versions loaded but none active (a restart after a bad edit): NOT_SERVING, not SERVING."""
    _serving(root, "routing", "active: '9'\n")
    with _served_health(root, tmp_path) as (health, reload):
        assert health() == health_pb2.HealthCheckResponse.NOT_SERVING
        _serving(root, "routing", "active: '2'\n")
        reload()
        assert health() == health_pb2.HealthCheckResponse.SERVING


def test_a_rollback_on_a_worker_that_had_not_followed_is_reported_and_recorded_as_the_admins(
    root: Path, store: AuditSink
) -> None:
    """Review R32a F7: two workers over one directory and one log, polling apart.

    Worker A activates 2; worker B, which has not polled since, rolls back. B served 1 all
    along, so it replied "no active or shadow version changed" and recorded nothing, and A's
    next poll recorded the switch back as `reload by poll`. Now B's reply and the chain name
    the rollback and its admin; A's poll records nothing more.
    """
    worker_a, worker_b = _lifecycle(root, store), _lifecycle(root, store)
    worker_a.activate("routing", "2", "admin:alice")
    outcome = worker_b.rollback("routing", "admin:alice")
    assert [(c.role, c.from_version, c.to_version) for c in outcome.changes] == [
        ("active", "2", "1")
    ]
    assert (
        outcome.changes[0].from_sha256 == worker_a.registry.resolve("routing", "2").compiled.sha256
    )
    worker_a.reload("poll")
    assert _served(worker_a) == _served(worker_b) == [("routing", "1", None, ())]
    assert _events(store) == [
        ("load", "startup", "routing", "active", "", "1"),
        ("activate", "admin:alice", "routing", "active", "1", "2"),
        ("rollback", "admin:alice", "routing", "active", "2", "1"),
    ]


def test_a_ruleset_being_staged_first_in_order_does_not_become_the_implicit_default(
    root: Path, tmp_path: Path
) -> None:
    """The implicit default is the first name with an active version; health stays SERVING.

    Review R32d F2: `aaa-intake` (two versions, no serving.yaml yet) sorted first and became
    the default of a freshly started worker, which then said NOT_SERVING while its peers served.
    """
    _version(root, "aaa-intake", "1")
    _version(root, "aaa-intake", "2")
    life = _lifecycle(root)
    assert life.registry.serves_default()
    assert life.registry.resolve("", "").compiled.name == "routing"
    with _served_health(root, tmp_path) as (health, _reload):
        assert health() == health_pb2.HealthCheckResponse.SERVING


class _Clock:
    """A wall clock a test moves by hand."""

    def __init__(self) -> None:
        self.now = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


def _clocked(root: Path, store: AuditSink | None = None) -> tuple[RulesetLifecycle, _Clock]:
    clock = _Clock()
    registry = RulesetRegistry(clock=clock)
    life = RulesetLifecycle(registry, root, EngineKind.PYTHON, audit=store)
    life.load()
    return life, clock


def test_a_ruleset_directory_missing_for_one_poll_keeps_serving(
    root: Path, store: AuditSink
) -> None:
    """A ruleset's directory gone for a moment beside another ruleset: it keeps serving.

    Review R32d F6: `rm -rf rulesets/<name> && cp -r ...` unloaded <name> (NOT_FOUND for its
    requests) and recorded a change to none and back.
    """
    _version(root, "alpha", "1")
    life, _clock = _clocked(root, store)
    aside = root.parent / "routing.aside"
    (root / "routing").rename(aside)
    gap = life.reload("poll")
    assert (gap.changes, gap.errors) == ((), ("routing/: missing",))
    assert _served(life) == [("alpha", "1", None, ()), ("routing", "1", None, ())]
    aside.rename(root / "routing")
    assert (life.reload("poll").changes, life.reload("poll").errors) == ((), ())
    assert [e for e in _events(store) if e[2] == "routing"] == [
        ("load", "startup", "routing", "active", "", "1")
    ]


def test_what_stays_missing_past_the_grace_is_dropped_as_a_new_worker_would(root: Path) -> None:
    """Past MISSING_GRACE a version still missing is dropped: old and new workers agree.

    Review R32d F7: a version deleted on purpose while serving.yaml still named it served on in
    old workers forever and in new ones not at all.
    """
    life, clock = _clocked(root)
    shutil.rmtree(root / "routing" / "1")
    life.reload("poll")
    clock.now += MISSING_GRACE - timedelta(seconds=1)
    life.reload("poll")
    assert _served(life) == [("routing", "1", None, ())]
    clock.now += timedelta(seconds=2)
    life.reload("poll")
    fresh = _lifecycle(root)
    assert _served(life) == _served(fresh) == [("routing", None, None, ())]
    assert life.registry.serves_default() is fresh.registry.serves_default() is False
