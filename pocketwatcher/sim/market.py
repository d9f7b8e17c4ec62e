"""One shard of the market: its event queue, and the transactions each slot produces.

A run is ``SimConfig.shards`` independent shards (see :mod:`pocketwatcher.sim.stream`, which
runs them side by side and merges their output into one stream). All shards follow one
:class:`Clock`: simulated time advances slot by slot, ~268 ms with jitter, a few percent of
slots skipped (no block; their transactions land in the next one). Within a shard,
everything that happens — launches, trades, funding, migrations — is an event on one heap
ordered by time (ties by insertion), so a seed fully determines the run. Per produced slot
a shard hands on its transactions' bodies with the market time each was sent at; the
merger places them in the block.
"""

from __future__ import annotations

import hashlib
import heapq
import random
from collections.abc import Iterator

from .accounts import KeyFactory
from .agents import Agents
from .config import SimConfig
from .createtx import CreateTx
from .encoder import Encoder
from .launches import Launches
from .pumpswaptx import PumpSwapTx
from .pumptx import PumpTx
from .trading import Trading
from .transfertx import TransferTx
from .truth import Truth


def derive_seed(*parts: object) -> int:
    """A 64-bit seed for one random stream of a run (the clock, a shard's market, its signatures)."""
    return int.from_bytes(hashlib.sha256("/".join(map(str, parts)).encode()).digest()[:8], "little")


class Clock:
    """The slots of a run: every shard and the merger iterate the same sequence.

    Yields ``(slot, start, end)`` per produced slot, in simulated seconds from the start;
    skipped slots are counted in ``skipped``.
    """

    def __init__(self, cfg: SimConfig, seed: int, end: float) -> None:
        self.cfg = cfg
        self.seed = seed
        self.end = end
        self.skipped = 0

    def __iter__(self) -> Iterator[tuple[int, float, float]]:
        cfg = self.cfg
        rng = random.Random(derive_seed("clock", self.seed))
        gauss, random_, mean, jitter, skip = rng.gauss, rng.random, cfg.slot_seconds, cfg.slot_jitter, cfg.skip_rate
        floor = 0.75 * mean  # a leader never produces a block much faster than the target
        t = 0.0
        slot = cfg.start_slot
        while t < self.end:
            dur = gauss(mean, jitter)
            t_end = t + (dur if dur > floor else floor)
            if random_() < skip:
                self.skipped += 1
            else:
                yield slot, t, t_end
            slot += 1
            t = t_end


def block_hash(keys: KeyFactory, slot: int) -> bytes:
    return hashlib.sha256(keys.key(f"blockhash:{slot}")).digest()


class Market:
    """Shard ``shard`` of ``cfg.shards``: its own tokens, actors and random streams."""

    def __init__(self, cfg: SimConfig, seed: int, minutes: float, shard: int = 0) -> None:
        if not 0 <= shard < cfg.shards:
            raise ValueError(f"shard {shard} out of range for {cfg.shards} shards")
        self.cfg = cfg
        self.seed = seed
        self.shard = shard
        self.shards = cfg.shards
        self.rng = random.Random(derive_seed("market", seed, shard))
        self.end = minutes * 60.0
        self.keys = KeyFactory(seed)  # labels carry ids unique across shards (ids step by ``shards``)
        self.enc = Encoder(derive_seed("signatures", seed, shard))
        self.pump = PumpTx(self.enc)
        self.create_tx = CreateTx(self.enc)
        self.pswap = PumpSwapTx(self.enc)
        self.xfer = TransferTx(self.enc)
        self.truth = Truth()
        self.queue: list = []
        self._seq = 0
        self.now = 0.0
        self.slot = cfg.start_slot
        self.index = 0  # number of the last placed transaction in this shard (truth rows carry it)
        self.block_time = cfg.start_unix
        self.slot_trades: dict[int, int] = {}
        self.next_token_id = shard  # token ids step by ``shards``: unique across shards
        self._hashes: list[bytes] = [b"\x1a\x20" + block_hash(self.keys, cfg.start_slot - k) for k in range(8, 0, -1)]
        self.agents = Agents(self)
        self.trading = Trading(self)
        self.buy = self.trading.buy
        self.sell = self.trading.sell
        self.fund = self.trading.fund
        self.launches = Launches(self)

    def at(self, t: float, fn, *args) -> None:
        self._seq += 1
        heapq.heappush(self.queue, (t, self._seq, fn, args))

    def position(self, bundled: bool = False) -> None:
        """Start the next transaction: it is sent now (``bundled``: right behind the previous one)."""
        enc = self.enc
        enc.now = self.now
        enc.bundle_next = bundled
        self.index = n = enc.transactions
        hashes = self._hashes
        enc.blockhash_f = hashes[-1 - n % len(hashes)]  # a recent blockhash, some older than others

    def run(self) -> Iterator[tuple[list[float], list[int], list[bytes]]]:
        """Per produced slot: its transactions' market times, bundled positions and bodies."""
        cfg, enc = self.cfg, self.enc
        self.launches.warm_start(cfg.warm_tokens)
        self.launches.start()
        queue = self.queue
        start_unix = cfg.start_unix
        for slot, t, t_end in Clock(cfg, self.seed, self.end):
            self.slot = slot
            self.block_time = int(start_unix + t)
            self.slot_trades.clear()
            while queue and queue[0][0] < t_end:
                tq, _, fn, args = heapq.heappop(queue)
                self.now = tq if tq > t else t
                if args:
                    fn(*args)
                else:  # most events are ticks: a plain call is specialized, fn(*()) is not
                    fn()
            out = (enc.times, enc.bundled, enc.out)
            enc.times, enc.bundled, enc.out = [], [], []
            self._hashes.append(b"\x1a\x20" + block_hash(self.keys, slot))
            if len(self._hashes) > 16:
                del self._hashes[0]
            yield out
