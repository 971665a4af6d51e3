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
UK-wide registration covers ``GB-ENG``)."""


def needs_subdivision(code: str) -> bool:
    """Whether ``code`` is a whole country whose states or provinces license (``US``, ``CA``).

    Such a code names no licensing board: a licence cannot be checked against it, and no
    compact can count it as a member (members are the states that license).
    """
    return code in LICENSED_BY_SUBDIVISION
