"""What a refused case that says safeguarding is told, however malformed the flag it was sent.

A case that carries the safeguarding flag and cannot be routed (a bad field, a refused JSON
document, a file that is no JSON at all) is never routed either way; the notice is what makes a
person look at it now. So the flag is looked for in every reading of the input, erring towards
calling a refused case flagged: the parsed flags, a malformed ``flags`` value, each copy of a
repeated key (``json_refusal_notices``), and the raw text of an unreadable file
(``unreadable_json_notices``). ``codec.parse_case`` puts ``SAFEGUARDING_NOTICE`` first among a
flagged case's violations; the wire's fast path and the code-built check do the same.
"""

from __future__ import annotations

import re
import unicodedata

from caseroute.domain.errors import FieldViolation
from caseroute.domain.flag_spelling import normalise_flag
from caseroute.domain.json_source import readings
from caseroute.domain.limits import DEFAULT_LIMITS, VIOLATIONS_PER_LIST, InputLimits

SAFEGUARDING_FLAG = "safeguarding"
"""The conventional safeguarding flag; an invalid case carrying it (or the flag a ruleset in
use configures, ``parse_case(safeguarding_flags=...)``) gets a plain notice first."""

SAFEGUARDING_NOTICE = (
    "this case carries the safeguarding flag and was NOT routed: fix the fields below and "
    "resend, or hand it to the safeguarding team"
)


SAFEGUARDING_UNREAD_NOTICE = (
    "this file could not be read as JSON and it mentions the safeguarding flag: its case was "
    "NOT routed; if it is a safeguarding concern, hand it to the safeguarding team now, then "
    "fix the file and resend"
)


_NOT_FLAG_CHARACTER = re.compile(r"[^a-z0-9_.:/]")


def flag_texts(value: object, limit: int = VIOLATIONS_PER_LIST) -> frozenset[str]:
    """The flags a refused ``flags`` value may have meant, normalised (for the notice only).

    However malformed: a bare string is one flag (``"flags": "safeguarding"``), an object is
    its keys (flags sent as a map, ``{"safeguarding": true}``), a list inside the list is read
    as more flags (``[["safeguarding"]]``), characters no flag holds are dropped (a zero-width
    space or soft hyphen inside ``safeguarding``), and a list of single characters is also
    read joined up (a string taken one letter at a time).
    The notice errs towards calling a refused case flagged, never away: nothing is routed
    either way, and the notice is what makes a person look at it.

    Args:
        value: The ``flags`` value as sent (or sent under a refused second spelling).
        limit: How many items of a list to read.

    Returns:
        The normalised texts.
    """
    if isinstance(value, str):
        value = [value]
    elif isinstance(value, dict):
        value = list(value)  # a map of flags: its keys name them, whatever the values say
    if not isinstance(value, list | tuple):
        return frozenset()
    texts = [v for v in value[:limit] if isinstance(v, str)]
    texts += [  # one list level down: a list of flags wrapped in another
        v
        for item in value[:limit]
        if isinstance(item, list | tuple)
        for v in item[:limit]
        if isinstance(v, str)
    ]
    if len(texts) > 1 and all(len(t) == 1 for t in texts):
        texts.append("".join(texts))
    return frozenset(_NOT_FLAG_CHARACTER.sub("", normalise_flag(t)) for t in texts)


def says_safeguarding(flags: frozenset[str], safeguarding_flags: frozenset[str]) -> bool:
    """Whether normalised flags hold ``safeguarding`` or a flag a ruleset in use names."""
    return SAFEGUARDING_FLAG in flags or not flags.isdisjoint(safeguarding_flags)


