"""A new request is decided without reading the log first; retries are still answered from it.

Two cores over one SQLite decision log stand for two worker processes: a retry reaching the
other one (which never saw the request) is answered by the log's conflict check on append.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from caseroute.domain.errors import (
    AuditUnavailableError,
    IdempotencyConflictError,
    NoRulesetLoadedError,
    ResponseTooLargeError,
)
from caseroute.engine.case_rules import EngineKind, prepare_ruleset
from caseroute.registry import RulesetRegistry
from caseroute.service import DecideResult, RoutingCore, routing
from caseroute.testing import (
    audit_config,
    reference_ruleset,
)
from tests.service.two_workers import command as _command
from tests.service.two_workers import sink as _sink
from tests.service.two_workers import two_workers


@pytest.fixture
def workers(tmp_path: Path) -> Iterator[tuple[RoutingCore, RoutingCore]]:
    """Two cores (workers), each with its own registry and store, over one decision log."""
    with two_workers(tmp_path) as cores:
        yield cores


def test_a_new_request_is_not_looked_up_first(workers: tuple[RoutingCore, RoutingCore]) -> None:
    """A request_id never seen: decided and appended, no read of the log by request_id."""
    first, _ = workers
    result = first.decide(_command("new-1"))
    assert (result.replayed, _sink(first).reads) == (False, [])


def test_a_retry_in_the_same_worker_is_read_first(
    workers: tuple[RoutingCore, RoutingCore],
) -> None:
    """A request_id this worker recorded: read from the log, its callback sees only the replay."""
    first, _ = workers
    stored = first.decide(_command())
    seen: list[bool] = []
    again = first.decide(_command(), before_record=lambda r: seen.append(r.replayed))
    assert (again.replayed, again.decisions, seen, _sink(first).reads) == (
        True,
        stored.decisions,
        [True],
        ["r1"],
    )


def test_a_retry_in_another_worker_gets_the_stored_decision(
    workers: tuple[RoutingCore, RoutingCore],
) -> None:
    """The other worker re-decides, the log keeps the first record, the stored one returns."""
    first, second = workers
    stored = first.decide(_command())
    seen: list[bool] = []
    again = second.decide(_command(), before_record=lambda r: seen.append(r.replayed))
    assert (again.replayed, again.decisions, again.now) == (True, stored.decisions, stored.now)
    assert (seen, _sink(second).store.head()[0]) == ([False, True], 1)
    # Now this worker knows it: a further retry is read first.
    assert second.decide(_command()).replayed
    assert _sink(second).reads == ["r1"]


def test_another_input_in_another_worker_is_refused(
    workers: tuple[RoutingCore, RoutingCore],
) -> None:
    """The same request_id with another case, on the other worker: ALREADY_EXISTS, nothing new."""
    first, second = workers
    first.decide(_command())
    with pytest.raises(IdempotencyConflictError, match="new request_id"):
        second.decide(_command(case_id="OTHER"))
    assert _sink(second).store.head()[0] == 1


def test_a_retry_after_a_reload_in_another_worker_gets_the_first_version(
    workers: tuple[RoutingCore, RoutingCore],
) -> None:
    """The other worker serves a new version: the retry still gets the stored decision."""
    first, second = workers
    stored = first.decide(_command())
    old = reference_ruleset(EngineKind.PYTHON).compiled
    newer = replace(old, version=old.version + "-next", sha256="e" * 64)
    second.registry.close()
    second.registry = RulesetRegistry()
    second.registry.add(prepare_ruleset(newer, EngineKind.PYTHON))
    again = second.decide(_command())
    assert (again.replayed, again.decisions) == (True, stored.decisions)
    assert again.decisions[0].explanation.ruleset_version == old.version


def test_a_retry_in_a_worker_with_nothing_loaded_gets_the_stored_decision(
    workers: tuple[RoutingCore, RoutingCore],
) -> None:
    """Evaluation fails (no ruleset) on the other worker: the log still answers the retry."""
    first, second = workers
    stored = first.decide(_command())
    second.registry.close()
    second.registry = RulesetRegistry()
    again = second.decide(_command())
    assert (again.replayed, again.decisions) == (True, stored.decisions)


def test_a_new_request_with_nothing_loaded_is_refused_as_before(
    workers: tuple[RoutingCore, RoutingCore],
) -> None:
    """Evaluation fails and the log has no such request: the evaluation's own error."""
    _, second = workers
    second.registry.close()
    second.registry = RulesetRegistry()
    with pytest.raises(NoRulesetLoadedError):
        second.decide(_command("new-2"))
    assert _sink(second).reads == ["new-2"]


def test_a_reply_refused_for_a_retry_is_answered_with_the_stored_one(
    workers: tuple[RoutingCore, RoutingCore],
) -> None:
    """The other worker refuses its own reply: the stored result is checked and returned."""
    first, second = workers
    stored = first.decide(_command())

    def refuse_new(result: DecideResult) -> None:
        if not result.replayed:
            raise ResponseTooLargeError("too large")

    again = second.decide(_command(), before_record=refuse_new)
    assert (again.replayed, again.decisions) == (True, stored.decisions)


def test_a_retry_while_the_log_refuses_writes_is_answered_from_it(
    workers: tuple[RoutingCore, RoutingCore],
) -> None:
    """Writes fail on the other worker, reads work: the stored decision, health told, no refusal."""
    # Health was pinned unchanged here: the defect tests/service/test_left_defects.py fixed.
    first, second = workers
    stored = first.decide(_command())
    heard: list[bool] = []
    second.watch_audit(heard.append)
    _sink(second).writable = False
    again = second.decide(_command())
    assert (
        again.replayed,
        again.decisions,
        heard,
        second.audit_writable,
        second.audit_refusals,
    ) == (True, stored.decisions, [False], False, 0)


def test_a_new_request_while_the_log_refuses_writes_is_refused(
    workers: tuple[RoutingCore, RoutingCore],
) -> None:
    """Writes fail and the log has no such request: refused, counted, health told."""
    first, _ = workers
    heard: list[bool] = []
    first.watch_audit(heard.append)
    _sink(first).writable = False
    with pytest.raises(AuditUnavailableError, match="cannot be written"):
        first.decide(_command("new-3"))
    assert (heard, first.audit_refusals, _sink(first).reads) == ([False], 1, ["new-3"])


def test_only_the_most_recent_request_ids_are_remembered(
    workers: tuple[RoutingCore, RoutingCore], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past the bound, the oldest id is forgotten: its retry is found on append instead."""
    first, _ = workers
    monkeypatch.setattr(routing, "RECENT_REQUESTS", 2)
    for request_id in ("old", "mid", "new"):
        first.decide(_command(request_id, case_id=request_id))
    seen: list[bool] = []
    again = first.decide(
        _command("old", case_id="old"), before_record=lambda r: seen.append(r.replayed)
    )
    assert (again.replayed, seen, _sink(first).reads) == (True, [False, True], [])
    assert first.decide(_command("new", case_id="new")).replayed
    assert _sink(first).reads == ["new"]


def test_a_remembered_id_the_log_does_not_hold_is_decided(
    workers: tuple[RoutingCore, RoutingCore], tmp_path: Path
) -> None:
    """A log replaced under a running core (empty): the remembered id is decided and recorded."""
    first, _ = workers
    first.decide(_command())
    sink = _sink(first)
    sink.store.close()
    sink.store = audit_config(tmp_path / "fresh").open_store()
    again = first.decide(_command())
    assert (again.replayed, sink.reads, sink.store.head()[0]) == (False, ["r1"], 1)
