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


def test_trade_event_is_the_266_byte_class_and_decodes():
    keys = KeyFactory(1)
    mint, user, fee, creator = (keys.key(x) for x in "abcd")
    e = events.trade_event(mint, 5, 7, True, user, 1_700_000_000, 31, 1_000, 1, 2, fee, 95, 3, creator, 30, 4, 9)
    assert len(e) == 266 and e[:8] == events.TRADE
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
