"""A server holds a request's ``now`` near its own clock (``--max-now-skew``; review R36a M2).

A caller's stale ``now`` judged an expired licence valid: the core took any ``now`` it was
sent. With ``max_now_skew`` set, a ``now`` further off the clock is INVALID_ARGUMENT at
``now`` and nothing is recorded; a retry of a recorded request still gets its stored
decisions; offline tools (no skew) accept any ``now``.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from pathlib import Path

import pytest

from caseroute.domain.decision import Outcome
from caseroute.domain.errors import RequestError
from caseroute.domain.roster import Licence
from caseroute.engine.case_rules import EngineKind
from caseroute.service import DecideCommand, RoutingCore, load_registry
from caseroute.testing import (
    NOW,
    REFERENCE_RULESET,
    audit_config,
    make_agent,
    make_case,
    make_roster,
)

REGISTRY = load_registry(REFERENCE_RULESET.parent, EngineKind.PYTHON)
FIVE_MINUTES = timedelta(minutes=5)
# Expired the day before NOW (the server's clock here); valid on a day a month earlier.
EXPIRED = make_agent("a1", licences=(Licence("RN", "US-TX", date(2026, 11, 20)),))


class Clock:
    """A wall clock the test moves."""

    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> datetime:
        """The time the test set."""
        return self.now


def _core(tmp_path: Path, clock: Clock, skew: timedelta | None) -> RoutingCore:
    config = audit_config(tmp_path / "audit")
    return RoutingCore(REGISTRY, config.open_store(), config.masker(), clock, max_now_skew=skew)


def _command(request_id: str, now: datetime | None) -> DecideCommand:
    # Received a month and a day before NOW: any of the instants below may decide it.
    case = make_case(created_at=NOW - timedelta(days=31))
    return DecideCommand(request_id, "", "", (case,), make_roster(EXPIRED), now)


def test_a_stale_now_is_refused_at_now_and_nothing_is_recorded(tmp_path: Path) -> None:
    """A month-old ``now`` would have assigned the expired nurse; it is refused instead."""
    core = _core(tmp_path, Clock(), FIVE_MINUTES)
    with pytest.raises(RequestError) as refused:
        core.decide(_command("stale", NOW - timedelta(days=30)))
    (violation,) = refused.value.violations
    assert violation.field == "now"
    assert violation.message.startswith(
        "is 30 d behind this server's clock (2026-11-21T10:00:00Z); the server accepts at most "
        "5 min (--max-now-skew): send the current time, or leave now unset"
    )
    assert core.audit.by_request("stale") == []


def test_a_now_ahead_of_the_clock_is_refused_too(tmp_path: Path) -> None:
    """A ``now`` ahead would judge a licence not yet valid (or an SLA clock) wrongly too."""
    core = _core(tmp_path, Clock(), FIVE_MINUTES)
    with pytest.raises(RequestError) as refused:
        core.decide(_command("ahead", NOW + timedelta(hours=2, seconds=1)))
    assert refused.value.violations[0].message.startswith("is 2 h 1 s ahead of this server's")


def test_within_the_skew_or_unset_the_clock_decides_and_the_licence_is_judged_now(
    tmp_path: Path,
) -> None:
    """Inside the window the sent ``now`` decides, and the expired nurse is not assigned.

    A ``now`` exactly the skew away is still accepted.
    """
    core = _core(tmp_path, Clock(), FIVE_MINUTES)
    (inside,) = core.decide(_command("inside", NOW - FIVE_MINUTES)).decisions
    (unset,) = core.decide(_command("unset", None)).decisions
    assert (inside.outcome, inside.agent_id) == (unset.outcome, unset.agent_id)
    assert inside.agent_id != "a1"


def test_without_a_skew_any_now_is_taken_as_offline_tools_need(tmp_path: Path) -> None:
    """The default (None): the stale ``now`` decides, and finds the licence valid then."""
    core = _core(tmp_path, Clock(), None)
    (decision,) = core.decide(_command("stale", NOW - timedelta(days=30))).decisions
    assert (decision.outcome, decision.agent_id) == (Outcome.ASSIGN, "a1")


def test_a_retry_of_a_recorded_request_gets_its_decisions_after_the_clock_moved_on(
    tmp_path: Path,
) -> None:
    """Idempotency beats the window: the stored decisions come back, not a refusal."""
    clock = Clock()
    core = _core(tmp_path, clock, FIVE_MINUTES)
    first = core.decide(_command("retry", NOW))
    clock.now = NOW + timedelta(hours=1)
    again = core.decide(_command("retry", NOW))
    fresh = _core(tmp_path, clock, FIVE_MINUTES)  # a worker that never saw it
    other_worker = fresh.decide(_command("retry", NOW))
    assert (again.replayed, other_worker.replayed) == (True, True)
    assert again.decisions == first.decisions == other_worker.decisions
