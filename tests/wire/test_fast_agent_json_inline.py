"""agent_json's in-place number formatting keeps json.dumps's text for every value type."""

from datetime import UTC, datetime, timedelta, timezone

from caseroute.domain.fingerprint import agent_json, agent_to_dict, canonical_json, format_timestamp
from caseroute.domain.roster import Capacity
from caseroute.testing import make_agent


def test_non_int_capacity_and_skill_levels_take_the_general_path() -> None:
    """A bool skill level and float capacity (test-built agents) encode as json.dumps would."""
    agent = make_agent(
        capacity=Capacity(max=5.0, active=True),  # type: ignore[arg-type]
        skills={"b": True, "a": 2.5},
    )
    assert canonical_json(agent_to_dict(agent)) == agent_json(agent)
    assert '"capacity":{"active":true,"max":5.0}' in agent_json(agent)


def test_an_instant_in_another_offset_is_written_in_utc() -> None:
    """Only a UTC instant skips astimezone: -05:00 still becomes Z, microseconds kept."""
    instant = datetime(2026, 12, 1, 4, 30, 0, 7, tzinfo=timezone(timedelta(hours=-5)))
    assert (format_timestamp(instant), format_timestamp(instant.astimezone(UTC))) == (
        "2026-12-01T09:30:00.000007Z",
        "2026-12-01T09:30:00.000007Z",
    )
