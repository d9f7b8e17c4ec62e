"""The PumpSwap constant-product pool a graduated token trades in (PROTOCOL_FACTS §3).

Base = the token, quote = wSOL. Fees: LP 20 bps (stays in the pool), protocol 5 bps and
coin creator 5 bps (leave the pool), each ``ceil(quote × bps / 10 000)`` — the documented
GlobalConfig split, chosen over the 2025-09 market-cap tiers for simplicity; every number
is checked against real Buy/Sell events in the tests.

- buy ``base_out``: ``quote_in = ceil(Q × base_out / (B − base_out))``; the user pays
  ``quote_in + lp + protocol + creator``; the pool vault receives ``quote_in + lp``.
- sell ``base_in``: ``quote_out = floor(Q × base_in / (B + base_in))``; the user receives
  ``quote_out − lp − protocol − creator``; the pool vault pays that plus both fees.
"""

from __future__ import annotations

from dataclasses import dataclass

from .curve import ceil_fee

LP_FEE_BPS = 20
PROTOCOL_FEE_BPS = 5
CREATOR_FEE_BPS = 5
_ALL_BPS = LP_FEE_BPS + PROTOCOL_FEE_BPS + CREATOR_FEE_BPS


@dataclass(slots=True)
class SwapQuote:
    base: int
    quote: int  # quote_amount_in (buy) / quote_amount_out (sell), before fees
    lp_fee: int
    protocol_fee: int
    creator_fee: int
    is_buy: bool

    @property
    def user_quote(self) -> int:
        """What the user pays (buy) or receives (sell) in lamports of wSOL."""
        fees = self.protocol_fee + self.creator_fee
        return self.quote + self.lp_fee + fees if self.is_buy else self.quote - self.lp_fee - fees

    @property
    def pool_quote(self) -> int:
        """The pool vault's leg: in on a buy (quote + lp fee), out to the user on a sell."""
        return self.quote + self.lp_fee if self.is_buy else self.user_quote


def _fees(q: int) -> tuple[int, int, int]:
    return ceil_fee(q, LP_FEE_BPS), ceil_fee(q, PROTOCOL_FEE_BPS), ceil_fee(q, CREATOR_FEE_BPS)


@dataclass(slots=True)
class Pool:
    base_reserve: int
    quote_reserve: int

    def buy_quote(self, base_out: int) -> SwapQuote:
        if not 0 < base_out < self.base_reserve:
            raise ValueError(f"base_out {base_out} outside (0, {self.base_reserve})")
        q = -(-self.quote_reserve * base_out // (self.base_reserve - base_out))
        return SwapQuote(base_out, q, *_fees(q), True)

    def base_for_quote(self, spend: int) -> int:
        """Base tokens a budget of ``spend`` lamports (fees included) buys."""
        net = spend * 10_000 // (10_000 + _ALL_BPS)
        return net * self.base_reserve // (self.quote_reserve + net)

    def sell_quote(self, base_in: int) -> SwapQuote:
        q = self.quote_reserve * base_in // (self.base_reserve + base_in)
        return SwapQuote(base_in, q, *_fees(q), False)

    def apply(self, s: SwapQuote) -> None:
        if s.is_buy:
            self.base_reserve -= s.base
            self.quote_reserve += s.quote + s.lp_fee
        else:
            self.base_reserve += s.base
            self.quote_reserve -= s.quote - s.lp_fee

    def price(self) -> float:
        """SOL per whole token."""
        return (self.quote_reserve / 1e9) / (self.base_reserve / 1e6)
