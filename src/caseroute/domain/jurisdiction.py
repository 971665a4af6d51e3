"""Who licenses where: countries whose states or provinces license, and codes too coarse for it."""

from __future__ import annotations

SUBDIVISION_EXAMPLE = {"US": "US-TX", "CA": "CA-ON"}
"""Each country whose states or provinces license health professionals, with one of them (for
advice such as "send the patient's state or province (e.g. US-TX)")."""

LICENSED_BY_SUBDIVISION = frozenset(SUBDIVISION_EXAMPLE)
"""Countries whose states or provinces license health professionals: a licence recorded
against the country itself is valid nowhere (there is no US-wide nursing licence; a multistate
RN licence is issued by its home state), and a patient located only in the country is in no
licensing jurisdiction. Elsewhere a country's licence covers its subdivisions (``GB``:
UK-wide registration covers ``GB-ENG``), unless the ruleset names a register of its type that
covers only part of the country (``registers``: the GPhC's pharmacists, not ``GB-NIR``)."""


def needs_subdivision(code: str) -> bool:
    """Whether ``code`` is a whole country whose states or provinces license (``US``, ``CA``).

    Such a code names no licensing board: a licence cannot be checked against it, and no
    compact can count it as a member (members are the states that license).
    """
    return code in LICENSED_BY_SUBDIVISION


LICENSING_CODE = {
    "PR": "US-PR",
    "GU": "US-GU",
    "VI": "US-VI",
    "AS": "US-AS",
    "MP": "US-MP",
    "UM": "US-UM",
    "UK": "GB",
}
"""Codes people send for a place whose licences are recorded under another code, and that code:
the US territories' own ISO 3166-1 codes (their boards license as ``US-PR``, ``US-GU``, ...), and
``UK``, which ISO 3166 reserves but never assigned (UK-wide registration is ``GB``). No licence
names such a code, so a case located there queued for nobody (review of stop 38)."""


def licensing_code(code: str) -> str | None:
    """The code licences name for the place ``code`` names, when ``code`` is not it (else None)."""
    return LICENSING_CODE.get(code)
