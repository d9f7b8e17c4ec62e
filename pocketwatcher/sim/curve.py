"""The pump.fun bonding curve, in the program's integer arithmetic (PROTOCOL_FACTS §2.4-2.5).

Constant product on *virtual* reserves. A buy names the tokens it wants; the program
charges ``floor(tokens × vS / (vT − tokens)) + 1`` lamports, then fees of
``ceil(sol × bps / 10 000)`` on top (95 bps protocol + 30 bps creator, the 2026 bonding
curve tier). A sell returns ``floor(tokens × vS / (vT + tokens))`` minus the same fees.
A buy larger than the tokens left is capped to them; the curve completes when
``real_token_reserves`` reaches 0 (793.1 M tokens sold, ≈ 85 SOL raised, market cap
≈ 410.9 SOL, from ≈ 27.96 SOL at launch).
"""

from __future__ import annotations

from dataclasses import dataclass

INITIAL_VIRTUAL_TOKEN = 1_073_000_000_000_000
INITIAL_VIRTUAL_SOL = 30_000_000_000
INITIAL_REAL_TOKEN = 793_100_000_000_000
TOTAL_SUPPLY = 1_000_000_000_000_000
TOKEN_DECIMALS = 6
FEE_BPS = 95
CREATOR_FEE_BPS = 30
POOL_MIGRATION_FEE = 15_000_001


def ceil_fee(amount: int, bps: int) -> int:
    return -(-amount * bps // 10_000)


@dataclass(slots=True)
class Quote:
    tokens: int
    sol: int  # the TradeEvent's sol_amount (fees excluded)
    fee: int
    creator_fee: int

    @property
    def total(self) -> int:
        """Lamports the user pays (buy) or the gross before fees (sell)."""
        return self.sol + self.fee + self.creator_fee


@dataclass(slots=True)
class Curve:
    virtual_token: int = INITIAL_VIRTUAL_TOKEN
    virtual_sol: int = INITIAL_VIRTUAL_SOL
    real_token: int = INITIAL_REAL_TOKEN
    real_sol: int = 0
    supply: int = TOTAL_SUPPLY
    complete: bool = False

    def buy_quote(self, tokens: int) -> Quote:
        """Cost of buying ``tokens`` (capped to what is left on the curve)."""
        tokens = min(tokens, self.real_token)
        if tokens <= 0:
            raise ValueError("nothing left to buy on this curve")
        sol = tokens * self.virtual_sol // (self.virtual_token - tokens) + 1
        return Quote(tokens, sol, -(-sol * FEE_BPS // 10_000), -(-sol * CREATOR_FEE_BPS // 10_000))  # ceil_fee

    def tokens_for_sol(self, spend: int) -> int:
        """Tokens a budget of ``spend`` lamports (fees included) buys, at most what is left."""
        net = spend * 10_000 // (10_000 + FEE_BPS + CREATOR_FEE_BPS)
        tokens = net * self.virtual_token // (self.virtual_sol + net)
        return min(tokens, self.real_token)

    def sell_quote(self, tokens: int) -> Quote:
        sol = tokens * self.virtual_sol // (self.virtual_token + tokens)
        return Quote(tokens, sol, -(-sol * FEE_BPS // 10_000), -(-sol * CREATOR_FEE_BPS // 10_000))  # ceil_fee

    def apply_buy(self, q: Quote) -> None:
        self.virtual_token -= q.tokens
        self.real_token -= q.tokens
        self.virtual_sol += q.sol
        self.real_sol += q.sol
        if self.real_token == 0:
            self.complete = True

    def apply_sell(self, q: Quote) -> None:
        if q.sol > self.real_sol:
            raise ValueError("sell would take more SOL than the curve holds")
        self.virtual_token += q.tokens
        self.real_token += q.tokens
        self.virtual_sol -= q.sol
        self.real_sol -= q.sol

    def market_cap(self) -> int:
        """Market cap in lamports: vS × supply / vT (pump's ``bondingCurveMarketCap``)."""
        return self.virtual_sol * self.supply // self.virtual_token

    def market_cap_sol(self) -> float:
        return self.virtual_sol * self.supply / self.virtual_token / 1e9

    def progress(self) -> float:
        """Share of the sellable tokens already sold (1.0 = complete)."""
        return 1 - self.real_token / INITIAL_REAL_TOKEN
