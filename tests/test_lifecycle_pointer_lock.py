"""Two workers changing one ruleset's pointer at once: the second waits for the first.

Each worker (its own ``RulesetLifecycle``, as in its own process) reads ``serving.yaml``,
writes the change and reloads to check it took. Interleaved, worker B's activation ran inside
worker A's: B read A's pointer and activated 3; A's reload then saw 3 active, not its 2, and
restored the pointer it had read (1) over B's change and answered that 2 did not become
active. ``rules.serving.pointer_lock`` (``flock`` on the directory) serialises them.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from caseroute import lifecycle
from caseroute.audit.store import AuditSink
from caseroute.engine.case_rules import EngineKind
from caseroute.lifecycle import LifecycleOutcome, RulesetLifecycle
from caseroute.registry import RulesetRegistry
from caseroute.rules import serving as serving_file
from caseroute.rules.serving import parse_serving, pointer_lock
from tests.test_lifecycle import _version, root, store

__all__ = ["root", "store"]  # fixtures

WAIT_S = 60.0
"""A bound on waiting for an event that comes at once, so a broken lock fails, not hangs."""


class InsideA:
    """Worker B's call, on its own thread, started from inside worker A's pointer switch.

    ``lock`` replaces ``lifecycle.pointer_lock``: it notes when B is about to wait for the
    lock A holds, so ``start`` returns once B waits (or is already done), never on a timer.
    """

    def __init__(self, call: Callable[[], LifecycleOutcome]) -> None:
        """Run ``call`` (worker B's) when started."""
        self.outcome: list[LifecycleOutcome | BaseException] = []
        self._waiting_or_done = threading.Event()
        self._call = call
        self.thread = threading.Thread(target=self._run)

    def _run(self) -> None:
        try:
            self.outcome.append(self._call())
        except BaseException as exc:  # noqa: BLE001 - reported by the caller's assertion
            self.outcome.append(exc)
        finally:
            self._waiting_or_done.set()

    @contextlib.contextmanager
    def lock(self, path: Path, **how: bool) -> Iterator[bool]:
        """``pointer_lock``, noting when B is about to wait for it."""
        if threading.current_thread() is self.thread:
            self._waiting_or_done.set()
        with pointer_lock(path, **how) as held:
            yield held

    def start(self) -> None:
        """Start B and return once it waits for the lock (or has finished)."""
        self.thread.start()
        assert self._waiting_or_done.wait(WAIT_S)

    def result(self) -> LifecycleOutcome | BaseException:
        """B's outcome, once it finished."""
        self.thread.join(WAIT_S)
        (outcome,) = self.outcome
        return outcome


def test_an_activation_inside_another_waits_and_both_take_in_order(
    root: Path, store: AuditSink, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A activates 2; B's activation of 3 starts inside A's: final 3, previous [1, 2]."""
    _version(root, "routing", "3")
    worker_a = RulesetLifecycle(RulesetRegistry(), root, EngineKind.PYTHON, audit=store)
    worker_b = RulesetLifecycle(RulesetRegistry(), root, EngineKind.PYTHON, audit=store)
    worker_a.load()
    worker_b.load()
    b = InsideA(lambda: worker_b.activate("routing", "3", "admin:bob"))
    monkeypatch.setattr(lifecycle, "pointer_lock", b.lock, raising=False)
    reload_a = worker_a._reload

    def a_reload_with_b_inside(action: str, actor: str) -> LifecycleOutcome:
        if action == "activate" and not b.thread.is_alive() and not b.outcome:
            b.start()
        return reload_a(action, actor)

    monkeypatch.setattr(worker_a, "_reload", a_reload_with_b_inside)
    a_outcome = worker_a.activate("routing", "2", "admin:alice")
    b_result = b.result()
    serving = parse_serving(root / "routing" / "serving.yaml")
    assert (
        [(c.from_version, c.to_version) for c in a_outcome.changes],
        isinstance(b_result, LifecycleOutcome)
        and [(c.from_version, c.to_version) for c in b_result.changes],
        serving.active,
        serving.previous,
    ) == ([("1", "2")], [("2", "3")], "3", ("1", "2"))


def test_the_lock_is_held_while_the_pointer_changes(
    root: Path, store: AuditSink, monkeypatch: pytest.MonkeyPatch
) -> None:
    """During an activation's reload another descriptor cannot lock the rulesets directory."""
    import fcntl
    import os

    life = RulesetLifecycle(RulesetRegistry(), root, EngineKind.PYTHON, audit=store)
    life.load()
    held: list[bool] = []
    reload = life._reload

    def probing_reload(action: str, actor: str) -> LifecycleOutcome:
        fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            held.append(False)
        except BlockingIOError:
            held.append(True)
        finally:
            os.close(fd)
        return reload(action, actor)

    monkeypatch.setattr(life, "_reload", probing_reload)
    life.activate("routing", "2", "admin:alice")
    life.rollback("routing", "admin:alice")
    assert held == [True, True]


def _events(store: AuditSink) -> list[tuple[str, str, str, str, str]]:
    return [(e.action, e.actor, e.role, e.from_version, e.to_version) for e in store.events()]


def test_a_poll_during_another_worker_s_activation_leaves_it_to_the_admin(
    root: Path, store: AuditSink, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Review R37b 1: the chain said "reload by poll" for an admin's activation.

    Worker A wrote serving.yaml; worker B's poller reloaded before A recorded, swapped the
    change in and recorded it as its own; A's record then found it recorded. Now B's poll
    during A's switch defers (the next tick follows the whole switch), and the chain holds
    the activation under the admin's name, once.
    """
    worker_a = RulesetLifecycle(RulesetRegistry(), root, EngineKind.PYTHON, audit=store)
    worker_b = RulesetLifecycle(RulesetRegistry(), root, EngineKind.PYTHON, audit=store)
    worker_a.load()
    worker_b.load()
    polled_inside: list[LifecycleOutcome | None] = []
    write = serving_file.write_atomically

    def write_then_poll_b(path: Path, text: str) -> None:
        write(path, text)
        polled_inside.append(worker_b.poll_once())

    monkeypatch.setattr(lifecycle, "write_atomically", write_then_poll_b)
    worker_a.activate("routing", "2", "admin:alice")
    monkeypatch.undo()
    after = worker_b.poll_once()
    assert polled_inside == [None]
    assert after is not None
    assert worker_b.registry.resolve("", "").compiled.version == "2"
    assert _events(store)[-1] == ("activate", "admin:alice", "active", "1", "2")
    assert [e for e in _events(store) if e[0] != "load"] == [
        ("activate", "admin:alice", "active", "1", "2")
    ]


def test_an_explicit_reload_during_another_worker_s_switch_waits_for_it(
    root: Path, store: AuditSink, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A SIGHUP (or admin Reload) in worker B during A's rollback runs after A recorded it."""
    worker_a = RulesetLifecycle(RulesetRegistry(), root, EngineKind.PYTHON, audit=store)
    worker_b = RulesetLifecycle(RulesetRegistry(), root, EngineKind.PYTHON, audit=store)
    worker_a.load()
    worker_a.activate("routing", "2", "admin:alice")
    worker_b.load()
    b = InsideA(lambda: worker_b.reload("signal:SIGHUP"))
    write = serving_file.write_atomically

    def write_then_reload_b(path: Path, text: str) -> None:
        write(path, text)
        b.start()

    monkeypatch.setattr(lifecycle, "pointer_lock", b.lock)
    monkeypatch.setattr(lifecycle, "write_atomically", write_then_reload_b)
    worker_a.rollback("routing", "admin:bob")
    b_result = b.result()
    assert isinstance(b_result, LifecycleOutcome)
    assert worker_b.registry.resolve("", "").compiled.version == "1"
    assert _events(store)[-1] == ("rollback", "admin:bob", "active", "2", "1")
    assert not [e for e in _events(store) if e[1] == "signal:SIGHUP"]


def test_a_rulesets_directory_that_cannot_be_locked_still_reloads(
    root: Path, store: AuditSink, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A directory the shared lock cannot open is reloaded without it.

    The lock holds off switches; a directory it cannot open (gone, no permission) is still
    read, and the reload reports what it finds.
    """

    @contextlib.contextmanager
    def unopenable(path: Path, **_how: bool) -> Iterator[bool]:
        if path.is_dir():  # always, here: the directory exists but cannot be opened
            raise PermissionError(13, "Permission denied", str(path))
        yield True  # pragma: no cover - never reached

    life = RulesetLifecycle(RulesetRegistry(), root, EngineKind.PYTHON, audit=store)
    monkeypatch.setattr(lifecycle, "pointer_lock", unopenable)
    outcome = life.load()
    assert (outcome.errors, life.registry.resolve("", "").compiled.version) == ((), "1")
