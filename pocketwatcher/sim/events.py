"""Anchor event payloads of pump.fun and PumpSwap, in their current mainnet layouts.

Each event is written twice, as on mainnet: as a self-CPI inner instruction
(``EVENT_TAG || discriminator || borsh``, one account: the event authority) and as a
``Program data: base64(discriminator || borsh)`` log line. Layouts are from
PROTOCOL_FACTS §2.3 / §3 and the Oct 2026 fixtures: TradeEvent in its 374-byte layout
(``ix_name``, mayhem, cashback, buyback, shareholders, the quote fields and 24 trailing
zero bytes), CreateEvent of create_v2 with the quote fields, CompleteEvent with quote_mint;
BuyEvent with the 2025-10 fields; SellEvent with coin-creator fields.
"""

from __future__ import annotations

import binascii
import struct

# Written out here, not imported from the parser, on purpose: the round-trip tests then
# check the parser against an independent encoding of the same facts.
EVENT_TAG = bytes.fromhex("e445a52e51cb9a1d")
TRADE = bytes.fromhex("bddb7fd34ee661ee")
CREATE = bytes.fromhex("1b72a94ddeeb6376")
COMPLETE = bytes.fromhex("5f72619cd42e9808")
MIGRATION = bytes.fromhex("bde95db95c94ea94")
BUY_EVENT = bytes([103, 244, 82, 31, 44, 245, 119, 119])
SELL_EVENT = bytes([62, 47, 55, 10, 165, 3, 220, 42])
CREATE_POOL_EVENT = bytes([177, 49, 12, 210, 160, 118, 167, 116])

_TRADE = "<8s32sQQB32sqQQQQ32sQQ32sQQBQQQq"  # discriminator, fields, then ix_name and mayhem_mode
# then cashback bps + lamports, buyback bps + lamports, shareholders (empty vec), quote_mint
# (zero: SOL), quote_amount, virtual/real quote reserves (the SOL figures again), 24 zero bytes
_TAIL = "QQQQI32xQQQ24x"
_TRADE_BUY = struct.Struct(_TRADE + "8s" + _TAIL).pack
_TRADE_SELL = struct.Struct(_TRADE + "9s" + _TAIL).pack
_IX_BUY = b"\x03\x00\x00\x00buy\x00"  # ix_name "buy", then mayhem_mode false
_IX_SELL = b"\x04\x00\x00\x00sell\x00"
BUYBACK_BPS = 5_000  # of the protocol fee: half of it goes to the buyback recipient


def trade_event(mint: bytes, sol: int, tokens: int, is_buy: bool, user: bytes, ts: int, vsol: int,
                vtok: int, rsol: int, rtok: int, fee_recipient: bytes, fee_bps: int, fee: int,
                creator: bytes, creator_bps: int, creator_fee: int, volume: int) -> bytes:
    """TradeEvent (discriminator included), the 374-byte layout of Oct 2026 mainnet (the
    fixtures 4WSwD…, MrD2…): reserves are those after the trade; the buyback fee is the
    half of ``fee`` the program sends to its second fee recipient."""
    return (_TRADE_BUY if is_buy else _TRADE_SELL)(
        TRADE, mint, sol, tokens, is_buy, user, ts, vsol, vtok, rsol, rtok, fee_recipient, fee_bps, fee,
        creator, creator_bps, creator_fee, is_buy, 0, 0, volume, ts, _IX_BUY if is_buy else _IX_SELL,
        0, 0, BUYBACK_BPS, fee - fee // 2, 0, sol, vsol, rsol,
    )


def _string(s: str) -> bytes:
    b = s.encode()
    return struct.pack("<I", len(b)) + b


def create_event(name: str, symbol: str, uri: str, mint: bytes, curve: bytes, user: bytes, creator: bytes,
                 ts: int, vtok: int, vsol: int, rtok: int, supply: int, token_program: bytes) -> bytes:
    """CreateEvent as of Oct 2026 (2WpWr…): … token_program, is_mayhem_mode, is_cashback_enabled,
    quote_mint (zero: SOL), virtual_quote_reserves, then 9 zero bytes."""
    return CREATE + _string(name) + _string(symbol) + _string(uri) + mint + curve + user + creator + struct.pack(
        "<qQQQQ", ts, vtok, vsol, rtok, supply) + token_program + _create_tail(vsol)


