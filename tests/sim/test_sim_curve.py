"""Curve and pool arithmetic, checked against the facts file and real mainnet events."""

from __future__ import annotations

import pytest

from pocketwatcher.sim.amm import Pool
from pocketwatcher.sim.curve import (
    INITIAL_REAL_TOKEN,
    INITIAL_VIRTUAL_SOL,
    INITIAL_VIRTUAL_TOKEN,
    Curve,
    ceil_fee,
)


def test_buy_is_the_programs_integer_formula():
    c = Curve()
    tokens = 12_345_678_901
    q = c.buy_quote(tokens)
    assert q.sol == tokens * INITIAL_VIRTUAL_SOL // (INITIAL_VIRTUAL_TOKEN - tokens) + 1
    assert q.fee == -(-q.sol * 95 // 10_000)
    assert q.creator_fee == -(-q.sol * 30 // 10_000)


def test_whole_curve_buy_matches_a_mainnet_trade_event():
    # 4WSwDTuv...: create_v2 + a buy of all 793.1 M tokens (TradeEvent: sol 85005359057,
    # fee 807550912 at 95 bps, creator fee 255016078 at 30 bps, vS after 115005359057)
    c = Curve()
    q = c.buy_quote(10**18)  # more than is left: capped
    assert (q.tokens, q.sol, q.fee, q.creator_fee) == (793_100_000_000_000, 85_005_359_057, 807_550_912,
                                                       255_016_078)
    c.apply_buy(q)
    assert c.complete and c.real_token == 0
    assert c.virtual_token == 279_900_000_000_000 and c.virtual_sol == 115_005_359_057


def test_sell_formula_and_round_trip_never_pays_out_more():
    c = Curve()
    q = c.buy_quote(c.tokens_for_sol(3 * 10**9))
    c.apply_buy(q)
    s = c.sell_quote(q.tokens)
    assert s.sol == q.tokens * c.virtual_sol // (c.virtual_token + q.tokens)
    assert s.sol <= q.sol
    c.apply_sell(s)
    assert c.real_token == INITIAL_REAL_TOKEN and c.real_sol == q.sol - s.sol >= 0


def test_budget_is_respected():
    c = Curve()
    for spend in (10**5, 10**7, 123_456_789, 5 * 10**9, 50 * 10**9):
        q = c.buy_quote(c.tokens_for_sol(spend))
        assert q.total <= spend + 2
        c.apply_buy(q)


def test_completion_at_793_1_million_tokens_and_market_caps():
    c = Curve()
    assert c.market_cap_sol() == pytest.approx(27.96, abs=0.005)
    while not c.complete:
        c.apply_buy(c.buy_quote(c.tokens_for_sol(7 * 10**9)))
    assert INITIAL_REAL_TOKEN - c.real_token == 793_100_000_000_000
    assert c.progress() == 1.0
    assert c.market_cap_sol() == pytest.approx(410.9, abs=0.1)
    assert c.real_sol == pytest.approx(85.005e9, rel=1e-4)
    with pytest.raises(ValueError):
        c.buy_quote(1)


def test_fees_round_up():
    assert ceil_fee(1, 95) == 1 and ceil_fee(10_000, 95) == 95 and ceil_fee(10_001, 95) == 96


def test_pumpswap_buy_matches_a_mainnet_buy_event():
    # jiangxiaop pumpswap-buy: reserves before 11366011985444 / 2872707314402, base out 1806759473
    p = Pool(11_366_011_985_444, 2_872_707_314_402)
    s = p.buy_quote(1_806_759_473)
    assert (s.quote, s.lp_fee, s.protocol_fee, s.creator_fee) == (456_722_759, 913_446, 228_362, 228_362)
    assert s.pool_quote == 457_636_205  # quote_amount_in_with_lp_fee: the user -> pool vault transfer
    p.apply(s)
    assert (p.base_reserve, p.quote_reserve) == (11_366_011_985_444 - 1_806_759_473, 2_872_707_314_402 + 457_636_205)


def test_pumpswap_sell_matches_a_mainnet_sell_event():
    # jiangxiaop pumpfun-migrate (a PumpSwap sell): quote_out 3538673901, lp 7077348, protocol and
    # creator 1769337 each, user receives 3528057879
    p = Pool(200_855_106_509_653, 87_553_634_000)
    s = p.sell_quote(8_459_930_498_924)
    assert (s.quote, s.lp_fee, s.protocol_fee, s.creator_fee) == (3_538_673_901, 7_077_348, 1_769_337, 1_769_337)
    assert s.user_quote == s.pool_quote == 3_528_057_879
    p.apply(s)
    assert p.quote_reserve == 87_553_634_000 - (3_538_673_901 - 7_077_348)


def test_pool_budget_is_respected():
    p = Pool(206_900_000_000_000, 84_990_359_056)
    for spend in (10**6, 10**8, 3 * 10**9):
        s = p.buy_quote(p.base_for_quote(spend))
        assert s.user_quote <= spend + 3
