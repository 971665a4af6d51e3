"""Licences and compacts go by the patient's local calendar, not UTC's (review R31a F3).

Deciding by the UTC date let a licence run past its last local day (a GB licence expiring
30 June was valid at 00:30 BST on 1 July) and a compact state count before its first (a Texas
patient at 21:00 CDT on 6 July got a Pennsylvania multistate RN, though PA joined on 7 July).
"""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from caseroute.domain.codec import parse_case
from caseroute.domain.decision import Outcome
from caseroute.domain.roster import Licence
from caseroute.engine.decide import decide
from caseroute.engine.licensing import CompactView, licence_valid_at
from caseroute.engine.local_days import ANYWHERE, LocalDays, local_days, offsets_at
from caseroute.rules.model import Compact, CompactMember
from caseroute.testing import case_data, make_agent, make_roster, reference_ruleset

NLC = (
    Compact(
        "NLC",
        frozenset({"RN"}),
        (
            CompactMember("US-TX", date(2018, 1, 19)),
            CompactMember("US-PA", date(2025, 7, 7)),
            CompactMember("US-ZZ", date(2018, 1, 19), until=date(2024, 12, 31)),
        ),
    ),
)


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


def _valid(licence: Licence, where: str, now: str) -> tuple[bool, str]:
    days = local_days(where, _at(now))
    return licence_valid_at(licence, where, days, CompactView.on(NLC, days))


@pytest.mark.parametrize(
    ("location", "now", "expected"),
    [
        ("US-TX", "2025-07-07T02:00:00+00:00", ("2025-07-06", "2025-07-06")),  # 19:00-21:00
        ("US-TX", "2025-07-07T06:00:00+00:00", ("2025-07-06", "2025-07-07")),  # El Paso 23:00
        ("GB-ENG", "2026-06-30T23:30:00+00:00", ("2026-06-30", "2026-07-01")),  # BST 00:30
        ("GB", "2026-06-30T12:00:00+00:00", ("2026-06-30", "2026-06-30")),
        ("US-HI", "2026-01-01T09:59:00+00:00", ("2025-12-31", "2025-12-31")),
        ("XX-YY", "2026-01-01T11:00:00+00:00", ("2025-12-31", "2026-01-02")),  # unknown: anywhere
        (None, "2026-01-01T23:00:00+00:00", ("2026-01-01", "2026-01-01")),  # no location: UTC
    ],
)
def test_local_days_span_the_jurisdictions_clocks(
    location: str | None, now: str, expected: tuple[str, str]
) -> None:
    """The earliest and latest local date over the jurisdiction's least and greatest offset."""
    days = local_days(location, _at(now))
    assert (days.earliest.isoformat(), days.latest.isoformat()) == expected


def test_offsets_fall_back_to_the_nearest_listed_parent_then_anywhere() -> None:
    """GB-ENG-XX is GB's; an unknown country is every clock's range."""
    assert offsets_at("GB-ENG-XX") == offsets_at("GB") == (0, 60)
    assert offsets_at("FR-75") == ANYWHERE == (-720, 840)


def test_the_calendars_ends_do_not_overflow() -> None:
    """Year 9999 + 14 hours and year 1 - 12 hours clamp to the calendar's ends."""
    late = local_days("NZ", datetime(9999, 12, 31, 23, 0, tzinfo=UTC))
    early = local_days("NZ", datetime(1, 1, 1, 1, 0, tzinfo=UTC))
    assert (late.latest, early.earliest) == (date.max, date.min)


def test_a_licence_expires_at_the_end_of_its_last_local_day() -> None:
    """GB, expiring 30 June: valid at 22:30 BST, expired at 00:30 BST on 1 July (before: valid)."""
    gb = Licence("RN", "GB", date(2026, 6, 30))
    assert _valid(gb, "GB-ENG", "2026-06-30T21:30:00+00:00") == (True, "RN GB")
    assert _valid(gb, "GB-ENG", "2026-06-30T23:30:00+00:00") == (False, "RN GB expired 2026-06-30")


