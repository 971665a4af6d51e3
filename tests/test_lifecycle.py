"""Ruleset versions on disk, the pointer file, activation, rollback and the recorded events."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from caseroute.audit.record import RulesetEvent
from caseroute.audit.store import AuditSink
from caseroute.cli.command import main
from caseroute.domain.errors import (
    AuditUnavailableError,
    RulesetNotFoundError,
    RulesetStateError,
)
from caseroute.engine.case_rules import EngineKind
from caseroute.lifecycle import RulesetChange, RulesetLifecycle
from caseroute.registry import RulesetRegistry
from caseroute.service import DecideCommand, RoutingCore
from caseroute.testing import (
    CATCH_ALL_RULE,
    NOW,
    audit_config,
    compile_text,
    make_agent,
    make_case,
    make_roster,
    ruleset_with_rules,
)


def _text(name: str, version: str, queue: str = "general") -> str:
    return (
        ruleset_with_rules(CATCH_ALL_RULE)
        .replace("ruleset: test\n", f"ruleset: {name}\n")
        .replace('version: "1"\n', f'version: "{version}"\n')
        .replace("description: test ruleset", f"description: {queue} ruleset")
    )


def _version(root: Path, name: str, version: str, queue: str = "general") -> Path:
    path = root / name / version / "ruleset.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(_text(name, version, queue))
    return path


def _serving(root: Path, name: str, text: str) -> Path:
    path = root / name / "serving.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


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
    _version(rulesets, "routing", "2", queue="clinical")
    _serving(rulesets, "routing", "active: '1'\n")
    return rulesets


def _lifecycle(root: Path, store: AuditSink | None) -> RulesetLifecycle:
    return RulesetLifecycle(RulesetRegistry(), root, EngineKind.PYTHON, audit=store)


def _events(store: AuditSink) -> list[tuple[str, str, str, str, str, str]]:
    return [
        (e.action, e.actor, e.ruleset_name, e.role, e.from_version, e.to_version)
        for e in store.events()
    ]


def test_the_pointer_file_not_the_directory_order_names_the_active_version(
    root: Path, store: AuditSink
) -> None:
    """serving.yaml says 1 although 2 sorts last; 2 stays servable when pinned."""
    life = _lifecycle(root, store)
    life.load()
    (info,) = life.list_rulesets()
    assert (
        info.active_version,
        tuple(v.version for v in info.versions),
        info.last_error,
    ) == ("1", ("1", "2"), None)
    assert life.registry.resolve("routing", "2").compiled.version == "2"
    assert [v.path for v in info.versions] == ["routing/1/ruleset.yaml", "routing/2/ruleset.yaml"]


def test_two_versions_without_a_pointer_have_no_active_version(tmp_path: Path) -> None:
    """No serving.yaml and two versions: nothing is inferred; pinned requests still serve."""
    _version(tmp_path, "routing", "1")
    _version(tmp_path, "routing", "2")
    life = _lifecycle(tmp_path, None)
    life.load()
    (info,) = life.list_rulesets()
    assert info.active_version is None
    assert info.last_error is not None
    assert info.last_error.startswith("routing: error versions.no_active: ruleset routing has")
    with pytest.raises(RulesetNotFoundError, match="has no active version"):
        life.registry.resolve("routing", "")
    assert life.registry.resolve("routing", "2").compiled.version == "2"


def test_a_stray_old_copy_never_becomes_active(tmp_path: Path) -> None:
    """The reported defect: a copy with an older version in another directory stays inactive."""
    _version(tmp_path, "patient-enquiries", "2026.11.1")
    _serving(tmp_path, "patient-enquiries", "active: 2026.11.1\n")
    old = tmp_path / "patient-enquiries-old" / "ruleset.yaml"
    old.parent.mkdir()
    old.write_text(_text("patient-enquiries", "2025.01.0"))
    life = _lifecycle(tmp_path, None)
    life.load()
    assert life.registry.resolve("", "").compiled.version == "2026.11.1"
    assert life.registry.resolve("patient-enquiries", "2025.01.0").compiled.version == "2025.01.0"


def test_a_version_directory_must_match_its_file(tmp_path: Path) -> None:
    """A copy left in 3/ still declaring version 2 is refused with file:line, not loaded as 2."""
    _version(tmp_path, "routing", "2")
    copy = tmp_path / "routing" / "3" / "ruleset.yaml"
    copy.parent.mkdir()
    copy.write_text(_text("routing", "2", queue="clinical"))
    _serving(tmp_path, "routing", "active: '2'\n")
    life = _lifecycle(tmp_path, None)
    life.load()
    (info,) = life.list_rulesets()
    assert (info.active_version, tuple(v.version for v in info.versions)) == ("2", ("2",))
    assert info.last_error == (
        "routing/3/ruleset.yaml:2: error versions.misplaced: this file declares version `2` but "
        "sits in directory `3/`: rename the directory to 2/ or fix `version:` (create new "
        "versions with `caseroute rules new-version`)"
    )


def test_activate_rewrites_the_pointer_records_the_change_and_verifies(
    root: Path, store: AuditSink, capsys: pytest.CaptureFixture[str]
) -> None:
    """Activation: pointer rewritten, new version serves, load+activate events in the chain."""
    life = _lifecycle(root, store)
    life.load()
    sha = {v.version: v.sha256 for v in life.list_rulesets()[0].versions}
    outcome = life.activate("routing", "2", "admin:alice")
    assert (RulesetChange("routing", "active", "1", sha["1"], "2", sha["2"]),) == outcome.changes
    assert life.registry.resolve("", "").compiled.version == "2"
    assert 'active: "2"\nprevious: ["1"]\n' in (root / "routing" / "serving.yaml").read_text()
    assert _events(store) == [
        ("load", "startup", "routing", "active", "", "1"),
        ("activate", "admin:alice", "routing", "active", "1", "2"),
    ]
    capsys.readouterr()
    assert main(["audit", "verify", "--audit-db", str(root.parent / "audit" / "audit.db")]) == 0
    assert capsys.readouterr().out.startswith("ok: 2 record(s) (2 of them ruleset event(s))")


def test_rollback_returns_to_the_previous_version(root: Path, store: AuditSink) -> None:
    """Rollback after an activation serves the version before it, and is recorded."""
    life = _lifecycle(root, store)
    life.load()
    life.activate("routing", "2", "admin:alice")
    life.rollback("routing", "admin:bob")
    assert life.registry.resolve("", "").compiled.version == "1"
    assert _events(store)[-1] == ("rollback", "admin:bob", "routing", "active", "2", "1")
    with pytest.raises(RulesetStateError, match="no previously active version"):
        life.rollback("routing", "admin:bob")


def test_the_version_rolled_back_from_is_listed_as_retired(root: Path, store: AuditSink) -> None:
    """ListRulesets shows serving.yaml's `retired` list (a rollback never returns to them).

    Since R34b F8 a rollback names the version it left under `retired:`, but the admin API
    listed only active, shadow and previous, so an operator could not see it. A pointer that
    stops reading keeps the last good list, as it keeps the active version.
    """
    life = _lifecycle(root, store)
    life.load()
    life.activate("routing", "2", "admin:alice")
    assert life.list_rulesets()[0].retired_versions == ()
    life.rollback("routing", "admin:bob")
    (info,) = life.list_rulesets()
    assert (info.active_version, info.previous_versions, info.retired_versions) == ("1", (), ("2",))
    (root / "routing" / "serving.yaml").write_text("active: [\n")
    life.reload("admin:carol")
    (info,) = life.list_rulesets()
    assert (info.active_version, info.retired_versions, info.last_error is not None) == (
        "1",
        ("2",),
        True,
    )
    (root / "routing" / "serving.yaml").write_text("active: '2'\n")  # activated by hand again
    life.reload("admin:carol")
    assert life.list_rulesets()[0].retired_versions == ()


def test_activating_an_unknown_version_changes_nothing(root: Path, store: AuditSink) -> None:
    """An unknown version is NOT_FOUND-style; the pointer file is untouched."""
    life = _lifecycle(root, store)
    life.load()
    before = (root / "routing" / "serving.yaml").read_text()
    with pytest.raises(RulesetNotFoundError, match="no version '9'"):
        life.activate("routing", "9", "admin:alice")
    assert before == (root / "routing" / "serving.yaml").read_text()


class RefusingEventLog:
    """A decision log whose event writes fail (the disk filled up, say)."""

    def __init__(self, inner: AuditSink) -> None:
        self.inner = inner
        self.refuse = False

    def append_events(
        self, events: Sequence[RulesetEvent], *, unless_current: bool = False
    ) -> list[RulesetEvent]:
        """Fail while ``refuse`` is set."""
        if self.refuse:
            raise AuditUnavailableError("the decision log cannot be written")
        return self.inner.append_events(events, unless_current=unless_current)

    def decided_sha256s(self, name: str, version: str) -> frozenset[str]:
        """Delegate."""
        return self.inner.decided_sha256s(name, version)

    def last_event(self, name: str, role: str) -> RulesetEvent | None:
        """Delegate."""
        return self.inner.last_event(name, role)


def test_an_activation_that_cannot_be_recorded_is_not_made(root: Path, store: AuditSink) -> None:
    """No event, no change: the old version keeps serving and the pointer is restored."""
    events = RefusingEventLog(store)
    life = RulesetLifecycle(RulesetRegistry(), root, EngineKind.PYTHON, audit=events)  # type: ignore[arg-type]
    life.load()
    before = (root / "routing" / "serving.yaml").read_text()
    events.refuse = True
    with pytest.raises(AuditUnavailableError):
        life.activate("routing", "2", "admin:alice")
    assert ("1", before) == (
        life.registry.resolve("", "").compiled.version,
        (root / "routing" / "serving.yaml").read_text(),
    )


def test_a_version_that_decided_cannot_change(root: Path, store: AuditSink) -> None:
    """Editing version 1 after it decided is refused; its recorded content keeps serving."""
    life = _lifecycle(root, store)
    life.load()
    core = RoutingCore(life.registry, store, audit_config(root.parent / "audit").masker())
    core.decide(DecideCommand("req-1", "", "", (make_case(),), make_roster(make_agent()), NOW))
    serving = life.registry.resolve("", "")
    _version(root, "routing", "1", queue="clinical")  # same version, other content
    life.reload("admin:alice")
    (info,) = life.list_rulesets()
    assert serving is life.registry.resolve("", "")
    assert info.last_error is not None
    assert info.last_error.startswith(
        "routing/1/ruleset.yaml:2: error versions.changed_after_deciding: ruleset routing "
        "version 1 has already decided with other content"
    )


def test_a_new_process_serves_the_recorded_content_of_an_edited_version(
    root: Path, store: AuditSink
) -> None:
    """A worker with no copy in memory serves what the log recorded for an edited version.

    Review R32a F2: after an edit to a version that decided, a respawned or restarted worker
    had no active version while the others served the recorded content.
    """
    life = _lifecycle(root, store)
    life.load()
    core = RoutingCore(life.registry, store, audit_config(root.parent / "audit").masker())
    core.decide(DecideCommand("req-1", "", "", (make_case(),), make_roster(make_agent()), NOW))
    decided = life.registry.resolve("", "").compiled
    _version(root, "routing", "1", queue="clinical")  # same version, other content
    respawned = _lifecycle(root, store)
    respawned.load()
    serving = respawned.registry.resolve("", "").compiled
    assert (serving.version, serving.sha256, serving.source_text) == (
        "1",
        decided.sha256,
        decided.source_text,
    )
    (info,) = respawned.list_rulesets()
    assert info.active_version == "1"
    assert info.last_error is not None
    assert "error versions.changed_after_deciding" in info.last_error
    without_log = _lifecycle(root, None)
    without_log.load()
    assert without_log.registry.resolve("", "").compiled.sha256 != decided.sha256


def _decided_then_closed(root: Path, ruleset: str = "") -> Path:
    """Version 1 of routing loaded and decided once into a log in ``root``'s parent; closed."""
    config = audit_config(root.parent / "audit")
    store = config.open_store()
    life = _lifecycle(root, store)
    life.load()
    core = RoutingCore(life.registry, store, config.masker())
    core.decide(DecideCommand("req-1", ruleset, "", (make_case(),), make_roster(make_agent()), NOW))
    life.registry.close()
    store.close()
    return root.parent / "audit" / "audit.db"


