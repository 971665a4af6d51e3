"""The calendar dates it may be at a patient's location now: licence and compact days by them.

Licensure follows where the patient is at the time of service, and a licence that expires on
30 June, or a state that joins a compact on 7 July, does so by the local calendar. Deciding by
the UTC date let a licence run up to 14 hours past its last local day and a compact state count
as a member up to 12 hours before its first (review R31a F3).

A jurisdiction spans one or more time zones, and daylight saving moves them by an hour; rather
than carry a time-zone database, each jurisdiction has the least and the greatest UTC offset
its clocks keep in the year (``OFFSETS``). ``local_days`` gives the earliest and latest local
date over that range, and the licence checks are conservative with both: a licence is in force
only while every part of the patient's jurisdiction is on or before its expiry date (the
latest date), and a compact membership only once every part has reached its ``since`` and not
passed its ``until``. At most an hour early, and not only around a DST change: the range
holds all year, so all winter a state that keeps daylight time in summer is judged as if it
might be on it (and all summer as if it might be on standard time). A jurisdiction not in the
table uses the range of all clocks on Earth (UTC-12 to UTC+14).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache

_H = 60
ANYWHERE = (-12 * _H, 14 * _H)
"""The least and greatest UTC offset of any clock on Earth, in minutes."""

_ET, _CT, _MT, _PT = (-5 * _H, -4 * _H), (-6 * _H, -5 * _H), (-7 * _H, -6 * _H), (-8 * _H, -7 * _H)
_ET_CT = (-6 * _H, -4 * _H)
_CT_MT = (-7 * _H, -5 * _H)
_MT_PT = (-8 * _H, -6 * _H)

_US_STATES: dict[str, tuple[int, int]] = {
    # Each state's zones, standard and daylight time (minutes from UTC).
    **dict.fromkeys(
        [
            *("CT", "DE", "DC", "GA", "ME", "MD", "MA", "NH", "NJ"),
            *("NY", "NC", "OH", "PA", "RI", "SC", "VT", "VA", "WV"),
        ],
        _ET,
    ),
    **dict.fromkeys(["FL", "IN", "KY", "MI", "TN"], _ET_CT),  # panhandle, west, far west
    **dict.fromkeys(["AL", "AR", "IL", "IA", "LA", "MN", "MS", "MO", "OK", "WI"], _CT),
    **dict.fromkeys(["KS", "NE", "ND", "SD", "TX"], _CT_MT),  # El Paso and the western counties
    **dict.fromkeys(["CO", "MT", "NM", "UT", "WY"], _MT),
    "AZ": (-7 * _H, -6 * _H),  # no DST, except the Navajo Nation
    **dict.fromkeys(["ID", "OR"], _MT_PT),
    "NV": (-8 * _H, -6 * _H),  # West Wendover keeps mountain time
    **dict.fromkeys(["CA", "WA"], _PT),
    "AK": (-10 * _H, -8 * _H),  # the Aleutians west of 169.5 W
    "HI": (-10 * _H, -10 * _H),
    "PR": (-4 * _H, -4 * _H),
    "VI": (-4 * _H, -4 * _H),
    "GU": (10 * _H, 10 * _H),
    "MP": (10 * _H, 10 * _H),
    "AS": (-11 * _H, -11 * _H),
}
OFFSETS: dict[str, tuple[int, int]] = {
    **{f"US-{state}": offsets for state, offsets in _US_STATES.items()},
    "US": (-11 * _H, 10 * _H),  # American Samoa to Guam
    "GB": (0, 1 * _H),  # the UK: GMT and BST, every nation
    "IE": (0, 1 * _H),
}
"""Each listed jurisdiction's least and greatest UTC offset over a year, in minutes."""


def offsets_at(location: str) -> tuple[int, int]:
    """The least and greatest UTC offset (minutes) of ``location``'s clocks over a year.

    The jurisdiction itself, else its nearest listed parent (``GB-ENG`` is ``GB``'s), else
    ``ANYWHERE``.
    """
    code = location
    while True:
        found = OFFSETS.get(code)
        if found is not None:
            return found
        parent, dash, _ = code.rpartition("-")
        if not dash:
            return ANYWHERE
        code = parent


@dataclass(frozen=True, slots=True)
class LocalDays:
    """The earliest and latest calendar date it may be at a location at one instant.

    ``hour`` is that instant in UTC, cut to the hour (every offset in ``OFFSETS`` is whole
    hours, so the dates are the same), or None for a check "as of" one date: ``at`` gives
    another jurisdiction's dates at the same instant, and caches keyed by these days are
    rebuilt at most once an hour.
    """

    earliest: date
    latest: date
    hour: datetime | None = None

    @classmethod
    def single(cls, day: date) -> LocalDays:
        """One date everywhere (a check "as of" a day: ``rules check --roster``)."""
        return cls(day, day)

    def at(self, location: str) -> LocalDays:
        """The dates at ``location`` at the same instant (these days again when "as of")."""
        if self.hour is None:
            return self
        return _local_days_at(location, self.hour)

    @property
    def text(self) -> str:
        """``2026-11-21``, or ``2026-11-21/2026-11-22`` when the location spans both."""
        if self.earliest == self.latest:
            return self.earliest.isoformat()
        return f"{self.earliest.isoformat()}/{self.latest.isoformat()}"


def local_days(location: str | None, now: datetime) -> LocalDays:
    """The dates it may be at ``location`` at ``now`` (its UTC date when there is none).

    Args:
        location: A jurisdiction code (``US-TX``), or None.
        now: The decision instant (aware).

    Returns:
        The earliest and latest local date.
    """
    hour = now.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    if location is None:
        return LocalDays(hour.date(), hour.date(), hour)
    return _local_days_at(location, hour)


@lru_cache(maxsize=1024)
def _local_days_at(location: str, hour: datetime) -> LocalDays:
    least, greatest = offsets_at(location)
    return LocalDays(_date_at(hour, least), _date_at(hour, greatest), hour)


def _date_at(utc: datetime, offset: int) -> date:
    """The date at ``offset`` minutes from UTC (clamped at the calendar's ends: year 1, 9999)."""
    try:
        return (utc + timedelta(minutes=offset)).date()
    except OverflowError:
        return date.max if offset > 0 else date.min
