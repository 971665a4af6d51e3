"""The codec's small wire tables (enum prefixes, field names) match the generated descriptors."""

from __future__ import annotations

from enum import StrEnum

import pytest
from google.protobuf.descriptor import Descriptor

from caseroute.domain import codec, enums, fields
from caseroute.v1 import routing_pb2 as pb


@pytest.mark.parametrize("kind", list(enums.WIRE_ENUM_PREFIXES), ids=lambda k: k.__name__)
def test_enum_names_and_numbers_match_the_proto(kind: type[StrEnum]) -> None:
    """Prefix + VALUE is the proto name and declaration order + 1 its number, UNSPECIFIED 0."""
    proto = pb.DESCRIPTOR.enum_types_by_name[kind.__name__]
    prefix = enums.WIRE_ENUM_PREFIXES[kind]
    expected = [(prefix + "UNSPECIFIED", 0)] + [
        (enums.wire_name(member), number) for number, member in enumerate(kind, 1)
    ]
    assert [(v.name, v.number) for v in proto.values] == expected


def _fields(message: Descriptor) -> list[tuple[str, str]]:
    return [(f.name, f.json_name) for f in message.fields]


@pytest.mark.parametrize(
    ("message", "allowed"),
    [
        (pb.Case.DESCRIPTOR, fields.CASE_FIELDS),
        (pb.Agent.DESCRIPTOR, fields.AGENT_FIELDS),
        (pb.DecideRequest.DESCRIPTOR, tuple(f for f in codec._REQUEST_FIELDS if f != "cases")),
    ],
    ids=["Case", "Agent", "DecideRequest"],
)
def test_field_names_and_json_names_match_the_proto(
    message: Descriptor, allowed: tuple[str, ...]
) -> None:
    """The codec reads exactly the proto's fields, and lower_camel is protoc's json_name."""
    assert _fields(message) == [(name, codec.lower_camel(name)) for name in allowed]
