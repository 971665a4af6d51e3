"""A JSON object read at a field path, collecting every violation: the request parsers' reader.

``FieldReader`` locates each problem by its field path (``case.required_skills[0].name``) and
takes its words from ``caseroute.domain.reader``, the core it shares with the ruleset schema;
``ListCap`` keeps each list's violations short. The field names accepted are the proto names
and their lowerCamelCase JSON names (one field under both is refused, never resolved).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime
from enum import StrEnum
from typing import Any, TypeVar

from caseroute.domain.case import AttributeValue
from caseroute.domain.enums import (
    ATTRIBUTE_KINDS,
    UNSET,
    enum_member,
    wire_name,
    wire_names,
)
from caseroute.domain.errors import FieldViolation
from caseroute.domain.limits import (
    VIOLATIONS_PER_LIST,
    InputLimits,
    key_path,
    limit_flag,
)
from caseroute.domain.reader import (
    ATTRIBUTE_NAME,
    INSTANT_OUT_OF_RANGE,
    INSTANT_SHAPE,
    ISO_INSTANT,
    MAX_ABS_NUMBER,
    MISSING,
    TextPattern,
    describe_type,
    describe_value,
    finite,
    near_miss,
    not_boolean,
    not_date,
    not_list,
    not_object,
    not_one_of,
    number_problem,
    quoted_number_tip,
    read_day,
    text_problem,
    too_long,
    unknown_key_tip,
)

E = TypeVar("E", bound=StrEnum)

_MIN_NUMBER = -MAX_ABS_NUMBER


def lower_camel(name: str) -> str:
    """A proto field's JSON name: ``sla_clocks`` -> ``slaClocks`` (what protoc derives)."""
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


@functools.cache
def _camel_aliases(allowed: tuple[str, ...]) -> dict[str, str]:
    return {lower_camel(n): n for n in allowed if lower_camel(n) != n}


def _has_lone_surrogate(value: str) -> bool:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def too_many(count: int, noun: str, limit: int, name: str, advice: str = "") -> str | None:
    """The words for a list or map over its ``InputLimits`` field ``name``, or ``None``."""
    if count <= limit:
        return None
    tip = f": {advice}" if advice else ""
    return f"has {count} {noun}; the limit is {limit} (configurable: {limit_flag(name)}){tip}"


class ListCap:
    """Keeps at most ``VIOLATIONS_PER_LIST`` violations for one list; counts the rest."""

    def __init__(self, violations: list[FieldViolation], path: str) -> None:
        self.violations = violations
        self.path = path
        self.start = len(violations)
        self.hidden = 0

    def trim(self) -> None:
        """Drop violations past the cap (call after each item)."""
        excess = len(self.violations) - self.start - VIOLATIONS_PER_LIST
        if excess > 0:
            del self.violations[-excess:]
            self.hidden += excess

    def close(self) -> None:
        """Say how many were left out."""
        self.trim()
        if self.hidden:
            self.violations.append(
                FieldViolation(
                    self.path,
                    f"{self.hidden} more problem(s) in this list not shown; fix the ones "
                    "above and resend",
                )
            )


