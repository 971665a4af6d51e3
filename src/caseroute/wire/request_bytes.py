"""A request's top-level fields read from its protobuf wire bytes, to cut one field out unparsed.

The server finds a sent roster it already holds by the roster field's bytes, without parsing
them: the scan here reads only the request's top-level tags and lengths (a few varints) and is
conservative. It answers only for bytes that are plainly one protobuf message holding the field
exactly once, length-delimited and minimally encoded; anything else (the field repeated, which
protobuf would merge; a wire type it does not expect; a group; a malformed, overlong or
truncated varint; a length past the end) gets None, and the caller parses the whole request as
before, so behaviour, errors and field paths stay protobuf's own.
"""

from __future__ import annotations

_MAX_VARINT_BYTES = 10
"""The longest varint protobuf reads (a 64-bit value)."""
_MAX_TAG = (1 << 32) - 1
"""Tags above this carry a field number protobuf does not allow (over 2**29 - 1)."""
_FIXED_SIZE = {1: 8, 5: 4}
"""Bytes of a fixed64 (wire type 1) and a fixed32 (wire type 5) value."""


class _Unusual(Exception):  # noqa: N818 - internal signal, never raised out of this module
    """The bytes are not plainly protobuf's wire format: the caller parses them whole."""


def _varint(data: bytes, i: int) -> tuple[int, int]:
    """The varint at ``data[i]`` and the index after it.

    Raises:
        _Unusual: If it runs past the end or past ten bytes.
    """
    value, shift, end = 0, 0, min(len(data), i + _MAX_VARINT_BYTES)
    while i < end:
        byte = data[i]
        i += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, i
        shift += 7
    raise _Unusual


def _minimal(data: bytes, start: int, end: int) -> bool:
    """Whether the varint in ``data[start:end]`` has no redundant trailing zero group."""
    return end - start == 1 or data[end - 1] != 0


def cut_field(data: bytes, number: int) -> tuple[bytes, bytes] | None:
    """The message in ``data`` without its field ``number``, and that field's bytes.

    Args:
        data: A serialized protobuf message.
        number: The field number of a singular embedded-message field of that message.

    Returns:
        ``(rest, field)``: ``rest`` is ``data`` with the field's tag, length and bytes removed
        (every other field as sent, in order), ``field`` the embedded message's bytes as sent.
        None when the field is absent or anything is unusual (see the module docstring):
        then ``data`` must be parsed whole.
    """
    span = cut_span(data, number)
    if span is None:
        return None
    rest, body, stop = span
    return rest, data[body:stop]


def cut_span(data: bytes, number: int) -> tuple[bytes, int, int] | None:
    """The message in ``data`` without its field ``number``, and where that field's bytes lie.

    ``cut_field`` without copying the field: a server that looks the field up by its bytes
    compares them in place (``data.startswith(known, body)``) instead of slicing a copy.

    Args:
        data: A serialized protobuf message.
        number: The field number of a singular embedded-message field of that message.

    Returns:
        ``(rest, body, stop)``: ``rest`` as ``cut_field`` gives it, and the field's embedded
        message is ``data[body:stop]``. None exactly when ``cut_field`` gives None.
    """
    try:
        return _cut(data, number)
    except _Unusual:
        return None


def _cut(data: bytes, number: int) -> tuple[bytes, int, int] | None:
    found: tuple[int, int, int] | None = None
    i, end = 0, len(data)
    while i < end:
        start = i
        # One-byte varints (every tag of fields 1-15, every length under 128) read inline:
        # a call of _varint per varint was half of this scan's ~4.5 us.
        tag = data[i]
        if tag < 0x80:
            i += 1
        else:
            tag, i = _varint(data, i)
        if tag > _MAX_TAG or tag >> 3 == 0:
            return None
        kind = tag & 7
        if kind == 2:
            after_tag = i
            if i < end and data[i] < 0x80:
                size = data[i]
                i += 1
            else:
                size, i = _varint(data, i)
            body = i
            i += size
            if tag >> 3 == number:
                if found is not None:
                    return None  # protobuf merges repeated occurrences: parse whole
                if not (_minimal(data, start, after_tag) and _minimal(data, after_tag, body)):
                    return None
                found = (start, body, i)
        elif tag >> 3 == number:
            return None  # the field with another wire type: protobuf keeps it as unknown
        elif kind == 0:
            _, i = _varint(data, i)
        elif kind in _FIXED_SIZE:
            i += _FIXED_SIZE[kind]
        else:
            return None  # groups (3, 4) and the undefined wire types 6 and 7
        if i > end:
            return None
    if found is None:
        return None
    start, body, stop = found
    return data[:start] + data[stop:], body, stop
