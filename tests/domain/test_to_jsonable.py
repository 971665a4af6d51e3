"""to_jsonable's generic fallback: dates, sets, mappings and sequences as JSON data."""

from __future__ import annotations

from datetime import UTC, date, datetime
from types import MappingProxyType

from caseroute.domain.decision_codec import to_jsonable


def test_dates_sets_mappings_and_sequences_become_json_data() -> None:
    """A date is ISO text, a set sorted, a mapping's keys text, a tuple a list, nested alike."""
    value = {
        "day": date(2026, 12, 1),
        "at": datetime(2026, 12, 1, 9, 30, tzinfo=UTC),
        "tags": frozenset({"b", "a"}),
        "seen": {3, 1, 2},
        "by_id": MappingProxyType({1: (date(2026, 1, 2), "x")}),
    }
    assert to_jsonable(value) == {
        "day": "2026-12-01",
        "at": "2026-12-01T09:30:00Z",
        "tags": ["a", "b"],
        "seen": [1, 2, 3],
        "by_id": {"1": ["2026-01-02", "x"]},
    }


def test_an_unknown_object_is_returned_as_it_is() -> None:
    """Anything it has no rule for is left to the JSON encoder (which refuses it)."""
    marker = object()
    assert to_jsonable(marker) is marker