class FieldReader:
    """Reads one JSON object at a field path, collecting violations instead of raising."""

    def __init__(
        self,
        data: object,
        path: str,
        violations: list[FieldViolation],
        allowed: tuple[str, ...],
        limits: InputLimits,
    ) -> None:
        self.path = path
        self.violations = violations
        self.limits = limits
        self.data: Mapping[str, Any] = {}
        # The value of a field sent a second time under its other spelling (it is refused;
        # kept so a safeguarding flag sent only there still gets the notice).
        self.shadowed: dict[str, Any] = {}
        if not isinstance(data, Mapping):
            self.fail("", not_object(data))
            return
        aliases = _camel_aliases(allowed)
        fields: dict[str, Any] = {}
        spelled: dict[str, str] = {}
        unknown = 0
        for key, value in data.items():
            name = key if key in allowed else aliases.get(key) if isinstance(key, str) else None
            if name is not None and name in fields:
                # Never pick one: `flags` and `sla_clocks` both spelt must not lose either.
                self.fail(
                    name,
                    f"is given twice, as `{spelled[name]}` and `{key}`; send it once (either "
                    "spelling is accepted, not both)",
                )
                self.shadowed[name] = value
                continue
            if name is not None:
                fields[name] = value
                spelled[name] = key
                continue
            unknown += 1
            if unknown > VIOLATIONS_PER_LIST:
                continue
            text = str(key)
            # At a request's top level there is no parent: `extra`, or `['odd key']`.
            where = key_path(path, text)
            self.violations.append(
                FieldViolation(where, f"unknown field{unknown_key_tip(text, allowed)}")
            )
        if unknown > VIOLATIONS_PER_LIST:
            self.violations.append(
                FieldViolation(
                    path,
                    f"{unknown - VIOLATIONS_PER_LIST} more unknown field(s) not shown; remove "
                    "fields the API does not define",
                )
            )
        self.data = fields

    def at(self, key: str) -> str:
        """The field path of ``key`` in this object."""
        if not self.path:  # a request's top level: `roster`, not `.roster`
            return key
        return f"{self.path}.{key}" if key else self.path

    def fail(self, key: str, message: str) -> None:
        """Record a violation at ``key`` (``""``: the object itself)."""
        self.violations.append(FieldViolation(self.at(key), message))

    def raw(self, key: str, *, required: bool) -> Any:
        """The value of ``key`` as sent (``UNSET`` when absent or null; required: a violation)."""
        value = self.data.get(key, UNSET)
        if value is None:
            value = UNSET
        if value is UNSET and required:
            self.fail(key, MISSING)
        return value

    def string(
        self,
        key: str,
        *,
        required: bool = True,
        pattern: TextPattern | None = None,
        normalise: Callable[[str], str] | None = None,
    ) -> str | None:
        """An identifier or code (``reader.text_problem``); ``None`` (and a violation) if bad."""
        value = self.raw(key, required=required)
        if value is UNSET:
            return None
        # Positional: this runs for every identifier of every agent (keywords cost more).
        problem, text = text_problem(
            value, pattern, self.limits.max_id_chars, "max_id_chars", normalise
        )
        if problem is not None:
            self.fail(key, problem)
        return text

    def number(
        self,
        key: str,
        *,
        required: bool = True,
        low: float | None = None,
        high: float | None = None,
        integer: bool = False,
        default: float | None = None,
    ) -> float | None:
        """A number; a ``default`` (a proto3 scalar's zero) makes a missing one that value."""
        value = self.raw(key, required=required and default is None)
        if value is UNSET:
            return default
        if integer and type(value) is float and value.is_integer():
            # 2.0 for an int32, as protobuf's JSON parser (and grpcurl) reads it (R34a F4).
            value = int(value)
        # The common case without a call: an int (or, for a number, a float) within range and
        # ±MAX_ABS_NUMBER (NaN fails every comparison, so it takes the worded path below).
        kind = type(value)
        if (
            (kind is int or (kind is float and not integer))
            and _MIN_NUMBER <= value <= MAX_ABS_NUMBER
            and (low is None or low <= value)
            and (high is None or value <= high)
        ):
            return value if integer else float(value)
        problem = number_problem(value, integer=integer, low=low, high=high)
        if problem is not None:
            self.fail(key, problem)
            return None
        return float(value) if not integer else value

    def integer(
        self,
        key: str,
        *,
        required: bool = True,
        low: int = 0,
        high: int = 1_000_000,
        default: int | None = None,
    ) -> int | None:
        """A whole number within [low, high]; a ``default`` makes a missing one that value."""
        value = self.number(
            key, required=required, low=low, high=high, integer=True, default=default
        )
        return None if value is None else int(value)

    def boolean(self, key: str, *, default: bool) -> bool:
        """True or false; ``default`` when absent (or, with a violation, when not a boolean)."""
        value = self.raw(key, required=False)
        if value is UNSET:
            return default
        if not isinstance(value, bool):
            self.fail(key, not_boolean(value))
            return default
        return value

    def enum(self, key: str, kind: type[E], *, required: bool = True) -> E | None:
        """An enum: proto name, number or short value; ``*_UNSPECIFIED``/0 is "not set"."""
        value = self.raw(key, required=required)
        if value is UNSET:
            return None
        member = enum_member(value, kind)
        if member is UNSET:
            if required:
                self.fail(key, f"{MISSING} ({describe_value(value)} means not set)")
            return None
        if member is None:
            names = wire_names(kind)
            hint = near_miss(value, names)
            if hint is None and isinstance(value, str):
                # A near miss of the short value suggests the proto name all the same.
                shorts = {m.value: wire_name(m) for m in kind}
                near_short = near_miss(value.lower(), list(shorts))
                hint = None if near_short is None else shorts[near_short]
            self.fail(key, not_one_of(value, names, hint))
            return None
        assert isinstance(member, kind)  # noqa: S101 - the other outcomes returned above
        return member

    def timestamp(self, key: str, *, required: bool = True) -> datetime | None:
        """An RFC 3339 timestamp with a UTC offset, in UTC; ``None`` when absent or invalid."""
        value = self.raw(key, required=required)
        if value is UNSET:
            return None
        parsed = parse_timestamp(value)
        if parsed is None:
            self.fail(key, f"{instant_fault(value)}; got {describe_value(value)}")
        return parsed

    def day(self, key: str) -> date | None:
        """A required date written YYYY-MM-DD; ``None`` (and a violation) otherwise."""
        value = self.raw(key, required=True)
        if value is UNSET:
            return None
        day = read_day(value)
        if day is None:
            self.fail(key, not_date(value))
        return day

    def items(
        self, key: str, limit: int, name: str, advice: str = "", noun: str = "items"
    ) -> list[tuple[str, Any]]:
        """Elements of a list field with their paths (missing list: empty).

        Invariant: the size is checked before any element is looked at; over the limit, the
        list is one violation and no element is returned.
        """
        value = self.raw(key, required=False)
        if value is UNSET:
            return []
        if not isinstance(value, list | tuple):
            self.fail(key, not_list(value))
            return []
        over = too_many(len(value), noun, limit, name, advice)
        if over is not None:
            self.fail(key, over)
            return []
        base = self.at(key)
        return [(f"{base}[{i}]", item) for i, item in enumerate(value)]

    def strings(
        self,
        key: str,
        *,
        pattern: TextPattern,
        normalise: Callable[[str], str] | None = None,
        what: str | None = None,
        check: Callable[[str], str | None] | None = None,
    ) -> list[str]:
        """A list of codes, each normalised, then checked in full against ``pattern``.

        ``check``, when given, is asked about each code that fits ``pattern`` and returns the
        words for a further problem (``reader.one_character_flag``) or ``None``.
        """
        out: list[str] = []
        cap = ListCap(self.violations, self.at(key))
        for path, item in self.items(key, self.limits.max_list_items, "max_list_items"):
            problem, text = text_problem(
                item, pattern, self.limits.max_id_chars, "max_id_chars", normalise, what
            )
            if problem is None and text is not None and check is not None:
                problem = check(text)
            if problem is not None:
                self.violations.append(FieldViolation(path, problem))
            elif text is not None:
                out.append(text)
            cap.trim()
        cap.close()
        return out

    def attributes(self, key: str) -> dict[str, AttributeValue]:
        """A map of attribute name to plain value (or its AttributeValue form), size-checked."""
        value = self.raw(key, required=False)
        if value is UNSET:
            return {}
        if not isinstance(value, Mapping):
            self.fail(
                key,
                f"must be an object of string/number/boolean values, got {_kind_of(value)}",
            )
            return {}
        limits = self.limits
        over = too_many(
            len(value),
            "entries",
            limits.max_attributes,
            "max_attributes",
            "send only the attributes the ruleset reads",
        )
        if over is not None:
            self.fail(key, over)
            return {}
        out: dict[str, AttributeValue] = {}
        base = self.at(key)
        cap = ListCap(self.violations, base)
        for k, v in value.items():
            path = key_path(base, str(k))
            problem: str | None
            if not isinstance(k, str):
                problem = "attribute names must be strings"
            else:
                problem, _ = text_problem(k, ATTRIBUTE_NAME, limits.max_id_chars, "max_id_chars")
            plain: Any = None
            if problem is None:
                problem, plain = attribute_value(v, limits)
            if problem is None:
                out[k] = plain
            else:
                self.violations.append(FieldViolation(path, problem))
            cap.trim()
        cap.close()
        return out


