"""Two workers swapping in one ruleset change record it once, even when both read "not recorded".

``RulesetLifecycle._record`` reads the log's last event of each ruleset role before appending
(``_already_recorded``), but two processes sharing one log (one by the admin call, the other by
its poller) can both read it before either appends. The sink checks again under its write lock
(``append_events(..., unless_current=True)``), in the transaction that would seal the event,
so the chain shows each load once. Forcing the outside read to say "not recorded" puts both
workers in that state deterministically.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest

from caseroute import lifecycle
from caseroute.audit.record import RulesetEvent
from caseroute.audit.verify import ChainReport, verify_chain
from caseroute.engine.case_rules import EngineKind
from caseroute.lifecycle import RulesetLifecycle
from caseroute.registry import RulesetRegistry
from tests.audit.commit_sinks import Sink, opener, seen
from tests.pg import pg_server, pg_url
from tests.test_lifecycle import root

__all__ = ["opener", "pg_server", "pg_url", "root"]  # fixtures


def _event(event_id: str, to_version: str = "2", role: str = "active") -> RulesetEvent:
    """An activation of routing ``to_version`` (seq and hashes are set by the store)."""
    return RulesetEvent(
        seq=0,
        event_id=event_id,
        recorded_at="2026-12-01T12:00:00Z",
        action="activate",
        actor="admin:alice",
        ruleset_name="routing",
        role=role,
        from_version="1",
        from_sha256="a" * 64,
        to_version=to_version,
        to_sha256="b" * 64,
        caseroute_version="0",
        prev_hash="",
        record_hash="",
    )


def _chain(sink: Sink) -> tuple[list[tuple[str, str, str, str]], ChainReport]:
    """The stored events (event_id, action, role, to_version) and the chain's verification."""
    events = list(sink.iter_events())
    report = verify_chain(sink.records(), sink.head(), sink.get_blob, events)
    return [(e.event_id, e.action, e.role, e.to_version) for e in events], report


def test_a_change_both_workers_read_as_new_is_recorded_once(
    opener: Callable[[], Sink], root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Both workers' outside reads say "not recorded": one load event and one activation."""
    monkeypatch.setattr(lifecycle, "_already_recorded", lambda _audit, _change: False)
    first, second = opener(), opener()
    admin = RulesetLifecycle(RulesetRegistry(), root, EngineKind.PYTHON, audit=first)
    poller = RulesetLifecycle(RulesetRegistry(), root, EngineKind.PYTHON, audit=second)
    admin.load()
    poller.load()
    admin.activate("routing", "2", "admin:alice")
    poller.reload("poller")
    stored, report = _chain(first)
    assert [(action, role, version) for _, action, role, version in stored] == [
        ("load", "active", "1"),
        ("activate", "active", "2"),
    ]
    assert (report.ok, report.events) == (True, 2)
    assert (
        admin.registry.resolve("routing", "").compiled.version,
        poller.registry.resolve("routing", "").compiled.version,
    ) == ("2", "2")


def test_an_event_its_role_already_records_is_dropped_and_no_commit(
    opener: Callable[[], Sink],
) -> None:
    """Another worker's event of the same state comes back in its place: 0 commits there."""
    first, second = opener(), opener()
    (sealed,) = first.append_events([_event("e1")], unless_current=True)
    again = second.append_events([_event("e2")], unless_current=True)
    stored, report = _chain(second)
    assert ([sealed], [("e1", "activate", "active", "2")], True) == (again, stored, report.ok)
    assert (
        (first.commits, seen(first)),
        (second.commits, seen(second)),
    ) == ((1, [("committed", 1)]), (0, []))


def test_one_call_holding_the_same_state_twice_seals_it_once(opener: Callable[[], Sink]) -> None:
    """[e1, e2] of one state in one call: e1 sealed, e1 handed back for e2 too."""
    sink = opener()
    back = sink.append_events([_event("e1"), _event("e2")], unless_current=True)
    stored, report = _chain(sink)
    assert (
        [e.event_id for e in back],
        stored,
        report.ok,
    ) == (["e1", "e1"], [("e1", "activate", "active", "2")], True)


def test_another_state_or_role_is_recorded(opener: Callable[[], Sink]) -> None:
    """A new version, the same version as shadow, and a changed sha256 are each sealed."""
    sink = opener()
    sink.append_events([_event("e1")], unless_current=True)
    sink.append_events(
        [
            _event("e2", to_version="3"),
            _event("e3", to_version="3", role="shadow"),
            replace(_event("e4", to_version="3"), to_sha256="c" * 64),
        ],
        unless_current=True,
    )
    stored, report = _chain(sink)
    assert ([e for e, *_ in stored], report.ok) == (["e1", "e2", "e3", "e4"], True)


def test_without_unless_current_every_new_event_id_is_sealed(opener: Callable[[], Sink]) -> None:
    """The default keeps the old rule: only a stored event_id is left out."""
    sink = opener()
    sink.append_events([_event("e1")])
    sink.append_events([_event("e2"), _event("e1")])
    stored, report = _chain(sink)
    assert ([e for e, *_ in stored], report.ok) == (["e1", "e2"], True)
