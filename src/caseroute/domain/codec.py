"""JSON-shaped data -> domain values: strict parsing that names every bad field path.

Parsing collects every violation before raising one ``RequestError``, so a caller fixes a
request in one round trip. Sizes are checked against ``InputLimits`` before any per-item work,
violations per list are capped, and a value is never quoted back beyond a short prefix, so a
hostile request costs little and yields a short error. The canonical forms and digests of what
is parsed live in ``caseroute.domain.fingerprint``; decisions as JSON data in
``decision_codec``; stored case data in the dialect in ``dialect``.

Normalisation on input (documented in docs/rulesets.md, "Request input"): flags are NFKC
normalised, trimmed and lower-cased, then must be a flag token, and duplicates collapse;
jurisdictions are trimmed and upper-cased; language tags trimmed, lower-cased, ``_`` -> ``-``.
Every other code is taken exactly as sent. Every pattern must match the *whole* string
(``fullmatch``: ``$`` would also match before a final newline).

The JSON dialect (docs/json.md): input is the protobuf JSON mapping of the ``caseroute.v1``
messages, plus today's short spellings. Field names are the proto names or their lowerCamelCase
JSON names (one field given under both is refused, never resolved); enums are read through
``caseroute.domain.enums`` (proto name, number or short value; ``*_UNSPECIFIED``/``0`` means
not set); an attribute value is a plain scalar or ``{"string_value": ...}`` (and the other two
kinds).
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import math
import re
import unicodedata
from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime
from enum import StrEnum
from typing import Any, TypeVar

from caseroute.domain.case import (
    AttributeValue,
    Case,
    Channel,
    ContinuityReason,
    Intent,
    PreferredAgent,
    RequiredSkill,
    SentimentReading,
    SlaClock,
    Tier,
    Urgency,
)
from caseroute.domain.enums import (
    ATTRIBUTE_KINDS,
    UNSET,
    ExplanationLevel,
    enum_member,
    wire_name,
    wire_names,
)
from caseroute.domain.errors import FieldViolation, RequestError
from caseroute.domain.fingerprint import roster_sha256
from caseroute.domain.limits import (
    DEFAULT_LIMITS,
    QUOTE_CHARS,
    VIOLATIONS_PER_LIST,
    InputLimits,
    key_path,
    limit_flag,
    quote_value,
)
from caseroute.domain.roster import Agent, AgentStatus, Capacity, Licence, Role, Roster

E = TypeVar("E", bound=StrEnum)
T = TypeVar("T")

# Invariant: every pattern is used with ``fullmatch`` (never ``match``/``search``).
JURISDICTION_RE = re.compile(r"[A-Z]{2}(?:-[A-Z0-9]{1,3})*")
CODE_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:/-]*")
FLAG_RE = re.compile(r"[a-z0-9][a-z0-9_.:/]*")  # no "-": normalise_flag folds it to "_"
LANGUAGE_RE = re.compile(r"[a-z]{2,3}(?:-[a-z0-9]{2,8})*")
ATTRIBUTE_KEY_RE = re.compile(r"[a-z_][a-z0-9_]*")
MAX_ABS_NUMBER = 1e15  # beyond this, doubles lose integer precision; no routing datum needs it
SAFEGUARDING_FLAG = "safeguarding"
"""The conventional safeguarding flag; an invalid case carrying it (or the flag a ruleset in
use configures, ``parse_case(safeguarding_flags=...)``) gets a plain notice first."""

SAFEGUARDING_NOTICE = (
    "this case carries the safeguarding flag and was NOT routed: fix the fields below and "
    "resend, or hand it to the safeguarding team"
)
# Control, format (zero-width, bidi overrides), surrogate and line/paragraph separator
# characters: never valid in an identifier (they forge log lines or hide text on screens).
_UNSAFE_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})

"""The proto enum of each input enum is ``prefix + VALUE`` (``phone`` is ``CHANNEL_PHONE``).

Invariant: members are declared in proto number order from 1 (``*_UNSPECIFIED`` is 0), so a
member's number is its position + 1; ``tests/wire/test_json_tables.py`` checks both against
the generated descriptors."""


def lower_camel(name: str) -> str:
    """A proto field's JSON name: ``sla_clocks`` -> ``slaClocks`` (what protoc derives)."""
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


