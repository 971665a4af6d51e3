"""Lifecycle edges: refused activations and rollbacks, the poller, fingerprints, validate."""

from __future__ import annotations

import logging
import os
import shutil
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from caseroute.audit.record import RulesetEvent
from caseroute.audit.store import AuditSink
from caseroute.domain.decision import Decision
from caseroute.domain.errors import (
    AuditUnavailableError,
    EngineValidationError,
    Problem,
    RulesetNotFoundError,
    RulesetStateError,
)
from caseroute.engine.case_rules import EngineKind, LoadedRuleset, prepare_ruleset
from caseroute.engine.decide import decide
from caseroute.lifecycle import RulesetLifecycle, tree_fingerprint
from caseroute.registry import RulesetRegistry
from caseroute.rules.compiler import MAX_RULESET_BYTES, load_ruleset
from caseroute.rules.model import CompiledRuleset
from caseroute.rules.serving import write_atomically
from caseroute.testing import (
    CATCH_ALL_RULE,
    NOW,
    REFERENCE_HOME,
    REFERENCE_RULESET,
    audit_config,
    make_agent,
    make_case,
    make_roster,
    ruleset_with_rules,
)
from tests.test_lifecycle import RefusingEventLog

WAIT_S = 30.0  # an upper bound for an event that should come at once; never a sleep


def _text(name: str, version: str, queue: str = "general") -> str:
    return (
        ruleset_with_rules(CATCH_ALL_RULE)
        .replace("ruleset: test\n", f"ruleset: {name}\n")
        .replace('version: "1"\n', f'version: "{version}"\n')
        .replace("description: test ruleset", f"description: {queue} ruleset")
    )


def _version(root: Path, name: str, version: str) -> Path:
    path = root / name / version / "ruleset.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(_text(name, version))
    return path.parent


def _serving(root: Path, name: str, text: str) -> Path:
    path = root / name / "serving.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def _remove(directory: Path) -> None:
    for path in sorted(directory.rglob("*"), reverse=True):
        path.rmdir() if path.is_dir() else path.unlink()
    directory.rmdir()


@pytest.fixture
def store(tmp_path: Path) -> Iterator[AuditSink]:
    """A fresh decision log."""
    sink = audit_config(tmp_path / "audit").open_store()
    yield sink
    sink.close()


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """A rulesets directory with routing 1 and 2, serving.yaml naming 1 active."""
    rulesets = tmp_path / "rulesets"
    _version(rulesets, "routing", "1")
    _version(rulesets, "routing", "2")
    _serving(rulesets, "routing", "active: '1'\n")
    return rulesets


def _lifecycle(root: Path, audit: AuditSink | None = None) -> RulesetLifecycle:
    life = RulesetLifecycle(RulesetRegistry(), root, EngineKind.PYTHON, audit=audit)
    life.load()
    return life


def _served(life: RulesetLifecycle) -> list[tuple[str, str | None, str | None, tuple[str, ...]]]:
    return [
        (s.name, s.active_version, s.shadow_version, s.previous_versions)
        for s in life.list_rulesets()
    ]


def _decide(life: RulesetLifecycle) -> Decision:
    with life.registry.acquire("", "") as ruleset:
        return decide(make_case(), make_roster(make_agent()), ruleset, NOW, decision_id="d-1")


def _events(store: AuditSink) -> list[tuple[str, str, str, str, str, str]]:
    return [
        (e.action, e.actor, e.ruleset_name, e.role, e.from_version, e.to_version)
        for e in store.events()
    ]


# -- activation and rollback refusals --------------------------------------------------------

SINGLE_FILE = (
    "this server serves a single ruleset file, so it has no versions to switch between; start "
    "it with --rulesets pointing at a rulesets directory"
)


def test_activation_on_a_single_ruleset_file_is_refused(tmp_path: Path) -> None:
    """A server started on one ruleset.yaml has no pointer to rewrite: refused, file untouched."""
    path = _version(tmp_path, "routing", "1") / "ruleset.yaml"
    life = _lifecycle(path)
    with pytest.raises(RulesetStateError) as exc:
        life.activate("routing", "1", "admin:alice")
    assert (str(exc.value), [p.name for p in path.parent.iterdir()]) == (
        SINGLE_FILE,
        ["ruleset.yaml"],
    )