_ATTRIBUTE_FORMS = '{"string_value": "..."}, {"number_value": 1.5} or {"bool_value": true}'


def attribute_value(value: object, limits: InputLimits) -> tuple[str | None, Any]:
    """``(problem, None)`` or ``(None, the plain value)`` of a plain or AttributeValue form."""
    if isinstance(value, Mapping):
        keys = list(value)
        kinds = {ATTRIBUTE_KINDS.get(k) if isinstance(k, str) else None for k in keys}
        if len(keys) != 1 or None in kinds:
            got = "an empty object" if not keys else f"an object with {len(keys)} field(s)"
            return (
                f"must be a string, number or boolean, or one of {_ATTRIBUTE_FORMS}; got {got}",
                None,
            )
        kind = kinds.pop()
        inner = value[keys[0]]
        expected = {
            "string_value": "a string",
            "number_value": "a number",
            "bool_value": "true or false",
        }
        ok = {
            "string_value": isinstance(inner, str),
            "number_value": isinstance(inner, int | float) and not isinstance(inner, bool),
            "bool_value": isinstance(inner, bool),
        }
        if not ok[kind or ""]:
            tip = quoted_number_tip(inner) if kind == "number_value" else ""
            return (f"{keys[0]} must be {expected[kind or '']}, got {_kind_of(inner, tip)}", None)
        value = inner
    return _attribute_value_problem(value, limits), value


