"""Strict reading of JSON documents from files: no duplicate keys, no NaN or Infinity.

Python's ``json`` silently keeps the last of two equal keys, so ``"flags": ["safeguarding"],
"flags": []`` would drop a hard-constraint flag; it also accepts ``NaN``/``Infinity`` and turns
``1e999`` into infinity. This reader rejects all of those, naming the JSON path and the file,
and turns encoding, nesting and syntax problems into the same ``RequestError`` form, so a
caller never sees a traceback for a bad file.
"""

from __future__ import annotations

import codecs
import json
import math
from collections.abc import Callable
from typing import Any

from caseroute.domain.errors import FieldViolation, RequestError
from caseroute.domain.limits import QUOTE_CHARS, key_path, quote_value

MAX_INT_DIGITS = 30
"""Integer literals longer than this are refused (Python would refuse past 4300 digits)."""

MAX_VIOLATIONS = 20
"""Problems listed per document; the rest are counted in one line."""

MAX_DEPTH = 64
"""Containers nested deeper than this are refused (a case or roster is a few levels deep)."""


class JsonSourceError(RequestError):
    """A JSON document is not strict JSON; each violation names a path and the source."""


class _DuplicateKeys(dict[str, Any]):
    """An object that repeated some keys (marked while parsing, reported with paths after).

    ``shadowed`` keeps the values the last copy replaced, so problems inside them are found too.
    """

    duplicates: list[str]
    shadowed: list[tuple[str, Any]]


class _BadNumber:
    """A number literal that has no finite value (``NaN``, ``Infinity``, ``1e999``, 5000 digits)."""

    def __init__(self, literal: str) -> None:
        self.literal = literal


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) == len(pairs):
        return obj
    marked = _DuplicateKeys(obj)
    marked.shadowed = []
    repeated: dict[str, None] = {}  # ordered set: linear even for 100k repeated keys
    last = {key: i for i, (key, _) in enumerate(pairs)}
    for i, (key, value) in enumerate(pairs):
        if last[key] != i:
            marked.shadowed.append((key, value))
            repeated[key] = None
    marked.duplicates = list(repeated)
    return marked


def _float(literal: str) -> float | _BadNumber:
    value = float(literal)
    return value if math.isfinite(value) else _BadNumber(literal)


def _int(literal: str) -> int | _BadNumber:
    return int(literal) if len(literal.lstrip("-")) <= MAX_INT_DIGITS else _BadNumber(literal)


def parse_json_bytes(
    data: bytes,
    *,
    root: str,
    source: str,
    members_under_root: bool = True,
    refusal_notices: Callable[[Any], list[FieldViolation]] | None = None,
    unreadable_notices: Callable[[str], list[FieldViolation]] | None = None,
) -> Any:
    """Decode one strict JSON document.

    Args:
        data: The file's bytes (UTF-8).
        root: Field path of the document's top level, e.g. ``case`` or ``roster``.
        source: Where the bytes came from (a file path), named in every message.
        members_under_root: Whether the top level's members are named under ``root``
            (``case.flags``). False for a whole request, whose members are named as gRPC
            names them (``case.flags``, not ``request.case.flags``); ``root`` then names only
            the document itself (not UTF-8, not JSON, too deep).
        refusal_notices: Given the decoded document when it is refused (it is JSON, only not
            strict JSON): the violations it returns come first, e.g. the safeguarding
            notice of a flagged case (``safeguarding_notice.json_refusal_notices``).
        unreadable_notices: Given the text when it is no JSON at all (bad syntax, too deep;
            not UTF-8: its text read leniently, ``_lenient_text``): the violations it returns
            come first (``safeguarding_notice.unreadable_json_notices``: a file
            that mentions the safeguarding flag gets the notice, since no field can be read).

    Returns:
        The decoded value (dicts, lists, str, int, float, bool, None).

    Raises:
        JsonSourceError: If the bytes are not UTF-8, not JSON, nested more than
            ``MAX_DEPTH`` deep, repeat a key in an object, or hold a non-finite number.
    """
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        # Read leniently for the notices only: Windows PowerShell's `>` and Notepad's
        # "Unicode" write UTF-16, and a flagged case refused without its notice is missed.
        unread = unreadable_notices(_lenient_text(data)) if unreadable_notices is not None else []
        raise JsonSourceError(
            [
                *unread,
                FieldViolation(
                    root,
                    f"{source}: not UTF-8 text (invalid byte at offset {exc.start}); "
                    "save it as UTF-8",
                ),
            ]
        ) from None
    # A byte order mark, as Windows editors write, is no content (RFC 8259 lets a reader
    # ignore it): refusing it told an operator to "decode using utf-8-sig".
    text = text.removeprefix("\ufeff")
    try:
        value = json.loads(
            text,
            object_pairs_hook=_object,
            parse_constant=_BadNumber,
            parse_float=_float,
            parse_int=_int,
        )
    except json.JSONDecodeError as exc:
        message = f"{source}:{exc.lineno}:{exc.colno}: {root} file is not valid JSON: {exc.msg}"
        unread = unreadable_notices(text) if unreadable_notices is not None else []
        raise JsonSourceError([*unread, FieldViolation(root, message)]) from None
    except RecursionError:
        unread = unreadable_notices(text) if unreadable_notices is not None else []
        raise JsonSourceError([*unread, _too_deep(root, source)]) from None
    violations = _check(value, root, source, members_under_root)
    if violations:
        # A document refused here never reaches the parser that gives a refused case its
        # safeguarding notice: the caller reads the notice from the document, every copy of
        # a repeated key included (``readings``), so a duplicate cannot hide the flag.
        notices = refusal_notices(value) if refusal_notices is not None else []
        raise JsonSourceError(notices + violations)
    return value


