"""When licence expiry and dated compact membership change who may take a case, by time alone.

A licence verdict reads dates only through the local calendars (``local_days``): each
jurisdiction's earliest and latest date, over its range of UTC offsets, compared with a
licence's ``expires_on`` and a membership's ``since`` and ``until``. Such a comparison flips
only when one of those local dates reaches a threshold day: at that day's midnight at one of
the offsets, ``day 00:00 - offset`` in UTC. So the verdict is constant between those instants,
and the first instant it differs from ``now``'s is found by asking the engine's own licence
check (``matching.need_at``) at each of them in turn: the same, conservative rule that admits
a nurse decides when she is admitted or lapses, never a second reading of the dates.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta

from caseroute.domain.roster import Agent
from caseroute.engine.local_days import offsets_at
from caseroute.engine.matching import Need, licence_failure, need_at
from caseroute.rules.model import Compact


def _midnights(days: Iterable[date], places: Iterable[str], after: datetime) -> list[datetime]:
    """Each day's midnight at each place's least and greatest offset, after ``after``, sorted."""
    offsets = {offset for place in places for offset in offsets_at(place)}
    out = set()
    for day in days:
        for offset in offsets:
            try:
                at = datetime(day.year, day.month, day.day, tzinfo=UTC) - timedelta(minutes=offset)
            except OverflowError:
                continue  # before year 1 or after 9999: never comes
            if at > after:
                out.add(at)
    return sorted(out)


def _compacts_for(need: Need) -> tuple[Compact, ...]:
    types = set(need.licence_types or ())
    return tuple(c for c in need.compacts.dated if c.licence_types & types)


def _membership_days(compacts: tuple[Compact, ...], places: set[str]) -> set[date]:
    """Days a membership of one of ``places`` starts, or the day after it ends."""
    days: set[date] = set()
    for compact in compacts:
        for member in compact.members:
            if member.jurisdiction not in places:
                continue
            days.add(member.since)
            if member.until is not None and member.until < date.max:
                days.add(member.until + timedelta(days=1))
    return days


def licence_changes_at(need: Need, agent: Agent, now: datetime) -> datetime | None:
    """The first instant after ``now`` at which ``agent``'s licence verdict differs from now's.

    Args:
        need: The resolved need at ``now`` (its licence types and patient location).
        agent: The agent.
        now: The decision instant.

    Returns:
        That instant (a licence lapsing or a compact admitting it), or ``None``: no dated
        change, or no licence applies.
    """
    if need.licence_types is None or need.location is None:
        return None
    licences = [lic for lic in agent.licences if lic.type in need.licence_types]
    if not licences:
        return None
    places = {need.location, *(lic.jurisdiction for lic in licences)}
    days = {lic.expires_on + timedelta(days=1) for lic in licences if lic.expires_on < date.max}
    days |= _membership_days(_compacts_for(need), places)
    passes = licence_failure(need, agent) is None
    for at in _midnights(days, places, now):
        if (licence_failure(need_at(need, at), agent) is None) != passes:
            return at
    return None


def licence_gain_instants(need: Need, now: datetime) -> list[datetime]:
    """Instants after ``now`` at which some licence may become valid at the patient location.

    A licence's own dates only ever end it; what can admit an agent later is a compact
    membership starting (the patient's state's, or an issuing state's). The list holds every
    instant such a start takes effect, by the same local calendars, earliest first.

    Args:
        need: The resolved need at ``now``.
        now: The decision instant.

    Returns:
        Candidate instants (empty when no licence applies or no membership starts later).
    """
    if need.licence_types is None or need.location is None:
        return []
    compacts = _compacts_for(need)
    # A day's midnight falls at most a day after its UTC midnight (offsets are within +-24 h):
    # memberships that began before then are in force at `now` already. Most have: only
    # those ahead cost the per-offset instants.
    first = now.date() - timedelta(days=1) if now.date() > date.min else date.min
    days = {m.since for c in compacts for m in c.members if m.since >= first}
    if not days:
        return []
    places = {need.location, *(m.jurisdiction for c in compacts for m in c.members)}
    return _midnights(days, places, now)
