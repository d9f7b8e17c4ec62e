"""`pocketwatcher status` against a real Redis: streams, holders, dead letters, gaps."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys

import pytest
import redis.asyncio as aioredis
from conftest import REPO

from pocketwatcher.store.leases import PartitionLeases
from pocketwatcher.store.streams import PartitionConsumer, SwapStreams

pytestmark = pytest.mark.integration


def test_status_shows_lag_pending_holders_dead_letters_and_gaps(redis_prefix):
    url, prefix = redis_prefix

    async def setup():
        r = aioredis.Redis.from_url(url)
        try:
            s = SwapStreams(r, prefix=prefix, parts=2)
            await s.ensure_groups()
            await s.publish([(f"mint{i}", b"payload%d" % i) for i in range(20)])
            leases = PartitionLeases(r, prefix, 2, "runner-a", ttl_ms=60_000)
            await leases.renew()
            got = await leases.acquire_some()
            c = PartitionConsumer(r, s, got[0], "runner-a", max_deliveries=1)
            batch = await c.next_batch(count=3, block_ms=10)
            await c.record_failure([batch[0][0]], "ValueError: cannot decode swap at byte 7")
            await r.set(f"{prefix}ingest:handed_slot", 1234)
            await r.rpush(f"{prefix}ingest:gaps", json.dumps({"from_slot": 10, "to_slot": 19, "at": 0,
                                                              "reason": "broadcast from 10 is not available"}))
            return got[0], s
        finally:
            await r.aclose()

    k, _ = asyncio.run(setup())
    env = {**os.environ, "REDIS_URL": url, "POCKETWATCHER_PREFIX": prefix}
    out = subprocess.run([sys.executable, "-m", "pocketwatcher", "status", "--partitions", "2", "--json"],
                         cwd=REPO, env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    s = json.loads(out.stdout)
    assert s["runners"] == ["runner-a"] and s["ingest_handed_slot"] == 1234
    assert s["gaps"][0]["from_slot"] == 10
    rows = {p["partition"]: p for p in s["streams"]["partitions"]}
    assert sum(p["length"] for p in rows.values()) == 20
    assert rows[k]["held_by"] == "runner-a" and rows[k]["pending"] == 2 and rows[k]["dead_letters"] == 1
    [d] = s["dead_letters"]
    assert "cannot decode swap at byte 7" in d["error"] and d["partition"] == k
    table = subprocess.run([sys.executable, "-m", "pocketwatcher", "status", "--partitions", "2"],
                           cwd=REPO, env=env, capture_output=True, text=True, timeout=60)
    assert table.returncode == 0 and "dead letter" in table.stdout and "gap" in table.stdout


def test_status_without_redis_says_what_to_set():
    env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}
    out = subprocess.run([sys.executable, "-m", "pocketwatcher", "status"], cwd=REPO, env=env,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 2 and "REDIS_URL" in out.stderr
    out = subprocess.run([sys.executable, "-m", "pocketwatcher", "status"], cwd=REPO,
                         env={**env, "REDIS_URL": "redis://127.0.0.1:1/0"}, capture_output=True, text=True, timeout=60)
    assert out.returncode == 1 and "cannot reach Redis" in out.stderr
