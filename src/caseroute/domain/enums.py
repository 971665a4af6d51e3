"""The JSON dialect's enum spellings: short value, proto name (``CHANNEL_PHONE``) or number.

This package cannot import protobuf, so the enum prefixes are a small table here, checked
against the generated descriptors by ``tests/wire/test_json_tables.py``.
"""

from __future__ import annotations

import functools
from enum import StrEnum
from typing import Any, TypeVar

from caseroute.domain.case import (
    Channel,
    ContinuityReason,
    Intent,
    Tier,
    Urgency,
)
from caseroute.domain.roster import AgentStatus, Role

E = TypeVar("E", bound=StrEnum)

UNSET: Any = object()
"""What ``enum_member`` returns for a spelling of "not set" (``*_UNSPECIFIED``, ``0``)."""


class ExplanationLevel(StrEnum):
    """How much explanation a request asks for (``DecideRequest.explanation_level``)."""

    SUMMARY = "summary"
    FULL = "full"


WIRE_ENUM_PREFIXES: dict[type[StrEnum], str] = {
    Channel: "CHANNEL_",
    Intent: "INTENT_",
    Urgency: "URGENCY_",
    Tier: "TIER_",
    ContinuityReason: "CONTINUITY_REASON_",
    Role: "ROLE_",
    AgentStatus: "AGENT_STATUS_",
    ExplanationLevel: "EXPLANATION_LEVEL_",
}


def wire_name(member: StrEnum) -> str:
    """The proto enum name of a domain enum member: ``Channel.PHONE`` -> ``CHANNEL_PHONE``."""
    return WIRE_ENUM_PREFIXES[type(member)] + member.value.upper()


def wire_names(kind: type[StrEnum]) -> list[str]:
    """Every member's proto name, in proto number order (for error messages)."""
    return [wire_name(m) for m in kind]


@functools.cache
def enum_table(kind: type[StrEnum]) -> tuple[dict[str, object], tuple[StrEnum, ...]]:
    """Every spelling of ``kind``'s members, and the members in proto number order.

    Spellings are the short value, the proto name and ``*_UNSPECIFIED``; built once per enum
    (parsing reads two enums per agent).
    """
    members = tuple(kind)
    table: dict[str, object] = {member.value: member for member in members}
    prefix = WIRE_ENUM_PREFIXES.get(kind, "")
    if prefix:
        table.update({prefix + member.value.upper(): member for member in members})
        table[prefix + "UNSPECIFIED"] = UNSET
    return table, members


def enum_member(value: object, kind: type[E]) -> object:
    """The member ``value`` spells (short value, proto name or number), else a marker.

    ``UNSET`` when it spells "not set" (``*_UNSPECIFIED``, 0); ``None`` when it spells
    nothing.
    """
    if isinstance(value, bool):
        return None
    table, members = enum_table(kind)
    if isinstance(value, int):
        if value == 0:
            return UNSET
        return members[value - 1] if 0 < value <= len(members) else None
    if not isinstance(value, str):
        return None
    return table.get(value)


ATTRIBUTE_KINDS = {
    "string_value": "string_value",
    "stringValue": "string_value",
    "number_value": "number_value",
    "numberValue": "number_value",
    "bool_value": "bool_value",
    "boolValue": "bool_value",
}
