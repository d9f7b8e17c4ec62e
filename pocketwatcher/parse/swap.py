"""The swap record: one per executed pool swap instruction (CPI hops included).

Amounts are raw integers end to end; only ``price`` and ``mcap_sol`` are floats.
Identity is (signature, ix): storing the same swap twice is a no-op downstream.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from operator import attrgetter

WSOL = "So11111111111111111111111111111111111111112"
USDC = "EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v"
USDT = "Es9vMFrzaCERmJfrF4H2FYD4KCoNkY11McCe8BenwNYB"
# Higher rank = stronger quote. A side that is none of these is never the quote
# unless neither side is (then the input is the quote and the output the token bought).
QUOTE_RANK = {WSOL: 3, USDC: 2, USDT: 1}
PUMP_TOTAL_SUPPLY = 1_000_000_000_000_000  # raw, 6 decimals


@dataclass(slots=True)
class Swap:
    signature: str
    slot: int | None
    block_time: int | None
    ix: str  # instruction path: "3" (top-level) or "3.1" (inner)
    program: str  # pool program short name, never a router
    pool: str | None
    trader: str
    mint: str
    side: str  # "buy" | "sell" of `mint`
    token_amount: int
    token_decimals: int | None
    quote_mint: str
    quote_amount: int
    quote_decimals: int | None = None
    price: float | None = None  # quote per whole token
    block_time_estimated: bool = False
    tx_index: int | None = None  # position in block, when known
    router: str | None = None  # e.g. "jupiter" when the swap ran through one
    fee_payer: str | None = None  # the transaction's fee payer (differs from trader for bots/relayers)
    virtual_sol_reserves: int | None = None  # bonding curves: after the trade
    virtual_token_reserves: int | None = None
    mcap_sol: float | None = None
    fees: dict[str, int] = field(default_factory=dict)

    @property
    def id(self) -> str:
        return f"{self.signature}:{self.ix}"

    def to_dict(self) -> dict:
        return asdict(self)

    def __reduce__(self):
        # pickled by position: the runner's parse process sends thousands a second, and
        # the pickling dataclasses gives slotted classes calls fields() per object
        return (Swap, _swap_values(self))


_swap_values = attrgetter(*(f.name for f in fields(Swap)))


def compute_price(token_amount: int, token_decimals: int | None, quote_amount: int,
                  quote_decimals: int | None) -> float | None:
    if not token_amount or token_decimals is None or quote_decimals is None:
        return None
    if not (0 <= token_decimals <= 255 and 0 <= quote_decimals <= 255):  # mint decimals are a u8
        return None
    return (quote_amount / 10**quote_decimals) / (token_amount / 10**token_decimals)


def orient(in_mint: str, in_amount: int, out_mint: str, out_amount: int):
    """Decide (mint, side, token_amount, quote_mint, quote_amount) from the two legs.

    ``in`` is what the trader gave, ``out`` what the trader received.
    """
    rin = QUOTE_RANK.get(in_mint, 0)
    rout = QUOTE_RANK.get(out_mint, 0)
    if rout > rin:  # trader received the quote: sold in_mint
        return in_mint, "sell", in_amount, out_mint, out_amount
    # trader paid the quote (or neither is a quote: input is the quote, side buy)
    return out_mint, "buy", out_amount, in_mint, in_amount
