"""Partition leases: which runner reads which swap partition, one at a time.

Why leases and not just a consumer group: a group hands *entries* to whichever consumer
asks, so two runners would interleave one mint's swaps. A lease (SET NX PX on
`{prefix}lease:{pK}`, renewed by a script that only extends our own value) gives each
partition to one runner; when that runner dies its leases expire and others take over.

Fair share: each runner advertises itself in a sorted set of heartbeats (score = expiry,
server time, so machines' clocks do not matter) and aims for ceil(parts / live runners).
A runner over its share is told which partitions to hand back (`surplus`); it drains
them and calls `release`, so a newcomer gets work without anyone being cut off mid-batch.
A `{prefix}owner:{id}` key (same TTL) shows operators what each runner holds.

Typical loop, every ttl/3: `lost = held - renew()` → stop those at once; `acquire_some()`
→ start those; for k in `surplus()`: drain, then `release(k)`. On shutdown `release_all()`.
"""

from __future__ import annotations

import math
import os
import socket
import time
import uuid
from typing import Any

from pocketwatcher.store.streams import _s, partition_of

_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""

_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""

_HEARTBEAT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
return redis.call('ZCARD', KEYS[1])
"""


def default_owner_id() -> str:
    """Unique per process, readable by an operator: host, pid and a random suffix."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


class PartitionLeases:
    """This runner's leases on swap partitions."""

    def __init__(self, redis: Any, prefix: str = "pw:", parts: int = 8, owner_id: str | None = None,
                 ttl_ms: int = 10_000) -> None:
        self.redis, self.prefix, self.parts, self.ttl_ms = redis, prefix, parts, ttl_ms
        self.owner_id = owner_id or default_owner_id()
        self.live_owners = 1
        self._until: dict[int, float] = {}  # partition → local monotonic time our lease surely ends by
        self._renew = redis.register_script(_RENEW)
        self._release = redis.register_script(_RELEASE)
        self._heartbeat = redis.register_script(_HEARTBEAT)

    def lease_key(self, k: int) -> str:
        return f"{self.prefix}lease:{{p{k}}}"

    @property
    def owners_key(self) -> str:
        return f"{self.prefix}owners"

    @property
    def owner_key(self) -> str:
        return f"{self.prefix}owner:{self.owner_id}"

    @property
    def held(self) -> list[int]:
        """Partitions held now, by the local clock (no round trip)."""
        now = time.monotonic()
        return sorted(k for k, t in self._until.items() if t > now)

    def holds(self, k: int) -> bool:
        """Check before processing or acking: False once the lease may have expired."""
        return self._until.get(k, 0.0) > time.monotonic()

    def fair_share(self, max_parts: int | None = None) -> int:
        share = math.ceil(self.parts / max(self.live_owners, 1))
        return share if max_parts is None else min(share, max_parts)

    def _deadline(self, started: float) -> float:
        # Measured from before the request was sent, minus a margin for clock rate drift.
        return started + self.ttl_ms * 0.9 / 1000

    async def _advertise(self, pipe: Any) -> None:
        await self._heartbeat(keys=[self.owners_key], args=[self.owner_id, self.ttl_ms], client=pipe)
        pipe.set(self.owner_key, ",".join(map(str, self.held)), px=self.ttl_ms)

    async def renew(self) -> list[int]:
        """Extend our leases; returns those still held. Any other must stop at once."""
        started = time.monotonic()
        ks = self.held
        self._until = {k: t for k, t in self._until.items() if k in ks}
        pipe = self.redis.pipeline(transaction=False)
        await self._advertise(pipe)
        for k in ks:
            await self._renew(keys=[self.lease_key(k)], args=[self.owner_id, self.ttl_ms], client=pipe)
        res = await pipe.execute()
        self.live_owners = int(res[0])
        for k, ok in zip(ks, res[2:], strict=True):
            if ok:
                self._until[k] = self._deadline(started)
            else:
                self._until.pop(k, None)
        return self.held

    async def acquire_some(self, max_parts: int | None = None) -> list[int]:
        """Take free partitions up to our fair share; returns the newly acquired ones.

        Candidates are tried from an offset derived from the owner id, so runners that
        start together mostly ask for different partitions.
        """
        pipe = self.redis.pipeline(transaction=False)
        await self._advertise(pipe)
        start = partition_of(self.owner_id, self.parts)
        order = [(start + i) % self.parts for i in range(self.parts)]
        order = [k for k in order if not self.holds(k)]
        for k in order:
            pipe.get(self.lease_key(k))
        res = await pipe.execute()
        self.live_owners = int(res[0])
        want = self.fair_share(max_parts) - len(self.held)
        gained: list[int] = []
        for k, value in zip(order, res[2:], strict=True):
            if len(gained) >= want:
                break
            started = time.monotonic()
            if value is None:
                ok = await self.redis.set(self.lease_key(k), self.owner_id, nx=True, px=self.ttl_ms)
            elif _s(value) == self.owner_id:  # ours, though our local clock gave it up
                ok = await self._renew(keys=[self.lease_key(k)], args=[self.owner_id, self.ttl_ms])
            else:
                continue
            if ok:
                self._until[k] = self._deadline(started)
                gained.append(k)
        return gained

    def surplus(self, max_parts: int | None = None) -> list[int]:
        """Partitions beyond our fair share, to drain and release for newer runners."""
        held = self.held
        extra = len(held) - self.fair_share(max_parts)
        return held[-extra:] if extra > 0 else []

    async def release(self, k: int) -> bool:
        """Give partition k back (only if still ours) so another runner can take it now."""
        self._until.pop(k, None)
        return bool(await self._release(keys=[self.lease_key(k)], args=[self.owner_id]))

    async def release_all(self) -> None:
        """On shutdown: hand everything back and stop counting as a live runner."""
        for k in list(self._until):
            await self.release(k)
        await self.redis.zrem(self.owners_key, self.owner_id)
        await self.redis.delete(self.owner_key)
