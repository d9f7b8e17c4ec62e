"""Protobuf wire-format primitives for the simulator's hand-built ``SubscribeUpdate`` bytes.

Building messages through the generated Python classes costs ~65 µs per transaction; the
simulator must produce ≥ 20,000 transactions per second, so it writes the wire format
directly: a field is ``tag || varint(len) || payload`` and a message is the concatenation of
its fields (proto3: default values are left out). Field numbers follow
``pocketwatcher/proto/*.proto`` (PROTOCOL_FACTS §1.4/§1.5). Everything written here is
parsed back by the real stubs in the tests, so a mistake cannot go unnoticed.
"""

from __future__ import annotations

import struct

# varint of every n < 2**14 (1-2 bytes), and the 2-byte "continued" form of every 14-bit chunk
_V = [bytes([n]) if n < 128 else bytes([(n & 127) | 128, n >> 7]) for n in range(1 << 14)]
_VC = [bytes([(n & 127) | 128, (n >> 7) | 128]) for n in range(1 << 14)]


def varint(n: int) -> bytes:
    """Unsigned LEB128 (negative int64 values are written as their two's complement)."""
    if n >= 268_435_456:
        if n < 4_398_046_511_104:  # lamports of most accounts: 0.27 to 4,398 SOL
            return _VC[n & 16383] + _VC[(n >> 14) & 16383] + _V[n >> 28]
    elif n >= 16384:
        return _VC[n & 16383] + _V[n >> 14]
    elif n >= 0:
        return _V[n]
    else:
        n &= (1 << 64) - 1
    if n < 72_057_594_037_927_936:  # 2**56: lamports of every account but a whale's
        return b"".join((_VC[n & 16383], _VC[(n >> 14) & 16383], _VC[(n >> 28) & 16383], _V[n >> 42]))
    parts = [_VC[n & 16383], _VC[(n >> 14) & 16383], _VC[(n >> 28) & 16383], _VC[(n >> 42) & 16383]]
    n >>= 56
    while n >= 16384:
        parts.append(_VC[n & 16383])
        n >>= 14
    parts.append(_V[n])
    return b"".join(parts)


def ld(tag: bytes, payload: bytes) -> bytes:
    """A length-delimited field."""
    n = len(payload)
    return tag + (_V[n] if n < 16384 else varint(n)) + payload


def vfield(tag: bytes, n: int) -> bytes:
    """A varint field; empty for 0 (the proto3 default)."""
    return tag + varint(n) if n else b""


def string(tag: bytes, s: str) -> bytes:
    return ld(tag, s.encode())


def ui_amount_string(amount: int, decimals: int) -> str:
    a = str(amount)
    if len(a) <= decimals:
        a = "0" * (decimals + 1 - len(a)) + a
    frac = a[-decimals:].rstrip("0")
    return a[:-decimals] + "." + frac if frac else a[:-decimals]


_POW = [10.0**d for d in range(20)]


_BD = struct.Struct("<Bd").pack  # tag 0x09 + double
_DEC = [b"\x10" + _V[d] + b"\x1a" for d in range(20)]  # decimals=2, then the tag of amount=3
_ZEROS = [b"0" * k for k in range(20)]


def ui_token_amount(amount: int, decimals: int, head: bytes | None = None, tail: bytes = b"") -> bytes:
    """``UiTokenAmount`` body: ui_amount=1 (double), decimals=2, amount=3, ui_amount_string=4.

    With ``head`` it is wrapped as field 3 between ``head`` and ``tail`` (a ``TokenBalance``
    body, as :meth:`Account.tb` caches it) in the same join.
    """
    a = b"%d" % amount
    la = len(a)
    if not amount:
        body = (_DEC[decimals], b"\x010\x22\x010")
        n = 8
    else:
        if la > decimals:
            w = a[:-decimals] if decimals else a
            f = a[-decimals:].rstrip(b"0") if decimals else b""
        else:
            w = b"0"
            f = (_ZEROS[decimals - la] + a).rstrip(b"0")
        u = w + b"." + f if f else w
        lu = len(u)
        body = (_BD(9, amount / _POW[decimals]), _DEC[decimals], _V[la], a, b"\x22", _V[lu], u)
        n = 15 + la + lu
    if head is None:
        return b"".join(body)
    return b"".join((head, b"\x1a", _V[n], *body, tail))


# ---- TransactionError (bincode) ---------------------------------------------------------------

_TX_ERR_INSTRUCTION_ERROR = 8  # TransactionError::InstructionError
_IX_ERR_CUSTOM = 25  # InstructionError::Custom(u32)


def custom_error(ix_index: int, code: int) -> bytes:
    """bincode of ``TransactionError::InstructionError(ix_index, InstructionError::Custom(code))``."""
    return struct.pack("<IBII", _TX_ERR_INSTRUCTION_ERROR, ix_index, _IX_ERR_CUSTOM, code)


# ---- non-transaction updates ------------------------------------------------------------------

SLOT_PROCESSED = 0


_SECS: dict[int, tuple[bytes, bytes]] = {}  # seconds -> (their field, the created_at prefix for 5-byte nanos)


def created_at_field(t: float) -> bytes:
    """``SubscribeUpdate.created_at`` (field 11) for unix time ``t``, microsecond precision."""
    us = int(t * 1e6)
    secs = us // 1_000_000
    sv = _SECS.get(secs)
    if sv is None:
        if len(_SECS) > 4096:
            _SECS.clear()
        head = b"\x08" + varint(secs)
        sv = _SECS[secs] = (head, b"\x5a" + _V[len(head) + 6] + head + b"\x10")
    nanos = (us - secs * 1_000_000) * 1000
    if nanos >= 268_435_456:  # most: varint(nanos) inlined (below 10**9 < 2**35: 5 bytes) after the cached prefix
        return sv[1] + _VC[nanos & 16383] + _VC[(nanos >> 14) & 16383] + _V[nanos >> 28]
    head = sv[0]
    if not nanos:
        return b"\x5a" + _V[len(head)] + head
    nv = varint(nanos)
    return b"".join((b"\x5a", _V[len(head) + 1 + len(nv)], head, b"\x10", nv))


def update(filters: bytes, body_field: bytes, created_at: float) -> bytes:
    """A ``SubscribeUpdate``: ``filters`` (pre-encoded field 1), the oneof field, created_at=11."""
    return b"".join((filters, body_field, created_at_field(created_at)))


def slot_update(filters: bytes, slot: int, parent: int, status: int, created_at: float) -> bytes:
    body = b"\x08" + varint(slot) + b"\x10" + varint(parent) + vfield(b"\x18", status)
    return update(filters, ld(b"\x1a", body), created_at)


def block_meta_update(filters: bytes, slot: int, blockhash: str, block_time: int, block_height: int,
                      parent_slot: int, parent_blockhash: str, tx_count: int, entries: int,
                      created_at: float) -> bytes:
    """``SubscribeUpdateBlockMeta``: slot=1, blockhash=2, block_time=4, block_height=5,
    parent_slot=6, parent_blockhash=7, executed_transaction_count=8, entries_count=9."""
    body = b"".join((
        b"\x08", varint(slot), string(b"\x12", blockhash),
        ld(b"\x22", b"\x08" + varint(block_time)), ld(b"\x2a", b"\x08" + varint(block_height)),
        b"\x30", varint(parent_slot), string(b"\x3a", parent_blockhash),
        vfield(b"\x40", tx_count), vfield(b"\x48", entries),
    ))
    return update(filters, ld(b"\x3a", body), created_at)
