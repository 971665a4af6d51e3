"""Is a licence valid where the patient is, today? Jurisdiction containment plus compacts.

A licence covers its jurisdiction and what lies within it by code or ISO 3166-2
(``domain/territory.iso_within``: ``GB-NIR`` covers ``GB-BFS``, Belfast; never a ruleset's
areas). A licence issued for ``GB`` covers ``GB-ENG`` (UK-wide registration), unless the
ruleset puts its type on a register covering only part of the country (``registers``: the
GPhC registers pharmacists for Great Britain, so a ``pharmacist GB`` licence does not cover
``GB-NIR``); ``US-TX`` covers only Texas, unless it is a multistate licence of a compact type,
issued by a compact member and the patient is in another member state on that day (membership
is dated ruleset data).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from functools import lru_cache

from caseroute.domain.jurisdiction import LICENSED_BY_SUBDIVISION, needs_subdivision
from caseroute.domain.roster import Licence
from caseroute.domain.territory import iso_within
from caseroute.engine.local_days import LocalDays
from caseroute.rules.model import Compact, Register


@dataclass(frozen=True, slots=True)
class CompactView:
    """Compacts resolved for one day (name, licence types, member jurisdictions), and registers.

    ``dated`` keeps the compacts themselves, for a licence's home state judged on its own dates
    (``member_throughout``); a view built by hand without them reads ``entries``.
    ``registers`` (compared: a cached verdict depends on them) limit what a licence of their
    types recorded for their country covers.
    """

    entries: tuple[tuple[str, frozenset[str], frozenset[str]], ...]
    dated: tuple[Compact, ...] = field(default=(), compare=False, hash=False)
    registers: tuple[Register, ...] = ()

    def register_of(self, licence: Licence) -> Register | None:
        """The register holding ``licence`` (its type, recorded for its jurisdiction), if any.

        Types are compared in any letter case: a register only takes coverage away, so a
        register written ``Pharmacist`` must still limit a ``pharmacist`` licence (compared
        exactly, the limit silently vanished and a GB pharmacist was assigned a GB-NIR case).
        """
        folded = licence.type.casefold()
        for register in self.registers:
            if register.jurisdiction == licence.jurisdiction and any(
                t.casefold() == folded for t in register.licence_types
            ):
                return register
        return None

    def member_throughout(
        self, index: int, jurisdiction: str, earliest: date, latest: date
    ) -> bool:
        """Whether ``jurisdiction`` is a member of the ``index``-th compact on both dates."""
        if not self.dated:
            return jurisdiction in self.entries[index][2]
        compact = self.dated[index]
        return all(
            any(m.jurisdiction == jurisdiction and m.active_on(day) for m in compact.members)
            for day in (earliest, latest)
        )

    @classmethod
    def on(
        cls, compacts: tuple[Compact, ...], days: LocalDays, registers: tuple[Register, ...] = ()
    ) -> CompactView:
        """Resolve membership over ``days`` (memoised: one decision asks up to four times).

        A jurisdiction is a member only when it is one on both the earliest and the latest
        local date: every part of it has reached ``since`` and none has passed ``until``.
        ``registers`` are the ruleset's (not dated: a register's remit is law, not membership).
        """
        return _resolved(compacts, days, registers)


@lru_cache(maxsize=64)
def _resolved(
    compacts: tuple[Compact, ...], days: LocalDays, registers: tuple[Register, ...]
) -> CompactView:
    # Keyed by value: compacts are frozen dataclasses, so two equal rulesets share an entry.
    return CompactView(
        tuple(
            (c.name, c.licence_types, c.members_on(days.earliest) & c.members_on(days.latest))
            for c in compacts
        ),
        compacts,
        registers,
    )


def licence_valid_at(
    licence: Licence, location: str, days: LocalDays, compacts: CompactView
) -> tuple[bool, str]:
    """Check one licence at one location now.

    Args:
        licence: The licence.
        location: Patient location (jurisdiction code).
        days: The dates it may be at the location now (``local_days``): the licence must be
            unexpired on the latest (its expiry day is inclusive, by the local calendar).
        compacts: Compact membership over those days.

    Returns:
        (valid, a short note for the explanation: why it is or is not valid).
    """
    name = f"{licence.type} {licence.jurisdiction}"
    # The licence's own dates go by its issuing jurisdiction's calendar as well as the
    # patient's, whichever is later: judged by the patient's alone, a Maine licence was in
    # force for a Washington patient hours after Maine's own expiry (review R31d 2).
    home = days.at(licence.jurisdiction)
    latest = max(days.latest, home.latest)
    if licence.expires_on < latest:
        return False, f"{name} expired {licence.expires_on.isoformat()}"
    if licence.jurisdiction in LICENSED_BY_SUBDIVISION:
        # Before, the parent-area rule let a "US" licence skip compacts and the APRN rule
        # (review R31a F5).
        return False, (
            f"{name} (no country-wide licence: {licence.jurisdiction} licenses by state or "
            "province; record the issuing one)"
        )
    register = compacts.register_of(licence)
    if (
        register is not None
        and iso_within(licence.jurisdiction, location)
        and not any(iso_within(part, location) for part in register.covers)
    ):
        # A part covers what lies within it by ISO 3166-2 (``GB-KEN``, Kent, is in ``GB-ENG``;
        # ``GB-BFS``, Belfast, is in ``GB-NIR``), never by a ruleset's areas: only facts about
        # places widen a licence. Fail safe: a patient located only as the whole country
        # (``GB``) may be in the part the register leaves out, so that is not covered either.
        # No compact grants it: the place is within the licence's own country, where the
        # register's remit is the law.
        return False, (
            f"{name} ({register.name} registers {licence.type} for "
            f"{', '.join(register.covers)} only, not {location})"
        )
    if iso_within(licence.jurisdiction, location):
        # By ISO 3166-2 too: a licence recorded as ``GB-NIR`` (a Northern Ireland
        # pharmacist's, PSNI) covers a patient in ``GB-BFS`` (Belfast), which no prefix says.
        return True, name
    if not licence.multistate:
        if licence.jurisdiction.partition("-")[0] not in LICENSED_BY_SUBDIVISION:
            # "single-state" is the US (and Canadian) notion: a UK-wide registration that does
            # not cover the location as written (``UK``, not ``GB``; or recorded as ``GB-ENG``
            # for a patient in ``GB-SCT``) is not limited to one state.
            return False, f"{name} (does not cover {location})"
        return False, f"{name} (single-state)"
    if needs_subdivision(location):
        # Defence in depth: the schema refuses a compact member such as ``US``, and a licensed
        # case located only in ``US`` is an EXCEPTION before any agent is checked
        # (``build_need``); a ruleset built in code still never licenses a whole country
        # through a compact listing it (review M5).
        return False, (
            f"{name} (patient location {location} is a whole country, and {location} licenses "
            "by state or province: no compact covers it)"
        )
    notes = []
    earliest = min(days.earliest, home.earliest)
    for index, (compact, types, members) in enumerate(compacts.entries):
        if licence.type not in types:
            notes.append(f"{licence.type} not covered by {compact}")
        elif not compacts.member_throughout(index, licence.jurisdiction, earliest, latest):
            notes.append(f"{licence.jurisdiction} not in {compact}")
        elif location not in members:
            notes.append(f"{location} not in {compact}")
        else:
            return True, f"{name} multistate via {compact}"
    return False, f"{name} ({'; '.join(notes) or 'no compact applies'})"
