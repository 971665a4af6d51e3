"""A shadow append the log could not store fails alone, before anything is queued.

``append_shadow`` promises that a bad call fails by itself (ValueError) and never fails the
writer's transaction, which it would share with live decisions. Text a driver cannot send (a
lone surrogate; NUL, which PostgreSQL refuses) in a result's fields or a dropped count's key used
to pass its checks: the transaction then failed on both stores, refusing every call in it
("the decision log cannot be written") and counting a failure. A dropped count the sum would
take past 64 bits now stops at the largest one on both stores (PostgreSQL refused that call,
SQLite turned the column into a float).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest

from caseroute.audit.record import text_problem
from caseroute.audit.sql_rows import MAX_STORED_COUNT, dropped_counts
from tests.audit.commit_sinks import Sink, opener
from tests.audit.test_shadow_store import _result
from tests.pg import pg_server, pg_url

__all__ = ["opener", "pg_server", "pg_url"]  # fixtures: the sinks and the PostgreSQL case

RESULT = _result(1)

BAD: list[tuple[str, Callable[[Sink], None]]] = [
    ("key-surrogate", lambda s: s.append_shadow([], {("test", "\udc80"): 1})),
    ("key-nul", lambda s: s.append_shadow([], {("te\x00st", "2"): 1})),
    ("key-empty", lambda s: s.append_shadow([], {("test", ""): 1})),
    ("key-not-text", lambda s: s.append_shadow([], {("test", 2): 1})),  # type: ignore[dict-item]
    ("key-shape", lambda s: s.append_shadow([], {"test": 1})),  # type: ignore[dict-item]
    ("id-surrogate", lambda s: s.append_shadow([replace(RESULT, decision_id="d\udc80")])),
    ("name-nul", lambda s: s.append_shadow([replace(RESULT, ruleset_name="t\x00")])),
    ("sha-surrogate", lambda s: s.append_shadow([replace(RESULT, live_sha256="\ud800")])),
    ("negative", lambda s: s.append_shadow([RESULT], -1)),
    ("bool", lambda s: s.append_shadow([RESULT], dropped=True)),
]


@pytest.mark.parametrize("bad", [b for _, b in BAD], ids=[name for name, _ in BAD])
def test_a_shadow_append_a_log_cannot_store_is_refused_before_it_is_queued(
    opener: Callable[[], Sink], bad: Callable[[Sink], None], monkeypatch: pytest.MonkeyPatch
) -> None:
    """ValueError, nothing queued, no failed transaction; the log takes the next append."""
    sink = opener()
    queued: list[Any] = []
    put = sink._queue.put

    def counted_put(item: Any) -> None:
        queued.append(item)
        put(item)

    monkeypatch.setattr(sink._queue, "put", counted_put)
    with pytest.raises(ValueError, match=r"NUL|surrogate|empty|keyed|non-negative|texts"):
        bad(sink)
    assert (queued, sink.failures) == ([], 0)
    sink.append_shadow([RESULT], 1)
    assert (sink.shadow_results("test"), sink.shadow_summary("test")[0].dropped) == ([RESULT], 1)


def test_the_dropped_sum_stops_at_the_largest_count_on_both_stores(
    opener: Callable[[], Sink],
) -> None:
    """The sum past 2**63-1 keeps 2**63-1 (an int), on both stores alike; no call refused."""
    sink = opener()
    sink.append_shadow([], {("test", "2"): MAX_STORED_COUNT - 1})
    sink.append_shadow([], {("test", "2"): 5})
    sink.append_shadow([RESULT], {("test", "2"): MAX_STORED_COUNT})
    (summary,) = sink.shadow_summary("test")
    assert (summary.dropped, type(summary.dropped), sink.failures) == (MAX_STORED_COUNT, int, 0)


def test_text_problem_names_what_no_log_can_store() -> None:
    """Plain text, accents and emoji are fine; NUL and lone surrogates are not."""
    assert [text_problem(t) for t in ("", "caf\u00e9 \U0001f600", "a\x00", "\udfff")] == [
        None,
        None,
        "must not contain NUL",
        "must be valid Unicode (no lone surrogates)",
    ]
    assert dropped_counts([], 0) == {}