@functools.cache
def _camel_aliases(allowed: tuple[str, ...]) -> dict[str, str]:
    return {lower_camel(n): n for n in allowed if lower_camel(n) != n}


def normalise_flag(text: str) -> str:
    """The one spelling of a flag: NFKC, trimmed, case-folded, ``-`` folded to ``_``.

    NFKC folds compatibility forms (fullwidth letters, the long s) onto ASCII first, so no
    spelling of a hard-constraint flag can slip past (``Consent-Missing`` is
    ``consent_missing``); what remains must match ``FLAG_RE``.

    Args:
        text: The flag as sent.

    Returns:
        The normalised flag (not yet validated).
    """
    return unicodedata.normalize("NFKC", text).casefold().strip().replace("-", "_")


def _unsafe_text(value: str) -> bool:
    return any(unicodedata.category(ch) in _UNSAFE_CATEGORIES for ch in value)


def _has_lone_surrogate(value: str) -> bool:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _too_long(value: str, limit: int, name: str) -> str | None:
    if len(value) <= limit:
        return None
    return (
        f"has {len(value)} characters; the limit is {limit} (configurable: "
        f"{limit_flag(name)}); it starts {value[:QUOTE_CHARS]!r}…"
    )


def _too_many(count: int, noun: str, limit: int, name: str, advice: str = "") -> str | None:
    if count <= limit:
        return None
    tip = f": {advice}" if advice else ""
    return f"has {count} {noun}; the limit is {limit} (configurable: {limit_flag(name)}){tip}"


class _ListCap:
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


