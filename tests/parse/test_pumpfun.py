"""pump.fun specifics: every TradeEvent version, the log fallback, lifecycle events, curve math."""

from __future__ import annotations

import base64
import struct

import pytest
from conftest import fixture_files
from solders.pubkey import Pubkey

from pocketwatcher.parse import STATS, parse_transaction, parse_transaction_full, parse_view
from pocketwatcher.parse.loaders import load_file
from pocketwatcher.parse.programs.pumpfun import EVENT_TAG, TRADE_EVENT, decode_trade_event
from pocketwatcher.parse.programs.registry import PUMPFUN
from pocketwatcher.parse.rpc_view import view_from_rpc
from pocketwatcher.parse.swap import WSOL

MINT = Pubkey.new_unique()
USER = Pubkey.new_unique()


def _v1(sol=1_000_000_000, tok=34_612_903_225_806, buy=True, vs=31_000_000_000, vt=1_038_387_096_774_194):
    return (bytes(MINT) + struct.pack("<QQ?", sol, tok, buy) + bytes(USER)
            + struct.pack("<qQQQQ", 1_700_000_000, vs, vt, 1_000_000_000, 758_487_096_774_194))


def _v2():
    return _v1() + bytes(Pubkey.new_unique()) + struct.pack("<QQ", 95, 9_500_000) + bytes(
        Pubkey.new_unique()) + struct.pack("<QQ", 30, 3_000_000)


def _v3():
    return _v2() + struct.pack("<?QQQq", True, 1, 2, 3, 4)


def _v4(name=b"buy"):
    return _v3() + struct.pack("<I", len(name)) + name


def _v6():
    return _v4() + b"\x00" + struct.pack("<QQ", 0, 0)


@pytest.mark.parametrize("payload,size", [(_v1(), 121), (_v2(), 217), (_v3(), 250), (_v4(), 257),
                                          (_v6(), 274), (_v6() + b"\x00" * 8, 282)])
def test_trade_event_every_version(payload, size):
    assert len(payload) == size
    ev = decode_trade_event(payload)
    assert ev is not None
    assert (ev.mint, ev.user, ev.is_buy) == (str(MINT), str(USER), True)
    assert (ev.sol_amount, ev.token_amount) == (1_000_000_000, 34_612_903_225_806)
    assert ev.virtual_sol_reserves == 31_000_000_000
    if size >= 217:
        assert (ev.fee, ev.creator_fee, ev.fee_bps, ev.creator_fee_bps) == (9_500_000, 3_000_000, 95, 30)
    if size >= 257:
        assert ev.ix_name == "buy"


@pytest.mark.parametrize("cut", [0, 1, 60, 120])
def test_truncated_trade_event_is_rejected_not_raised(cut):
    assert decode_trade_event(_v1()[:cut]) is None


def _pump_tx(name_part: str) -> dict:
    for p in fixture_files():
        if name_part in p.name:
            return load_file(p)[0]
    raise AssertionError(name_part)


def _view_without_event_cpis(name_part: str):
    view = view_from_rpc(_pump_tx(name_part))
    n = len(view.ixs)
    view.ixs = [ix for ix in view.ixs
                if not (view.keys[ix.program] == PUMPFUN and ix.data[:8] == EVENT_TAG)]
    assert len(view.ixs) < n
    return view


@pytest.mark.parametrize("name", ["0xfnzero-solana-streamer__pumpfun_direct_tx",
                                  "0xjeffro-tx-parser__pumpfun_buy_bundle",
                                  "0xfnzero-solana-streamer__pumpfun_cpi_tx"])
def test_log_fallback_when_event_cpi_is_missing(name):
    want = parse_transaction(_pump_tx(name))
    assert want and all(s.program == "pumpfun" for s in want)
    got = parse_view(_view_without_event_cpis(name)).swaps
    key = lambda s: (s.ix, s.mint, s.side, s.token_amount, s.quote_amount, s.trader)  # noqa: E731
    assert [key(s) for s in got] == [key(s) for s in want]


def test_no_event_anywhere_gives_no_swap_and_a_reason():
    view = _view_without_event_cpis("0xfnzero-solana-streamer__pumpfun_direct_tx")
    prefix = "Program data: " + base64.b64encode(TRADE_EVENT).decode()[:8]
    view.logs = [ln for ln in view.logs if not ln.startswith(prefix)]
    before = STATS.reasons["pumpfun_trade_without_event"]
    assert parse_view(view).swaps == []
    assert STATS.reasons["pumpfun_trade_without_event"] == before + 1


def test_create_and_complete_events():
    res = parse_transaction_full(_pump_tx("4WSwDTuvnpcXsFTSjxborTSAUbqmBNiTza9756Jo6N5Wdc7zzz9UdXu"))
    kinds = [e.kind for e in res.events]
    assert kinds == ["create", "complete"]
    create = res.events[0]
    assert create.mint == res.swaps[0].mint and create.name and create.symbol
    # a dev buy that takes the whole curve: 793.1 M tokens, ~85.005 SOL, curve complete
    s = res.swaps[0]
    assert s.token_amount == 793_100_000_000_000
    assert s.virtual_token_reserves == 279_900_000_000_000
    assert s.mcap_sol == pytest.approx(410.9, rel=0.01)


def test_bonding_curve_price_and_mcap_consistent():
    for p in fixture_files():
        for item in load_file(p):
            if not isinstance(item, dict):
                continue
            for s in parse_transaction(item):
                if s.program != "pumpfun" or s.quote_mint != WSOL:
                    continue
                assert s.virtual_sol_reserves and s.virtual_token_reserves
                mcap = s.virtual_sol_reserves * 1e15 / s.virtual_token_reserves / 1e9
                assert s.mcap_sol == pytest.approx(mcap)
                assert 20 < s.mcap_sol < 100_000


def test_migration_event_layout():
    from pocketwatcher.parse.programs.pumpfun import MIGRATION_EVENT, decode_lifecycle

    u, m, c, p = (bytes([i]) * 32 for i in (1, 2, 3, 4))
    ev = u + m + struct.pack("<QQQ", 206_900_000_000_000, 85 * 10**9, 15_000_001) + c + \
        struct.pack("<q", 1_700_000_000) + p
    d = decode_lifecycle(MIGRATION_EVENT, ev)
    assert d is not None and d["timestamp"] == 1_700_000_000
    assert d["bonding_curve"] == str(Pubkey.from_bytes(c)) and d["pool"] == str(Pubkey.from_bytes(p))
    assert decode_lifecycle(MIGRATION_EVENT, ev + bytes(32))["pool"] == d["pool"]  # newer, longer