def test_a_compact_state_counts_from_its_first_local_day_everywhere_in_the_patients_state() -> None:
    """PA joins 7 July: not at 21:00 CDT on 6 July in Texas, yes once all of Texas is on 7 July."""
    pa = Licence("RN", "US-PA", date(2030, 1, 1), multistate=True)
    assert _valid(pa, "US-TX", "2025-07-07T02:00:00+00:00") == (
        False,
        "RN US-PA (US-PA not in NLC)",
    )
    assert _valid(pa, "US-TX", "2025-07-07T07:00:00+00:00") == (True, "RN US-PA multistate via NLC")


def test_a_compact_state_that_left_stops_on_its_last_local_day() -> None:
    """US-ZZ left on 31 December 2024; a patient's state judges its own membership by its dates."""
    zz = Licence("RN", "US-TX", date(2030, 1, 1), multistate=True)
    assert _valid(zz, "US-ZZ", "2024-12-31T13:00:00+00:00")[0]
    # US-ZZ is not listed: it takes the US's clocks (UTC-11 to UTC+10), so it has left once
    # Guam's time, 10 hours ahead of UTC, is on 1 January.
    assert not _valid(zz, "US-ZZ", "2024-12-31T14:30:00+00:00")[0]


def test_the_licences_own_state_is_judged_by_its_own_calendar_too() -> None:
    """A licence's home state counts by its own dates too, not the patient's alone (R31d 2).

    A Maine licence for a Washington patient stayed in force hours past Maine's own expiry
    and Maine's exit from the compact.
    """
    compacts = (
        Compact(
            "NLC",
            frozenset({"RN"}),
            (
                CompactMember("US-ME", date(2018, 1, 19), until=date(2026, 6, 30)),
                CompactMember("US-WA", date(2023, 7, 24)),
            ),
        ),
    )
    now = _at("2026-07-01T05:00:00+00:00")  # 1 July 01:00 in Maine, 30 June 22:00 in Seattle
    days = local_days("US-WA", now)
    assert days.latest == date(2026, 6, 30)
    view = CompactView.on(compacts, days)
    left = Licence("RN", "US-ME", date(2030, 1, 1), multistate=True)
    assert licence_valid_at(left, "US-WA", days, view) == (
        False,
        "RN US-ME (US-ME not in NLC)",
    )
    expired = Licence("RN", "US-ME", date(2026, 6, 30), multistate=True)
    assert licence_valid_at(expired, "US-WA", days, view) == (
        False,
        "RN US-ME expired 2026-06-30",
    )
    earlier = local_days("US-WA", _at("2026-06-30T20:00:00+00:00"))  # 16:00 in Maine
    assert licence_valid_at(expired, "US-WA", earlier, CompactView.on(compacts, earlier))[0]


def test_single_days_check_as_of_one_date() -> None:
    """`rules check --roster` checks as of one date, the same everywhere."""
    day = LocalDays.single(date(2026, 6, 30))
    assert (day.earliest, day.latest, day.text) == (
        date(2026, 6, 30),
        date(2026, 6, 30),
        "2026-06-30",
    )
    assert LocalDays(date(2026, 6, 30), date(2026, 7, 1)).text == "2026-06-30/2026-07-01"


def test_the_reference_ruleset_queues_the_texas_case_the_pa_nurse_would_have_taken() -> None:
    """End to end: a PA multistate RN alone on the roster, a clinical case in Texas."""
    nurse = make_agent(
        "nurse-pa-01", licences=(Licence("RN", "US-PA", date(2030, 1, 1), multistate=True),)
    )
    case = parse_case(
        case_data(
            region="US-TX",
            intent="clinical",
            patient_location="US-TX",
            created_at="2025-07-07T01:00:00Z",
        )
    )
    roster = make_roster(nurse)
    before = decide(case, roster, reference_ruleset(), _at("2025-07-07T02:00:00+00:00"))
    after = decide(case, roster, reference_ruleset(), _at("2025-07-07T07:00:00+00:00"))
    assert (before.outcome, before.agent_id) == (Outcome.QUEUE, None)
    assert (after.outcome, after.agent_id) == (Outcome.ASSIGN, "nurse-pa-01")