class _Reader:
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
            self.fail("", f"must be an object, got {_describe(data)}")
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
            hint = difflib.get_close_matches(text, allowed, n=1) if len(text) <= 64 else []
            tip = f" (did you mean `{hint[0]}`?)" if hint else f"; allowed: {', '.join(allowed)}"
            # At a request's top level there is no parent: `extra`, or `['odd key']`.
            where = key_path(path, text) if path else key_path("", text).removeprefix(".")
            self.violations.append(FieldViolation(where, f"unknown field{tip}"))
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
        if not self.path:  # a request's top level: `roster`, not `.roster`
            return key
        return f"{self.path}.{key}" if key else self.path

    def fail(self, key: str, message: str) -> None:
        self.violations.append(FieldViolation(self.at(key), message))

    def raw(self, key: str, *, required: bool) -> Any:
        value = self.data.get(key, UNSET)
        if value is None:
            value = UNSET
        if value is UNSET and required:
            self.fail(key, "is required")
        return value

    def string(
        self,
        key: str,
        *,
        required: bool = True,
        pattern: re.Pattern[str] | None = None,
        hint: str = "",
        normalise: Callable[[str], str] | None = None,
    ) -> str | None:
        """An identifier or code (see ``_code``); ``None`` (and a violation) when invalid."""
        value = self.raw(key, required=required)
        if value is UNSET:
            return None
        problem, text = _code(value, self.limits, pattern, hint, normalise, "value")
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
        ok_type = isinstance(value, int) if integer else isinstance(value, int | float)
        if isinstance(value, bool) or not ok_type:
            kind = "an integer" if integer else "a number"
            self.fail(key, f"must be {kind}, got {_json_type(value)}{_quoted_number_tip(value)}")
            return None
        if not _finite(value):
            self.fail(
                key, f"must be a finite number within ±{MAX_ABS_NUMBER:g}, got {_describe(value)}"
            )
            return None
        if (low is not None and value < low) or (high is not None and value > high):
            self.fail(key, f"must be between {low:g} and {high:g}, got {value!r}")
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
        value = self.number(
            key, required=required, low=low, high=high, integer=True, default=default
        )
        return None if value is None else int(value)

    def boolean(self, key: str, *, default: bool) -> bool:
        value = self.raw(key, required=False)
        if value is UNSET:
            return default
        if not isinstance(value, bool):
            self.fail(key, f"must be true or false, got {_json_type(value)}")
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
                self.fail(key, f"is required ({_describe(value)} means not set)")
            return None
        if member is None:
            names = wire_names(kind)
            hint: list[str] = []
            if isinstance(value, str) and len(value) <= 64:
                # A near miss of the short value suggests the proto name all the same.
                shorts = {m.value: wire_name(m) for m in kind}
                near = difflib.get_close_matches(value, names, n=1)
                near_short = difflib.get_close_matches(value.lower(), list(shorts), n=1)
                hint = near or [shorts[s] for s in near_short]
            tip = f" (did you mean {hint[0]!r}?)" if hint else ""
            self.fail(key, f"must be one of {', '.join(names)}; got {_describe(value)}{tip}")
            return None
        assert isinstance(member, kind)  # noqa: S101 - the other outcomes returned above
        return member

    def timestamp(self, key: str, *, required: bool = True) -> datetime | None:
        value = self.raw(key, required=required)
        if value is UNSET:
            return None
        parsed = parse_timestamp(value)
        if parsed is None:
            self.fail(
                key,
                "must be an ISO-8601 timestamp with a UTC offset, e.g. "
                f"2026-11-21T09:30:00Z; got {_describe(value)}",
            )
        return parsed

    def day(self, key: str) -> date | None:
        value = self.raw(key, required=True)
        if value is UNSET:
            return None
        if isinstance(value, str) and len(value) <= 64:
            try:
                return date.fromisoformat(value)
            except ValueError:
                pass
        self.fail(key, f"must be a date YYYY-MM-DD, got {_describe(value)}")
        return None

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
            self.fail(key, f"must be a list, got {_json_type(value)}")
            return []
        too_many = _too_many(len(value), noun, limit, name, advice)
        if too_many is not None:
            self.fail(key, too_many)
            return []
        base = self.at(key)
        return [(f"{base}[{i}]", item) for i, item in enumerate(value)]

    def strings(
        self,
        key: str,
        *,
        pattern: re.Pattern[str],
        hint: str = "",
        normalise: Callable[[str], str] | None = None,
        what: str = "value",
    ) -> list[str]:
        """A list of codes, each normalised, then checked in full against ``pattern``."""
        out: list[str] = []
        cap = _ListCap(self.violations, self.at(key))
        for path, item in self.items(key, self.limits.max_list_items, "max_list_items"):
            problem, text = _code(item, self.limits, pattern, hint, normalise, what)
            if problem is not None:
                self.violations.append(FieldViolation(path, problem))
            elif text is not None:
                out.append(text)
            cap.trim()
        cap.close()
        return out

    def attributes(self, key: str) -> dict[str, AttributeValue]:
        value = self.raw(key, required=False)
        if value is UNSET:
            return {}
        if not isinstance(value, Mapping):
            self.fail(
                key, f"must be an object of string/number/boolean values, got {_json_type(value)}"
            )
            return {}
        limits = self.limits
        too_many = _too_many(
            len(value),
            "entries",
            limits.max_attributes,
            "max_attributes",
            "send only the attributes the ruleset reads",
        )
        if too_many is not None:
            self.fail(key, too_many)
            return {}
        out: dict[str, AttributeValue] = {}
        base = self.at(key)
        cap = _ListCap(self.violations, base)
        for k, v in value.items():
            path = key_path(base, str(k))
            problem: str | None
            if not isinstance(k, str):
                problem = "attribute names must be strings"
            else:
                problem = _too_long(k, limits.max_id_chars, "max_id_chars")
                if problem is None and not ATTRIBUTE_KEY_RE.fullmatch(k):
                    problem = "attribute names must be lower_snake_case ([a-z_][a-z0-9_]*)"
            plain: Any = None
            if problem is None:
                problem, plain = _attribute_value(v, limits)
            if problem is None:
                out[k] = plain
            else:
                self.violations.append(FieldViolation(path, problem))
            cap.trim()
        cap.close()
        return out


_ATTRIBUTE_FORMS = '{"string_value": "..."}, {"number_value": 1.5} or {"bool_value": true}'


def _attribute_value(value: object, limits: InputLimits) -> tuple[str | None, Any]:
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
            tip = _quoted_number_tip(inner) if kind == "number_value" else ""
            return f"{keys[0]} must be {expected[kind or '']}, got {_json_type(inner)}{tip}", None
        value = inner
    return _attribute_value_problem(value, limits), value


