"""Ingest: Geyser stream → parsed swaps with exact block times and wallet stamps → swap streams.

Transactions of a slot are held until that slot's BlockMeta arrives, so every swap gets
the block's own time. Yellowstone sends a slot's messages in order once the slot reaches
the commitment, BlockMeta last (the validator notifies it after the block's
transactions), and a gRPC stream keeps that order: when BlockMeta(S) arrives, slot S is
complete and is handed on at once (waiting for the next slot would add ~400 ms to every
alert). A transaction that still comes later is handed on after its slot, never
dropped. A slot whose
BlockMeta has not come ``grace_slots`` slots later is stamped with an estimated time
(flagged). Slots are handed on strictly in order, and the last slot fully handed on is
kept in Redis: a reconnect or a restart resumes with ``from_slot`` after it. Wallet
facts (first sighting, clusters, smart money) are stamped here, where the stream is
still whole, so detect partitions stay independent.
"""

from __future__ import annotations

import asyncio
import logging
import time

from pocketwatcher.enrich.wallets import Enricher
from pocketwatcher.geyser.client import GeyserClient, GeyserError, backoff, build_request
from pocketwatcher.geyser.clock import SlotClock
from pocketwatcher.parse import STATS

from .records import encode_event, encode_swap, encode_transfer
from .source import InlineSource, ParseProcess

log = logging.getLogger("pocketwatcher.runner.ingest")

# Wallet facts are rebuilt from this much history after a restart (a week of swaps): older
# first sightings, clusters and track records are forgotten by a restart, never wrong.
ENRICHER_REBUILD_S = 7 * 86400


def _order(rec, kind: int) -> tuple:
    """Chain order as ingest handed records on: slot, tx, then transfers before swaps."""
    from pocketwatcher.triggers.trade import ix_key

    return (rec.slot or 0, rec.tx_index or 0, kind, ix_key(rec.ix))


