"""Byte-level protobuf helpers for ``SubscribeUpdate``, so updates travel without re-encoding.

The replay server sends capture records as they were recorded; only the top-level
``filters`` (field 1, repeated string) changes per subscriber. Protobuf lets fields
arrive in any order and repeats append, so ``filters_prefix(names) + body`` (body = the
record with its own field-1 entries removed) is a valid message with exactly ``names``.
Likewise ``record`` appends a ``created_at`` (field 11) to an update the server sent
without one, leaving every other byte as received.
"""

from __future__ import annotations

FILTERS_FIELD = 1
CREATED_AT_FIELD = 11


def varint(n: int) -> bytes:
    if n < 0:
        n &= (1 << 64) - 1
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _read_varint(data: bytes, pos: int) -> tuple[int, int]:
    n = shift = 0
    while True:
        b = data[pos]
        pos += 1
        n |= (b & 0x7F) << shift
        if b < 0x80:
            return n, pos
        shift += 7
        if shift > 63:
            raise ValueError("varint too long")


def strip_field(data: bytes, field: int) -> bytes:
    """``data`` without any top-level occurrence of ``field``; other bytes untouched."""
    keep: list[bytes] = []
    pos, start, n = 0, 0, len(data)
    while pos < n:
        tag_pos = pos
        tag, pos = _read_varint(data, pos)
        wire = tag & 7
        if wire == 0:
            _, pos = _read_varint(data, pos)
        elif wire == 1:
            pos += 8
        elif wire == 2:
            size, pos = _read_varint(data, pos)
            pos += size
        elif wire == 5:
            pos += 4
        else:
            raise ValueError(f"unsupported wire type {wire} at byte {tag_pos}")
        if pos > n:
            raise ValueError("field runs past the end of the message")
        if tag >> 3 == field:
            keep.append(data[start:tag_pos])
            start = pos
    if start == 0:
        return data
    keep.append(data[start:])
    return b"".join(keep)


def filters_prefix(names: tuple[str, ...]) -> bytes:
    """The encoded ``filters`` entries for ``names`` (field 1, length-delimited)."""
    out = bytearray()
    for name in names:
        raw = name.encode()
        out += b"\x0a" + varint(len(raw)) + raw
    return bytes(out)


def timestamp_field(field: int, t: float) -> bytes:
    """A ``google.protobuf.Timestamp`` at ``field`` for unix time ``t``."""
    seconds = int(t)
    nanos = int(round((t - seconds) * 1e9))
    if nanos >= 1_000_000_000:
        seconds, nanos = seconds + 1, nanos - 1_000_000_000
    body = b""
    if seconds:
        body += b"\x08" + varint(seconds)
    if nanos:
        body += b"\x10" + varint(nanos)
    return varint((field << 3) | 2) + varint(len(body)) + body