def _quoted_number_tip(value: object) -> str:
    """Proto JSON lets a number be a string ("5"); this dialect does not: say so."""
    if not isinstance(value, str) or len(value) > 64:
        return ""
    try:
        float(value)
    except ValueError:
        return ""
    return " (write the number without quotes)"


def _attribute_value_problem(value: object, limits: InputLimits) -> str | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        too_long = _too_long(value, limits.max_text_chars, "max_text_chars")
        if too_long is not None:
            return too_long
        if _has_lone_surrogate(value):
            return "must be valid Unicode text (it holds an unpaired surrogate)"
        return None
    if isinstance(value, int | float) and _finite(value):
        return None
    return f"must be a string, finite number or boolean, got {_json_type(value)}"


def _code(
    value: object,
    limits: InputLimits,
    pattern: re.Pattern[str] | None,
    hint: str,
    normalise: Callable[[str], str] | None,
    what: str,
) -> tuple[str | None, str | None]:
    """Check an identifier or code: ``(problem, None)`` or ``(None, the normalised text)``.

    At most ``max_id_chars`` (checked before anything else looks at it, and again after
    normalising, which may lengthen it); then the whole text must match ``pattern``, or,
    for free identifiers without one (case_id, snapshot_id), hold no control or invisible
    formatting characters.
    """
    if not isinstance(value, str) or not value.strip():
        return f"must be a non-empty string, got {_json_type(value)}", None
    problem = _too_long(value, limits.max_id_chars, "max_id_chars")
    if problem is None and normalise is not None:
        value = normalise(value)
        problem = _too_long(value, limits.max_id_chars, "max_id_chars")
    if problem is not None:
        return problem, None
    if pattern is None:
        if _unsafe_text(value):
            unsafe = "must not contain control or invisible formatting characters; got "
            return unsafe + quote_value(value), None
    elif not pattern.fullmatch(value):
        return f"{quote_value(value)} is not a valid {what}{hint}", None
    return None, value


def _finite(value: float) -> bool:
    """Within ±MAX_ABS_NUMBER (ints compared exactly: a huge int must not overflow a float)."""
    if isinstance(value, int):
        return -MAX_ABS_NUMBER <= value <= MAX_ABS_NUMBER
    return math.isfinite(value) and abs(value) <= MAX_ABS_NUMBER


def _describe(value: object) -> str:
    """A short rendering of any value for a message (strings quoted, at most a prefix)."""
    if value is None or value is UNSET:
        return "null"
    if isinstance(value, str):
        return quote_value(value)
    if isinstance(value, bool | float):
        return repr(value)
    if isinstance(value, int):
        return repr(value) if abs(value) < 10**30 else "an integer too large to show"
    if isinstance(value, list | tuple):
        return f"a list of {len(value)} item(s)"
    if isinstance(value, Mapping):
        return "an object"
    return type(value).__name__


def _json_type(value: object) -> str:
    if value is None or value is UNSET:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return f"number {_describe(value)}"
    if isinstance(value, str):
        return f"string {quote_value(value)}"
    if isinstance(value, list | tuple):
        return "a list"
    if isinstance(value, Mapping):
        return "an object"
    return type(value).__name__


def parse_timestamp(value: object) -> datetime | None:
    """Parse an ISO-8601 timestamp (or take an aware datetime); returns it in UTC or ``None``.

    ``None`` also when the instant cannot be expressed in UTC (year 1 or 9999 with an offset).
    """
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, str) and len(value) <= 64:
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


def _jurisdiction(value: str) -> str:
    return value.strip().upper()


def _language(value: str) -> str:
    return value.strip().lower().replace("_", "-")


_CASE_FIELDS = (
    "case_id",
    "created_at",
    "channel",
    "intent",
    "urgency",
    "classification_confidence",
    "patient_location",
    "region",
    "tier",
    "required_skills",
    "preferred_language",
    "sentiment",
    "sla_clocks",
    "flags",
    "attributes",
    "waiting_since",
    "declined_agents",
    "preferred_agents",
)
_JURISDICTION_HINT = " (expected an ISO 3166 code such as US-TX or GB-ENG)"
_LANGUAGE_HINT = " (expected a BCP 47 tag such as en or es-MX)"
_CODE_HINT = " (letters, digits and _ . : / -, starting with a letter or digit)"
_FLAG_HINT = (
    " (after trimming, lower-casing and folding - to _, a flag is letters, digits and "
    "_ . : /, starting with a letter or digit)"
)


