"""The hand-written wire format and event layouts, read back by the real stubs and decoders."""

from __future__ import annotations

import random

import pytest
from google.protobuf.internal.encoder import _VarintBytes

from pocketwatcher.parse.grpc_view import _ui_amount_string, encode_tx_error
from pocketwatcher.parse.programs.pumpfun import decode_lifecycle, decode_trade_event
from pocketwatcher.proto import geyser_pb2, solana_storage_pb2
from pocketwatcher.sim import events
from pocketwatcher.sim.accounts import Account, KeyFactory, b58, pump_suffix
from pocketwatcher.sim.shape import Ix, Shape, Spec
from pocketwatcher.sim.wire import (
    block_meta_update,
    created_at_field,
    custom_error,
    slot_update,
    ui_amount_string,
    ui_token_amount,
    varint,
)


def test_varint_matches_protobuf():
    rng = random.Random(3)
    for bits in (1, 7, 8, 14, 15, 21, 28, 29, 35, 42, 43, 56, 63, 64):
        for _ in range(200):
            n = rng.getrandbits(bits)
            assert varint(n) == _VarintBytes(n)


def test_ui_token_amount_reads_back():
    for amount, dec in ((0, 6), (1, 6), (999_999, 6), (1_000_000, 6), (206_900_000_000_000, 6), (123_456_789, 9)):
        assert ui_amount_string(amount, dec) == _ui_amount_string(amount, dec)
        msg = solana_storage_pb2.UiTokenAmount()
        msg.ParseFromString(ui_token_amount(amount, dec))
        assert (int(msg.amount), msg.decimals, msg.ui_amount_string) == (amount, dec, _ui_amount_string(amount, dec))
        assert msg.ui_amount == pytest.approx(amount / 10**dec)


def test_error_bytes_match_the_parser_encoding():
    assert custom_error(3, 6002) == encode_tx_error({"InstructionError": [3, {"Custom": 6002}]})


def test_slot_and_block_meta_updates():
    f = b"\x0a\x05pumps"
    u = geyser_pb2.SubscribeUpdate()
    u.ParseFromString(block_meta_update(f, 460_000_123, "abc", 1_793_491_249, 421_000_000, 460_000_121, "def",
                                        1_234, 77, 1_793_491_249.456789))
    bm = u.block_meta
    assert list(u.filters) == ["pumps"]
    assert (bm.slot, bm.blockhash, bm.block_time.timestamp, bm.block_height.block_height, bm.parent_slot,
            bm.parent_blockhash, bm.executed_transaction_count, bm.entries_count) == (
        460_000_123, "abc", 1_793_491_249, 421_000_000, 460_000_121, "def", 1_234, 77)
    assert (u.created_at.seconds, u.created_at.nanos) == (1_793_491_249, 456_789_000)
    u.ParseFromString(slot_update(f, 460_000_123, 460_000_121, 0, 1_793_491_250.0))
    assert (u.slot.slot, u.slot.parent, u.slot.status) == (460_000_123, 460_000_121, 0)
    t = geyser_pb2.SubscribeUpdate()
    t.ParseFromString(created_at_field(1_793_491_249.000001))
    assert (t.created_at.seconds, t.created_at.nanos) == (1_793_491_249, 1_000)


def _mainnet_event(name: str, prefix: str) -> bytes:
    import base64
    import re

    from conftest import SHARED

    (path,) = (SHARED / "fixtures" / "tx").glob(f"*{name}*")
    return base64.b64decode(re.findall(rf"Program data: ({prefix}[A-Za-z0-9+/=]+)", path.read_text())[0])


def test_trade_event_is_the_oct_2026_layout_byte_for_byte():
    """The simulator's TradeEvent, given a real Oct 2026 event's fields (4WSwD…: create_v2 +
    a buy of the whole curve), is that event's 382 bytes, but for last_update_timestamp
    (the buyer's volume history, which the simulator keeps its own way)."""
    import struct

    real = _mainnet_event("4WSwD", "vdt/")
    p = real[8:]

    def u(o):
        return struct.unpack_from("<Q", p, o)[0]

    mine = events.trade_event(p[0:32], u(32), u(40), p[48] == 1, p[49:81], struct.unpack_from("<q", p, 81)[0],
                              u(89), u(97), u(105), u(113), p[121:153], u(153), u(161), p[169:201], u(201),
                              u(209), u(234))
    assert len(mine) == len(real) == 382
    assert mine[:8 + 242] == real[:8 + 242] and mine[8 + 250:] == real[8 + 250:]


