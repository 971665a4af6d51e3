"""Fields a request's protobuf messages carry that this server's caseroute.v1 does not read.

protobuf keeps a field number its generated code does not define (a client built from a newer
or another ``.proto``, e.g. field 99 on an Agent) as an *unknown field* and reads the message
as if it were absent. The JSON path refuses an unknown field by name (``FieldReader``); this is
the same rule for the binary path (review M6): a safeguarding- or consent-related field sent
under a number this server does not know must never be decided as if it had not been sent.

``unknown_field_violations`` walks a message and everything in it (every nested message,
repeated and map value, and its ``google.protobuf.Timestamp`` values) and names each message
holding unknown fields at its field path, as the strict converters report every other problem.
``wire.fast`` refuses to vouch for a message with unknown fields (``Doubt``), checking the same
messages with the same call, so only the strict path ever answers for one.

Numbers a message does define can be unknown too: a field sent with the wrong wire type, or a
map entry holding a field of its own (upb then keeps the whole entry unknown). Those are named
with the field they were meant as.

With the upb backend ``Message.UnknownFields()`` raises ``NotImplementedError``;
``google.protobuf.unknown_fields.UnknownFieldSet(msg)`` works on every backend and costs
~0.12 us for a message without unknown fields (the cheapest correct check measured: ``ListFields``
~0.9 us, ``ByteSize`` ~0.3 us and neither answers the question alone).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message
from google.protobuf.unknown_fields import UnknownFieldSet

from caseroute.domain.errors import FieldViolation
from caseroute.domain.limits import VIOLATIONS_PER_LIST, InputLimits, key_path

unknown_fields: Callable[[Message], Any] = UnknownFieldSet
"""A message's own unknown fields: falsy (empty) when it has none. Not its sub-messages'."""

REQUEST_PATH = "request"
"""The field path naming a request message itself (as an undecodable request is named)."""

_LIST_LIMITS = {
    "agents": "max_agents",
    "cases": "max_batch_cases",
    "sentiment": "max_sentiment_readings",
    "sla_clocks": "max_sla_clocks",
    "attributes": "max_attributes",
}
"""The ``InputLimits`` field bounding each repeated or map field (others: ``max_list_items``).
A list over its limit is refused by the parser before any item is read, so it is not walked."""

NUMBERS_SHOWN = 3
"""Field numbers a violation lists; a message holding more has the rest counted (a hostile
sender's thousands of numbers never make a long error)."""

ADVICE = (
    "this server refuses fields it does not define rather than decide as if they were absent: "
    "build the client from this server's caseroute.v1 protos (server reflection lists them) "
    "or leave the field out"
)
"""Last in every violation, so the served clip (``MAX_DESCRIPTION_BYTES``) never cuts it."""


def _listed(items: list[str]) -> str:
    """Items joined with commas, at most ``NUMBERS_SHOWN`` of them and a count of the rest."""
    shown = ", ".join(items[:NUMBERS_SHOWN])
    more = len(items) - NUMBERS_SHOWN
    return f"{shown} and {more} more" if more > 0 else shown


def _words(msg: Message, found: Iterable[Any]) -> str:
    """What is wrong with ``msg``'s unknown fields, and what to do."""
    descriptor = msg.DESCRIPTOR
    numbers = sorted({field.field_number for field in found})
    known = [n for n in numbers if n in descriptor.fields_by_number]
    unknown = [n for n in numbers if n not in descriptor.fields_by_number]
    parts = []
    if unknown:
        listed = _listed([str(n) for n in unknown])
        noun = "number" if len(unknown) == 1 else "numbers"
        parts.append(f"has field {noun} {listed}, which {descriptor.full_name} does not define")
    if known:
        named = _listed([f"`{descriptor.fields_by_number[n].name}` ({n})" for n in known])
        parts.append(
            f"has {named} in a form {descriptor.full_name} does not read (another wire type, "
            "or a map entry with a field of its own)"
        )
    return "; ".join(parts) + f"; {ADVICE}"


def own_unknown_field_violations(msg: Message, path: str) -> list[FieldViolation]:
    """A violation at ``path`` if ``msg`` itself holds unknown fields (its sub-messages unread).

    Args:
        msg: The message.
        path: Its field path (``""``: a request, named ``request``).

    Returns:
        One violation, or none.
    """
    found = unknown_fields(msg)
    if not found:
        return []
    return [FieldViolation(path or REQUEST_PATH, _words(msg, found))]


def _is_map(field: FieldDescriptor) -> bool:
    return field.message_type is not None and field.message_type.GetOptions().map_entry


def _walk(msg: Message, path: str, limits: InputLimits, out: list[FieldViolation]) -> None:
    out += own_unknown_field_violations(msg, path)
    for field, value in msg.ListFields():
        if field.message_type is None:
            continue
        at = f"{path}.{field.name}" if path else field.name
        if _is_map(field):
            if field.message_type.fields_by_name["value"].message_type is None:
                continue  # a map of scalars: its entries hold nothing else
            if len(value) <= getattr(limits, _LIST_LIMITS.get(field.name, "max_list_items")):
                for key, item in value.items():
                    _walk(item, key_path(at, str(key)), limits, out)
        elif field.is_repeated:
            if len(value) <= getattr(limits, _LIST_LIMITS.get(field.name, "max_list_items")):
                for i, item in enumerate(value):
                    _walk(item, f"{at}[{i}]", limits, out)
        else:
            _walk(value, at, limits, out)


def unknown_field_violations(msg: Message, path: str, limits: InputLimits) -> list[FieldViolation]:
    """A violation for each message in ``msg`` (itself included) that holds unknown fields.

    Lists over their ``InputLimits`` count are not walked (the parser refuses their size
    first); past ``VIOLATIONS_PER_LIST`` violations the rest are counted in one more.

    Args:
        msg: A Case or Roster message (or any caseroute.v1 message).
        path: Its field path (``case``, ``cases[2]``, ``roster``; ``""``: a request).
        limits: The server's input limits.

    Returns:
        The violations, each at the path of the message holding unknown fields.
    """
    out: list[FieldViolation] = []
    _walk(msg, path, limits, out)
    if len(out) > VIOLATIONS_PER_LIST:
        hidden = len(out) - VIOLATIONS_PER_LIST
        out[VIOLATIONS_PER_LIST:] = [
            FieldViolation(
                path or REQUEST_PATH,
                f"{hidden} more message(s) with unknown fields not shown; {ADVICE}",
            )
        ]
    return out