def _attribute_value_problem(value: object, limits: InputLimits) -> str | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        # Unquoted: an attribute may be masked PHI (R31b F1), and the reply goes to proxies'
        # and clients' logs; the field path says which one.
        problem = too_long(value, limits.max_text_chars, "max_text_chars", quote=False)
        if problem is not None:
            return problem
        if _has_lone_surrogate(value):
            return "must be valid Unicode text (it holds an unpaired surrogate)"
        if "\x00" in value:
            # A TEXT column keeps it JSON-escaped, but PostgreSQL's jsonb cannot hold U+0000:
            # an auditor's `content::jsonb` query failed on the row (review R34c, noticed).
            return "must not hold a NUL character (U+0000), which no text means; remove it"
        return None
    if isinstance(value, int | float):
        return None if finite(value) else _number_fault(value)
    return f"must be a string, finite number or boolean, got {describe_type(value)}"


_WITHHELD = "; its value is not quoted (attribute values may be patient data)"
"""Why a refused attribute value is described, never shown (review R31b F1 for text; the
same holds for a number or a boolean: a masked member_id, a masked diagnosis flag)."""


def _kind_of(value: object, tip: str = "") -> str:
    """``describe_type`` for an attribute: a scalar's kind (then ``tip``), never its value."""
    if isinstance(value, bool):
        kind = "a boolean"
    elif isinstance(value, int | float):
        kind = "a number"
    elif isinstance(value, str):
        kind = "a string"
    else:
        return describe_type(value)
    return f"{kind}{tip}{_WITHHELD}"


def _number_fault(value: float) -> str:
    """Why an attribute number outside ±MAX_ABS_NUMBER is refused, without its digits."""
    within = f"must be a number within ±{MAX_ABS_NUMBER:g} (or a string or boolean)"
    if isinstance(value, float) and math.isnan(value):  # an int may be too large for a float
        return f"{within}, got NaN"
    if isinstance(value, float) and math.isinf(value):
        return f"{within}, got {'-' if value < 0 else ''}infinity"
    return f"{within}, got one beyond that{_WITHHELD}: send an identifier as a string"


def parse_timestamp(value: object) -> datetime | None:
    """Parse an RFC 3339 timestamp (or take an aware datetime); returns it in UTC or ``None``.

    Text must have the one shape ``reader.ISO_INSTANT`` (``INSTANT_SHAPE``); digits past the
    sixth of a fraction are cut. ``None`` also when the instant cannot be expressed in UTC
    (year 1 or 9999 with an offset).
    """
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, str) and len(value) <= 64 and ISO_INSTANT.fullmatch(value) is not None:
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            return None
    else:
        return None
    if parsed.tzinfo is None:
        return None
    try:
        return parsed.astimezone(UTC)
    except OverflowError:
        return None


def instant_fault(value: object, example: str = "2026-11-21T09:30:00Z") -> str:
    """Why ``parse_timestamp`` refused ``value``: its range, or else its shape.

    One wording for every reader of instants (requests, ``--now``/``--since``/``--until``,
    golden files): a well-formed instant UTC cannot express was told its shape was wrong.
    """
    if beyond_utc(value):
        return INSTANT_OUT_OF_RANGE
    return f"must be {INSTANT_SHAPE}, e.g. {example}"


def beyond_utc(value: object) -> bool:
    """Whether ``value`` is a well-formed aware instant that UTC cannot express.

    That is an aware ``datetime``, or text of the one instant shape, in year 1 or 9999 whose
    offset takes it to year 0 or 10000 in UTC: ``parse_timestamp`` refuses it for its range,
    not its shape, and readers say so (``INSTANT_OUT_OF_RANGE``).
    """
    if isinstance(value, str):
        if len(value) > 64 or ISO_INSTANT.fullmatch(value) is None:
            return False
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            return False
    if not isinstance(value, datetime) or value.tzinfo is None:
        return False
    try:
        value.astimezone(UTC)
    except OverflowError:
        return True
    return False
