"""The market clock: slots, the event queue, and the stream of updates each slot produces.

Simulated time advances slot by slot: ~400 ms with jitter, a few percent of slots
skipped (no block; their transactions land in the next one). Everything that happens
— launches, trades, funding, migrations — is an event on one heap ordered by time (ties
by insertion), so a seed fully determines the run. Per produced slot the stream carries
its transactions (increasing, gappy ``index`` in block, ``created_at`` when a processed-
commitment subscriber would receive them), then a ``block_meta`` update with
``block_time`` and a ``slot`` update.
"""

from __future__ import annotations

import hashlib
import heapq
import random
from collections.abc import Iterator
from math import log

from .accounts import KeyFactory, b58
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
from .wire import SLOT_PROCESSED, block_meta_update, created_at_field, slot_update


class Market:
    def __init__(self, cfg: SimConfig, seed: int, minutes: float) -> None:
        self.cfg = cfg
        self.seed = seed
        self.rng = random.Random(seed)
        self.end = minutes * 60.0
        self.keys = KeyFactory(seed)
        self.enc = Encoder(seed)
        self.pump = PumpTx(self.enc)
        self.create_tx = CreateTx(self.enc)
        self.pswap = PumpSwapTx(self.enc)
        self.xfer = TransferTx(self.enc)
        self.truth = Truth()
        self.queue: list = []
        self._seq = 0
        self.now = 0.0
        self.slot = cfg.start_slot
        self.index = 0
        self.block_time = cfg.start_unix
        self._start_unix = cfg.start_unix
        self.slot_trades: dict[int, int] = {}
        self.next_token_id = 0
        self._slot_end = 0.0
        self._last_ca = 0.0
        self._hashes: list[bytes] = [b"\x1a\x20" + self._hash(cfg.start_slot - k) for k in range(8, 0, -1)]
        self.agents = Agents(self)
        self.trading = Trading(self)
        self.buy = self.trading.buy
        self.sell = self.trading.sell
        self.fund = self.trading.fund
        self.launches = Launches(self)
        self.slots = 0
        self.skipped = 0

    def at(self, t: float, fn, *args) -> None:
        self._seq += 1
        heapq.heappush(self.queue, (t, self._seq, fn, args))

    def _hash(self, slot: int) -> bytes:
        return hashlib.sha256(self.keys.key(f"blockhash:{slot}")).digest()

    def position(self, gap: int | None = None) -> None:
        """Place the next transaction: index in block and stream time (``gap`` 1 = bundled)."""
        r = self.rng.random()
        self.index = index = self.index + (gap if gap is not None else 1 + int(-log(1.0 - r) * 6.67))  # others' txs
        ca = self.now + 0.004 + 0.02 * r
        if ca > self._slot_end:
            ca = self._slot_end
        if ca < self._last_ca:
            ca = self._last_ca
        self._last_ca = ca
        enc = self.enc
        enc.slot = self.slot
        enc.index = index
        hashes = self._hashes
        enc.blockhash_f = hashes[-1 - index % len(hashes)]
        enc.created_at_f = created_at_field(self._start_unix + ca)

    def run(self) -> Iterator[list[bytes]]:
        """Yield, per produced slot, its updates (serialized ``SubscribeUpdate`` bytes)."""
        cfg, rng, enc = self.cfg, self.rng, self.enc
        self.launches.warm_start(cfg.warm_tokens)
        self.launches.start()
        t = 0.0
        parent = cfg.start_slot - 1
        parent_hash = b58(self._hash(parent))
        height = 420_000_000 + (cfg.start_slot - 460_000_000) * 9 // 10
        queue = self.queue
        while t < self.end:
            dur = max(0.3, rng.gauss(cfg.slot_seconds, cfg.slot_jitter))
            t_end = t + dur
            if rng.random() < cfg.skip_rate:
                self.skipped += 1
                self.slot += 1
                t = t_end
                continue
            self.block_time = int(cfg.start_unix + t)
            self.index = rng.randrange(40)
            self._slot_end = t_end
            self.slot_trades.clear()
            while queue and queue[0][0] < t_end:
                tq, _, fn, args = heapq.heappop(queue)
                self.now = tq if tq > t else t
                if args:
                    fn(*args)
                else:  # most events are ticks: a plain call is specialized, fn(*()) is not
                    fn()
            out = enc.out
            enc.out = []
            ca = max(self._last_ca, t_end) + 0.01 + 0.02 * rng.random()
            self._last_ca = ca
            bh = self._hash(self.slot)
            bh58 = b58(bh)
            height += 1
            n_txs = self.index + rng.randrange(1, 60)  # the block also holds votes and other programs' txs
            out.append(block_meta_update(enc.filters, self.slot, bh58, self.block_time, height, parent,
                                         parent_hash, n_txs, 64 + n_txs // 3, cfg.start_unix + ca))
            out.append(slot_update(enc.filters, self.slot, parent, SLOT_PROCESSED, cfg.start_unix + ca + 0.001))
            self._last_ca = ca + 0.001
            self._hashes.append(b"\x1a\x20" + bh)
            if len(self._hashes) > 16:
                del self._hashes[0]
            parent, parent_hash = self.slot, bh58
            self.slot += 1
            self.slots += 1
            t = t_end
            yield out