def _lenient_text(data: bytes) -> str:
    """Bytes that are not UTF-8 as text to look for words in: UTF-16 by its BOM, else U+FFFD."""
    if data[:2] in (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE):  # UTF-32 LE's BOM too
        return data.decode("utf-16", errors="replace")
    return data.decode("utf-8", errors="replace")


def readings(node: object, key: str) -> list[Any]:
    """Every value an object was given for ``key``, in document order; [] if not an object.

    A key the document repeats has more than one: the copies the last one replaced come
    first. For notices on a refused document only (the document itself is refused).

    Args:
        node: A value ``parse_json_bytes`` decoded (anything else: as a plain dict).
        key: The member's name as written.

    Returns:
        The values, earliest first.
    """
    if not isinstance(node, dict):
        return []
    found = [value for name, value in getattr(node, "shadowed", ()) if name == key]
    if key in node:
        found.append(node[key])
    return found


def _too_deep(root: str, source: str) -> FieldViolation:
    return FieldViolation(
        root, f"{source}: nested too deeply to read; a case or roster is a few levels deep"
    )


def _check(value: Any, root: str, source: str, members_under_root: bool) -> list[FieldViolation]:
    """Find marked duplicates and bad numbers, walking without recursion, in document order."""
    found: list[FieldViolation] = []
    hidden = 0
    stack: list[tuple[Any, str, int]] = [(value, root, 0)]
    while stack:
        node, path, depth = stack.pop()
        parent = path if depth or members_under_root else ""
        if depth >= MAX_DEPTH:  # depth counts from 0: the 65th level is index 64
            return [_too_deep(root, source)]
        problem: FieldViolation | None = None
        children: list[tuple[Any, str, int]] = []
        if isinstance(node, _BadNumber):
            literal = (
                node.literal if len(node.literal) <= QUOTE_CHARS else quote_value(node.literal)
            )
            problem = FieldViolation(
                path,
                f"{literal} in {source} is not a finite number; JSON has no NaN or Infinity: "
                "send a number",
            )
        elif isinstance(node, dict):
            if isinstance(node, _DuplicateKeys):
                for key in node.duplicates:
                    item = FieldViolation(
                        key_path(parent, key),
                        f"duplicate key in {source}; give each key once (a JSON reader would "
                        "silently keep only the last value)",
                    )
                    if len(found) < MAX_VIOLATIONS:
                        found.append(item)
                    else:
                        hidden += 1
            pairs = list(node.items())
            if isinstance(node, _DuplicateKeys):
                pairs = node.shadowed + pairs
            children = [
                (child, key_path(parent, key), depth + 1)
                for key, child in pairs
                if isinstance(child, dict | list | _BadNumber)
            ]
        elif isinstance(node, list):
            children = [
                (child, f"{path}[{i}]", depth + 1)
                for i, child in enumerate(node)
                if isinstance(child, dict | list | _BadNumber)
            ]
        if problem is not None:
            if len(found) < MAX_VIOLATIONS:
                found.append(problem)
            else:
                hidden += 1
        stack.extend(reversed(children))
    if hidden:
        found.append(
            FieldViolation(root, f"{hidden} more problem(s) in {source} not shown; fix these first")
        )
    return found
