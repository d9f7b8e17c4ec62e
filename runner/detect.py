"""Detect: one worker per held partition — stream entries → engine → PostgreSQL → XACK.

An entry is acknowledged only after its swap (and the alerts it caused) are committed,
in one transaction. On taking a partition the worker rebuilds the engine from what is
already committed (recent swaps, launches, past alerts for cooldowns), and skips
redelivered entries whose swap is already committed, so the alerts after a crash are
exactly those without one.
"""

from __future__ import annotations

import asyncio
import logging
import time

from pocketwatcher.store.postgres import row_to_swap, with_retry
from pocketwatcher.triggers.engine import TriggerEngine
from pocketwatcher.triggers.trade import Trade

from .records import decode

log = logging.getLogger("pocketwatcher.runner.detect")

REBUILD_S = 7200  # engine windows reach 1h; creator and cooldown facts a little further


class PartitionWorker:
    def __init__(self, k: int, parts: int, streams, consumer, store, triggers, *, stop: asyncio.Event,
                 metrics, on_alert=None, route=None, batch: int = 500) -> None:
        self.k, self.parts = k, parts
        self.streams, self.consumer, self.store = streams, consumer, store
        self.triggers, self.stop, self.metrics = triggers, stop, metrics
        self.on_alert = on_alert
        self.route = route  # trigger name, trigger channels -> channel names ([routes] applied)
        self.batch = batch
        self.linger_s = 0.005  # under load batches fill by themselves; this only merges a trickle
        self.engine = TriggerEngine(triggers)
        self.committed: dict[str, None] = {}  # swap ids committed recently, oldest first (redelivery guard)
        self.lost = asyncio.Event()
        self.dirty = False  # the engine saw trades whose commit failed: rebuild before going on

    async def rebuild(self) -> int:
        """A fresh engine fed with what is committed (the only state that survives a failure)."""
        self.engine = TriggerEngine(self.triggers)
        self.committed = {}
        rows = await with_retry(lambda: self.store.recent_swaps(
            since_block_time=0, partition=(self.k, self.parts)), attempts=None)
        if rows:
            newest = max(r["block_time"] or 0 for r in rows)
            rows = [r for r in rows if (r["block_time"] or 0) >= newest - REBUILD_S]
        since = (max((r["block_time"] or 0) for r in rows) - REBUILD_S) if rows else 0
        creates = await with_retry(lambda: self._creates(since), attempts=None)
        for c in creates:
            self.engine.on_create(c["mint"], c.get("creator") or c.get("user"), c.get("block_time") or 0, c["slot"])
        for r in rows:
            s, e = row_to_swap(r)
            self.engine.on_trade(Trade.from_swap(s, e))  # alerts already committed with these swaps
            self.committed[s.id] = None
        log.info("partition %d: engine rebuilt from %d committed swaps", self.k, len(rows))
        return len(rows)

    async def _creates(self, since: int) -> list[dict]:
        """Committed launches of this partition's mints (also those whose swaps are not
        committed yet: a batch boundary can split a launch from its first swap)."""
        from pocketwatcher.store.streams import partition_of

        async with self.store.connection() as con:
            rows = await con.fetch("SELECT mint, creator, \"user\", block_time, slot FROM token_events "
                                   "WHERE kind = 'create' AND coalesce(block_time, 0) >= $1 "
                                   "ORDER BY slot, coalesce(tx_index, 0), ix", since)
        return [dict(r) for r in rows if partition_of(r["mint"], self.parts) == self.k]

    async def run(self) -> None:
        await self.rebuild()
        # We hold this partition's lease, so whatever is pending with another consumer was
        # left by a previous owner: claim all of it now (idle 0), so it is processed before
        # any new entry — in stream order, which is what keeps each mint's swaps in order.
        normal = self.consumer.claim_idle_ms
        self.consumer.claim_idle_ms = 0
        await self.consumer.start()
        self.consumer.claim_idle_ms = normal
        while not self.stop.is_set() and not self.lost.is_set():
            try:
                if self.dirty:
                    # trades reached the engine but not the store: feeding them again on
                    # redelivery would count them twice, so start over from the store
                    await self.rebuild()
                    self.dirty = False
                    self.metrics.inc("engine_rebuilds")
                n = await self.step()
            except asyncio.CancelledError:
                raise
            except Exception as e:  # noqa: BLE001 - keep the partition alive; the entry retries
                # whatever this step was given and did not ack is pending with us: read it
                # again before anything newer, so each mint's swaps stay in order
                self.consumer.rewind()
                log.warning("partition %d: %s: %s", self.k, type(e).__name__, e)
                self.metrics.inc("detect_errors")
                await asyncio.sleep(0.5)
                continue
            if n == 0:
                await asyncio.sleep(0)

    async def step(self) -> int:
        entries = await self.consumer.next_batch(self.batch, block_ms=200)
        if not entries:
            return 0
        if len(entries) < self.batch // 4:
            # linger a moment so a commit carries more than a handful of swaps: one
            # PostgreSQL transaction per batch is the cost that matters at high rates
            await asyncio.sleep(self.linger_s)
            more = await self.consumer.next_batch(self.batch - len(entries), block_ms=None)
            have = {eid for eid, _f in entries}  # a re-read of our own pending list repeats ids
            entries = entries + [e for e in more if e[0] not in have]
        t0 = time.perf_counter()
        swaps, events, transfers, alerts, ids, bad = [], [], [], [], [], []
        received: list[float] = []
        seen: set[str] = set()  # a publish retried after a lost reply can repeat a swap
        for eid, fields in entries:
            try:
                kind, rec = decode(fields["d"])
            except Exception as e:  # noqa: BLE001 - a bad record must not stop the partition
                bad.append((eid, f"undecodable record: {type(e).__name__}: {e}"))
                continue
            ids.append(eid)
            if kind == "swap":
                s, enr, rx = rec
                swaps.append((s, enr))
                if rx is not None:
                    received.append(rx)
                if s.id in self.committed or s.id in seen:
                    continue
                seen.add(s.id)
                self.dirty = True
                for a in self.engine.on_trade(Trade.from_swap(s, enr)):
                    if self.route is not None:
                        a.channels = list(self.route(a.trigger, a.channels))
                    alerts.append(a)
            elif kind == "event":
                ev, _tx = rec
                events.append(ev)
                if ev.kind == "create":
                    self.engine.on_create(ev.mint, ev.creator or ev.user, ev.block_time or 0, ev.slot)
            else:
                transfers.append(rec)
        for eid, err in bad:
            await self.consumer.record_failure([eid], err)
        if ids:
            await with_retry(lambda: self.store.commit_batch(swaps, events, transfers, alerts), attempts=None)
            # committed: the engine and the store agree again, whatever happens to the ack
            self.committed.update(dict.fromkeys(seen))
            self.dirty = False
            if len(self.committed) > 1_000_000:
                self.committed = dict.fromkeys(list(self.committed)[-200_000:])
            await self.consumer.ack(ids)
        self.metrics.inc("swaps_committed", len(swaps))
        self.metrics.inc("alerts", len(alerts))
        self.metrics.observe("commit_seconds", time.perf_counter() - t0)
        if received:
            now = time.time()
            self.metrics.latency([now - rx for rx in received])
        for a in alerts:
            if self.on_alert:
                self.on_alert(a)
        return len(entries)
