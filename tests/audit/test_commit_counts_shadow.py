"""A shadow append whose rows were all stored already is no commit, on both stores.

Shadow results are kept once per (decision_id, shadow_version, shadow_sha256): a second worker
(or a retry) appending the same comparisons inserts nothing. Like a decision retry and an
events append of stored events, such an append stored nothing, so neither ``commits`` nor the
commit observer counts it (``stored_appends``, the one rule of both stores); a dropped count
is always stored (it adds to the count kept).
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from caseroute.audit.record import ShadowResult
from caseroute.audit.sql_appends import PendingShadow, stored_appends
from caseroute.audit.sql_rows import shadow_row
from tests.audit.commit_sinks import Sink, opener, seen
from tests.pg import pg_server, pg_url

__all__ = ["opener", "pg_server", "pg_url"]  # fixtures: the sinks and the PostgreSQL case

LIVE = {"outcome": "ASSIGN", "agent_id": "a1", "queue": "clinical", "priority": "normal"}


def _result(n: int) -> ShadowResult:
    """Decision ``dec_n`` of test@1 compared with test@2 (they agreed)."""
    return ShadowResult(
        decision_id=f"dec_{n}",
        recorded_at=f"2026-12-01T10:00:{n:02d}Z",
        ruleset_name="test",
        live_version="1",
        live_sha256="a" * 64,
        shadow_version="2",
        shadow_sha256="b" * 64,
        differences=(),
        live=dict(LIVE),
        shadow=dict(LIVE),
    )


def test_shadow_results_stored_by_another_worker_are_no_commit(
    opener: Callable[[], Sink],
) -> None:
    """The second worker's append of the same results inserts none: 0 commits there."""
    first, second = opener(), opener()
    first.append_shadow([_result(1), _result(2)])
    second.append_shadow([_result(1), _result(2)])
    assert ([_result(1), _result(2)], (1, [("committed", 1)]), (0, [])) == (
        second.shadow_results("test"),
        (first.commits, seen(first)),
        (second.commits, seen(second)),
    )


def test_one_stored_and_one_new_result_is_a_commit(opener: Callable[[], Sink]) -> None:
    """One result stored before, one new: the append stored something, a commit of 1."""
    first, second = opener(), opener()
    first.append_shadow([_result(1)])
    second.append_shadow([_result(1), _result(2)])
    assert ([_result(1), _result(2)], (1, [("committed", 1)])) == (
        second.shadow_results("test"),
        (second.commits, seen(second)),
    )


def test_stored_results_with_a_dropped_count_are_a_commit(opener: Callable[[], Sink]) -> None:
    """Every result stored before, but 3 comparisons dropped: the count is stored, a commit."""
    first, second = opener(), opener()
    first.append_shadow([_result(1)])
    second.append_shadow([_result(1)], dropped=3)
    (summary,) = second.shadow_summary("test")
    assert (summary.dropped, (second.commits, seen(second))) == (3, (1, [("committed", 1)]))


def _shadow(rows: int, added: int, dropped: int) -> PendingShadow:
    """A shadow append of ``rows`` results, ``added`` of them new, and ``dropped`` comparisons."""
    item = PendingShadow(
        [shadow_row(_result(n)) for n in range(rows)],
        {("test", "2"): dropped} if dropped else {},
        None,  # type: ignore[arg-type]
    )
    item.added = added
    return item


@pytest.mark.parametrize(
    ("rows", "added", "dropped", "counted"),
    [
        (2, 0, 0, 0),  # every row stored before
        (2, 1, 0, 1),  # one row new
        (2, 2, 0, 1),  # both new
        (2, 0, 4, 1),  # rows stored before, a dropped count added
        (0, 0, 4, 1),  # a dropped count alone
    ],
)
def test_stored_appends_counts_a_shadow_append_only_when_it_stored_something(
    rows: int, added: int, dropped: int, counted: int
) -> None:
    """A shadow append alone in a transaction: counted exactly when it stored something."""
    assert counted == stored_appends([(_shadow(rows, added, dropped), None)])