def test_a_tampered_log_cannot_make_a_restarted_worker_serve_unpublished_content(
    root: Path,
) -> None:
    """Only content a lifecycle event shows serving is taken from the log.

    Review R32d F3: a blob row plus the decisions' ruleset_sha256 edited to point at it made a
    restarted worker refuse the untouched published file and serve the forged content.
    """
    database = _decided_then_closed(root)
    published = (root / "routing" / "1" / "ruleset.yaml").read_text()
    forged = published.replace("description: general ruleset", "description: NEVER PUBLISHED")
    forged_sha = compile_text(forged, str(root / "routing" / "1" / "ruleset.yaml")).sha256
    with sqlite3.connect(database) as db:
        db.execute(
            "INSERT INTO blobs (sha256, kind, content) VALUES (?, 'ruleset', ?)",
            (forged_sha, forged),
        )
        db.execute("UPDATE decisions SET ruleset_sha256 = ?", (forged_sha,))
    store = audit_config(root.parent / "audit").open_store()
    try:
        restarted = _lifecycle(root, store)
        restarted.load()
        (info,) = restarted.list_rulesets()
        assert [v.sha256 for v in info.versions if v.version == "1"] == []
        assert forged_sha not in {v.sha256 for v in info.versions}
        assert info.active_version is None  # refused, fail-closed: nothing unpublished serves
    finally:
        store.close()