def test_rollback_on_a_single_ruleset_directory_is_refused(tmp_path: Path) -> None:
    """A server started on one ruleset directory (ruleset.yaml inside) cannot roll back."""
    home = _version(tmp_path, "routing", "1")
    life = _lifecycle(home)
    with pytest.raises(RulesetStateError) as exc:
        life.rollback("routing", "admin:alice")
    assert str(exc.value) == SINGLE_FILE


def test_a_malformed_pointer_refuses_activation(root: Path, store: AuditSink) -> None:
    """A pointer broken since the last reload: activation refused, naming code, line and file."""
    life = _lifecycle(root, store)
    broken = "active: '1'\nactve: '2'\n"
    pointer = _serving(root, "routing", broken)
    with pytest.raises(RulesetStateError) as exc:
        life.activate("routing", "2", "admin:alice")
    assert str(exc.value) == (
        "the serving file of ruleset routing is malformed (serving.unknown_key at line 2); fix "
        "routing/serving.yaml (ListRulesets shows the problem), then retry"
    )
    assert (pointer.read_text(), _served(life), _events(store)) == (
        broken,
        [("routing", "1", None, ())],
        [("load", "startup", "routing", "active", "", "1")],
    )


def test_an_unwritable_pointer_refuses_activation(root: Path, store: AuditSink) -> None:
    """A directory where serving.yaml belongs: refused with what to do, no path beyond the root."""
    life = _lifecycle(root, store)
    pointer = root / "routing" / "serving.yaml"
    pointer.unlink()
    pointer.mkdir()
    with pytest.raises(RulesetStateError) as exc:
        life.activate("routing", "2", "admin:alice")
    assert str(exc.value) == (
        "the server cannot write the serving file of ruleset routing (routing/serving.yaml; "
        "IsADirectoryError); give it write access to the rulesets directory, or edit "
        "serving.yaml by hand and reload"
    )
    assert (sorted(p.name for p in pointer.parent.iterdir()), _served(life)) == (
        ["1", "2", "serving.yaml"],
        [("routing", "1", None, ())],
    )


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes through a read-only directory")
def test_a_read_only_rulesets_directory_refuses_activation(root: Path) -> None:
    """No write access to the ruleset's directory: refused with PermissionError named."""
    life = _lifecycle(root)
    (root / "routing").chmod(0o555)
    try:
        with pytest.raises(RulesetStateError, match=r"routing/serving.yaml; PermissionError"):
            life.activate("routing", "2", "admin:alice")
    finally:
        (root / "routing").chmod(0o755)


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads a file without read permission")
def test_an_unreadable_pointer_refuses_activation(root: Path) -> None:
    """serving.yaml the server cannot read back: refused before anything is written."""
    life = _lifecycle(root)
    pointer = root / "routing" / "serving.yaml"
    pointer.chmod(0o000)
    try:
        with pytest.raises(RulesetStateError) as exc:
            life.activate("routing", "2", "admin:alice")
    finally:
        pointer.chmod(0o644)
    assert str(exc.value).startswith(
        "the server cannot write the serving file of ruleset routing (routing/serving.yaml; "
        "PermissionError)"
    )


