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

Before the encoding, ``shape_violations`` checks what the encoding would silently reshape
rather than refuse, walking the dataclasses by their declared types: a ``str`` where a set or
tuple goes (``flags="safeguarding"``, a one-element tuple without its comma, would be read one
character at a time and lose the flag), a naive ``datetime`` (formatted in the host's local
zone), a plain ``str`` where an enum member goes, an element of the wrong class.
"""

from __future__ import annotations

import dataclasses
import enum
import types
from collections.abc import Callable, Iterable, Mapping
from collections.abc import Set as AbstractSet
from datetime import date, datetime
from functools import cache
from typing import Any, Union, cast, get_args, get_origin, get_type_hints

from caseroute.domain.case import Case
from caseroute.domain.codec import SPLIT_ROSTER, parse_case, parse_roster
from caseroute.domain.errors import FieldViolation, RequestError
from caseroute.domain.field_reader import beyond_utc, too_many
from caseroute.domain.fingerprint import case_to_dict, roster_to_dict
from caseroute.domain.flag_spelling import normalise_flag
from caseroute.domain.limits import DEFAULT_LIMITS, InputLimits
from caseroute.domain.reader import INSTANT_OUT_OF_RANGE
from caseroute.domain.roster import Roster
from caseroute.domain.safeguarding_notice import SAFEGUARDING_FLAG, SAFEGUARDING_NOTICE

_HOW = (
    "build it with the types caseroute.domain.case and caseroute.domain.roster declare, or "
    "parse its JSON form with caseroute.domain.codec"
)


_Check = Callable[[object, str, list[FieldViolation]], None]
"""Checks one value at a field path, appending what is wrong to the list."""

_KINDS: dict[Any, tuple[tuple[type, ...], str]] = {
    frozenset: ((AbstractSet, tuple, list), "a set (frozenset)"),
    tuple: ((tuple, list), "a tuple"),
    dict: ((Mapping,), "a dict"),
}


def _wrong(out: list[FieldViolation], path: str, expected: str, value: object) -> None:
    # The type's name only: the value may be PHI.
    out.append(FieldViolation(path, f"must be {expected}, got {type(value).__name__}; {_HOW}"))


def _checker(hint: Any) -> _Check | None:
    """The check a declared type needs before encoding (None: the parser checks it)."""
    origin = get_origin(hint)
    if origin in (Union, types.UnionType):
        present = [_checker(a) for a in get_args(hint) if a is not type(None)]
        inner = present[0] if len(present) == 1 else None
        if inner is None:
            return None

        def optional(value: object, path: str, out: list[FieldViolation]) -> None:
            if value is not None:
                inner(value, path, out)

        return optional
    if origin in _KINDS:
        kinds, word = _KINDS[origin]
        args = get_args(hint)
        item = _checker(args[0]) if origin is not dict and args else None

        def collection(value: object, path: str, out: list[FieldViolation]) -> None:
            if isinstance(value, str | bytes) or not isinstance(value, kinds):
                _wrong(out, path, word, value)
            elif item is not None:
                elements = cast("Iterable[object]", value)
                for index, element in enumerate(elements):
                    item(element, f"{path}[{index}]", out)

        return collection
    if hint is datetime:

        def instant(value: object, path: str, out: list[FieldViolation]) -> None:
            if not isinstance(value, datetime):
                _wrong(out, path, "a datetime with a UTC offset", value)
            elif value.utcoffset() is None:
                out.append(FieldViolation(path, "must carry a UTC offset (it is a naive datetime)"))
            elif beyond_utc(value):  # the encoder raised OverflowError, named only at the case
                out.append(FieldViolation(path, INSTANT_OUT_OF_RANGE))

        return instant
    if hint is date:

        def day(value: object, path: str, out: list[FieldViolation]) -> None:
            if not isinstance(value, date) or isinstance(value, datetime):
                _wrong(out, path, "a date", value)

        return day
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        expected = f"a {hint.__name__} member (e.g. {hint.__name__}.{next(iter(hint)).name})"

        def member(value: object, path: str, out: list[FieldViolation]) -> None:
            if type(value) is not hint:
                _wrong(out, path, expected, value)

        return member
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        return _dataclass_checker(hint)
    return None


@cache
def _dataclass_checker(cls: Any) -> _Check:
    """Checks an instance of ``cls`` field by field (built once per class)."""
    hints = get_type_hints(cls)
    fields = [
        (f.name, check)
        for f in dataclasses.fields(cls)
        if f.init and (check := _checker(hints[f.name])) is not None
    ]

    def instance(value: object, path: str, out: list[FieldViolation]) -> None:
        if not isinstance(value, cls):
            _wrong(out, path, f"a {cls.__name__}", value)
            return
        for name, check in fields:
            check(getattr(value, name), f"{path}.{name}", out)

    return instance


def shape_violations(value: object, kind: type[Case | Roster], path: str) -> list[FieldViolation]:
    """What encoding ``value`` would reshape instead of refuse (see the module's docstring).

    Args:
        value: A case or roster built in code.
        kind: What it should be: ``Case`` or ``Roster``.
        path: Its field path (``case``, ``cases[2]``, ``roster``).

    Returns:
        One violation per field of the wrong kind; empty when every field has its declared kind.
    """
    out: list[FieldViolation] = []
    try:
        root: Any = kind  # a class: hashable, whatever mypy makes of a dataclass type
        _dataclass_checker(root)(value, path, out)
    except Exception:  # noqa: BLE001 - the caller's own objects may raise anything: refused
        return [FieldViolation(path, f"could not be read (one of its values raised); {_HOW}")]
    return out


def _encoded(
    encode: Callable[[Any], dict[str, Any]], kind: type[Case | Roster], value: object, path: str
) -> dict[str, Any]:
    """``encode(value)``, or a RequestError naming ``path`` when a field has no JSON form."""
    shape = shape_violations(value, kind, path)
    if shape:
        raise RequestError(shape)
    try:
        return encode(value)
    except Exception as exc:  # noqa: BLE001 - the caller's own objects may raise anything
        # A field the shape check passes but the encoder cannot write (a value's own method
        # raised): the exception's text may quote the value, so only its kind is named.
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
    try:
        data = _encoded(case_to_dict, Case, case, path)
    except RequestError as exc:
        if not _carries_safeguarding(case, safeguarding_flags | {SAFEGUARDING_FLAG}):
            raise
        # As the parser does for a flagged case: the plain notice first (review R29b F5).
        notice = FieldViolation(f"{path}.flags", SAFEGUARDING_NOTICE)
        raise RequestError([notice, *exc.violations]) from None
    return parse_case(data, path, limits=limits, safeguarding_flags=safeguarding_flags)


def _carries_safeguarding(case: object, flags: frozenset[str]) -> bool:
    """Whether a case refused before parsing holds one of ``flags`` in any spelling."""
    try:
        given: object = getattr(case, "flags", None)
        items = [given] if isinstance(given, str) else list(given)  # type: ignore[call-overload]
        return any(isinstance(i, str) and normalise_flag(i) in flags for i in items)
    except Exception:  # noqa: BLE001 - the caller's own objects may raise anything: no notice
        return False


def checked_roster(
    roster: Roster, path: str = "roster", *, limits: InputLimits = DEFAULT_LIMITS
) -> Roster:
    """``roster`` as the strict parser reads its canonical form: normalised, or refused.

    Raises:
        RequestError: Naming every field the parser refuses (duplicate agent ids included).
    """
    agents: object = getattr(roster, "agents", None)
    if isinstance(agents, tuple | list):  # counted before any agent is walked, as parsers do
        over = too_many(len(agents), "agents", limits.max_agents, "max_agents", SPLIT_ROSTER)
        if over is not None:
            raise RequestError([FieldViolation(f"{path}.agents", over)])
    return parse_roster(_encoded(roster_to_dict, Roster, roster, path), path, limits=limits)
