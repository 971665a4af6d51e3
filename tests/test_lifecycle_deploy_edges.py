"""Edges of this pass's deploy-gap, recorded-content and layout rules (reviews R32a, R32d).

Each test pins one branch the main tests (tests/test_lifecycle_deploys.py) do not reach: a
rulesets directory gone past the grace, a ruleset's pointer deleted beside its versions,
recorded content that is ambiguous or does not compile to its sha256, and the layout readers'
odd files.
"""

from __future__ import annotations

import shutil
import sqlite3
from datetime import timedelta
from pathlib import Path

import pytest

from caseroute.audit.store import AuditSink
from caseroute.domain.errors import RulesetError
from caseroute.registry.build import MISSING_GRACE
from caseroute.rules.layout import (
    expand_version_sources,
    pointer_problems,
    published_as,
)
from caseroute.service import DecideCommand, RoutingCore
from caseroute.testing import NOW, audit_config, make_agent, make_case, make_roster
from tests.test_lifecycle import _version as _version_of
from tests.test_lifecycle_deploys import _clocked
from tests.test_lifecycle_edges import _lifecycle, _served, _serving, _version, root, store

__all__ = ["root", "store"]  # fixtures


def test_a_rulesets_directory_gone_past_the_grace_unloads_everything(root: Path) -> None:
    """Gone for longer than MISSING_GRACE: nothing is kept (a new worker would have nothing)."""
    life, clock = _clocked(root)
    shutil.rmtree(root)
    life.reload("poll")
    assert _served(life) == [("routing", "1", None, ())]
    clock.now += MISSING_GRACE + timedelta(seconds=1)
    life.reload("poll")
    assert life.registry.names() == []


def test_a_ruleset_gone_whole_past_the_grace_is_dropped(root: Path) -> None:
    """A ruleset's directory still gone after MISSING_GRACE: dropped, the other one serves."""
    _version(root, "alpha", "1")
    life, clock = _clocked(root)
    shutil.rmtree(root / "routing")
    life.reload("poll")
    assert life.registry.names() == ["alpha", "routing"]
    clock.now += MISSING_GRACE + timedelta(seconds=1)
    life.reload("poll")
    assert life.registry.names() == ["alpha"]


def test_a_deleted_pointer_beside_its_versions_keeps_nothing_that_is_gone(root: Path) -> None:
    """serving.yaml deleted and version 1 removed, version 2 still there: 1 is not kept."""
    life = _lifecycle(root)
    (root / "routing" / "serving.yaml").unlink()
    shutil.rmtree(root / "routing" / "1")
    life.reload("poll")
    assert _served(life) == [("routing", "2", None, ())]


def _edit(root: Path) -> None:
    """Version 1's file given other content (a published version edited)."""
    _version_of(root, "routing", "1", queue="clinical")


def _decided(root: Path, store: AuditSink) -> RoutingCore:
    life = _lifecycle(root, store)
    core = RoutingCore(life.registry, store, audit_config(root.parent / "audit").masker())
    core.decide(DecideCommand("req-1", "", "", (make_case(),), make_roster(make_agent()), NOW))
    return core


def test_recorded_content_is_not_used_when_the_version_decided_with_two_contents(
    root: Path, store: AuditSink
) -> None:
    """Two sha256s decided for one version (an edited log): which to serve is not guessed."""
    _decided(root, store)
    assert len({r.ruleset_sha256 for r in store.records()}) == 1
    _edit(root)  # edited after deciding
    two = _lifecycle(root, _TwoShas(store))  # type: ignore[arg-type]  # a partial sink
    assert [v.version for v in two.registry.status()["routing"].versions] == ["2"]


class _TwoShas:
    """The log, answering two decided sha256s for version 1."""

    def __init__(self, inner: AuditSink) -> None:
        self.inner = inner

    def decided_sha256s(self, name: str, version: str) -> frozenset[str]:
        seen = self.inner.decided_sha256s(name, version)
        return seen | {"0" * 64} if version == "1" else seen

    def __getattr__(self, attr: str) -> object:
        return getattr(self.inner, attr)


def test_recorded_content_that_compiles_to_another_sha256_is_not_served(
    root: Path, store: AuditSink
) -> None:
    """A recorded blob whose text is not the content its key names: refused."""
    _decided(root, store)
    (sha,) = {r.ruleset_sha256 for r in store.records()}
    with sqlite3.connect(root.parent / "audit" / "audit.db") as db:
        db.execute("UPDATE blobs SET content = content || '# edited' WHERE sha256 = ?", (sha,))
    _edit(root)
    restarted = _lifecycle(root, audit_config(root.parent / "audit").open_store())
    assert [v.version for v in restarted.registry.status()["routing"].versions] == ["2"]


def test_the_sha256_of_no_version_or_one_not_loaded_is_empty(root: Path) -> None:
    """What a pointer change names but this worker does not hold is recorded without a sha."""
    life = _lifecycle(root)
    assert (life._sha256_of("routing", ""), life._sha256_of("routing", "9")) == ("", "")
    assert len(life._sha256_of("routing", "1")) == 64


def test_layout_readers_on_odd_files(tmp_path: Path) -> None:
    """The layout readers on a version naming no ruleset, a broken pointer, shadow and previous.

    A version whose file names no ruleset makes its directory no ruleset's home; a broken
    pointer is reported by check, and whether a version is published is then unknown; shadow,
    previous and retired versions are published.
    """
    home = tmp_path / "routing"
    _version(tmp_path, "routing", "1")
    assert [s.name_dir for s in expand_version_sources(home)] == ["routing"]
    (home / "2").mkdir()
    (home / "2" / "ruleset.yaml").write_text("version: '2'\n")  # no `ruleset:` line
    assert [s.name_dir for s in expand_version_sources(home)] == [None, None]
    unreadable = home / "2" / "ruleset.yaml"
    unreadable.unlink()
    unreadable.symlink_to(unreadable)  # a loop: is_file() is False, so it is no source at all
    assert [s.name_dir for s in expand_version_sources(home)] == ["routing"]
    _serving(tmp_path, "routing", "active: [\n")
    assert [p.code for p in pointer_problems(home, {"routing": {"1"}})] == ["yaml.syntax"]
    with pytest.raises(RulesetError):  # unknown, not "unpublished" (review R34b F8)
        published_as(home / "1")
    _serving(tmp_path, "routing", "active: '1'\nshadow: '2'\nprevious: ['0']\nretired: ['3']\n")
    problems = pointer_problems(home, {"routing": {"1"}})
    assert [(p.code, p.line) for p in problems] == [("versions.not_loaded", 2)]
    assert [published_as(home / v) for v in ("1", "2", "0", "3", "9")] == [
        "active",
        "shadow",
        "previous",
        "retired",
        None,
    ]