def test_a_failed_restore_is_logged_and_the_first_error_reaches_the_caller(
    root: Path, store: AuditSink, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Log down, then the disk refuses the restore too: the caller gets the audit error."""
    refusing = RefusingEventLog(store)
    life = RulesetLifecycle(RulesetRegistry(), root, EngineKind.PYTHON, audit=refusing)  # type: ignore[arg-type]
    life.load()
    refusing.refuse = True
    writes: list[str] = []

    def write_once(path: Path, text: str) -> None:
        if writes:
            raise OSError(28, "No space left on device")
        writes.append(text)
        write_atomically(path, text)

    monkeypatch.setattr("caseroute.lifecycle.write_atomically", write_once)
    pointer = root / "routing" / "serving.yaml"
    with (
        caplog.at_level(logging.ERROR, "caseroute.lifecycle"),
        pytest.raises(AuditUnavailableError),
    ):
        life.activate("routing", "2", "admin:alice")
    assert (caplog.messages, _served(life), pointer.read_text().splitlines()[2:]) == (
        [f"could not restore {pointer}; fix it by hand"],
        [("routing", "1", None, ())],
        ['active: "2"', 'previous: ["1"]'],
    )


def test_a_version_that_fails_while_switching_restores_the_pointer(
    root: Path, store: AuditSink
) -> None:
    """Version 2 removed after the last reload: activation refused, serving.yaml as it was.

    Refused before the pointer is written: since review R32a F2 because its file did not load;
    now an activation first follows the directory as it is (under the pointer lock, so a
    change another worker made is seen), and version 2 is no longer loaded at all.
    """
    life = _lifecycle(root, store)
    pointer = root / "routing" / "serving.yaml"
    _remove(root / "routing" / "2")
    with pytest.raises(RulesetNotFoundError) as exc:
        life.activate("routing", "2", "admin:alice")
    assert str(exc.value) == "ruleset 'routing' has no version '2'; loaded versions: 1"
    assert (pointer.read_text(), _served(life), _events(store)) == (
        "active: '1'\n",
        [("routing", "1", None, ())],
        [("load", "startup", "routing", "active", "", "1")],
    )


def test_a_failed_first_activation_removes_the_pointer_it_wrote(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No serving.yaml before: a switch that does not take leaves none behind.

    Another writer rewrites serving.yaml between the switch's write and its reload (a version
    whose file does not load is refused before anything is written since review R32a F2).
    """
    root = tmp_path / "rulesets"
    _version(root, "routing", "1")
    _version(root, "routing", "2")
    life = _lifecycle(root)
    assert _served(life) == [("routing", None, None, ())]
    reload = life._reload

    def overwritten(action: str, actor: str) -> object:
        if action == "activate":
            (root / "routing" / "serving.yaml").write_text("active: '1'\n")
        return reload(action, actor)

    monkeypatch.setattr(life, "_reload", overwritten)
    with pytest.raises(RulesetStateError, match="version 2 did not become active"):
        life.activate("routing", "2", "admin:alice")
    # No pointer is left; 1, which the other writer's pointer made active, keeps serving.
    assert (sorted(p.name for p in (root / "routing").iterdir()), _served(life)) == (
        ["1", "2"],
        [("routing", "1", None, ())],
    )


def test_a_pointer_written_after_the_load_is_the_one_activation_rewrites(tmp_path: Path) -> None:
    """Server on rulesets/routing without serving.yaml; one written by hand is honoured."""
    home = tmp_path / "routing"
    _version(tmp_path, "routing", "1")
    _version(tmp_path, "routing", "2")
    life = _lifecycle(home)
    (home / "serving.yaml").write_text("active: '1'\n")
    life.activate("routing", "2", "admin:alice")
    assert (_served(life), (home / "serving.yaml").read_text().splitlines()[2:]) == (
        [("routing", "2", None, ("1",))],
        ['active: "2"', 'previous: ["1"]'],
    )


def test_rollback_of_an_unknown_ruleset_names_the_loaded_ones(root: Path) -> None:
    """Rollback of a name never loaded is not-found, listing what is loaded; nothing written."""
    life = _lifecycle(root)
    with pytest.raises(RulesetNotFoundError) as exc:
        life.rollback("routng", "admin:alice")
    assert (str(exc.value), (root / "routng").exists()) == (
        "unknown ruleset 'routng'; loaded: routing",
        False,
    )


def test_rollback_to_a_version_no_longer_loaded_is_refused(root: Path, store: AuditSink) -> None:
    """`previous` names a removed version: refused with what to do; the pointer is unchanged."""
    pointer = _serving(root, "routing", "active: '2'\nprevious: ['0']\n")
    life = _lifecycle(root, store)
    with pytest.raises(RulesetStateError) as exc:
        life.rollback("routing", "admin:alice")
    assert str(exc.value) == (
        "ruleset routing would roll back to 0, which is not loaded (removed or failing: "
        "ListRulesets says why); restore it or activate a loaded version"
    )
    assert (pointer.read_text(), _served(life)) == (
        "active: '2'\nprevious: ['0']\n",
        [("routing", "2", None, ("0",))],
    )


# -- what the registry chooses when pointers and versions disagree ---------------------------


def test_a_broken_pointer_keeps_the_shadow_and_the_history_too(root: Path) -> None:
    """An unreadable serving.yaml keeps the last good active, shadow AND previous versions."""
    _serving(root, "routing", "active: '1'\nshadow: '2'\nprevious: ['0']\n")
    life = _lifecycle(root)
    _serving(root, "routing", "active: [\n")
    outcome = life.reload("admin:alice")
    assert (_served(life), outcome.changes) == ([("routing", "1", "2", ("0",))], ())


def test_a_pointer_broken_from_the_start_serves_only_pinned_requests(root: Path) -> None:
    """First load with an unreadable serving.yaml: nothing active, no history, file:line shown."""
    _serving(root, "routing", "active: '1'\nprevious: 0\n")
    life = _lifecycle(root)
    (info,) = life.list_rulesets()
    assert (info.active_version, info.previous_versions, info.last_error) == (
        None,
        (),
        (
            "routing/serving.yaml:2:11: error serving.type: `previous` is a list of versions, most "
            "recent last, e.g. [2025.05.0]"
        ),
    )
    assert life.registry.resolve("routing", "2").compiled.version == "2"


def test_a_broken_pointer_cannot_keep_a_version_that_is_gone(root: Path) -> None:
    """Pointer broken and the active version removed: nothing is active; 2 serves pinned only."""
    life = _lifecycle(root)
    _serving(root, "routing", "active: [\n")
    _remove(root / "routing" / "1")
    life.reload("admin:alice")
    assert (_served(life), life.registry.resolve("routing", "2").compiled.version) == (
        [("routing", None, None, ())],
        "2",
    )


def test_a_pointer_naming_an_unloaded_version_on_first_load_serves_only_pinned(
    root: Path,
) -> None:
    """First load, active: 9: no active version (nothing to keep), the error says so."""
    _serving(root, "routing", "active: '9'\n")
    life = _lifecycle(root)
    (info,) = life.list_rulesets()
    assert (info.active_version, info.last_error) == (
        None,
        (
            "routing/serving.yaml:1: error versions.not_loaded: the active version 9 of ruleset "
            "routing is not loaded (loaded: 1, 2): fix that version's problems or point `active:` "
            "at a loaded version; only pinned requests are served"
        ),
    )


def test_a_pointer_naming_an_unloaded_shadow_runs_no_shadow(root: Path) -> None:
    """shadow: 9 is not loaded: the active version serves, no shadow, the error names line 2."""
    _serving(root, "routing", "active: '1'\nshadow: '9'\n")
    life = _lifecycle(root)
    (info,) = life.list_rulesets()
    assert (info.active_version, info.shadow_version, info.last_error) == (
        "1",
        None,
        (
            "routing/serving.yaml:2: error versions.not_loaded: the shadow version 9 of ruleset "
            "routing is not loaded (loaded: 1, 2): fix that version's problems or point `shadow:` "
            "at a loaded version; no shadow runs"
        ),
    )


def test_a_shadow_equal_to_the_active_version_is_not_a_shadow(root: Path) -> None:
    """shadow: 1 beside active: 1 would compare a version with itself: no shadow runs."""
    _serving(root, "routing", "active: '1'\nshadow: '1'\n")
    assert _served(_lifecycle(root)) == [("routing", "1", None, ())]


def test_a_pointer_with_no_versions_is_listed_with_its_error(tmp_path: Path) -> None:
    """rulesets/ghost/ holds only serving.yaml: listed, nothing active, the error says why."""
    _serving(tmp_path, "ghost", "active: '1'\n")
    life = _lifecycle(tmp_path)
    (info,) = life.list_rulesets()
    assert (info.name, info.active_version, info.versions, info.last_error) == (
        "ghost",
        None,
        (),
        (
            "ghost/serving.yaml:1: error versions.not_loaded: the active version 1 of ruleset "
            "ghost is not loaded (loaded: none): fix that version's problems or point `active:` "
            "at a loaded version; only pinned requests are served"
        ),
    )


def test_a_second_version_without_a_pointer_keeps_the_one_serving(tmp_path: Path) -> None:
    """Routing had one version (active); a second appears with no serving.yaml: 1 still serves."""
    _version(tmp_path, "routing", "1")
    life = _lifecycle(tmp_path)
    _version(tmp_path, "routing", "2")
    life.reload("admin:alice")
    (info,) = life.list_rulesets()
    assert (info.active_version, [v.version for v in info.versions], info.last_error) == (
        "1",
        ["1", "2"],
        (
            "routing: error versions.no_active: ruleset routing has versions 1, 2 and no "
            "serving.yaml naming the active one (order on disk never decides); write "
            "rulesets/routing/serving.yaml with `active: <version>` or run `caseroute rules "
            "activate`; still serving 1"
        ),
    )


def test_a_copy_that_breaks_keeps_serving_an_open_engine(tmp_path: Path) -> None:
    """Two identical copies of a version; one breaks, the other goes: decisions stay the same.

    The failing copy keeps what it served, and that must be a ruleset the registry still holds
    open (a closed durable_rules engine fires nothing: every decision became an EXCEPTION).
    """
    home = tmp_path / "patient-enquiries"
    shutil.copytree(REFERENCE_HOME, home)
    copy = tmp_path / "a-copy" / "ruleset.yaml"
    copy.parent.mkdir()
    copy.write_text((REFERENCE_RULESET / "ruleset.yaml").read_text())
    life = RulesetLifecycle(RulesetRegistry(), tmp_path, EngineKind.DURABLE, audit=None)
    life.load()
    before = _decide(life)
    copy.write_text("ruleset: [\n")
    shutil.rmtree(home / REFERENCE_RULESET.name)
    life.reload("admin:alice")
    try:
        assert (_decide(life), [s.active_version for s in life.list_rulesets()]) == (
            before,
            [REFERENCE_RULESET.name],
        )
    finally:
        life.registry.close()


def test_when_the_original_breaks_an_identical_copy_keeps_serving(tmp_path: Path) -> None:
    """routing/1 breaks while a-copy holds the same content: 1 serves, the error names routing/1."""
    _version(tmp_path, "routing", "1")
    _serving(tmp_path, "routing", "active: '1'\n")
    copy = tmp_path / "a-copy" / "ruleset.yaml"
    copy.parent.mkdir()
    copy.write_text(_text("routing", "1"))
    life = _lifecycle(tmp_path)
    (tmp_path / "routing" / "1" / "ruleset.yaml").write_text("ruleset: [\n")
    outcome = life.reload("admin:alice")
    (info,) = life.list_rulesets()
    assert (outcome.changes, info.active_version, (info.last_error or "").splitlines()[0]) == (
        (),
        "1",
        (
            "routing/1/ruleset.yaml:2:1: error yaml.syntax: YAML syntax error: the file ends in "
            "the middle of a value: it was cut short (a save or copy interrupted), or a `[` or "
            "`{` is never closed. Restore the rest of the file, or close the bracket"
        ),
    )


def test_a_conflicting_copy_never_displaces_the_serving_version_nor_other_rulesets(
    tmp_path: Path,
) -> None:
    """A copy of routing 1 with other content is refused; triage keeps its last good state."""
    _version(tmp_path, "routing", "1")
    _serving(tmp_path, "routing", "active: '1'\n")
    _version(tmp_path, "0-triage", "1")
    life = _lifecycle(tmp_path)
    sha = life.get_source("routing", "1").sha256
    copy = tmp_path / "a-copy" / "ruleset.yaml"
    copy.parent.mkdir()
    copy.write_text(_text("routing", "1", queue="clinical"))
    life.reload("admin:alice")
    (tmp_path / "0-triage" / "1" / "ruleset.yaml").write_text("ruleset: [\n")
    life.reload("admin:alice")
    assert (_served(life), life.get_source("routing", "1").sha256) == (
        [("0-triage", "1", None, ()), ("routing", "1", None, ())],
        sha,
    )


# -- reading ---------------------------------------------------------------------------------


def test_a_version_added_from_outside_the_root_is_shown_with_its_full_path(
    root: Path, tmp_path: Path
) -> None:
    """list_rulesets shows paths under the root relative to it, any other path as it is."""
    life = _lifecycle(root)
    elsewhere = _version(tmp_path / "elsewhere", "triage", "7")
    life.registry.add(prepare_ruleset(load_ruleset(elsewhere), EngineKind.PYTHON))
    assert [(s.name, [v.path for v in s.versions]) for s in life.list_rulesets()] == [
        ("routing", ["routing/1/ruleset.yaml", "routing/2/ruleset.yaml"]),
        ("triage", [str(elsewhere / "ruleset.yaml")]),
    ]


def test_get_source_returns_the_text_as_loaded(root: Path) -> None:
    """GetRuleset's core: "" is the active version, its exact file text and sha256."""
    life = _lifecycle(root)
    text = life.get_source("routing", "")
    (info,) = life.list_rulesets()
    assert (text.name, text.version, text.sha256, text.text) == (
        "routing",
        "1",
        info.sha256,
        (root / "routing" / "1" / "ruleset.yaml").read_text(),
    )
    with pytest.raises(RulesetNotFoundError):
        life.get_source("routing", "9")


def test_validate_refuses_an_oversized_source_before_parsing(root: Path) -> None:
    """A source over the size limit is one limit.file_size problem named by the file's base name."""
    life = _lifecycle(root)
    text = "#" * (MAX_RULESET_BYTES + 1)
    assert life.validate(text, "uploads/big.yaml") == [
        Problem(
            "limit.file_size",
            f"the source is over {MAX_RULESET_BYTES} bytes; split the ruleset",
            "big.yaml",
        )
    ]


def test_validate_without_a_file_name_names_ruleset_yaml(root: Path) -> None:
    """An empty file name locates problems in `ruleset.yaml`, never in a server path."""
    life = _lifecycle(root)
    problems = life.validate("ruleset: [\n", "")
    assert sorted({p.file for p in problems}) == ["ruleset.yaml"]


def test_validate_of_a_source_the_engine_refuses_hides_the_engine_text(
    root: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The engine's message (it may name server paths) goes to the log; the caller gets a code."""
    life = _lifecycle(root)

    def refuse(compiled: CompiledRuleset, engine: EngineKind) -> LoadedRuleset:
        del compiled, engine
        raise EngineValidationError("durable_rules rejected: /srv/caseroute/lib/engine.so")

    monkeypatch.setattr("caseroute.lifecycle.prepare_ruleset", refuse)
    with caplog.at_level(logging.WARNING, "caseroute.lifecycle"):
        problems = life.validate(_text("routing", "3"), "r.yaml")
    assert problems == [
        Problem(
            "engine.rejected",
            "the rules engine refused this ruleset (EngineValidationError); the server log has "
            "the detail; simplify the conditions or report it",
            "r.yaml",
        )
    ]
    assert caplog.messages == [
        "validate: the engine refused r.yaml: durable_rules rejected: /srv/caseroute/lib/engine.so"
    ]


# -- fingerprints ----------------------------------------------------------------------------


def test_the_fingerprint_of_a_file_root_is_that_file(tmp_path: Path) -> None:
    """A server on one ruleset file notices any write to it."""
    path = _version(tmp_path, "routing", "1") / "ruleset.yaml"
    info = path.stat()
    assert tree_fingerprint(path) == (("ruleset.yaml", info.st_mtime_ns, info.st_size),)


def test_the_fingerprint_skips_hidden_dangling_and_too_deep_entries(tmp_path: Path) -> None:
    """Hidden files, a dangling link and files below depth 5 never trigger a reload."""
    deep = tmp_path / "a" / "b" / "c" / "d"
    (deep / "e").mkdir(parents=True)
    (deep / "kept.yaml").write_text("x")
    (deep / "e" / "too-deep.yaml").write_text("x")
    (tmp_path / ".serving.yaml.tmp").write_text("x")
    (tmp_path / "dangling").symlink_to(tmp_path / "missing")
    info = (deep / "kept.yaml").stat()
    assert tree_fingerprint(tmp_path) == (("a/b/c/d/kept.yaml", info.st_mtime_ns, 1),)


def test_the_fingerprint_of_a_missing_root_is_empty(tmp_path: Path) -> None:
    """A rulesets directory that cannot be listed has no files (no crash in the poller)."""
    assert tree_fingerprint(tmp_path / "missing") == ()


# -- the poller ------------------------------------------------------------------------------


class _SignallingLog:
    """A decision log that signals each recorded batch of events and can refuse the first ones."""

    def __init__(self, inner: AuditSink, refusals: int = 0) -> None:
        self.inner = inner
        self.refusals = refusals
        self.recorded = threading.Event()

    def append_events(
        self, events: Sequence[RulesetEvent], *, unless_current: bool = False
    ) -> list[RulesetEvent]:
        """Refuse while refusals are left; otherwise record and signal."""
        if self.refusals:
            self.refusals -= 1
            raise AuditUnavailableError("the decision log cannot be written")
        stored = self.inner.append_events(events, unless_current=unless_current)
        self.recorded.set()
        return stored

    def last_event(self, name: str, role: str) -> RulesetEvent | None:
        """Delegate."""
        return self.inner.last_event(name, role)

    def decided_sha256s(self, name: str, version: str) -> frozenset[str]:
        """Delegate."""
        return self.inner.decided_sha256s(name, version)


def _pollers() -> set[threading.Thread]:
    return {t for t in threading.enumerate() if t.name == "caseroute-ruleset-poll"}


def test_the_poller_reloads_a_hand_edited_pointer(root: Path, store: AuditSink) -> None:
    """start_polling picks up an edit by itself; a second start adds no thread; stop ends it."""
    signals = _SignallingLog(store)
    life = RulesetLifecycle(RulesetRegistry(), root, EngineKind.PYTHON, audit=signals)  # type: ignore[arg-type]
    life.load()
    signals.recorded.clear()
    others = _pollers()  # other tests' servers may still be shutting down
    life.start_polling(0.001)
    life.start_polling(0.001)
    try:
        assert len(_pollers() - others) == 1
        write_atomically(root / "routing" / "serving.yaml", 'active: "2"\n')
        assert signals.recorded.wait(WAIT_S)
    finally:
        life.stop_polling()
    assert (_pollers() - others, _served(life), _events(store)[-1]) == (
        set(),
        [("routing", "2", None, ())],
        ("reload", "poll", "routing", "active", "1", "2"),
    )


def test_the_poller_retries_a_reload_that_could_not_be_recorded(
    root: Path, store: AuditSink, caplog: pytest.LogCaptureFixture
) -> None:
    """A reload refused by the decision log is retried on the next tick, not forgotten."""
    signals = _SignallingLog(store)
    life = RulesetLifecycle(RulesetRegistry(), root, EngineKind.PYTHON, audit=signals)  # type: ignore[arg-type]
    life.load()
    signals.recorded.clear()
    signals.refusals = 1
    with caplog.at_level(logging.ERROR, "caseroute.lifecycle"):
        life.start_polling(0.001)
        try:
            write_atomically(root / "routing" / "serving.yaml", 'active: "2"\n')
            assert signals.recorded.wait(WAIT_S)
        finally:
            life.stop_polling()
    assert (caplog.messages, _served(life), _events(store)[-1]) == (
        ["ruleset reload after a file change failed; retrying"],
        [("routing", "2", None, ())],
        ("reload", "poll", "routing", "active", "1", "2"),
    )


def test_a_zero_interval_never_starts_a_poller(root: Path) -> None:
    """--reload-interval 0: no thread; stopping a poller never started is harmless."""
    life = _lifecycle(root)
    others = _pollers()  # other tests' servers may still be shutting down
    life.start_polling(0)
    assert _pollers() - others == set()
    life.stop_polling()
    assert _pollers() - others == set()
