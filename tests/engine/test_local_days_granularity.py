"""The local date a licence check shows tells no place finer than a US state or UK nation.

With `case.patient_location` masked, the licence check still shows the patient's local date
(docs/audit.md, "PHI minimisation"); HIPAA counts a place smaller than a state as an
identifier. The date depends only on the clock range of a country or a first-level
subdivision (`OFFSETS`), never on a finer code (review S43a).
"""

from datetime import UTC, datetime

import pytest

from caseroute.engine.local_days import OFFSETS, local_days


def test_the_offset_table_holds_countries_and_first_level_subdivisions_only() -> None:
    """No key below a state: a county or city never gets a clock range of its own."""
    assert [code for code in OFFSETS if code.count("-") > 1] == []


@pytest.mark.parametrize(
    ("finer", "coarser"),
    [("GB-KEN", "GB"), ("GB-ENG", "GB"), ("US-TX-EP", "US-TX"), ("US-FL-ESC", "US-FL")],
)
def test_a_finer_place_shows_the_dates_of_its_state_or_country(finer: str, coarser: str) -> None:
    """At every hour of a day, a county's dates are its state's (or nation's country's)."""
    hours = [datetime(2026, 11, 21, hour, 30, tzinfo=UTC) for hour in range(24)]
    assert [local_days(finer, h).text for h in hours] == [
        local_days(coarser, h).text for h in hours
    ]
