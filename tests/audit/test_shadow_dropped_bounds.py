"""A dropped count the log cannot hold is refused before it is queued, on both stores.

``append_shadow`` checks its results and counts before anything reaches the writer, so a bad
call fails alone (ValueError) and never the transaction it would have shared with live
decisions. A count above the largest 64-bit integer (SQLite's INTEGER, PostgreSQL's BIGINT)
used to pass that check: SQLite's driver then refused it inside the writer's transaction (every
call in it refused as "the decision log cannot be written", the failure counted) and PostgreSQL
refused it at the sync.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from caseroute.audit.record import ShadowResult
from caseroute.audit.sql_rows import MAX_STORED_COUNT, dropped_counts
from tests.audit.commit_sinks import Sink, opener
from tests.audit.test_shadow_store import _result as shadow_result
from tests.pg import pg_server, pg_url

__all__ = ["opener", "pg_server", "pg_url"]  # fixtures: the sinks and the PostgreSQL case


def _result() -> ShadowResult:
    return shadow_result(1)


@pytest.mark.parametrize(
    "dropped", [MAX_STORED_COUNT + 1, {("test", "2"): MAX_STORED_COUNT + 1}], ids=["int", "map"]
)
def test_a_count_over_64_bits_fails_the_call_alone(
    opener: Callable[[], Sink], dropped: int | dict[tuple[str, str], int]
) -> None:
    """ValueError naming the limit; nothing stored, no failed transaction, the log still writes."""
    sink = opener()
    with pytest.raises(ValueError, match="9223372036854775807"):
        sink.append_shadow([_result()], dropped)
    assert (sink.failures, sink.shadow_results("test")) == (0, [])
    sink.append_shadow([_result()], MAX_STORED_COUNT)  # the largest count is kept
    assert sink.shadow_summary("test")[0].dropped == MAX_STORED_COUNT


def test_the_limit_is_the_largest_64_bit_integer() -> None:
    """What both stores' integer columns hold; bools are not counts."""
    assert MAX_STORED_COUNT == 2**63 - 1
    assert dropped_counts([_result()], MAX_STORED_COUNT) == {("test", "2"): MAX_STORED_COUNT}
    with pytest.raises(ValueError, match="non-negative int"):
        dropped_counts([_result()], {("test", "2"): True})
