"""Simulator settings: rates and archetype shares, with the reasoning behind each default.

Mainnet (PROTOCOL_FACTS §8): ~0.25–0.8 pump.fun launches per second, ~70 % of tokens never
trade after day one, 0.7–2.1 % graduate, ~250–400 pump-related transactions per second,
more failed than successful trades on new tokens. The defaults simulate a slice of that
market small enough for a demo capture (a few minutes ≤ ~5 MB) yet dense enough that every
archetype shows up within minutes:

- ``launches_per_minute`` 20: about a third of the 2025–26 mainnet average.
- Archetype shares: most launches are **duds** (60 %) — a dev buy and a handful of trades;
  **rugs** 12 % (dev and bundle dump after a pump); **bundled** launches 8 % and
  **sniper swarms** 5 % (both common on the busiest days); **slow** organic growers 10 %;
  **runners** 3 % (complete the curve, migrate, keep trading on PumpSwap — above the
  0.7–2.1 % mainnet graduation rate so that a short run shows one); **community
  takeovers** 2 %.
- ``failed_share`` 0.30: slippage and late-buy failures; mainnet is higher on fresh tokens,
  lower overall.
- ``v0_share`` 0.40: ~half of mainnet pump transactions use lookup tables.
- ``shards`` 2: the market is simulated as two independent halves that share the clock
  and the blocks, each with half of the launches, warm tokens and multi-wallet actors and
  retail of its own (no actor trades in both halves), generated side by side on two cores
  and merged into one stream (:mod:`pocketwatcher.sim.stream`). The output depends on
  ``shards`` (it is part of the run's definition), not on how many cores run them.
- ``warm_tokens`` 6: the stream is tapped mid-market, so a few tokens already exist when
  the capture starts (two graduated pools, one runner near completion, three growers);
  without them the first minutes would only hold launches.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator

ARCHETYPES = ("dud", "rug", "slow", "runner", "bundled", "sniper_swarm", "cto")
DEFAULT_LAUNCHES_PER_MINUTE = 20.0

DEFAULT_SHARES = {
    "dud": 0.60,
    "rug": 0.12,
    "slow": 0.10,
    "runner": 0.03,
    "bundled": 0.08,
    "sniper_swarm": 0.05,
    "cto": 0.02,
}


class SimConfig(BaseModel):
    """Rates and shares of one simulation run. Unknown keys are rejected by name."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    launches_per_minute: float = Field(DEFAULT_LAUNCHES_PER_MINUTE, gt=0, description="new tokens per simulated minute")
    shares: dict[str, float] = Field(default_factory=lambda: dict(DEFAULT_SHARES),
                                     description="archetype -> share of launches (sums to 1)")
    failed_share: float = Field(0.30, ge=0, lt=0.9, description="target share of failed transactions")
    v0_share: float = Field(0.40, ge=0, le=1, description="share of v0 messages with lookup tables")
    warm_tokens: int = Field(6, ge=0, le=50, description="tokens already live when the capture starts")
    # 0.268 s: mainnet's pace in 2026 H2, measured from the fixtures' (slot, block_time) pairs
    # (0.267-0.270 s over four spans of 2,000-400,000 slots, Aug-Oct 2026); the 400 ms target
    # of the facts file's §7 is no longer what blocks do
    slot_seconds: float = Field(0.268, gt=0.05, description="target slot time")
    slot_jitter: float = Field(0.03, ge=0, description="standard deviation of the slot time, seconds")
    skip_rate: float = Field(0.04, ge=0, lt=0.5, description="share of slots whose leader produced no block")
    start_unix: int = Field(1_793_491_200, description="wall time of the first slot (2026-11-01T00:00Z)")
    start_slot: int = Field(460_000_000, ge=0, description="number of the first slot")
    shards: int = Field(2, ge=1, le=4, description="independent market shards merged into one stream")
    bot_program_share: float = Field(0.5, ge=0, le=1, description="bot trades routed through the bot's program")

    @model_validator(mode="after")
    def _check_shares(self) -> SimConfig:
        unknown = set(self.shares) - set(ARCHETYPES)
        if unknown:
            raise ValueError(f"shares: unknown archetype(s) {sorted(unknown)}; known: {', '.join(ARCHETYPES)}")
        total = sum(self.shares.values())
        if abs(total - 1) > 1e-6 or min(self.shares.values(), default=0) < 0:
            raise ValueError(f"shares must be non-negative and sum to 1 (they sum to {total:.4f})")
        return self
