"""Cutting one field out of a request's wire bytes: exact when plain, None when anything is odd."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from caseroute.testing import NOW, make_agent, make_case, make_roster
from caseroute.v1 import routing_pb2 as pb
from caseroute.wire import convert
from caseroute.wire.request_bytes import cut_field

ROSTER = 4
"""DecideRequest.roster's field number."""


def _roster_bytes() -> bytes:
    return convert.roster_to_proto(
        make_roster(make_agent("a1"), make_agent("a2"))
    ).SerializeToString()


def _field(number: int, body: bytes) -> bytes:
    """A length-delimited field (one-byte tag and length: number < 16, body < 128 bytes)."""
    assert number < 16
    assert len(body) < 128
    return bytes([number << 3 | 2, len(body)]) + body


def test_a_plain_request_gives_the_rest_and_the_roster_bytes_as_sent() -> None:
    """The roster's bytes come out whole; the rest is every other field, in order."""
    roster = _roster_bytes()
    head = _field(1, b"req-1")
    tail = _field(7, b"x" * 3)
    data = head + bytes([ROSTER << 3 | 2]) + bytes([len(roster) & 0x7F | 0x80, len(roster) >> 7])
    data += roster + tail
    assert (head + tail, roster) == cut_field(data, ROSTER)


def test_a_whole_decide_request_reparses_to_the_same_message() -> None:
    """Rest parsed + roster parsed into it equals the whole request parsed."""
    msg = pb.DecideRequest(
        request_id="r",
        case=convert.case_to_proto(make_case()),
        roster=convert.roster_to_proto(make_roster(make_agent("a1"))),
        now=convert.datetime_to_timestamp(NOW),
        explanation_level=pb.EXPLANATION_LEVEL_FULL,
        roster_sha256="ab" * 32,
    )
    data = msg.SerializeToString()
    cut = cut_field(data, ROSTER)
    assert cut is not None
    rest = pb.DecideRequest.FromString(cut[0])
    assert (False, msg.roster) == (rest.HasField("roster"), pb.Roster.FromString(cut[1]))
    rest.roster.CopyFrom(pb.Roster.FromString(cut[1]))
    assert msg == rest


def test_an_empty_roster_field_is_cut_as_empty_bytes() -> None:
    """A roster sent with no content (present, zero length) is found, as b""."""
    assert cut_field(bytes([ROSTER << 3 | 2, 0]), ROSTER) == (b"", b"")


def test_other_wire_types_are_skipped_by_their_size() -> None:
    """Varint, fixed64 and fixed32 fields (unknown ones too) stay in the rest, as sent."""
    others = b"\x30\x96\x01" + b"\x41" + b"\x01" * 8 + b"\x4d" + b"\x02" * 4
    data = others + _field(ROSTER, b"R") + b"\x30\x01"
    assert (others + b"\x30\x01", b"R") == cut_field(data, ROSTER)


@pytest.mark.parametrize(
    ("data", "why"),
    [
        (_field(1, b"id"), "no roster field"),
        (_field(ROSTER, b"a") + _field(ROSTER, b"b"), "the roster twice: protobuf would merge"),
        (bytes([ROSTER << 3 | 0, 1]), "the roster field as a varint"),
        (bytes([ROSTER << 3 | 5]) + b"\x00" * 4 + _field(ROSTER, b""), "as fixed32, then again"),
        (b"\x0b\x0c" + _field(ROSTER, b"R"), "a group (wire type 3)"),
        (b"\x0c" + _field(ROSTER, b"R"), "an end-group (wire type 4)"),
        (b"\x0e\x00" + _field(ROSTER, b"R"), "wire type 6"),
        (b"\x0f\x00" + _field(ROSTER, b"R"), "wire type 7"),
        (b"\x02\x00" + _field(ROSTER, b"R"), "field number 0"),
        (b"\x80\x80\x80\x80\x80\x01" + _field(ROSTER, b"R"), "a tag over 32 bits"),
        (b"\x08" + b"\xff" * 10 + b"\x01" + _field(ROSTER, b"R"), "a varint over ten bytes"),
        (_field(ROSTER, b"R") + b"\x08\xff", "a varint cut short"),
        (_field(ROSTER, b"R") + b"\x88", "a tag cut short"),
        (_field(ROSTER, b"R") + b"\x41\x00", "a fixed64 cut short"),
        (bytes([ROSTER << 3 | 2, 5]) + b"RR", "the roster's length past the end"),
        (_field(ROSTER, b"R") + b"\x0a\x05ab", "another field's length past the end"),
        (bytes([ROSTER << 3 | 2 | 0x80, 0x00, 1]) + b"R", "an overlong roster tag"),
        (bytes([ROSTER << 3 | 2, 0x81, 0x00]) + b"R", "an overlong roster length"),
    ],
)
def test_anything_unusual_asks_for_the_whole_parse(data: bytes, why: str) -> None:
    """None: the caller parses the whole request, so protobuf's own behaviour holds."""
    assert cut_field(data, ROSTER) is None, why


@settings(max_examples=200, deadline=None)
@given(
    request_id=st.text(max_size=20),
    sha=st.text(max_size=70),
    level=st.integers(min_value=0, max_value=2),
    agents=st.lists(st.sampled_from(["a", "b", "c", "d"]), unique=True, max_size=4),
    unknown=st.binary(max_size=8),
    roster_first=st.booleans(),
)
def test_cutting_and_reparsing_equals_parsing_whole(
    request_id: str, sha: str, level: int, agents: list[str], unknown: bytes, roster_first: bool
) -> None:
    """Any field order and an unknown field beside: the parts reparse to the whole message."""
    roster = convert.roster_to_proto(make_roster(*[make_agent(a) for a in agents]))
    others = pb.DecideRequest(
        request_id=request_id,
        case=convert.case_to_proto(make_case()),
        explanation_level=level,  # type: ignore[arg-type]
        roster_sha256=sha,
    ).SerializeToString()
    unknown_field = _field(15, unknown)  # a field number DecideRequest does not define
    roster_field = pb.DecideRequest(roster=roster).SerializeToString()
    parts = (
        [roster_field, others, unknown_field]
        if roster_first
        else [others, roster_field, unknown_field]
    )
    data = b"".join(parts)
    cut = cut_field(data, ROSTER)
    assert cut is not None
    rest = pb.DecideRequest.FromString(cut[0])
    rest.roster.MergeFromString(cut[1])
    rest.roster.SetInParent()
    assert pb.DecideRequest.FromString(data).SerializeToString(deterministic=True) == (
        rest.SerializeToString(deterministic=True)
    )
