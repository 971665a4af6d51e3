"""The strict reader core shared by request parsing and the ruleset schema: one wording per mistake.

Two readers check operator and caller input: ``domain/codec.py`` (requests, located by a field
path such as ``case.required_skills[0].name``) and ``rules/schema.py`` (rulesets, located by
``file:line`` with the place named in the message). Each keeps its own location; what it says
about a value comes from here, so the same mistake reads the same in both::

    case.required_skills[0].min_level: must be an integer, got string 'one'
    r.yaml:16:45: error schema.type [rule r1]: skill min_level must be an integer, got string 'one'

Every function here returns the words that follow the subject (``None`` when the value is
fine); none raises or records anything. ``TextPattern`` is the one table of identifier shapes:
each reader bounds lengths itself (a request by ``InputLimits.max_id_chars``, a ruleset by
``RULESET_MAX_CHARS``) with the same words, ``too_long``.

Wording rules (docs/rulesets.md, "Errors"): names of fields and keys in backticks, values in
quotes (``quote_value``: a short prefix only, so a hostile value never fills a message); what was
expected, what was got, and what to write instead when it is not obvious.
"""

from __future__ import annotations

import difflib
import math
import re
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date

from caseroute.domain.limits import QUOTE_CHARS, limit_flag, quote_value

MAX_ABS_NUMBER = 1e15  # beyond this, doubles lose integer precision; no routing datum needs it
RULESET_MAX_CHARS = 64
"""Characters of a name, code, flag or version written in a ruleset."""

_NEAR_MISS_CHARS = 64  # longer text is never a typo of a short name: no difflib work on it

# Control, format (zero-width, bidi overrides), surrogate and line/paragraph separator
# characters: never valid in an identifier (they forge log lines or hide text on screens).
_UNSAFE_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})