def parse_case(
    data: object,
    path: str = "case",
    *,
    limits: InputLimits = DEFAULT_LIMITS,
    safeguarding_flags: frozenset[str] = frozenset(),
) -> Case:
    """Build a ``Case`` from its JSON form.

    Args:
        data: The decoded JSON object.
        path: Field path prefix used in error messages.
        limits: Size limits to enforce (``DEFAULT_LIMITS`` unless the server sets others).
        safeguarding_flags: The safeguarding flags the rulesets in use configure (normalised,
            as ``constraints.safeguarding.flag`` is); ``safeguarding`` is always one.

    Returns:
        The case.

    Raises:
        RequestError: Listing every invalid field (capped per list). When the case carries
            a safeguarding flag, the first violation (at ``<path>.flags``) says plainly that
            the case was not routed.
    """
    violations: list[FieldViolation] = []
    r = _Reader(data, path, violations, _CASE_FIELDS, limits)
    case_id = r.string("case_id")
    created_at = r.timestamp("created_at")
    channel = r.enum("channel", Channel)
    intent = r.enum("intent", Intent)
    urgency = r.enum("urgency", Urgency)
    confidence = r.number("classification_confidence", required=False, low=0.0, high=1.0)
    location = r.string(
        "patient_location",
        required=False,
        pattern=JURISDICTION_RE,
        hint=_JURISDICTION_HINT,
        normalise=_jurisdiction,
    )
    region = r.string("region", required=False, pattern=CODE_RE, hint=_CODE_HINT)
    tier = r.enum("tier", Tier, required=False)
    language = r.string(
        "preferred_language",
        required=False,
        pattern=LANGUAGE_RE,
        hint=_LANGUAGE_HINT,
        normalise=_language,
    )

    skills: list[RequiredSkill] = []
    cap = _ListCap(violations, r.at("required_skills"))
    for item_path, item in r.items("required_skills", limits.max_list_items, "max_list_items"):
        s = _Reader(item, item_path, violations, ("name", "min_level"), limits)
        name = s.string("name", pattern=CODE_RE, hint=_CODE_HINT)
        level = s.integer("min_level", low=0, high=10, default=0)
        if name is not None and level is not None:
            skills.append(RequiredSkill(name, level))
        cap.trim()
    cap.close()

    readings: list[SentimentReading] = []
    cap = _ListCap(violations, r.at("sentiment"))
    for item_path, item in r.items(
        "sentiment",
        limits.max_sentiment_readings,
        "max_sentiment_readings",
        "send the most recent readings",
    ):
        s = _Reader(item, item_path, violations, ("score", "at"), limits)
        score = s.number("score", low=-1.0, high=1.0, default=0.0)
        at = s.timestamp("at")
        if score is not None and at is not None:
            readings.append(SentimentReading(score, at))
        cap.trim()
    cap.close()
    # Oldest first is the contract; a stable sort keeps equal timestamps in sent order.
    readings.sort(key=lambda reading: reading.at)

    clocks: list[SlaClock] = []
    seen_clocks: set[str] = set()
    cap = _ListCap(violations, r.at("sla_clocks"))
    for item_path, item in r.items("sla_clocks", limits.max_sla_clocks, "max_sla_clocks"):
        s = _Reader(item, item_path, violations, ("name", "started_at", "deadline"), limits)
        name = s.string("name", pattern=CODE_RE, hint=_CODE_HINT)
        started = s.timestamp("started_at")
        deadline = s.timestamp("deadline")
        if name is not None and name in seen_clocks:
            s.fail("name", f"duplicate SLA clock name {name!r}; each clock needs its own name")
        if name is not None and started is not None and deadline is not None:
            seen_clocks.add(name)
            clocks.append(SlaClock(name, started, deadline))
        cap.trim()
    cap.close()

    # Normalised so no spelling of a hard-constraint flag is missed; a set, so duplicates
    # collapse (the canonical form lists them sorted).
    flags = frozenset(
        r.strings("flags", pattern=FLAG_RE, hint=_FLAG_HINT, normalise=normalise_flag, what="flag")
    )
    attributes = r.attributes("attributes")
    waiting_since = r.timestamp("waiting_since", required=False)
    declined = frozenset(
        r.strings("declined_agents", pattern=CODE_RE, hint=_CODE_HINT, what="agent id")
    )
    preferred = _preferred_agents(r, violations, limits)
    if violations:
        # A ruleset may name its own safeguarding flag: the notice follows it.
        sent = flags | _flag_texts(r.shadowed.get("flags"))
        if SAFEGUARDING_FLAG in sent or not sent.isdisjoint(safeguarding_flags):
            violations.insert(0, FieldViolation(r.at("flags"), SAFEGUARDING_NOTICE))
        raise RequestError(violations)
    # Each is None only if a violation was recorded, and then we raised above.
    assert case_id is not None  # noqa: S101
    assert created_at is not None  # noqa: S101
    assert channel is not None  # noqa: S101
    assert intent is not None  # noqa: S101
    assert urgency is not None  # noqa: S101
    return Case(
        case_id=case_id,
        created_at=created_at,
        channel=channel,
        intent=intent,
        urgency=urgency,
        classification_confidence=1.0 if confidence is None else confidence,
        patient_location=location,
        region=region,
        tier=tier or Tier.STANDARD,
        required_skills=tuple(skills),
        preferred_language=language,
        sentiment=tuple(readings),
        sla_clocks=tuple(clocks),
        flags=flags,
        attributes=attributes,
        waiting_since=waiting_since,
        declined_agents=declined,
        preferred_agents=preferred,
    )


