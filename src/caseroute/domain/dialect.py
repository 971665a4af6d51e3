"""Stored case data <-> the JSON dialect (docs/json.md): a walk over data, not a parse."""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Any

from caseroute.domain.case import (
    Channel,
    ContinuityReason,
    Intent,
    Tier,
    Urgency,
)
from caseroute.domain.enums import (
    ATTRIBUTE_KINDS,
    enum_member,
    wire_name,
)


def _enum_to_wire(value: object, kind: type[StrEnum]) -> object:
    member = enum_member(value, kind)
    return wire_name(member) if isinstance(member, kind) else value


def _attribute_to_wire(value: object) -> object:
    if isinstance(value, bool):
        return {"bool_value": value}
    if isinstance(value, str):
        return {"string_value": value}
    if isinstance(value, int | float):
        return {"number_value": value}
    return value


def case_data_to_wire(data: Mapping[str, Any]) -> dict[str, Any]:
    """A case in its canonical JSON form (``case_to_dict``, possibly masked) in the dialect.

    A walk over the data, not a parse: masked values are digests that need not validate.
    Enums become proto names and attribute values ``{"string_value": ...}`` and the like;
    every other field is already written as protobuf's JSON mapping writes it.
    """
    out = dict(data)
    for key, kind in _CASE_ENUMS.items():
        if key in out:
            out[key] = _enum_to_wire(out[key], kind)
    if isinstance(out.get("attributes"), Mapping):
        out["attributes"] = {k: _attribute_to_wire(v) for k, v in out["attributes"].items()}
    if isinstance(out.get("preferred_agents"), list):
        out["preferred_agents"] = [
            {**p, "reason": _enum_to_wire(p.get("reason"), ContinuityReason)}
            if isinstance(p, Mapping) and "reason" in p
            else p
            for p in out["preferred_agents"]
        ]
    return out


def _attribute_from_wire(value: object) -> object:
    if isinstance(value, Mapping) and len(value) == 1:
        ((key, inner),) = value.items()
        if key in ATTRIBUTE_KINDS:
            return inner
    return value


def case_data_from_wire(data: Mapping[str, Any]) -> dict[str, Any]:
    """The inverse of ``case_data_to_wire``: short enum values and plain attribute values."""
    out = dict(data)
    for key, kind in _CASE_ENUMS.items():
        member = enum_member(out.get(key), kind)
        if isinstance(member, kind):
            out[key] = member.value
    if isinstance(out.get("attributes"), Mapping):
        out["attributes"] = {k: _attribute_from_wire(v) for k, v in out["attributes"].items()}
    if isinstance(out.get("preferred_agents"), list):
        out["preferred_agents"] = [
            {
                **p,
                "reason": getattr(
                    enum_member(p.get("reason"), ContinuityReason), "value", p.get("reason")
                ),
            }
            if isinstance(p, Mapping) and "reason" in p
            else p
            for p in out["preferred_agents"]
        ]
    return out


_CASE_ENUMS: dict[str, type[StrEnum]] = {
    "channel": Channel,
    "intent": Intent,
    "urgency": Urgency,
    "tier": Tier,
}


def record_input_to_wire(data: Mapping[str, Any]) -> dict[str, Any]:
    """An audit record's stored input (``AuditRecord.input``) with its case in the dialect.

    The roster part (``{"sha256": ..., "assigned_before": [...]}``) has no proto message and is
    kept as it is.
    """
    out = dict(data)
    if isinstance(out.get("case"), Mapping):
        out["case"] = case_data_to_wire(out["case"])
    return out


def record_input_from_wire(data: Mapping[str, Any]) -> dict[str, Any]:
    """The inverse of ``record_input_to_wire``: the input as the audit record stores it."""
    out = dict(data)
    if isinstance(out.get("case"), Mapping):
        out["case"] = case_data_from_wire(out["case"])
    return out