def test_a_log_that_cannot_give_the_recorded_content_fails_that_version_only(
    root: Path,
) -> None:
    """A log read failing while loading one version leaves that version out, not every ruleset.

    Review R32d F11: reading the recorded content raised out of the whole reload, and a
    restarted server loaded no ruleset at all.
    """
    _version(root, "other", "1")
    database = _decided_then_closed(root, "routing")
    _version(root, "routing", "1", queue="clinical")  # the published file edited
    with sqlite3.connect(database) as db:
        db.execute("UPDATE blobs SET kind = 'ruleset-x' WHERE kind = 'ruleset'")
    store = audit_config(root.parent / "audit").open_store()
    try:
        restarted = _lifecycle(root, store)
        restarted.load()
        assert restarted.registry.names() == ["other", "routing"]
        assert restarted.registry.resolve("other", "1").compiled.version == "1"
    finally:
        store.close()


def test_a_draft_that_never_decided_may_still_change(root: Path, store: AuditSink) -> None:
    """Version 2 never decided: editing it reloads the new content."""
    life = _lifecycle(root, store)
    life.load()
    old = life.registry.resolve("routing", "2").compiled.sha256
    _version(root, "routing", "2", queue="general")
    life.reload("admin:alice")
    (info,) = life.list_rulesets()
    assert (
        info.last_error,
        old != life.registry.resolve("routing", "2").compiled.sha256,
    ) == (None, True)


