"""Is a licence valid where the patient is, today? Jurisdiction containment plus compacts.

A licence issued for ``GB`` covers ``GB-ENG`` (UK-wide registration); ``US-TX`` covers only
Texas, unless it is a multistate licence of a compact type, issued by a compact member and the
patient is in another member state on that day (membership is dated ruleset data).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from functools import lru_cache

from caseroute.domain.roster import Licence
from caseroute.rules.model import Compact


def covers(area: str, code: str) -> bool:
    """Whether a code lies within an area (``US`` covers ``US-TX``; a code covers itself)."""
    return code == area or code.startswith(area + "-")


LICENSED_BY_SUBDIVISION = frozenset({"US", "CA"})
"""Countries whose states or provinces license health professionals: a licence recorded
against the country itself is valid nowhere (there is no US-wide nursing licence; a multistate
RN licence is issued by its home state). Elsewhere a country's licence covers its subdivisions
(``GB``: UK-wide registration covers ``GB-ENG``)."""


@dataclass(frozen=True, slots=True)
class CompactView:
    """Compacts resolved for one day: name, licence types and member jurisdictions."""

    entries: tuple[tuple[str, frozenset[str], frozenset[str]], ...]

    @classmethod
    def on(cls, compacts: tuple[Compact, ...], day: date) -> CompactView:
        """Resolve membership for ``day`` (memoised: one decision asks up to four times)."""
        return _resolved(compacts, day)


@lru_cache(maxsize=64)
def _resolved(compacts: tuple[Compact, ...], day: date) -> CompactView:
    # Keyed by value: compacts are frozen dataclasses, so two equal rulesets share an entry.
    return CompactView(tuple((c.name, c.licence_types, c.members_on(day)) for c in compacts))


def licence_valid_at(
    licence: Licence, location: str, day: date, compacts: CompactView
) -> tuple[bool, str]:
    """Check one licence at one location on one day.

    Args:
        licence: The licence.
        location: Patient location (jurisdiction code).
        day: The decision's date (UTC).
        compacts: Compact membership on that day.

    Returns:
        (valid, a short note for the explanation: why it is or is not valid).
    """
    name = f"{licence.type} {licence.jurisdiction}"
    if licence.expires_on < day:
        return False, f"{name} expired {licence.expires_on.isoformat()}"
    if licence.jurisdiction in LICENSED_BY_SUBDIVISION:
        # Before, the parent-area rule let a "US" licence skip compacts and the APRN rule
        # (review R31a F5).
        return False, (
            f"{name} (no country-wide licence: {licence.jurisdiction} licenses by state or "
            "province; record the issuing one)"
        )
    if covers(licence.jurisdiction, location):
        return True, name
    if not licence.multistate:
        return False, f"{name} (single-state)"
    notes = []
    for compact, types, members in compacts.entries:
        if licence.type not in types:
            notes.append(f"{licence.type} not covered by {compact}")
        elif licence.jurisdiction not in members:
            notes.append(f"{licence.jurisdiction} not in {compact}")
        elif location not in members:
            notes.append(f"{location} not in {compact}")
        else:
            return True, f"{name} multistate via {compact}"
    return False, f"{name} ({'; '.join(notes) or 'no compact applies'})"
