"""pump.fun bonding curve: trades from TradeEvent, lifecycle from Create/Complete/Migration events.

The curve holds SOL as lamports, so token-transfer pairing does not apply; the
TradeEvent is the truth. It is read from the self-CPI inner instruction (anchor
event CPI) and, when that is missing, from the instruction's `Program data:` log.
Event structs only ever grow at the end, so each is decoded as the prefix we know.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, fields
from operator import attrgetter

from solders.pubkey import Pubkey

from ..swap import PUMP_TOTAL_SUPPLY, WSOL, Swap, compute_price

EVENT_TAG = bytes.fromhex("e445a52e51cb9a1d")
TRADE_EVENT = bytes.fromhex("bddb7fd34ee661ee")
CREATE_EVENT = bytes.fromhex("1b72a94ddeeb6376")
COMPLETE_EVENT = bytes.fromhex("5f72619cd42e9808")
MIGRATION_EVENT = bytes.fromhex("bde95db95c94ea94")

BUY = bytes([102, 6, 61, 18, 1, 218, 235, 234])
SELL = bytes([51, 230, 133, 164, 1, 127, 131, 173])
BUY_EXACT_SOL_IN = bytes([56, 252, 116, 8, 158, 223, 205, 95])
BUY_V2 = bytes([184, 23, 238, 97, 103, 197, 211, 61])
SELL_V2 = bytes([93, 246, 130, 60, 231, 233, 64, 178])
BUY_EXACT_QUOTE_IN_V2 = bytes([194, 171, 28, 70, 104, 77, 91, 47])
CREATE = bytes([24, 30, 200, 40, 5, 28, 7, 119])
CREATE_V2 = bytes([214, 144, 76, 236, 95, 139, 49, 180])
MIGRATE = bytes([155, 234, 231, 146, 236, 158, 162, 30])
MIGRATE_V2 = bytes([187, 203, 18, 31, 206, 237, 254, 41])

# discriminator -> index of the bonding_curve account
TRADE_IXS = {BUY: 3, SELL: 3, BUY_EXACT_SOL_IN: 3, BUY_V2: 10, SELL_V2: 10, BUY_EXACT_QUOTE_IN_V2: 10}
LIFECYCLE_IXS = {CREATE, CREATE_V2, MIGRATE, MIGRATE_V2}

_u64 = struct.Struct("<Q")
_i64 = struct.Struct("<q")
_u32 = struct.Struct("<I")


_PK_CACHE: dict[bytes, str] = {}


def pk(b: bytes, off: int) -> str:
    chunk = b[off:off + 32]
    s = _PK_CACHE.get(chunk)
    if s is None:
        if len(chunk) != 32:
            raise ValueError("truncated pubkey")
        if len(_PK_CACHE) > 100_000:  # mints and traders repeat; keep it bounded
            _PK_CACHE.clear()
        s = _PK_CACHE[chunk] = str(Pubkey.from_bytes(chunk))
    return s


@dataclass(slots=True)
class TradeEvent:
    mint: str
    sol_amount: int
    token_amount: int
    is_buy: bool
    user: str
    timestamp: int
    virtual_sol_reserves: int
    virtual_token_reserves: int
    real_sol_reserves: int
    real_token_reserves: int
    fee: int = 0
    creator_fee: int = 0
    fee_bps: int | None = None
    creator_fee_bps: int | None = None
    creator: str | None = None
    ix_name: str | None = None
    quote_mint: str | None = None  # only for non-SOL (2026-05+) curves


def decode_trade_event(p: bytes) -> TradeEvent | None:
    """Decode a TradeEvent payload (bytes after the 8-byte discriminator), any version."""
    if len(p) < 121:
        return None
    try:
        return _decode_trade_event(p)
    except (ValueError, struct.error):
        return None


def _decode_trade_event(p: bytes) -> TradeEvent:
    u = _u64.unpack_from
    ev = TradeEvent(
        mint=pk(p, 0), sol_amount=u(p, 32)[0], token_amount=u(p, 40)[0], is_buy=p[48] == 1,
        user=pk(p, 49), timestamp=_i64.unpack_from(p, 81)[0],
        virtual_sol_reserves=u(p, 89)[0], virtual_token_reserves=u(p, 97)[0],
        real_sol_reserves=u(p, 105)[0], real_token_reserves=u(p, 113)[0],
    )
    if len(p) >= 217:
        ev.fee_bps, ev.fee = u(p, 153)[0], u(p, 161)[0]
        ev.creator = pk(p, 169)
        ev.creator_fee_bps, ev.creator_fee = u(p, 201)[0], u(p, 209)[0]
    if len(p) >= 254:
        n = _u32.unpack_from(p, 250)[0]
        if 254 + n <= len(p) and n <= 64:
            try:
                ev.ix_name = p[254:254 + n].decode()
            except UnicodeDecodeError:
                pass
            _decode_quote_tail(p, 254 + n, ev)
    return ev


def _decode_quote_tail(p: bytes, off: int, ev: TradeEvent) -> None:
    """v5+ tail: mayhem bool, cashback (2 u64), buyback (2 u64), shareholders, quote fields.

    Only used when the curve is not SOL-paired (sol_amount 0): then the quote_* fields
    carry the amounts. Layout per the facts file (UNVERIFIED upstream) — best effort.
    """
    if ev.sol_amount != 0:
        return
    off += 1 + 16 + 16
    if off + 4 > len(p):
        return
    n = _u32.unpack_from(p, off)[0]
    off += 4 + n * 34
    if off + 32 + 24 > len(p):
        return
    qm = pk(p, off)
    if p[off:off + 32] == bytes(32):
        return
    ev.quote_mint = qm
    ev.sol_amount = _u64.unpack_from(p, off + 32)[0]
    ev.virtual_sol_reserves = _u64.unpack_from(p, off + 40)[0]
    ev.real_sol_reserves = _u64.unpack_from(p, off + 48)[0]


def _string(p: bytes, off: int) -> tuple[str, int]:
    n = _u32.unpack_from(p, off)[0]
    if n > 1000 or off + 4 + n > len(p):
        raise ValueError("bad string")
    return p[off + 4:off + 4 + n].decode("utf-8", "replace"), off + 4 + n


@dataclass(slots=True)
class TokenEvent:
    """A lifecycle event of a token: its launch, its curve completing, its migration."""

    kind: str  # "create" | "complete" | "migrate"
    signature: str
    slot: int | None
    block_time: int | None
    ix: str
    program: str
    mint: str
    user: str | None = None
    creator: str | None = None
    bonding_curve: str | None = None
    name: str | None = None
    symbol: str | None = None
    uri: str | None = None
    pool: str | None = None
    timestamp: int | None = None

    def to_dict(self) -> dict:
        from dataclasses import asdict

        return asdict(self)

    def __reduce__(self):  # by position, like Swap (see there)
        return (TokenEvent, _event_values(self))


_event_values = attrgetter(*(f.name for f in fields(TokenEvent)))


def decode_lifecycle(disc: bytes, p: bytes) -> dict | None:
    try:
        if disc == CREATE_EVENT:
            name, o = _string(p, 0)
            symbol, o = _string(p, o)
            uri, o = _string(p, o)
            return dict(kind="create", name=name, symbol=symbol, uri=uri, mint=pk(p, o),
                        bonding_curve=pk(p, o + 32), user=pk(p, o + 64), creator=pk(p, o + 96),
                        timestamp=_i64.unpack_from(p, o + 128)[0])
        if disc == COMPLETE_EVENT and len(p) >= 104:
            return dict(kind="complete", user=pk(p, 0), mint=pk(p, 32), bonding_curve=pk(p, 64),
                        timestamp=_i64.unpack_from(p, 96)[0])
        if disc == MIGRATION_EVENT and len(p) >= 160:
            # user, mint, mint_amount u64, sol_amount u64, pool_migration_fee u64, bonding_curve,
            # timestamp i64, pool (+ quote_mint since 2026-05)
            return dict(kind="migrate", user=pk(p, 0), mint=pk(p, 32), bonding_curve=pk(p, 88),
                        timestamp=_i64.unpack_from(p, 120)[0], pool=pk(p, 128))
    except (ValueError, struct.error):
        return None
    return None


def make_swap(ctx, pos: int, ev: TradeEvent) -> Swap:
    view = ctx.view
    ix = view.ixs[pos]
    curve_i = TRADE_IXS.get(bytes(ix.data[:8]), 3)
    pool = view.keys[ix.accounts[curve_i]] if curve_i < len(ix.accounts) else None
    user_signed = ev.user in view.keys[:view.num_signers]
    dec = 6  # every pump.fun mint is created with 6 decimals
    quote_mint = ev.quote_mint or WSOL
    qdec = ctx.tokens.decimals(quote_mint) if ev.quote_mint else 9
    vs, vt = ev.virtual_sol_reserves, ev.virtual_token_reserves
    return Swap(
        signature=view.signature, slot=view.slot, block_time=view.block_time, ix=ix.path,
        program="pumpfun", pool=pool, trader=ev.user if user_signed else view.keys[0],
        mint=ev.mint, side="buy" if ev.is_buy else "sell",
        token_amount=ev.token_amount, token_decimals=dec,
        quote_mint=quote_mint, quote_amount=ev.sol_amount, quote_decimals=qdec,
        price=compute_price(ev.token_amount, dec, ev.sol_amount, qdec),
        tx_index=view.index, virtual_sol_reserves=vs, virtual_token_reserves=vt,
        mcap_sol=(vs * PUMP_TOTAL_SUPPLY / vt / 1e9) if vt and not ev.quote_mint else None,
        fees={"protocol_fee": ev.fee, "creator_fee": ev.creator_fee},
    )


def decode(ctx, pos: int) -> tuple[list[Swap], list[TokenEvent]]:
    """Swaps and lifecycle events of one pump.fun instruction at ``pos`` (events in its subtree)."""
    view = ctx.view
    ix = view.ixs[pos]
    data = ix.data
    disc = bytes(data[:8])
    if disc == EVENT_TAG:  # the event CPI itself: handled through its parent
        return [], []
    is_trade = disc in TRADE_IXS
    if not is_trade and disc not in LIFECYCLE_IXS:
        return [], []
    payloads = _events_for(ctx, pos)
    swaps: list[Swap] = []
    events: list[TokenEvent] = []
    for edisc, p in payloads:
        if edisc == TRADE_EVENT:
            if is_trade and not swaps:
                ev = decode_trade_event(p)
                if ev is not None:
                    swaps.append(make_swap(ctx, pos, ev))
        else:
            d = decode_lifecycle(edisc, p)
            if d is not None:
                events.append(TokenEvent(signature=view.signature, slot=view.slot,
                                         block_time=view.block_time, ix=ix.path,
                                         program="pumpfun", **d))
    if is_trade and not swaps:
        ctx.note("pumpfun_trade_without_event")
    return swaps, events


def _events_for(ctx, pos: int) -> list[tuple[bytes, bytes]]:
    """(discriminator, payload) of the pump events a pump instruction emitted."""
    view = ctx.view
    prog = view.ixs[pos].program
    out: list[tuple[bytes, bytes]] = []
    end = ctx.ends[pos]
    for q in range(pos + 1, end):
        sub = view.ixs[q]
        d = sub.data
        if sub.program == prog and len(d) >= 16 and d[:8] == EVENT_TAG and ctx.parents[q] == pos:
            out.append((bytes(d[8:16]), bytes(d[16:])))
    if out:
        return out
    for raw in ctx.log_data().get(pos, ()):
        if len(raw) >= 8:
            out.append((raw[:8], raw[8:]))
    return out