def test_create_and_complete_events_are_the_oct_2026_layouts():
    """CreateEvent (2WpWr…, a mayhem coin): after token_program come is_mayhem_mode,
    is_cashback_enabled, quote_mint (zero: SOL), virtual_quote_reserves and 9 zero bytes."""
    real = _mainnet_event("2WpWr", "G3KpTd7rY3")[8:]
    mine = events.create_event("a", "b", "c", bytes(32), bytes(32), bytes(32), bytes(32), 1, 2, 30 * 10**9, 3, 4,
                               b"T" * 32)[8:]
    assert len(mine) == 3 * 4 + 3 + 4 * 32 + 40 + 32 + 51
    assert mine[-83:-51] == b"T" * 32 and mine[-51] == 0  # token_program, not a mayhem coin
    assert mine[-50:] == real[-50:]  # the same tail as the real coin's
    assert len(events.complete_event(bytes(32), bytes(32), bytes(32), 1)) == 8 + 136


def test_trade_event_decodes():
    keys = KeyFactory(1)
    mint, user, fee, creator = (keys.key(x) for x in "abcd")
    e = events.trade_event(mint, 5, 7, True, user, 1_700_000_000, 31, 1_000, 1, 2, fee, 95, 3, creator, 30, 4, 9)
    assert e[:8] == events.TRADE
    ev = decode_trade_event(e[8:])
    assert (ev.mint, ev.sol_amount, ev.token_amount, ev.is_buy, ev.user, ev.fee, ev.creator_fee, ev.ix_name) == (
        b58(mint), 5, 7, True, b58(user), 3, 4, "buy")
    s = decode_trade_event(events.trade_event(mint, 5, 7, False, user, 1, 31, 1_000, 1, 2, fee, 95, 3, creator, 30,
                                              4, 9)[8:])
    assert (s.is_buy, s.ix_name) == (False, "sell")


def test_create_event_decodes_and_migration_event_follows_the_idl():
    keys = KeyFactory(2)
    mint, curve, user, pool = (keys.key(x) for x in "abcd")
    c = events.create_event("Moon Cat", "MOOCA", "https://x", mint, curve, user, user, 9, 1, 2, 3, 4, bytes(32))
    d = decode_lifecycle(c[:8], c[8:])
    assert (d["kind"], d["name"], d["symbol"], d["mint"], d["creator"], d["timestamp"]) == (
        "create", "Moon Cat", "MOOCA", b58(mint), b58(user), 9)
    m = events.migration_event(user, mint, 206_900_000_000_000, 85 * 10**9, 15_000_001, curve, 11, pool)
    p = m[8:]  # user, mint, mint_amount, sol_amount, pool_migration_fee, bonding_curve, timestamp, pool
    assert len(p) == 160 and p[88:120] == curve and p[128:160] == pool


def test_mints_end_in_pump():
    keys = KeyFactory(5)
    for i in range(50):
        assert b58(pump_suffix(keys.key(f"m{i}"))).endswith("pump")


def test_cpi_accounts_must_be_passed_to_the_top_level_instruction():
    consts = {"p": Account(bytes(31) + b"\x01"), "q": Account(bytes(31) + b"\x02")}
    bad = Spec(("user",), frozenset({"user"}), [Ix("@p", ("user",), b"", children=[Ix("@q", ("user",))])], 10_000)
    with pytest.raises(ValueError, match="not passed"):
        Shape(bad, consts)


def test_accounts_baked_into_shapes_never_change():
    from pocketwatcher.sim.config import SimConfig
    from pocketwatcher.sim.market import Market

    m = Market(SimConfig(launches_per_minute=40), 4, 1.5)
    fixed = {name: a.lam for name, a in m.enc.consts.items() if a.fixed}
    for _ in m.run():
        pass
    assert m.enc.transactions > 500
    assert {name: m.enc.consts[name].lam for name in fixed} == fixed


def test_shape_variants_encode_as_shapes_compiled_from_scratch():
    """Shapes that differ only in compute budget or value lengths share one compiled structure."""
    from pocketwatcher.sim.config import SimConfig
    from pocketwatcher.sim.market import Market

    runs = []
    for share in (True, False):
        m = Market(SimConfig(launches_per_minute=40), 6, 1.5)
        m.enc.share_structures = share
        runs.append([u for out in m.run() for u in out])
        if share:
            assert len(m.enc._structures) < m.enc.shapes
    assert runs[0] == runs[1]


def test_rent_is_the_2026_rate_seen_on_mainnet():
    """MrD2… (create_v2 + a first buy, Oct 2026) pays exactly these rent minimums: two
    Token-2022 ATAs, the buyer's volume accumulator, the bonding curve (+ the buy's SOL) and
    the mint with its metadata (234 bytes + a 176-byte top-up)."""
    import json

    from conftest import SHARED

    from pocketwatcher.sim.accounts import T22_RENT, rent
    from pocketwatcher.sim.entities import CURVE_RENT, UVA_RENT

    (path,) = (SHARED / "fixtures" / "tx").glob("*MrD2*")
    meta = json.loads(path.read_text())["meta"]
    gains = sorted(b - a for a, b in zip(meta["preBalances"], meta["postBalances"], strict=True) if b > a)
    assert T22_RENT == 1_513_840 and gains.count(T22_RENT) == 2
    assert UVA_RENT in gains and CURVE_RENT + 420_000_000 in gains
    assert rent(234) + 5_080 * 176 in gains  # the mint