def json_refusal_notices(
    document: object,
    *,
    request: bool,
    safeguarding_flags: frozenset[str] = frozenset(),
    limits: InputLimits = DEFAULT_LIMITS,
) -> list[FieldViolation]:
    """The safeguarding notice for each case of a JSON document the strict reader refused.

    ``json_source.parse_json_bytes`` refuses a repeated key, ``NaN`` or a number that
    overflows before ``parse_case`` runs, so the notice a refused flagged case gets must be
    read from the document here. Every reading counts (fail safe: a duplicate key never hides
    the flag): each copy of a repeated ``flags`` key, of a repeated case (``case`` or
    ``cases`` given twice), and each malformed spelling ``parse_case`` reads for its notice.

    Args:
        document: What ``parse_json_bytes`` decoded: a case, or a whole request.
        request: Whether ``document`` is a DecideRequest / DecideBatchRequest (its cases at
            ``case`` or ``cases[i]``) rather than one case (at ``case``).
        safeguarding_flags: As for ``parse_case``; ``safeguarding`` is always one.
        limits: How many cases of a batch and flags of a list to read.

    Returns:
        One notice at ``<case path>.flags`` per case whose flags say safeguarding, in
        document order.
    """
    cases: list[tuple[str, object]] = []
    if not request:
        cases.append(("case", document))
    else:
        cases += [("case", case) for case in readings(document, "case")]
        for listed in readings(document, "cases"):
            if isinstance(listed, list):
                cases += [
                    (f"cases[{i}]", case) for i, case in enumerate(listed[: limits.max_batch_cases])
                ]
    notices: dict[str, FieldViolation] = {}  # one per path: `cases` repeated shares paths
    for path, case in cases:
        sent = frozenset(
            text
            for value in readings(case, "flags")
            for text in flag_texts(value, limits.max_list_items)
        )
        if says_safeguarding(sent, safeguarding_flags):
            notices.setdefault(path, FieldViolation(f"{path}.flags", SAFEGUARDING_NOTICE))
    return list(notices.values())


_JSON_ESCAPE = re.compile(
    r"\\u([dD][89abAB][0-9a-fA-F]{2})\\u([dD][c-fC-F][0-9a-fA-F]{2})|\\u([0-9a-fA-F]{4})"
)
"""A JSON unicode escape (backslash, u, four hex digits), or two spelling a surrogate pair."""
_UNSEEN = frozenset({"Cc", "Cf", "Cs"})
"""Unicode categories dropped before looking for a flag: control, format, lone surrogates."""


def _unescape(match: re.Match[str]) -> str:
    """The character a ``_JSON_ESCAPE`` match stands for."""
    single = match.group(3)
    if single is not None:
        return chr(int(single, 16))
    high, low = int(match.group(1), 16), int(match.group(2), 16)
    return chr(0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00))


def unreadable_json_notices(
    text: str, *, root: str, safeguarding_flags: frozenset[str] = frozenset()
) -> list[FieldViolation]:
    """The safeguarding notice for a case or request file that is no JSON at all.

    Nothing in it can be read as a field, so the flag is looked for in the text: JSON escapes
    read, NFKC normalised, format and control characters (zero-width, soft hyphen, NUL)
    dropped, letter case folded. A file that only mentions the word elsewhere (a note) gets the
    notice too: a notice on a refusal costs a reader a glance, a missing one a safeguarding
    alert.

    Args:
        text: The file's text.
        root: Where the notice is reported (``case`` or ``request``).
        safeguarding_flags: Flags besides ``safeguarding`` that a ruleset in use names.

    Returns:
        The notice at ``root``, or nothing.
    """
    # JSON escapes (``safeguard\\u0069ng``) read as what they stand for, and control characters
    # dropped as format characters are: a file in UTF-16 without a byte order mark is valid
    # UTF-8 with a NUL beside every ASCII letter.
    folded = "".join(
        c
        for c in unicodedata.normalize("NFKC", _JSON_ESCAPE.sub(_unescape, text))
        if unicodedata.category(c) not in _UNSEEN
    ).casefold()
    flags = {SAFEGUARDING_FLAG, *safeguarding_flags}
    if any(flag.casefold() in folded for flag in flags if flag):
        return [FieldViolation(root, SAFEGUARDING_UNREAD_NOTICE)]
    return []