def _flag_texts(value: object) -> frozenset[str]:
    """Normalised strings of a list sent under a refused second spelling (for the notice)."""
    if not isinstance(value, list | tuple):
        return frozenset()
    return frozenset(normalise_flag(v) for v in value[:VIOLATIONS_PER_LIST] if isinstance(v, str))


def _preferred_agents(
    r: _Reader, violations: list[FieldViolation], limits: InputLimits
) -> tuple[PreferredAgent, ...]:
    out: list[PreferredAgent] = []
    seen: set[str] = set()
    cap = _ListCap(violations, r.at("preferred_agents"))
    for item_path, item in r.items("preferred_agents", limits.max_list_items, "max_list_items"):
        s = _Reader(item, item_path, violations, ("agent_id", "reason", "last_contact_at"), limits)
        agent_id = s.string("agent_id", pattern=CODE_RE, hint=_CODE_HINT)
        reason = s.enum("reason", ContinuityReason)
        last = s.timestamp("last_contact_at", required=False)
        if agent_id is not None and agent_id in seen:
            s.fail("agent_id", f"{agent_id!r} is listed twice; name each preferred agent once")
        elif agent_id is not None:
            seen.add(agent_id)
            if reason is not None:
                out.append(PreferredAgent(agent_id, reason, last))
        cap.trim()
    cap.close()
    return tuple(out)


_AGENT_FIELDS = (
    "agent_id",
    "role",
    "status",
    "licences",
    "territories",
    "skills",
    "languages",
    "capacity",
    "last_assigned_at",
    "teams",
    "seniority",
    "attributes",
)