def test_a_broken_pointer_keeps_the_last_good_choice(root: Path, store: AuditSink) -> None:
    """A half-written serving.yaml: the active version stays, the error names file:line."""
    life = _lifecycle(root, store)
    life.load()
    _serving(root, "routing", "active: '2'\nactve: '1'\n")
    outcome = life.poll_once()
    (info,) = life.list_rulesets()
    assert outcome is not None
    assert (info.active_version, outcome.changes) == ("1", ())
    assert info.last_error == (
        "routing/serving.yaml:2:1: error serving.unknown_key: unknown key `actve` (did you mean "
        "`active`?); a serving file has only active, shadow, previous, retired"
    )


def test_poll_reloads_only_when_a_file_changed(root: Path, store: AuditSink) -> None:
    """No change: no reload; a pointer edited by hand: reloaded and recorded as actor poll."""
    life = _lifecycle(root, store)
    life.load()
    assert life.poll_once() is None
    _serving(root, "routing", "active: '2'\n")
    outcome = life.poll_once()
    assert outcome is not None
    assert _events(store)[-1] == ("reload", "poll", "routing", "active", "1", "2")


def test_shadow_version_is_named_by_the_pointer(root: Path, store: AuditSink) -> None:
    """`shadow:` loads beside the active version and its start is recorded."""
    _serving(root, "routing", "active: '1'\nshadow: '2'\n")
    life = _lifecycle(root, store)
    life.load()
    (info,) = life.list_rulesets()
    assert (info.active_version, info.shadow_version) == ("1", "2")
    assert _events(store)[-1] == ("load", "startup", "routing", "shadow", "", "2")