def _create_tail(vsol: int) -> bytes:
    return _CREATE_TAIL_S.pack(0, 0, vsol)


_CREATE_TAIL_S = struct.Struct("<BB32xQ9x")
_Q0 = bytes(32)


def complete_event(user: bytes, mint: bytes, curve: bytes, ts: int) -> bytes:
    """CompleteEvent with the 2026-05 quote_mint (zero: SOL)."""
    return COMPLETE + user + mint + curve + struct.pack("<q", ts) + _Q0


def migration_event(user: bytes, mint: bytes, mint_amount: int, sol_amount: int, fee: int, curve: bytes,
                    ts: int, pool: bytes) -> bytes:
    """CompletePumpAmmMigrationEvent: user, mint, mint_amount, sol_amount, pool_migration_fee,
    bonding_curve, timestamp, pool (160 bytes)."""
    return MIGRATION + user + mint + struct.pack("<QQQ", mint_amount, sol_amount, fee) + curve + struct.pack(
        "<q", ts) + pool


_SWAP_HEAD = struct.Struct("<q13Q")
_BUY_TAIL = struct.Struct("<32sQQBQQQqQ")
_SELL_TAIL = struct.Struct("<32sQQ")


def buy_event(ts: int, base_out: int, max_quote_in: int, user_base: int, user_quote: int, pool_base: int,
              pool_quote: int, quote_in: int, lp_bps: int, lp_fee: int, proto_bps: int, proto_fee: int,
              quote_in_with_lp: int, user_quote_in: int, keys: bytes, creator: bytes, creator_bps: int,
              creator_fee: int, volume: int) -> bytes:
    """BuyEvent; ``keys`` = pool, user, user_base_ta, user_quote_ta, fee_recipient, fee_recipient_ta."""
    return b"".join((BUY_EVENT, _SWAP_HEAD.pack(
        ts, base_out, max_quote_in, user_base, user_quote, pool_base, pool_quote, quote_in, lp_bps, lp_fee,
        proto_bps, proto_fee, quote_in_with_lp, user_quote_in,
    ), keys, _BUY_TAIL.pack(creator, creator_bps, creator_fee, 1, 0, 0, volume, ts, base_out), _IX_BUY[:-1]))


def sell_event(ts: int, base_in: int, min_quote_out: int, user_base: int, user_quote: int, pool_base: int,
               pool_quote: int, quote_out: int, lp_bps: int, lp_fee: int, proto_bps: int, proto_fee: int,
               quote_out_wo_lp: int, user_quote_out: int, keys: bytes, creator: bytes, creator_bps: int,
               creator_fee: int) -> bytes:
    return b"".join((SELL_EVENT, _SWAP_HEAD.pack(
        ts, base_in, min_quote_out, user_base, user_quote, pool_base, pool_quote, quote_out, lp_bps, lp_fee,
        proto_bps, proto_fee, quote_out_wo_lp, user_quote_out,
    ), keys, _SELL_TAIL.pack(creator, creator_bps, creator_fee)))


def create_pool_event(ts: int, creator: bytes, base_mint: bytes, quote_mint: bytes, base_in: int, quote_in: int,
                      lp_out: int, pool: bytes, lp_mint: bytes, user_base: bytes, user_quote: bytes,
                      coin_creator: bytes) -> bytes:
    return CREATE_POOL_EVENT + struct.pack("<qH", ts, 0) + creator + base_mint + quote_mint + struct.pack(
        "<BBQQQQQQQB", 6, 9, base_in, quote_in, base_in, quote_in, 100, lp_out + 100, lp_out, 255,
    ) + pool + lp_mint + user_base + user_quote + coin_creator + b"\x00"


def cpi(event: bytes) -> bytes:
    """The self-CPI instruction data carrying ``event``."""
    return EVENT_TAG + event


def log(event: bytes) -> bytes:
    """The ``Program data:`` log line (UTF-8 bytes, as the shape encoder takes them)."""
    return b"Program data: " + binascii.b2a_base64(event, newline=False)