def _parse_agent(
    data: object, path: str, violations: list[FieldViolation], limits: InputLimits
) -> Agent | None:
    before = len(violations)
    r = _Reader(data, path, violations, _AGENT_FIELDS, limits)
    agent_id = r.string("agent_id", pattern=CODE_RE, hint=_CODE_HINT)
    role = r.enum("role", Role, required=False)
    status = r.enum("status", AgentStatus)
    licences: list[Licence] = []
    cap = _ListCap(violations, r.at("licences"))
    for item_path, item in r.items("licences", limits.max_list_items, "max_list_items"):
        s = _Reader(
            item,
            item_path,
            violations,
            ("type", "jurisdiction", "expires_on", "multistate"),
            limits,
        )
        kind = s.string("type", pattern=CODE_RE, hint=_CODE_HINT)
        where = s.string(
            "jurisdiction",
            pattern=JURISDICTION_RE,
            hint=_JURISDICTION_HINT,
            normalise=_jurisdiction,
        )
        expires = s.day("expires_on")
        multistate = s.boolean("multistate", default=False)
        if kind is not None and where is not None and expires is not None:
            licences.append(Licence(kind, where, expires, multistate))
        cap.trim()
    cap.close()
    territories = r.strings("territories", pattern=CODE_RE, hint=_CODE_HINT)
    skills: dict[str, int] = {}
    cap = _ListCap(violations, r.at("skills"))
    for item_path, item in r.items("skills", limits.max_list_items, "max_list_items"):
        s = _Reader(item, item_path, violations, ("name", "level"), limits)
        name = s.string("name", pattern=CODE_RE, hint=_CODE_HINT)
        level = s.integer("level", low=0, high=10, default=0)
        if name is not None and name in skills:
            s.fail("name", f"skill {name!r} listed twice; give each skill once with its level")
        elif name is not None and level is not None:
            skills[name] = level
        cap.trim()
    cap.close()
    languages = r.strings(
        "languages", pattern=LANGUAGE_RE, hint=_LANGUAGE_HINT, normalise=_language
    )
    capacity: Capacity | None = None
    cap_raw = r.raw("capacity", required=True)
    if cap_raw is not UNSET:
        c = _Reader(cap_raw, r.at("capacity"), violations, ("max", "active"), limits)
        # Omitted numbers are 0, as protobuf's JSON mapping writes and reads them (and gRPC
        # sees them): `{"max": 3}` is three free places, `{}` none.
        cap_max = c.integer("max", low=0, high=10_000, default=0)
        active = c.integer("active", low=0, high=10_000, default=0)
        if cap_max is not None and active is not None:
            capacity = Capacity(cap_max, active)
    last = r.timestamp("last_assigned_at", required=False)
    teams = r.strings("teams", pattern=CODE_RE, hint=_CODE_HINT)
    seniority = r.integer("seniority", required=False, low=0, high=100)
    attributes = r.attributes("attributes")
    if len(violations) > before or agent_id is None or status is None or capacity is None:
        return None
    return Agent(
        agent_id=agent_id,
        role=role or Role.AGENT,
        status=status,
        capacity=capacity,
        licences=tuple(licences),
        territories=frozenset(territories),
        skills=skills,
        languages=frozenset(languages),
        last_assigned_at=last,
        teams=frozenset(teams),
        seniority=seniority or 0,
        attributes=attributes,
    )


def parse_roster(
    data: object, path: str = "roster", *, limits: InputLimits = DEFAULT_LIMITS
) -> Roster:
    """Build a ``Roster`` from its JSON form.

    Args:
        data: The decoded JSON object.
        path: Field path prefix used in error messages.
        limits: Size limits to enforce (``DEFAULT_LIMITS`` unless the server sets others).

    Returns:
        The roster.

    Raises:
        RequestError: Listing every invalid field (including duplicate agent ids), capped
            per list.
    """
    violations: list[FieldViolation] = []
    r = _Reader(data, path, violations, ("snapshot_id", "taken_at", "agents"), limits)
    snapshot_id = r.string("snapshot_id")
    taken_at = r.timestamp("taken_at")
    entries = r.items(
        "agents",
        limits.max_agents,
        "max_agents",
        "split the roster by team or territory",
        noun="agents",
    )
    agents: list[Agent] = []
    first_seen: dict[str, str] = {}
    cap = _ListCap(violations, r.at("agents"))
    for item_path, item in entries:
        agent = _parse_agent(item, item_path, violations, limits)
        if agent is not None and agent.agent_id in first_seen:
            violations.append(
                FieldViolation(
                    f"{item_path}.agent_id",
                    f"duplicate agent_id {agent.agent_id!r} (first at "
                    f"{first_seen[agent.agent_id]}); each agent must appear once",
                )
            )
        elif agent is not None:
            first_seen[agent.agent_id] = item_path
            agents.append(agent)
        cap.trim()
    cap.close()
    if violations:
        raise RequestError(violations)
    assert snapshot_id is not None  # noqa: S101 - else a violation was raised above
    assert taken_at is not None  # noqa: S101
    return Roster(snapshot_id=snapshot_id, taken_at=taken_at, agents=tuple(agents))


