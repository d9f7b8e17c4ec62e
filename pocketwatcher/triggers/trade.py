"""The engine's input record: one swap, in SOL terms, with its stream-wide wallet stamps."""

from __future__ import annotations

from dataclasses import dataclass

WSOL = "So11111111111111111111111111111111111111112"


@dataclass(slots=True)
class Trade:
    id: str  # "signature:ix" — the swap's identity
    signature: str
    ix: str
    slot: int
    t: int  # block_time, unix seconds (event time)
    mint: str
    trader: str
    is_buy: bool
    tokens: int  # raw token amount
    lamports: int  # SOL that moved, in lamports (0 when the quote is not SOL): integer, so
    #                window sums are exact whatever order trades enter and leave
    price: float | None  # SOL per whole token
    program: str
    vsol: int | None = None  # bonding curves: virtual reserves after the trade
    vtok: int | None = None
    mcap: float | None = None  # SOL, when the parser knew it (pump.fun curve)
    first_seen: int | None = None  # enrichment: when the trader was first seen
    cluster: str | None = None  # enrichment: the trader's wallet cluster
    smart: bool = False  # enrichment: a smart-money wallet

    @property
    def sol(self) -> float | None:
        return self.lamports / 1e9 if self.price is not None else None

    @classmethod
    def from_swap(cls, s, enrichment=None) -> Trade:
        lamports = s.quote_amount if s.quote_mint == WSOL else 0
        return cls(
            f"{s.signature}:{s.ix}", s.signature, s.ix, s.slot or 0, s.block_time or 0, s.mint, s.trader,
            s.side == "buy", s.token_amount, lamports, s.price if s.quote_mint == WSOL else None, s.program,
            s.virtual_sol_reserves, s.virtual_token_reserves, s.mcap_sol,
            enrichment.first_seen if enrichment else None, enrichment.cluster if enrichment else None,
            enrichment.smart if enrichment else False,
        )

    @classmethod
    def from_row(cls, r: dict) -> Trade:
        """From an (enriched) Parquet/SQL swap row."""
        wsol = r["quote_mint"] == WSOL
        return cls(
            f"{r['signature']}:{r['ix']}", r["signature"], r["ix"], r["slot"] or 0, r["block_time"] or 0,
            r["mint"], r["trader"], r["side"] == "buy", r["token_amount"],
            r["quote_amount"] if wsol else 0, r["price"] if wsol else None, r["program"],
            r.get("virtual_sol_reserves"), r.get("virtual_token_reserves"), r.get("mcap_sol"),
            r.get("first_seen"), r.get("cluster"), bool(r.get("smart") or False),
        )


def ix_key(ix: str) -> tuple[int, int]:
    """Sort key of an instruction path: "3" < "3.0" < "3.2" < "3.10" < "4"."""
    outer, _, inner = ix.partition(".")
    return int(outer), (int(inner) + 1 if inner else 0)