class Ingest:
    def __init__(self, endpoint: str, x_token: str | None, streams, redis, *, programs: list[str],
                 prefix: str, stop: asyncio.Event, metrics, grace_slots: int = 4,
                 parse_process: bool = False) -> None:
        self.client = GeyserClient(endpoint, x_token)
        # parse_process: subscribe and parse in a child process (see runner.source)
        self.parser = ParseProcess(endpoint, x_token) if parse_process else None
        self.streams, self.redis, self.programs = streams, redis, programs
        self.state_key = f"{prefix}ingest:handed_slot"
        self.gaps_key = f"{prefix}ingest:gaps"  # slot ranges the provider could not replay
        self.stop, self.metrics, self.grace = stop, metrics, grace_slots
        self.clock = SlotClock()
        self.enricher = Enricher()
        self.buffer: dict[int, list] = {}  # slot -> parse results waiting for the slot's BlockMeta
        self.meta_slots: set[int] = set()
        self.last_meta_slot = 0
        self.max_seen_slot = 0  # highest slot any update mentioned
        self.last_tx_at = time.monotonic()
        self.streaming = False  # a subscription is open and has delivered an update
        self.busy = 0  # hand-ons and Redis retries in progress (records out of the buffer, not yet in a stream)
        self.flush_lock = asyncio.Lock()  # the idle check flushes too: one flush at a time keeps slot order
        self.received_tx = 0
        self.handed_slot: int | None = None
        self.seen_ids: set[str] = set()  # swap ids already handed on (replays after a resume)
        self.flush_due = False  # a BlockMeta came since the last flush
        self.last_flush = time.monotonic()
        self.flush_s = 0.05  # longest a ready slot waits while the stream is still catching up

    async def resume_slot(self) -> int | None:
        v = await self.redis.get(self.state_key)
        return int(v) if v is not None else None

    async def rebuild(self, store) -> int:
        """After a restart: replay what was already handed on (committed swaps and transfers,
        plus records still in the streams) through the enricher, in chain order, so new
        swaps get the same wallet stamps they would have had without the restart."""
        from pocketwatcher.parse import SolTransfer
        from pocketwatcher.store.postgres import row_to_swap

        from .records import decode

        items: dict[str, tuple] = {}
        async with store.pool.acquire() as con:
            newest = await con.fetchval("SELECT max(block_time) FROM swaps") or 0
        since = max(0, newest - ENRICHER_REBUILD_S)
        for r in await store.recent_swaps(since_block_time=since):
            s, _e = row_to_swap(r)
            items[s.id] = (_order(s, 1), "swap", s)
        async with store.pool.acquire() as con:
            for r in await con.fetch("SELECT * FROM sol_transfers WHERE coalesce(block_time, 0) >= $1", since):
                t = SolTransfer(r["signature"], r["slot"], r["block_time"], r["ix"], r["source"],
                                r["destination"], int(r["lamports"]), r["tx_index"])
                items["t:" + t.signature + ":" + t.ix] = (_order(t, 0), "transfer", t)
        for k in range(self.streams.parts):
            for _id, fields in await self.redis.xrange(self.streams.stream_key(k)):
                kind, rec = decode(fields[b"d"] if b"d" in fields else fields["d"])
                if kind == "swap":
                    s = rec[0]
                    items.setdefault(s.id, (_order(s, 1), "swap", s))
                elif kind == "transfer":
                    items.setdefault("t:" + rec.signature + ":" + rec.ix, (_order(rec, 0), "transfer", rec))
        for _key, kind, rec in sorted(items.values(), key=lambda x: x[0]):
            if kind == "transfer":
                self.enricher.on_transfer(rec.source, rec.destination, rec.lamports, rec.block_time)
            else:
                self.enricher.on_swap(rec, rec.fee_payer)
                self.seen_ids.add(rec.id)
        log.info("ingest: enricher rebuilt from %d handed-on records", len(items))
        return len(items)

    async def run(self, store=None) -> None:
        if self.parser is not None:
            self.parser.ensure_started()  # it imports while the enricher is rebuilt
        try:
            await self._run(store)
        finally:
            if self.parser is not None:
                await asyncio.to_thread(self.parser.stop)

    async def _run(self, store=None) -> None:
        delays = backoff()
        if store is not None and await self._retry(self.resume_slot) is not None:
            await self.rebuild(store)
        while not self.stop.is_set():
            handed = await self._retry(self.resume_slot)
            self.handed_slot = handed
            req = build_request(self.programs, from_slot=handed + 1 if handed is not None else None)
            sub = self.parser.subscribe(req) if self.parser else InlineSource(self.client, req)
            closer = asyncio.create_task(self._close_on_stop(sub))
            try:
                async for items in sub:
                    if not self.streaming:  # quiet time counts from here, not from start-up
                        self.streaming, self.last_tx_at = True, time.monotonic()
                    self._handle(items)
                    # Hand slots on when the stream has caught up, or every flush_s while it
                    # has not: under load one Redis round trip then carries many slots.
                    if self.flush_due and (sub.buffered() == 0
                                           or time.monotonic() - self.last_flush >= self.flush_s):
                        await self.flush()
                    if self.stop.is_set():
                        break
                delays = backoff()
                if not self.stop.is_set():
                    await asyncio.sleep(0.5)  # the server closed the stream: reconnect
            except GeyserError as e:
                if self.stop.is_set():
                    break
                if handed is not None and "is not available" in str(e):
                    await self._gap(handed, str(e))  # resume where the provider can, say what is lost
                    continue
                self.metrics.inc("ingest_reconnects")
                log.warning("geyser stream: %s; reconnecting", e)
                await self._sleep(next(delays))
            except (ConnectionError, OSError) as e:
                log.warning("ingest: %s; retrying", e)
                await self._sleep(next(delays))
            finally:
                self.streaming = False
                closer.cancel()
                await sub.close()
        await self.flush()  # shutdown: hand on complete slots only; the rest comes again on resume

    async def _gap(self, handed: int, error: str) -> None:
        """The provider no longer holds the slots after ``handed`` (its replay window is
        short: 150 slots by default). Resume from its oldest slot and report the slots in
        between as a gap — in the log (ERROR), the ``ingest_gap_slots`` metric and the
        ``{prefix}ingest:gaps`` Redis list — because swaps in them are missing for good."""
        import json
        import re

        m = re.search(r"last available:\s*(\d+)", error)
        first = int(m.group(1)) if m else None
        if first is None or first <= handed + 1:
            first = self.max_seen_slot + 1 if self.max_seen_slot > handed else None
        gap = {"from_slot": handed + 1, "to_slot": first - 1 if first else None, "at": time.time(),
               "reason": error[:300]}
        n = (first - handed - 1) if first else 0
        self.metrics.inc("ingest_gaps")
        if n:
            self.metrics.inc("ingest_gap_slots", n)
        log.error("gap: the provider cannot replay slots %d..%s (%s); resuming from %s; swaps in "
                  "those slots are missing", handed + 1, first - 1 if first else "now", error[:200],
                  first if first else "the live tip")
        await self._retry(lambda: self.redis.rpush(self.gaps_key, json.dumps(gap)))
        # from here on, resume at the provider's oldest slot (or live, when it did not say)
        await self._retry(lambda: self.redis.set(self.state_key, first - 1) if first
                          else self.redis.delete(self.state_key))
        self.handed_slot = first - 1 if first else None

    async def _close_on_stop(self, sub) -> None:
        """Stop intake at once on shutdown, even while the stream is quiet (only pings)."""
        await self.stop.wait()
        await sub.close()

    async def _sleep(self, s: float) -> None:
        try:
            await asyncio.wait_for(self.stop.wait(), timeout=s)
        except TimeoutError:
            pass

    def _handle(self, items: list[tuple]) -> None:
        """Take a batch of parsed updates (see runner.source) in stream order."""
        buffer, meta_slots = self.buffer, self.meta_slots
        txs = 0
        for item in items:
            if item[0] == "tx":
                _kind, slot, parsed, received_at = item
                txs += 1
                if slot > self.max_seen_slot:
                    self.max_seen_slot = slot
                if self.handed_slot is not None and slot <= self.handed_slot and slot not in meta_slots:
                    continue  # handed on before a resume (a late transaction of a slot handed on
                    # in this session is still handed on, after its slot: nothing is dropped)
                if parsed is not None:
                    buffer.setdefault(slot, []).append((*parsed, received_at))
            else:
                _kind, slot, block_time = item
                self.clock.observe(slot, block_time)
                meta_slots.add(slot)
                self.last_meta_slot = max(self.last_meta_slot, slot)
                self.max_seen_slot = max(self.max_seen_slot, slot)
                self.metrics.set("ingest_last_slot", slot)
                if block_time:
                    self.metrics.set("ingest_lag_seconds", max(0.0, time.time() - block_time))
                self.flush_due = True
        if txs:  # once per batch, not per transaction
            self.last_tx_at = time.monotonic()
            self.received_tx += txs
            self.metrics.inc("ingest_transactions", txs)

    async def flush(self, idle: bool = False) -> None:
        """Hand on buffered slots in order.

        A slot goes once its BlockMeta has arrived (the end of the slot in the stream), or —
        with an estimated time — when it is ``grace_slots`` behind the newest BlockMeta.
        The handed-on slot is recorded only up to slots with nothing still buffered, so
        after a restart anything not handed on is asked for again with ``from_slot``.
        """
        async with self.flush_lock:
            self.busy += 1
            try:
                await self._flush()
            finally:
                self.busy -= 1

    async def _flush(self) -> None:
        self.flush_due = False
        self.last_flush = time.monotonic()
        ready: list[tuple[int, list]] = []
        while self.buffer:
            slot = min(self.buffer)
            complete = slot in self.meta_slots
            if not (complete or slot < self.last_meta_slot - self.grace):
                break
            ready.append((slot, self.buffer.pop(slot)))
        if ready:  # all slots that are ready go out in one round trip
            await self._hand_on(ready)
        done = self.last_meta_slot  # its BlockMeta closed it
        if done > 0 and (self.handed_slot or 0) < done and not any(s <= done for s in self.buffer):
            await self._set_handed(done)
        if len(self.meta_slots) > 10_000:
            self.meta_slots = {s for s in self.meta_slots if s > self.last_meta_slot - 1000}

    async def _hand_on(self, ready: list[tuple[int, list]]) -> None:
        entries: list[tuple[str, bytes]] = []
        for slot, results in ready:
            bt, est = self.clock.time_of(slot)
            if est:
                self.metrics.inc("ingest_estimated_slots")
            results.sort(key=lambda r: r[0] or 0)
            for index, swaps, events, transfers, received_at in results:
                for t in transfers:
                    t.block_time = bt
                    self.enricher.on_transfer(t.source, t.destination, t.lamports, bt)
                    entries.append((t.destination, encode_transfer(t)))
                for ev in events:
                    ev.block_time = bt
                    entries.append((ev.mint, encode_event(ev, index)))
                for s in swaps:
                    if s.id in self.seen_ids:
                        continue
                    s.block_time, s.block_time_estimated = bt, est
                    entries.append((s.mint, encode_swap(s, self.enricher.on_swap(s, s.fee_payer), received_at)))
                    self.seen_ids.add(s.id)
        if len(self.seen_ids) > 500_000:
            self.seen_ids.clear()
        if entries:
            await self._retry(lambda: self.streams.publish(entries, block=True, stop=self.stop))
            self.metrics.inc("ingest_records", len(entries))
        await self._set_handed(ready[-1][0])

    async def _set_handed(self, slot: int) -> None:
        if self.handed_slot is None or slot > self.handed_slot:
            self.handed_slot = slot
            await self._retry(lambda: self.redis.set(self.state_key, slot))

    async def _retry(self, fn):
        """Redis calls survive a Redis restart: retry with backoff until it answers or we stop."""
        delays = backoff(0.1, 5.0)
        self.busy += 1
        try:
            while True:
                try:
                    return await fn()
                except (ConnectionError, OSError, TimeoutError) as e:
                    if self.stop.is_set():
                        raise
                    self.metrics.inc("redis_errors")
                    log.warning("redis: %s; retrying", type(e).__name__)
                    await asyncio.sleep(next(delays))
                except Exception as e:  # redis.exceptions.* (ConnectionError subclasses are above)
                    if type(e).__module__.startswith("redis") and not self.stop.is_set():
                        self.metrics.inc("redis_errors")
                        log.warning("redis: %s; retrying", e)
                        await asyncio.sleep(next(delays))
                        continue
                    raise
        finally:
            self.busy -= 1

    def idle_for(self) -> float:
        """How long the open stream has been quiet with nothing left to hand on. Zero while
        not streaming (start-up, rebuilding, reconnecting) or while a hand-on or a Redis
        retry is in progress: waiting on a server is not the end of the data."""
        if not self.streaming or self.busy:
            return 0.0
        return time.monotonic() - self.last_tx_at

    def parse_reasons(self) -> dict:
        return dict(STATS.reasons)