@dataclasses.dataclass(frozen=True, slots=True)
class RequestData:
    """A DecideRequest or DecideBatchRequest read from its JSON form (``parse_request``).

    Attributes:
        request_id: The idempotency key ("" when not given).
        ruleset_name: ``ruleset.name`` ("" : the default ruleset).
        ruleset_version: ``ruleset.version`` ("" : the active version).
        cases: The case (one) or the batch's cases, in order.
        batch: True for a DecideBatchRequest (``cases``), False for ``case``.
        roster: The roster snapshot.
        now: The decision instant, or None when not given.
        explanation_level: The level asked for, or None when not given.
    """

    request_id: str
    ruleset_name: str
    ruleset_version: str
    cases: tuple[Case, ...]
    batch: bool
    roster: Roster
    now: datetime | None
    explanation_level: ExplanationLevel | None


_REQUEST_FIELDS = (
    "request_id",
    "ruleset",
    "case",
    "cases",
    "roster",
    "now",
    "explanation_level",
    "roster_sha256",
)


def parse_request(
    data: object,
    *,
    limits: InputLimits = DEFAULT_LIMITS,
    safeguarding_flags: frozenset[str] = frozenset(),
) -> RequestData:
    """Read a DecideRequest (``case``) or DecideBatchRequest (``cases``) in the JSON dialect.

    Field paths are those gRPC reports: ``case.intent``, ``cases[2].urgency``, ``roster...``.

    Args:
        data: The decoded JSON object.
        limits: Size limits to enforce.
        safeguarding_flags: As for ``parse_case``.

    Returns:
        The request's parts.

    Raises:
        RequestError: Naming every invalid field of the cases, roster and envelope.
    """
    violations: list[FieldViolation] = []
    r = _Reader(data, "", violations, _REQUEST_FIELDS, limits)
    request_id = r.string("request_id", required=False) or ""
    name = version = ""
    selector = r.raw("ruleset", required=False)
    if selector is not UNSET:
        s = _Reader(selector, "ruleset", violations, ("name", "version"), limits)
        name = s.string("name", required=False) or ""
        version = s.string("version", required=False) or ""
    now = r.timestamp("now", required=False)
    level = r.enum("explanation_level", ExplanationLevel, required=False)
    batch = "cases" in r.data
    cases: list[Case] = []
    if batch and "case" in r.data:
        r.fail("case", "a request has `case` (Decide) or `cases` (DecideBatch), not both")
    elif batch:
        for item_path, item in r.items("cases", limits.max_batch_cases, "max_batch_cases"):
            try:
                cases.append(
                    parse_case(
                        item, item_path, limits=limits, safeguarding_flags=safeguarding_flags
                    )
                )
            except RequestError as exc:
                violations += exc.violations
        if not cases and not violations:
            r.fail("cases", "is empty: send at least one case")
    else:
        case_data = r.raw("case", required=True)
        if case_data is not UNSET:
            try:
                cases.append(
                    parse_case(
                        case_data, "case", limits=limits, safeguarding_flags=safeguarding_flags
                    )
                )
            except RequestError as exc:
                violations += exc.violations
    roster: Roster | None = None
    roster_data = r.raw("roster", required=False)
    # A request file carries its roster: a roster_sha256 alone names a roster only a server
    # may hold (DecideRequest.roster_sha256); beside the roster it must be the roster's own.
    sha = r.string("roster_sha256", required=False)
    if roster_data is UNSET:
        r.fail("roster", "is required (it may have no agents)")
    else:
        try:
            roster = parse_roster(roster_data, "roster", limits=limits)
        except RequestError as exc:
            violations += exc.violations
    if sha and roster is not None and sha != roster_sha256(roster):
        r.fail(
            "roster_sha256",
            f"is {sha}, but the roster has roster_sha256 {roster_sha256(roster)}; send the "
            "roster's own hash, or leave roster_sha256 out",
        )
    if violations or roster is None:
        raise RequestError(violations)
    return RequestData(request_id, name, version, tuple(cases), batch, roster, now, level)
