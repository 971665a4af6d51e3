"""Cases and rosters built in Python code, checked as the parsers check what a transport sent.

The transports build ``Case`` and ``Roster`` values with the strict parsers
(``caseroute.domain.codec``, ``caseroute.wire``), which refuse what the engine must never see
and normalise what it compares: a flag is NFKC-normalised, trimmed and case-folded, so
``" Safeguarding"`` is the safeguarding flag. The dataclasses themselves check nothing, so a
value built in code could carry ``"Safeguarding"``, which the engine compares exactly and would
not take for the safeguarding flag: an assignment where every transport escalates. Such a value
goes through its canonical form (``fingerprint.case_to_dict``, the form the decision log
records and replay parses) and the same parser, so a code-built case means what the same case
sent over gRPC or JSON means, or is refused naming the field.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from caseroute.domain.case import Case
from caseroute.domain.codec import parse_case, parse_roster
from caseroute.domain.errors import FieldViolation, RequestError
from caseroute.domain.fingerprint import case_to_dict, roster_to_dict
from caseroute.domain.limits import DEFAULT_LIMITS, InputLimits
from caseroute.domain.roster import Roster

_HOW = (
    "build it with the types caseroute.domain.case and caseroute.domain.roster declare, or "
    "parse its JSON form with caseroute.domain.codec"
)


def _encoded(encode: Callable[[Any], dict[str, Any]], value: object, path: str) -> dict[str, Any]:
    """``encode(value)``, or a RequestError naming ``path`` when a field has no JSON form."""
    try:
        return encode(value)
    except (AttributeError, TypeError, ValueError, OverflowError) as exc:
        # A field of the wrong type (a naive instant, a set where a tuple goes, ...): the
        # exception's text may quote the value, so only its kind is named.
        raise RequestError(
            [FieldViolation(path, f"has a field of the wrong type ({type(exc).__name__}); {_HOW}")]
        ) from None


def checked_case(
    case: Case,
    path: str = "case",
    *,
    limits: InputLimits = DEFAULT_LIMITS,
    safeguarding_flags: frozenset[str] = frozenset(),
) -> Case:
    """``case`` as the strict parser reads its canonical form: normalised, or refused.

    Args:
        case: A case built in code.
        path: Field path prefix used in error messages (``cases[2]`` in a batch).
        limits: Size limits to enforce.
        safeguarding_flags: As for ``parse_case``: an invalid case carrying one gets the
            plain safeguarding notice first.

    Returns:
        The case the parser builds; equal to ``case`` when ``case`` was already normal.

    Raises:
        RequestError: Naming every field the parser refuses.
    """
    data = _encoded(case_to_dict, case, path)
    return parse_case(data, path, limits=limits, safeguarding_flags=safeguarding_flags)


def checked_roster(
    roster: Roster, path: str = "roster", *, limits: InputLimits = DEFAULT_LIMITS
) -> Roster:
    """``roster`` as the strict parser reads its canonical form: normalised, or refused.

    Raises:
        RequestError: Naming every field the parser refuses (duplicate agent ids included).
    """
    return parse_roster(_encoded(roster_to_dict, roster, path), path, limits=limits)
