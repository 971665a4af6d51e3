"""Size limits on request input, and how an over-limit or invalid value is quoted back.

Every repeated or free-text field of a case or roster has a limit, so no request can make the
server do unbounded work or build an unbounded error. The defaults comfortably fit real use;
each is a server setting (``--max-<name>`` / ``CASEROUTE_MAX_<NAME>``, wired by the CLI).
Parsing checks a value's size *before* any per-item work, so a 100k-item list is refused
cheaply and produces one violation, not 100k.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass

QUOTE_CHARS = 40
"""At most this many characters of an input value are quoted back in an error message."""

_PLAIN_KEY_RE = re.compile(r"[A-Za-z0-9_-]{1,40}")

VIOLATIONS_PER_LIST = 5
"""Violations shown per list (or per object's unknown keys); the rest are counted in one line."""


@dataclass(frozen=True, slots=True)
class InputLimits:
    """Per-request size limits (all counts and lengths; every one must be at least 1).

    Attributes:
        max_agents: Agents in one roster.
        max_batch_cases: Cases in one batch request.
        max_batch_pairs: Cases x agents in one batch request (the matching work).
        max_id_chars: Characters of an identifier or code: case_id, agent_id, snapshot_id,
            request_id, flags, skill / team / territory / licence type / SLA clock names,
            regions, language tags and attribute names.
        max_text_chars: Characters of any other string value (attribute values).
        max_list_items: Items in one list of strings or small objects: flags, required_skills,
            skills, territories, languages, licences, teams.
        max_attributes: Entries in one ``attributes`` map (of a case or of an agent).
        max_sentiment_readings: Readings in ``case.sentiment``.
        max_sla_clocks: Clocks in ``case.sla_clocks``.
    """

    max_agents: int = 20_000
    max_batch_cases: int = 1_000
    max_batch_pairs: int = 2_000_000
    max_id_chars: int = 200
    max_text_chars: int = 1_000
    max_list_items: int = 200
    max_attributes: int = 200
    max_sentiment_readings: int = 500
    max_sla_clocks: int = 50

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(
                    f"{limit_flag(f.name)} must be a whole number of at least 1, got {value!r}"
                )


DEFAULT_LIMITS = InputLimits()
"""The limits a server uses unless configured otherwise."""


def limit_flag(name: str) -> str:
    """The command-line flag that sets a limit: ``max_attributes`` -> ``--max-attributes``.

    Args:
        name: Field name of ``InputLimits``.

    Returns:
        The flag, as named in every over-limit message.
    """
    return "--" + name.replace("_", "-")


def quote_value(value: str, max_chars: int = QUOTE_CHARS) -> str:
    """Quote a string for an error message, cut to a short prefix when long.

    Args:
        value: The caller's value.
        max_chars: How many characters to quote at most.

    Returns:
        ``'abc'`` for short values; ``'abcdef'… (12345 characters)`` for long ones.
    """
    if len(value) <= max_chars:
        return repr(value)
    return f"{value[:max_chars]!r}… ({len(value)} characters)"


QUOTE_BYTES = 40
"""UTF-8 bytes of a caller's value that a message quotes when the whole message is bounded."""


def clip(text: str, max_bytes: int) -> str:
    """``text`` cut to at most ``max_bytes`` UTF-8 bytes, marked with an ellipsis when cut."""
    raw = text.encode()
    if len(raw) <= max_bytes:
        return text
    return raw[: max_bytes - 3].decode(errors="ignore") + "\u2026"


def quote_clipped(value: str) -> str:
    """A caller's value quoted in at most ``QUOTE_BYTES`` + 2 bytes, for a bounded message.

    Transports clip a whole error message (gRPC's status: 400 bytes), so a message quoting
    the caller's value in full lost what to do off its end (review R34a F3). The value is
    clipped before quoting, and its quoted form again: repr escapes control characters and
    backslashes (up to four bytes for one).

    Args:
        value: The caller's value (a request_id, a ruleset name, a decision id).

    Returns:
        ``'abc'`` for short values; ``'abcdef…`` cut at ``QUOTE_BYTES`` bytes for long ones.
    """
    return clip(repr(clip(value, QUOTE_BYTES)), QUOTE_BYTES + 2)


def key_path(parent: str, key: str) -> str:
    """The field path of an object member: ``parent.key``, or ``parent['odd key']`` quoted.

    Keys that are not short plain names (newlines, spaces, a megabyte of text) are quoted
    with ``quote_value``, so a path never carries a control character or a long value.

    Args:
        parent: Path of the object ("" for a top-level member: just ``key``).
        key: The member's key.

    Returns:
        The member's path.
    """
    if _PLAIN_KEY_RE.fullmatch(key):
        return f"{parent}.{key}" if parent else key
    return f"{parent}[{quote_value(key)}]"