@dataclass(frozen=True, slots=True)
class TextPattern:
    """The shape of one kind of identifier, with the words that say what it must look like.

    Attributes:
        regex: The shape; invariant: always applied with ``fullmatch`` (``$`` would also
            match before a final newline). Lengths are not part of it (see ``bounded``).
        noun: What such a value is called in an error (``'x y' is not a valid <noun>``).
        hint: What to write instead, in parentheses after the noun.
    """

    regex: re.Pattern[str]
    noun: str
    hint: str
    fullmatch: Callable[[str], re.Match[str] | None] = field(init=False, repr=False, compare=False)
    """``regex.fullmatch``, bound once: parsing calls it for every identifier of every agent."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "fullmatch", self.regex.fullmatch)

    def bounded(self, max_chars: int) -> re.Pattern[str]:
        """The shape with at most ``max_chars`` characters, as one regex (for ``fullmatch``).

        Args:
            max_chars: The longest value allowed.

        Returns:
            A compiled regex accepting exactly the values of this shape up to that length.
        """
        return re.compile(rf"(?=[\s\S]{{1,{max_chars}}}\Z)(?:{self.regex.pattern})")


IDENTIFIER = TextPattern(
    re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:/-]*"),
    "identifier",
    " (letters, digits and _ . : / -, starting with a letter or digit)",
)
"""Agent ids, skill, team, territory, region, licence type and SLA clock names, compacts."""

FLAG_SHAPE = "lower-case letters, digits and _ . : /, starting with a letter or digit"
"""What a flag is, in words (``FLAG``'s hint and the compiler's flag-test errors)."""
FLAG = TextPattern(
    re.compile(r"[a-z0-9][a-z0-9_.:/]*"),  # no "-": a case's flags have it folded to "_"
    "flag",
    f" (a flag is {FLAG_SHAPE}; a case's flags are trimmed, lower-cased and have - folded to _ "
    "first)",
)


MIN_FLAG_CHARS = 2
"""No flag is shorter: the one definition of this rule (``FLAG`` gives the shape). A request
flag shorter than this is refused (``one_character_flag``; the wire's fast paths doubt it), and
a ruleset naming one is an error (``short_flag``), since no parsed case can carry it."""


def short_flag(flag: str) -> str | None:
    """Why a flag that fits ``FLAG`` is still no flag: it is one character.

    The words every reader shares; each adds what the mistake means where it was made (a
    request: a string taken one letter at a time; a ruleset: a test that never holds).

    Args:
        flag: A flag, normalised and matching ``FLAG``.

    Returns:
        The words for the problem, or ``None`` for a flag of ``MIN_FLAG_CHARS`` or more.
    """
    if len(flag) >= MIN_FLAG_CHARS:
        return None
    return f"{quote_value(flag)} is a one-character flag; a flag is a word such as safeguarding"


def one_character_flag(flag: str) -> str | None:
    """Why a request flag that fits ``FLAG`` is still refused: it is one character.

    No flag is a letter, and ``frozenset("safeguarding")`` or JSON ``"flags": ["s", "a", ...]``
    (a string where a list goes, taken one character at a time) would otherwise be a case
    without its safeguarding flag, routed as any other: hard constraints fail safe.

    Args:
        flag: A case's flag, normalised and matching ``FLAG``.

    Returns:
        The words for the problem, or ``None`` for a flag of two characters or more.
    """
    problem = short_flag(flag)
    if problem is None:
        return None
    return (
        f"{problem}, "
        'so a string was probably passed where a list of flags goes: send ["safeguarding"] '
        '(in Python frozenset({"safeguarding"}), not frozenset("safeguarding"))'
    )


JURISDICTION = TextPattern(
    re.compile(r"[A-Z]{2}(?:-[A-Z0-9]{1,3})*"),
    "jurisdiction",
    " (expected an ISO 3166 code such as US-TX or GB-ENG)",
)
LANGUAGE = TextPattern(
    re.compile(r"[a-z]{2,3}(?:-[a-z0-9]{2,8})*"),
    "language tag",
    " (expected a BCP 47 tag such as en or es-MX)",
)
ATTRIBUTE_NAME = TextPattern(
    re.compile(r"[a-z_][a-z0-9_]*"),
    "attribute name",
    " (lower_snake_case: a-z, 0-9 and _, not starting with a digit)",
)
"""Case and agent attribute names, and ruleset param names (noun ``param name``)."""

NAME = TextPattern(
    re.compile(r"[a-z0-9][a-z0-9_-]*"),
    "name",
    " (lower-case letters, digits, - and _, starting with a letter or digit)",
)
"""Ruleset, rule, queue and reason names."""

VERSION = TextPattern(
    re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]*"),
    "version",
    " (letters, digits and . _ + -, starting with a letter or digit, e.g. 2026.11.1)",
)

MISSING = "is required"
"""A required field or key that is absent."""


def describe_value(value: object) -> str:
    """A short rendering of any value for a message (strings quoted, at most a prefix).

    Args:
        value: The value as read (JSON or YAML scalar, list or mapping).

    Returns:
        ``'abc'``, ``5``, ``true``, ``null``, ``a list of 3 item(s)``, ``an object``...
    """
    if value is None:
        return "null"
    if isinstance(value, str):
        return quote_value(value)
    if isinstance(value, bool):  # as JSON and YAML spell it, not Python's True
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, int):
        return repr(value) if abs(value) < 10**30 else "an integer too large to show"
    if isinstance(value, list | tuple):
        return f"a list of {len(value)} item(s)"
    if isinstance(value, Mapping):
        return "an object"
    return type(value).__name__


def describe_type(value: object) -> str:
    """What kind of value was sent, for "must be X, got <this>".

    Args:
        value: The value as read.

    Returns:
        ``null (an empty value)``, ``boolean true``, ``number 5``, ``string 'x'``, ``a list``,
        ``an object``.
    """
    if value is None:  # YAML's `key:` with nothing after it, or JSON's null
        return "null (an empty value)"
    if isinstance(value, bool):
        return f"boolean {describe_value(value)}"
    if isinstance(value, int | float):
        return f"number {describe_value(value)}"
    if isinstance(value, str):
        return f"string {quote_value(value)}"
    if isinstance(value, list | tuple):
        return "a list"
    if isinstance(value, Mapping):
        return "an object"
    return type(value).__name__


def not_object(value: object) -> str:
    """The words for a value that should be an object (a JSON object, a YAML mapping)."""
    return f"must be an object (key: value pairs), got {describe_type(value)}"


def not_list(value: object) -> str:
    """The words for a value that should be a list."""
    return f"must be a list, got {describe_type(value)}"


def not_boolean(value: object) -> str:
    """The words for a value that should be true or false."""
    return f"must be true or false, got {describe_type(value)}"


def not_string(value: object) -> str:
    """The words for a value that should be a non-empty string."""
    return f"must be a non-empty string, got {describe_type(value)}"


def not_date(value: object) -> str:
    """The words for a value that should be a date."""
    return f"must be a date YYYY-MM-DD, got {describe_value(value)}"


_SHA256_HEX = re.compile(r"[0-9a-f]{64}")


def roster_sha256_problem(sha: str) -> str | None:
    """What is wrong with a ``roster_sha256`` that is not 64 lowercase hex characters (None: ok).

    One home for gRPC's converter and the JSON reader: a request file's hash was quoted in
    full whatever its length (review R34b), and a 64-character one was told "got 64
    characters", the length asked for (review R34a F3).
    """
    if _SHA256_HEX.fullmatch(sha):
        return None
    if len(sha) != 64:
        fault = f"got {len(sha)} characters"
    elif _SHA256_HEX.fullmatch(sha.lower()):
        fault = "it holds upper-case letters (send it in lower case)"
    else:
        fault = "it holds characters that are not hex digits (0-9, a-f)"
    return (
        "must be 64 lowercase hex characters (a roster's roster_sha256, as the decision log "
        f"records it); {fault}"
    )


def near_miss(text: object, choices: Sequence[str]) -> str | None:
    """The choice ``text`` most likely misspells, if any (never for long text)."""
    if not isinstance(text, str) or len(text) > _NEAR_MISS_CHARS:
        return None
    close = difflib.get_close_matches(text, choices, n=1)
    if close:
        return close[0]
    # Two letters swapped: difflib rates `di` against `id` 0.5 (review R34b F2).
    return next((c for c in choices if _one_swap(text, c)), None)


def _one_swap(text: str, choice: str) -> bool:
    """Whether ``text`` is ``choice`` with two neighbouring characters swapped."""
    if len(text) != len(choice) or text == choice:
        return False
    differ = [i for i, (a, b) in enumerate(zip(text, choice, strict=True)) if a != b]
    return (
        len(differ) == 2
        and differ[1] == differ[0] + 1
        and text[differ[0]] == choice[differ[1]]
        and text[differ[1]] == choice[differ[0]]
    )


def unknown_key_tip(key: object, allowed: Sequence[str]) -> str:
    """What to write instead of an unknown key: `` (did you mean `x`?)`` or the allowed keys.

    Args:
        key: The key as written.
        allowed: The keys that place allows.

    Returns:
        The parenthesised tip, with a leading space.
    """
    hint = near_miss(str(key), allowed)
    if hint is not None:
        return f" (did you mean `{hint}`?)"
    return f" (allowed: {', '.join(allowed)})"


def not_one_of(value: object, choices: Sequence[str], hint: str | None) -> str:
    """The words for a value outside a fixed set (an enum): the set, the value, a near miss.

    Args:
        value: The value as read.
        choices: Every accepted spelling to list.
        hint: The choice it most likely misspells (``near_miss``), or ``None``.

    Returns:
        ``must be one of a, b; got 'c'`` and `` (did you mean 'a'?)`` when there is a hint.
    """
    tip = f" (did you mean {hint!r}?)" if hint is not None else ""
    return f"must be one of {', '.join(choices)}; got {describe_value(value)}{tip}"


def too_long(
    value: str, limit: int, setting: str | None = None, *, quote: bool = True
) -> str | None:
    """The words for text longer than ``limit`` characters, or ``None``.

    Args:
        value: The text.
        limit: The most characters allowed.
        setting: The ``InputLimits`` field that sets the limit, when a server setting does.
        quote: Whether to quote the text's start (not for a value that may be patient data).

    Returns:
        ``has N characters; the limit is L[ (configurable: --flag)]; it starts '...'…``, or
        ``...; its text is not quoted (attribute values may be patient data)``.
    """
    if len(value) <= limit:
        return None
    configurable = f" (configurable: {limit_flag(setting)})" if setting else ""
    told = f"has {len(value)} characters; the limit is {limit}{configurable}"
    if not quote:
        return f"{told}; its text is not quoted (attribute values may be patient data)"
    return f"{told}; it starts {value[:QUOTE_CHARS]!r}…"


def quoted_number_tip(value: object) -> str:
    """`` (write the number without quotes)`` for a number written as a string, else ``""``.

    Protobuf's JSON mapping lets a number be a string ("5") and YAML quotes make one; neither
    reader takes it.
    """
    if not isinstance(value, str) or len(value) > _NEAR_MISS_CHARS:
        return ""
    try:
        float(value)
    except ValueError:
        return ""
    return " (write the number without quotes)"


def finite(value: float) -> bool:
    """Within ±MAX_ABS_NUMBER (ints compared exactly: a huge int must not overflow a float)."""
    if isinstance(value, int):
        return -MAX_ABS_NUMBER <= value <= MAX_ABS_NUMBER
    return math.isfinite(value) and abs(value) <= MAX_ABS_NUMBER


def number_problem(
    value: object,
    *,
    integer: bool = False,
    low: float | None = None,
    high: float | None = None,
) -> str | None:
    """The words for a value that is not a (finite, in range) number, or ``None``.

    Args:
        value: The value as read.
        integer: Whether only whole numbers are accepted.
        low: The smallest value allowed, if any.
        high: The largest value allowed, if any (given with ``low``).

    Returns:
        ``must be an integer, got ...``, ``must be a number, got ...``, ``must be a finite
        number within ±1e+15, got ...`` or ``must be between L and H, got V``.
    """
    ok_type = isinstance(value, int) if integer else isinstance(value, int | float)
    if isinstance(value, bool) or not ok_type:
        kind = "an integer" if integer else "a number"
        return f"must be {kind}, got {describe_type(value)}{quoted_number_tip(value)}"
    assert isinstance(value, int | float)  # noqa: S101 - ok_type said so
    if not finite(value):
        return f"must be a finite number within ±{MAX_ABS_NUMBER:g}, got {describe_value(value)}"
    if (low is not None and value < low) or (high is not None and value > high):
        return f"must be between {low:g} and {high:g}, got {value!r}"
    return None


def unsafe_text(value: str) -> bool:
    """Whether ``value`` holds a control or invisible formatting character."""
    if value.isascii():  # in C: ASCII's only such characters are its controls (not printable)
        return not value.isprintable()
    return any(unicodedata.category(ch) in _UNSAFE_CATEGORIES for ch in value)


def request_id_problem(request_id: str, max_chars: int) -> str | None:
    """What is wrong with a request_id (None: nothing).

    An idempotency key: 1 to ``max_chars`` (the server's ``max_id_chars``) characters, not
    blank, and no control or invisible formatting characters, as ``case_id``. A blank id (an
    empty template rendered as spaces) would make unrelated requests share one key; a NUL
    cannot be stored by PostgreSQL, whose refusal of the record read as an outage (review
    R32c F2, F3).
    """
    if not 0 < len(request_id) <= max_chars:
        return (
            f"must be 1-{max_chars} characters (an idempotency key); got "
            f"{len(request_id)} characters (server setting {limit_flag('max_id_chars')})"
        )
    if not request_id.strip():
        return (
            "must not be blank (an idempotency key: one per logical request, e.g. a UUID); "
            f"got {quote_value(request_id)}"
        )
    if unsafe_text(request_id):
        return (
            "must not contain control or invisible formatting characters (an idempotency "
            f"key, e.g. a UUID); got {quote_value(request_id)}"
        )
    return None


def text_problem(
    value: object,
    pattern: TextPattern | None,
    max_chars: int,
    setting: str | None = None,
    normalise: Callable[[str], str] | None = None,
    noun: str | None = None,
) -> tuple[str | None, str | None]:
    """Check an identifier or code: ``(words, None)`` or ``(None, the normalised text)``.

    At most ``max_chars`` (checked before anything else looks at it, and again after
    normalising, which may lengthen it); then the whole text must match ``pattern``, or,
    for free identifiers without one (case_id, snapshot_id), hold no control or invisible
    formatting characters.

    Args:
        value: The value as read.
        pattern: Its shape, or ``None`` for a free identifier.
        max_chars: The most characters allowed.
        setting: The ``InputLimits`` field that sets ``max_chars``, if a server setting does.
        normalise: Applied before the pattern is checked (a request's flags, jurisdictions).
        noun: What to call the value instead of ``pattern.noun`` (``agent id``).

    Returns:
        The words for the first problem found, or the text to use.
    """
    # Invariant: the valid path makes no call it can avoid (it runs for every identifier of
    # every agent of a cold roster); ``too_long`` words a problem only once there is one.
    if not isinstance(value, str) or not value.strip():
        return not_string(value), None
    if len(value) > max_chars:
        return too_long(value, max_chars, setting), None
    if normalise is not None:
        value = normalise(value)
        if len(value) > max_chars:
            return too_long(value, max_chars, setting), None
    if pattern is None:
        if unsafe_text(value):
            unsafe = "must not contain control or invisible formatting characters; got "
            return unsafe + quote_value(value), None
        if value[0].isspace() or value[-1].isspace():
            # "CASE-1 " and "CASE-1" would be two cases to the batch check and one to the
            # caller (review R36a L1).
            return (
                f"must not start or end with whitespace; got {quote_value(value)}: send the "
                "identifier without it"
            ), None
    elif pattern.fullmatch(value) is None:
        return f"{quote_value(value)} is not a valid {noun or pattern.noun}{pattern.hint}", None
    return None, value


ISO_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
"""The one shape of a date: Python 3.11's ``date.fromisoformat`` also reads ``20270630`` and
week dates (``2027-W26-3``), which the contract does not name (review R31a F6)."""


ISO_INSTANT = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]+)?(?:Z|[+-][0-9]{2}:[0-9]{2})"
)
"""The one shape of an instant on the JSON path (RFC 3339, as protobuf's JSON parser reads it):
Python 3.11's ``datetime.fromisoformat`` also reads ISO 8601 basic format (``20261121T090000Z``),
week dates, a space or any other character for ``T``, hour-only or ``+0100`` offsets, and
reduced precision (``T09:00Z``), which the contract does not name (review R31d 8)."""

INSTANT_SHAPE = "an RFC 3339 instant YYYY-MM-DDTHH:MM:SS[.fraction] ending in Z or +HH:MM / -HH:MM"
"""What every reader of an instant says it wanted (JSON fields, ``--now``, golden files)."""

INSTANT_RANGE = "from 0001-01-01T00:00:00Z to 9999-12-31T23:59:59.999999999Z"
"""The instants a protobuf Timestamp holds (and Python's ``datetime`` in UTC)."""

INSTANT_OUT_OF_RANGE = (
    f"must be {INSTANT_RANGE} once converted to UTC (the range of a protobuf Timestamp)"
)
"""What a reader says of a well-formed instant UTC cannot express (year 1 or 9999 with an
offset): not the shape, which was right (review R34a F5)."""


def read_day(value: object) -> date | None:
    """A date from ``YYYY-MM-DD`` text, else ``None`` (the YAML loader keeps dates as text)."""
    if isinstance(value, str) and ISO_DAY.fullmatch(value) is not None:
        try:
            return date.fromisoformat(value)
        except ValueError:
            return None
    return None