def test_validate_reports_problems_without_activating(root: Path, store: AuditSink) -> None:
    """ValidateRuleset's core: problems with file:line of the given name; nothing changes."""
    life = _lifecycle(root, store)
    life.load()
    problems = life.validate(_text("routing", "3").replace("owner: tests", "ownr: x"), "r.yaml")
    assert [(p.code, p.file, p.line) for p in problems if p.code == "schema.unknown_key"] == [
        ("schema.unknown_key", "r.yaml", 4)
    ]
    # A warning only: the test ruleset enforces no consent constraint.
    assert [p.code for p in life.validate(_text("routing", "3"), "r.yaml")] == [
        "lint.no_consent",
        "lint.no_licence",
    ]
    assert [v.version for v in life.list_rulesets()[0].versions] == ["1", "2"]


def test_workers_sharing_a_log_record_each_change_once(root: Path, store: AuditSink) -> None:
    """Two processes' lifecycles on one log: one load, and the follower's poll adds nothing."""
    first, second = _lifecycle(root, store), _lifecycle(root, store)
    first.load()
    second.load()
    first.activate("routing", "2", "admin:alice")
    outcome = second.poll_once()  # the other worker follows the rewritten serving.yaml
    assert outcome is not None
    assert second.registry.resolve("", "").compiled.version == "2"
    assert [c.to_version for c in outcome.changes] == ["2"]  # it did change, in that process
    assert _events(store) == [
        ("load", "startup", "routing", "active", "", "1"),
        ("activate", "admin:alice", "routing", "active", "1", "2"),
    ]


def test_a_pinned_retired_version_does_not_decide(root: Path, store: AuditSink) -> None:
    """The version a rollback left does not decide for a caller who pins it.

    Review R36a M1: docs/rulesets.md says `retired` is never served from, but a request
    pinning the rolled-back version still got its decisions (and they were recorded). Now it
    is FAILED_PRECONDITION (RulesetRetiredError) naming the version, the active one to pin
    instead and how to bring it back; nothing is recorded. Activating it again serves it.
    """
    life = _lifecycle(root, store)
    life.load()
    core = RoutingCore(life.registry, store, audit_config(root.parent / "audit").masker())
    case, roster = (make_case(),), make_roster(make_agent())
    life.activate("routing", "2", "admin:alice")
    life.rollback("routing", "admin:bob")
    with pytest.raises(RulesetStateError) as refused:  # FAILED_PRECONDITION on the wire
        core.decide(DecideCommand("req-retired", "routing", "2", case, roster, NOW))
    message = str(refused.value)
    assert "version '2' is retired" in message
    assert "pin the active version '1'" in message
    assert "caseroute rules activate routing 2" in message
    assert type(refused.value).__name__ == "RulesetRetiredError"
    assert store.by_request("req-retired") == []
    assert core.decide(DecideCommand("req-1", "routing", "1", case, roster, NOW)).decisions
    life.activate("routing", "2", "admin:carol")
    (decision,) = core.decide(DecideCommand("req-2", "routing", "2", case, roster, NOW)).decisions
    assert decision.explanation.ruleset_version == "2"


def test_a_retired_version_the_pointer_also_shadows_still_shadows(root: Path) -> None:
    """A hand-edited pointer naming one version both shadow and retired: the role wins."""
    _serving(root, "routing", "active: '1'\nshadow: '2'\nretired: ['2']\n")
    life = _lifecycle(root, None)
    life.load()
    with life.registry.acquire("routing", "2") as ruleset:
        assert ruleset.compiled.version == "2"
