"""The stream record format: exact round trips, old records, integers past 64 bits."""

from __future__ import annotations

import json

import pytest

from pocketwatcher.enrich.wallets import Enrichment
from pocketwatcher.parse import SolTransfer, Swap
from pocketwatcher.parse.programs.pumpfun import TokenEvent
from runner.records import decode, encode_event, encode_swap, encode_transfer


def _swap(**kw) -> Swap:
    base = dict(signature="5" * 88, slot=300_000_123, block_time=1_760_000_000, ix="3.1", program="pumpfun",
                pool="curve", trader="T" * 44, mint="M" * 44, side="buy", token_amount=2**64 - 1,
                token_decimals=6, quote_mint="So11111111111111111111111111111111111111112",
                quote_amount=123_456_789, quote_decimals=9, price=1.2345678901234567e-08,
                block_time_estimated=True, tx_index=17, router="jupiter", fee_payer="F" * 44,
                virtual_sol_reserves=30_000_000_405, virtual_token_reserves=1_072_999_999_999_595,
                mcap_sol=28.5, fees={"protocol": 95, "creator": 5})
    base.update(kw)
    return Swap(**base)


def test_swap_round_trips_exactly_with_its_stamps():
    s = _swap()
    kind, (back, enr, rx) = decode(encode_swap(s, Enrichment(1_700_000_000, "c:abc", False), 1764400000.25))
    assert kind == "swap" and back == s
    assert enr == Enrichment(1_700_000_000, "c:abc", False) and rx == 1764400000.25
    kind, (back, enr, rx) = decode(encode_swap(_swap(router=None, fees={}, block_time=None), None))
    assert back.router is None and back.fees == {} and enr is None and rx is None


def test_integers_past_64_bits_survive():
    s = _swap(quote_amount=2**70)
    assert decode(encode_swap(s, None))[1][0].quote_amount == 2**70


def test_records_of_the_earlier_dict_layout_still_decode():
    s = _swap()
    old = json.dumps({"t": "swap", "s": {k: getattr(s, k) for k in s.__dataclass_fields__},
                      "e": [None, "c:x", True]}).encode()
    kind, (back, enr, _rx) = decode(old)
    assert back == s and enr == Enrichment(None, "c:x", True)


def test_events_and_transfers_round_trip():
    t = SolTransfer("sig", 5, 1700, "2", "A" * 44, "B" * 44, 10**18, 3)
    assert decode(encode_transfer(t)) == ("transfer", t)
    ev = TokenEvent(kind="create", signature="sig", slot=5, block_time=1700, ix="1", program="pumpfun", mint="M" * 44,
                    user="U" * 44, creator="C" * 44, name="Dog", symbol="DOG")
    kind, (back, x) = decode(encode_event(ev, 4))
    assert kind == "event" and back.to_dict() == ev.to_dict() and x == 4


@pytest.mark.parametrize("payload", [b"not json", b'{"t": "weird"}', b"[]"])
def test_bad_records_raise_a_clear_error(payload):
    with pytest.raises((ValueError, KeyError, TypeError)):
        decode(payload)
