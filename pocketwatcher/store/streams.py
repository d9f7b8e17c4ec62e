"""Redis Streams between parse and detect: swaps partitioned by mint, at-least-once.

Why partitions: all swaps of one mint land in one stream, so the engine sees a mint's
swaps in order while several runners share the work (one partition, one consumer at a
time — see `leases.PartitionLeases`). Keys carry a per-partition hash tag (`{p3}`) so the
stream, its dead letters and its lease live in one Redis Cluster slot.

Why no MAXLEN on XADD: trimming by length would drop entries nobody has processed. Memory
is bounded instead by trimming only what every group has acknowledged (`trim`) and by
backpressure: a producer waits while a partition is over `max_len` (`wait_for_room`), so
a stalled consumer slows ingest down instead of losing swaps.

Delivery: `next_batch` → process → commit to PostgreSQL → `ack`. Anything not acked is
delivered again (to this consumer after `record_failure`, to another after a crash), so
processing must be idempotent (swaps and alerts are keyed by their ids). An entry that
fails `max_deliveries` times goes to the partition's dead-letter stream with its error.

The client must return bytes (`decode_responses=False`, redis-py's default): payloads
are binary. A blocking read needs the client's `socket_timeout` above `block_ms`.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Iterable
from typing import Any

from redis.exceptions import ResponseError

log = logging.getLogger(__name__)

Fields = dict[str, Any]  # {"d": payload bytes, "m": mint str}
Entry = tuple[str, Fields]

# Counts a partition's entries newer than an id without shipping them to the client:
# the lag fallback for Redis < 7, whose XINFO GROUPS has no `lag`. Pages keep the
# script's memory small; `cap` bounds its run time.
_COUNT_AFTER = """
local n, cursor, cap = 0, '(' .. ARGV[1], tonumber(ARGV[2])
while n < cap do
  local page = redis.call('XRANGE', KEYS[1], cursor, '+', 'COUNT', 1000)
  if #page == 0 then break end
  n = n + #page
  cursor = '(' .. page[#page][1]
end
return n
"""

# XAUTOCLAIM JUSTID over the whole pending list. In a script because redis-py's JUSTID
# reply parser drops the cursor, which paging needs; JUSTID so that a claim does not
# count as a delivery (the read that follows does).
_CLAIM = """
local cursor, n = '0-0', 0
repeat
  local r = redis.call('XAUTOCLAIM', KEYS[1], ARGV[1], ARGV[2], ARGV[3], cursor, 'COUNT', 1000, 'JUSTID')
  cursor, n = r[1], n + #r[2]
until cursor == '0-0'
return n
"""

# One command per partition per batch instead of one per entry: redis-py spends far
# more time packing and reading commands than Redis spends appending.
_XADD_MANY = """
local out = {}
for i = 1, #ARGV, 2 do
  out[#out + 1] = redis.call('XADD', KEYS[1], '*', 'd', ARGV[i + 1], 'm', ARGV[i])
end
out[#out + 1] = redis.call('XLEN', KEYS[1])
return out
"""


def partition_of(mint: str, parts: int) -> int:
    """The partition of a mint: the same in every process and on every machine.

    Python's hash() is salted per process, so it cannot place a mint for a fleet.
    """
    return int.from_bytes(hashlib.blake2b(mint.encode(), digest_size=8).digest(), "little") % parts


def _s(v: bytes | str) -> str:
    return v.decode() if isinstance(v, bytes) else v


def _sid(v: bytes | str) -> tuple[int, int]:
    ms, _, seq = _s(v).partition("-")
    return int(ms), int(seq or 0)


def _entries(resp: Any) -> list[tuple[Any, dict]]:
    """XREADGROUP's entries for one stream, whatever reply shape redis-py chose."""
    if not resp:
        return []
    groups = list(resp.values()) if isinstance(resp, dict) else [item[1] for item in resp]
    out: list[tuple[Any, dict]] = []
    for g in groups:
        if g and isinstance(g[0], list):
            g = g[0]
        out.extend(g or [])
    return out


def _fields(raw: dict | None) -> Fields:
    raw = raw or {}
    return {"d": raw.get(b"d"), "m": _s(raw.get(b"m", b""))}


class SwapStreams:
    """The partitioned swap streams: publish, trim, backpressure, operator views."""

    def __init__(self, redis: Any, *, prefix: str = "pw:", parts: int = 8, group: str = "detect",
                 max_len: int = 200_000, poll_s: float = 0.05) -> None:
        kwargs = getattr(getattr(redis, "connection_pool", None), "connection_kwargs", {})
        if kwargs.get("decode_responses"):
            raise ValueError("SwapStreams needs a Redis client that returns bytes (swap payloads are "
                             "binary): create it without decode_responses=True")
        if parts < 1:
            raise ValueError(f"parts must be at least 1, got {parts}")
        self.redis, self.prefix, self.parts, self.group = redis, prefix, parts, group
        self.max_len, self.poll_s = max_len, poll_s
        self._lengths: dict[int, int] = {}  # last length seen per partition (from publish)
        self._count_after = redis.register_script(_COUNT_AFTER)
        self._xadd_many = redis.register_script(_XADD_MANY)

    def stream_key(self, k: int) -> str:
        return f"{self.prefix}swaps:{{p{k}}}"

    def dead_key(self, k: int) -> str:
        return f"{self.prefix}dead:{{p{k}}}"

    async def ensure_group(self, k: int) -> None:
        try:
            await self.redis.xgroup_create(self.stream_key(k), self.group, id="0", mkstream=True)
        except ResponseError as e:
            if "BUSYGROUP" not in str(e):
                raise

    async def ensure_groups(self) -> None:
        for k in range(self.parts):
            await self.ensure_group(k)

    async def publish(self, entries: list[tuple[str, bytes]], *, block: bool = False,
                      stop: asyncio.Event | None = None) -> list[str]:
        """Append (mint, payload) entries in one round trip; returns their ids in order.

        An id is unique within its partition (partition_of(mint)), not across them.

        With block=True, first waits for room in every partition last seen over max_len,
        so a partition overshoots by at most one batch. Setting `stop` ends the wait and
        the batch is still written: shutdown flushes, it does not drop.
        """
        if not entries:
            return []
        ks = [partition_of(mint, self.parts) for mint, _ in entries]
        touched = sorted(set(ks))
        if block:
            for k in touched:
                if self._lengths.get(k, 0) > self.max_len:
                    await self.wait_for_room(k, stop=stop)
        by_part: dict[int, list[int]] = {}
        for n, k in enumerate(ks):
            by_part.setdefault(k, []).append(n)
        pipe = self.redis.pipeline(transaction=False)
        for k in touched:
            args = [x for n in by_part[k] for x in entries[n]]
            await self._xadd_many(keys=[self.stream_key(k)], args=args, client=pipe)
        ids: list[str] = [""] * len(entries)
        for k, res in zip(touched, await pipe.execute(), strict=True):
            self._lengths[k] = res[-1]
            for n, i in zip(by_part[k], res[:-1], strict=True):
                ids[n] = _s(i)
        return ids

    async def trim(self, k: int) -> int:
        """Drop entries every group has been delivered and acknowledged; returns how many.

        The cut is min(last-delivered-id, oldest pending id) over all groups. XINFO is read
        before XPENDING: an entry below the cut was delivered before the first read and is
        not pending at the second, so it was acked (acks never come undone).
        """
        key = self.stream_key(k)
        try:
            groups = await self.redis.xinfo_groups(key)
        except ResponseError:
            return 0  # no stream yet
        if not groups:
            return 0  # nobody consumes it yet: keep everything
        pipe = self.redis.pipeline(transaction=False)
        for g in groups:
            pipe.xpending(key, g["name"])
        cut = None
        for g, p in zip(groups, await pipe.execute(), strict=True):
            c = _sid(g["last-delivered-id"])
            if p["pending"]:
                c = min(c, _sid(p["min"]))
            cut = c if cut is None else min(cut, c)
        if cut is None or cut == (0, 0):
            return 0
        return await self.redis.xtrim(key, minid=f"{cut[0]}-{cut[1]}", approximate=False)

    async def trim_all(self) -> int:
        return sum([await self.trim(k) for k in range(self.parts)])

    async def wait_for_room(self, k: int, max_len: int | None = None,
                            stop: asyncio.Event | None = None) -> bool:
        """Wait until partition k holds at most max_len entries (trimming as acks arrive).

        Returns False if `stop` was set first. Polling XLEN keeps this free of server-side
        state; the sleep is short because the producer is idle anyway.
        """
        limit = self.max_len if max_len is None else max_len
        key = self.stream_key(k)
        while True:
            n = await self.redis.xlen(key)
            if n > limit and await self.trim(k):
                n = await self.redis.xlen(key)
            self._lengths[k] = n
            if n <= limit:
                return True
            if stop is not None and stop.is_set():
                return False
            try:
                await asyncio.wait_for((stop or asyncio.Event()).wait(), self.poll_s)
            except TimeoutError:
                pass

    async def dead_letters(self, k: int | None = None, count: int = 100) -> list[dict]:
        """The newest dead letters (of one partition or all), newest first, for operators."""
        ks = range(self.parts) if k is None else [k]
        pipe = self.redis.pipeline(transaction=False)
        for p in ks:
            pipe.xrevrange(self.dead_key(p), count=count)
        out = []
        for p, rows in zip(ks, await pipe.execute(), strict=True):
            for dead_id, f in rows:
                out.append({"partition": p, "dead_id": _s(dead_id), "id": _s(f.get(b"id", b"")),
                            "mint": _s(f.get(b"m", b"")), "payload": f.get(b"d"),
                            "error": _s(f.get(b"error", b"")), "at_ms": int(f.get(b"at", 0)),
                            "deliveries": int(f.get(b"deliveries", 0)),
                            "consumer": _s(f.get(b"consumer", b""))})
        out.sort(key=lambda d: _sid(d["dead_id"]), reverse=True)
        return out[:count]

    async def dead_counts(self) -> dict[int, int]:
        pipe = self.redis.pipeline(transaction=False)
        for k in range(self.parts):
            pipe.xlen(self.dead_key(k))
        return dict(enumerate(await pipe.execute()))

    async def stats(self) -> dict:
        """Per-partition figures for metrics and the dashboard, plus totals.

        lag = entries not yet delivered to the group. Redis 7 reports it; when it cannot
        (Redis 6.2, or `lag` is nil) the entries after last-delivered-id are counted on
        the server. length − entries-read would be wrong once the stream is trimmed.
        """
        pipe = self.redis.pipeline(transaction=False)
        for k in range(self.parts):
            key = self.stream_key(k)
            pipe.xlen(key)
            pipe.xlen(self.dead_key(k))
            pipe.xinfo_groups(key)
            pipe.xpending_range(key, self.group, "-", "+", 1)
        res = await pipe.execute(raise_on_error=False)
        parts = []
        for k in range(self.parts):
            length, dead, groups, oldest = res[4 * k: 4 * k + 4]
            g = next((g for g in groups if _s(g["name"]) == self.group), None) \
                if not isinstance(groups, Exception) else None
            row = {"partition": k, "length": length, "dead_letters": dead, "pending": 0,
                   "oldest_pending_idle_ms": 0, "lag": length, "consumers": 0}
            if g is not None:
                row.update(pending=g["pending"], consumers=g["consumers"])
                lag = g.get("lag")
                if lag is None:
                    last = _s(g["last-delivered-id"])
                    lag = await self._count_after(keys=[self.stream_key(k)],
                                                  args=[last, max(self.max_len, length) + 1])
                row["lag"] = int(lag)
            if oldest and not isinstance(oldest, Exception):
                row["oldest_pending_idle_ms"] = oldest[0]["time_since_delivered"]
            parts.append(row)
        total = {f: sum(p[f] for p in parts) for f in ("length", "pending", "lag", "dead_letters")}
        total["oldest_pending_idle_ms"] = max(p["oldest_pending_idle_ms"] for p in parts)
        return {**total, "partitions": parts}


class PartitionConsumer:
    """Reads one partition for the group, in order: pending entries first, then new ones.

    On start it claims (XAUTOCLAIM) entries another consumer left pending for at least
    claim_idle_ms, then re-reads its own pending list from the start (XREADGROUP "0"),
    which now holds those too, in stream order, before it reads new entries (">").
    The claim repeats every claim_idle_ms, which also retries entries this consumer was
    given but never acked.

    Only one consumer should read a partition at a time (hold its lease): the lease is
    what keeps a mint's swaps in order. With leases, a claim_idle_ms near the lease TTL
    takes a dead runner's entries over as soon as its lease has expired.
    """

    def __init__(self, redis: Any, streams: SwapStreams, k: int, consumer_name: str, *,
                 claim_idle_ms: int = 30_000, max_deliveries: int = 5, retry_delay_ms: int = 200,
                 retry_delay_max_ms: int = 10_000) -> None:
        self.redis, self.streams, self.k, self.name = redis, streams, k, consumer_name
        self.key, self.group = streams.stream_key(k), streams.group
        self.claim_idle_ms, self.max_deliveries = claim_idle_ms, max_deliveries
        self.retry_delay_ms, self.retry_delay_max_ms = retry_delay_ms, retry_delay_max_ms
        self._cursor: str | None = "0"  # where we are in our pending list; None = reading new
        self._started = False
        self._last_claim = 0.0
        self._retry_at = 0.0
        self._errors: dict[str, str] = {}  # last error per failed, not yet dead id
        self._claim = redis.register_script(_CLAIM)

    async def start(self) -> int:
        """Create the group if needed and claim stale pending entries; returns how many."""
        await self.streams.ensure_group(self.k)
        self._started = True
        return await self.claim()

    async def claim(self) -> int:
        """Take over entries pending ≥ claim_idle_ms with any consumer; returns how many."""
        self._last_claim = time.monotonic()
        n = await self._claim(keys=[self.key], args=[self.group, self.name, self.claim_idle_ms])
        if n:
            self.rewind()
        return int(n)

    async def next_batch(self, count: int = 500, block_ms: int | None = 1000) -> list[Entry]:
        """Up to `count` entries (id, {"d": payload, "m": mint}) to process and then ack.

        Returns [] when nothing arrived within block_ms.
        """
        if not self._started:
            await self.start()
        elif time.monotonic() - self._last_claim >= max(self.claim_idle_ms, 1000) / 1000:
            await self.claim()
        while self._cursor is not None:
            delay = self._retry_at - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            resp = await self.redis.xreadgroup(self.group, self.name, {self.key: self._cursor}, count=count)
            rows = _entries(resp)
            if not rows:
                self._cursor = None
                break
            self._cursor = _s(rows[-1][0])
            batch = await self._screen(rows)
            if batch:
                return batch
        try:
            resp = await self.redis.xreadgroup(self.group, self.name, {self.key: ">"}, count=count,
                                               block=block_ms)
        except BaseException:
            # the server may have handed us entries whose reply never arrived: they are in
            # our pending list now, and must come before anything newer
            self.rewind()
            raise
        return [(_s(i), _fields(f)) for i, f in _entries(resp)]

    def rewind(self) -> None:
        """Read our pending list again before new entries: call it when a batch we were
        given was not fully processed and acknowledged (an error, a lost connection), so a
        mint's entries are never processed out of stream order."""
        self._cursor = "0"

    async def _screen(self, rows: list[tuple[Any, dict]]) -> list[Entry]:
        """Pending entries that may be processed again; the rest are settled here."""
        gone = [i for i, f in rows if not f]  # deleted from the stream while pending
        if gone:
            await self.redis.xack(self.key, self.group, *gone)
        rows = [(_s(i), _fields(f)) for i, f in rows if f]
        times = await self._deliveries([i for i, _ in rows], contiguous=True)
        out = []
        for i, f in rows:
            n = times.get(i, 1)
            if n > self.max_deliveries:
                err = self._errors.get(i) or f"delivered {n - 1} times without being acknowledged"
                await self.dead_letter(i, f, err, deliveries=n - 1)
            else:
                out.append((i, f))
        return out

    async def _deliveries(self, ids: list[str], contiguous: bool = False) -> dict[str, int]:
        """Delivery counts of those ids that are pending with this consumer."""
        if not ids:
            return {}
        if contiguous:  # consecutive in our pending list: one range covers them
            rows = await self.redis.xpending_range(self.key, self.group, ids[0], ids[-1], len(ids),
                                                   consumername=self.name)
        else:
            pipe = self.redis.pipeline(transaction=False)
            for i in ids:
                pipe.xpending_range(self.key, self.group, i, i, 1, consumername=self.name)
            rows = [row for rs in await pipe.execute() for row in rs]
        return {_s(r["message_id"]): r["times_delivered"] for r in rows}

    async def ack(self, ids: Iterable[str]) -> int:
        """Acknowledge entries whose effects are committed; returns how many were pending."""
        ids = list(ids)
        if not ids:
            return 0
        for i in ids:
            self._errors.pop(i, None)
        return await self.redis.xack(self.key, self.group, *ids)

    async def record_failure(self, ids: Iterable[str], error: str) -> list[str]:
        """Report entries that could not be processed; returns those now dead-lettered.

        The others stay pending and come back (after a short doubling delay) before any
        new entry. Use it for failures an entry causes; for an outage (Postgres down)
        retry the commit instead, so good entries do not run out of deliveries.
        """
        ids = list(ids)
        times = await self._deliveries(ids)
        dead = [i for i in ids if times.get(i, 0) >= self.max_deliveries]
        if dead:
            pipe = self.redis.pipeline(transaction=False)
            for i in dead:
                pipe.xrange(self.key, i, i)
            for i, rows in zip(dead, await pipe.execute(), strict=True):
                if rows:
                    await self.dead_letter(i, _fields(rows[0][1]), error, deliveries=times[i])
                else:
                    await self.redis.xack(self.key, self.group, i)
        retry = [i for i in ids if i not in dead and i in times]
        for i in retry:
            self._errors[i] = error
        if retry:
            n = max(times[i] for i in retry)
            delay = min(self.retry_delay_ms * 2 ** (n - 1), self.retry_delay_max_ms)
            self._retry_at = time.monotonic() + delay / 1000
            self.rewind()
        return dead

    async def dead_letter(self, id: str, fields: Fields, error: str, *, deliveries: int = 0) -> str:
        """Move an entry to the dead-letter stream (keeping its id and error) and ack it.

        Both happen in one MULTI (same hash tag), so an entry is never both dead and
        pending, nor neither. The original stays in the stream until trimmed.
        """
        pipe = self.redis.pipeline(transaction=True)
        pipe.xadd(self.streams.dead_key(self.k), {
            "d": fields["d"] or b"", "m": fields["m"], "id": id, "error": error[:2000],
            "at": int(time.time() * 1000), "deliveries": deliveries, "consumer": self.name})
        pipe.xack(self.key, self.group, id)
        dead_id, _ = await pipe.execute()
        self._errors.pop(id, None)
        log.warning("dead letter: partition %d entry %s mint %s after %d deliveries: %s",
                    self.k, id, fields["m"], deliveries, error)
        return _s(dead_id)
