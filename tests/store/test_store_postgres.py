"""Store against a real PostgreSQL: idempotent batches, the outbox, exact amounts, restarts."""

from __future__ import annotations

import asyncio
import json
import random
import shutil
import tempfile
import time
from pathlib import Path

import asyncpg
import pytest

from pocketwatcher.enrich.wallets import Enrichment
from pocketwatcher.parse import SolTransfer
from pocketwatcher.parse.programs.pumpfun import TokenEvent
from pocketwatcher.parse.swap import WSOL, Swap
from pocketwatcher.store.migrate import migrate
from pocketwatcher.store.postgres import (
    Store,
    StoreUnavailable,
    connect_pool,
    partition_of,
    redact_dsn,
    row_to_swap,
    with_retry,
)
from pocketwatcher.triggers.engine import Alert, alert_id

pytestmark = pytest.mark.integration
U64_MAX = 2**64 - 1


def swap(i: int, *, mint: str = "MintA", slot: int = 100, tx_index: int | None = 0, ix: str = "2",
         **kw) -> Swap:
    base = dict(signature=f"sig{i}", slot=slot, block_time=1_700_000_000 + slot // 2, ix=ix, program="pumpfun",
                pool=f"curve-{mint}", trader=f"wallet{i % 7}", mint=mint, side="buy" if i % 3 else "sell",
                token_amount=1_000_000 + i, token_decimals=6, quote_mint=WSOL, quote_amount=10_000_000 + i,
                quote_decimals=9, price=2.5e-8, tx_index=tx_index, fee_payer=f"wallet{i % 7}",
                virtual_sol_reserves=30_000_000_000 + i, virtual_token_reserves=1_073_000_000_000_000 - i,
                mcap_sol=28.5, fees={"protocol": 95, "creator": 5})
    base.update(kw)
    return Swap(**base)


def alert(mint: str, s: Swap, channels=("discord", "telegram")) -> Alert:
    return Alert(alert_id("fast_pump", 1, mint, s.id), "fast_pump", 1, mint, s.signature, s.ix, s.slot,
                 s.block_time, "high", list(channels),
                 {"buys_60s": 12, "unique_buyers_60s": 9, "price_change_60s": 0.42, "dev_sold": False,
                  "cto_score": None, "mcap_sol": 31.25})


def create_event(mint: str) -> TokenEvent:
    return TokenEvent("create", f"create-{mint}", 99, 1_700_000_000, "0", "pumpfun", mint, user="dev",
                      creator="dev", bonding_curve=f"curve-{mint}", name="Pocket Coin", symbol="PKT",
                      uri="https://example.invalid/pkt.json")


def run(coro_fn):
    """Each test body runs in its own event loop (the suite has no asyncio plugin)."""
    return asyncio.run(coro_fn())


async def open_store(url: str, **kw) -> Store:
    await migrate(url)
    return Store(await connect_pool(url, **kw))


async def table_count(store: Store, table: str) -> int:
    async with store.connection() as c:
        return await c.fetchval(f"SELECT count(*) FROM {table}")


def test_commit_batch_is_idempotent(pg_url):
    async def body():
        store = await open_store(pg_url)
        swaps = [(swap(i, tx_index=i), Enrichment(1_699_999_000, f"cluster{i % 2}", i == 3) if i % 2 else None)
                 for i in range(50)]
        swaps.append(swaps[0])  # a duplicate inside the batch is a duplicate too
        events = [create_event("MintA")]
        transfers = [SolTransfer("fund1", 98, 1_699_999_999, "0", "funder", "wallet1", U64_MAX)]
        alerts = [alert("MintA", swaps[10][0])]
        first = await store.commit_batch(swaps, events, transfers, alerts, state={"p0": "1-0"})
        assert first == {"swaps": 50, "swaps_dup": 1, "events": 1, "events_dup": 0, "transfers": 1,
                         "transfers_dup": 0, "alerts": 1, "alerts_dup": 0, "deliveries": 2}
        again = await store.commit_batch(swaps, events, transfers, alerts, state={"p0": "1-0"})
        assert again == {"swaps": 0, "swaps_dup": 51, "events": 0, "events_dup": 1, "transfers": 0,
                         "transfers_dup": 1, "alerts": 0, "alerts_dup": 1, "deliveries": 0}
        for table, n in [("swaps", 50), ("token_events", 1), ("sol_transfers", 1), ("alerts", 1),
                         ("alert_deliveries", 2)]:
            assert await table_count(store, table) == n, table
        rows = await store.recent_swaps(since_block_time=0)
        back = {r["signature"]: row_to_swap(r) for r in rows}
        for s, e in swaps:
            assert back[s.signature] == (s, e)
        assert await store.commit_batch([]) == dict.fromkeys(first, 0)
        await store.pool.close()
    run(body)


def test_alert_deliveries_once_per_channel(pg_url):
    async def body():
        store = await open_store(pg_url)
        s = swap(1)
        a = alert("MintA", s, channels=("discord", "telegram", "discord"))
        a.features["spread"] = float("nan")  # jsonb has no NaN: stored as null, not an error
        await store.commit_batch([(s, None)], [create_event("MintA")], [], [a])
        async with store.pool.acquire() as c:
            rows = await c.fetch("SELECT channel, state FROM alert_deliveries ORDER BY channel")
            assert [tuple(r) for r in rows] == [("discord", "pending"), ("telegram", "pending")]
            await c.execute("UPDATE alert_deliveries SET state = 'sent', attempts = 1 WHERE channel = 'discord'")
            stored = await c.fetchrow("SELECT * FROM alerts")
        assert (stored["token_name"], stored["token_symbol"]) == ("Pocket Coin", "PKT")
        assert stored["features"] == {**a.features, "spread": None} and stored["channels"] == a.channels
        # the alert replayed after a crash must not reset or add deliveries
        counts = await store.commit_batch([(s, None)], [], [], [a])
        assert (counts["alerts_dup"], counts["deliveries"]) == (1, 0)
        page = await store.alerts_page(10)
        assert [d["state"] for d in page[0]["deliveries"]] == ["sent", "pending"]
        assert (await store.counts())["deliveries"] == {"pending": 1, "sending": 0, "sent": 1, "dead": 0}
        await store.pool.close()
    run(body)


def test_amounts_beyond_int64_round_trip_exactly(pg_url):
    async def body():
        store = await open_store(pg_url)
        s = swap(1, token_amount=U64_MAX, quote_amount=2**63 + 1, virtual_sol_reserves=2**63,
                 virtual_token_reserves=U64_MAX - 1, fees={"protocol": U64_MAX}, price=float("nan"))
        await store.commit_batch([(s, None)])
        (row,) = await store.recent_swaps(since_block_time=0)
        assert (row["token_amount"], row["quote_amount"]) == (U64_MAX, 2**63 + 1)
        assert (row["virtual_sol_reserves"], row["virtual_token_reserves"]) == (2**63, U64_MAX - 1)
        assert type(row["token_amount"]) is int and row["fees"] == {"protocol": U64_MAX}
        await store.pool.close()
    run(body)


def test_recent_swaps_chain_order_and_partition(pg_url):
    async def body():
        store = await open_store(pg_url)
        mints = [f"Mint{i:02d}" for i in range(12)]
        placed = [(200, 0, "10"), (200, 0, "9"), (200, 0, "3.1"), (200, 0, "3"), (200, 1, "0"),
                  (150, 5, "1"), (150, 2, "4"), (300, None, "1"), (90, 0, "0")]
        swaps = [swap(n, mint=mints[n % len(mints)], slot=sl, tx_index=ti, ix=ix, signature=f"tx{sl}-{ti}")
                 for n, (sl, ti, ix) in enumerate(placed)]
        random.Random(7).shuffle(swaps)
        await store.commit_batch([(s, None) for s in swaps])
        rows = await store.recent_swaps(since_block_time=1_700_000_000 + 100 // 2)
        assert [(r["slot"], r["tx_index"], r["ix"]) for r in rows] == [
            (150, 2, "4"), (150, 5, "1"), (200, 0, "3"), (200, 0, "3.1"), (200, 0, "9"), (200, 0, "10"),
            (200, 1, "0"), (300, None, "1")]
        parts = 3
        seen = []
        for k in range(parts):
            mine = await store.recent_swaps(since_block_time=0, partition=(k, parts))
            assert all(partition_of(r["mint"], parts) == k for r in mine)
            seen += [(r["signature"], r["ix"]) for r in mine]
        assert sorted(seen) == sorted((s.signature, s.ix) for s in swaps)
        assert partition_of("So11111111111111111111111111111111111111112", 8) == partition_of(
            "So11111111111111111111111111111111111111112", 8)
        await store.commit_batch([], [create_event("Mint01"), create_event("Mint02")])
        creates = await store.token_creates(["Mint02", "Nope"])
        assert [(c["mint"], c["symbol"], c["user"]) for c in creates] == [("Mint02", "PKT", "dev")]
        await store.pool.close()
    run(body)


def test_state_upsert(pg_url):
    async def body():
        store = await open_store(pg_url)
        assert await store.get_state("p0", "0-0") == "0-0"
        await store.set_state("ingest", {"slot": 12, "gaps": []})
        await store.commit_batch([(swap(1), None)], state={"p0": "1700-3", "ingest": {"slot": 13, "gaps": [5]}})
        assert await store.get_state("p0") == "1700-3"
        assert await store.get_state("ingest") == {"slot": 13, "gaps": [5]}
        await store.set_state("p0", "1800-0")
        assert await store.get_state("p0") == "1800-0"
        await store.pool.close()
    run(body)


async def _terminate_others(url: str) -> int:
    admin = await asyncpg.connect(url)
    try:
        return len(await admin.fetch(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"))
    finally:
        await admin.close()


def test_with_retry_survives_terminated_connections(pg_url):
    async def body():
        store = await open_store(pg_url, min_size=2, max_size=2)
        batches = [[(swap(b * 100 + i, tx_index=i, slot=1000 + b), None) for i in range(100)] for b in range(30)]
        await store.commit_batch(batches[0])
        assert await _terminate_others(pg_url) >= 1  # the pool's idle connections die between commits
        failures = []

        async def commit(batch):
            try:
                return await store.commit_batch(batch)
            except Exception as e:
                failures.append(type(e).__name__)
                raise

        await with_retry(lambda: commit(batches[1]), attempts=8, base_delay=0.05)

        # a terminated connection in the middle of a transaction fails, and is retried whole
        calls = 0

        async def interrupted():
            nonlocal calls
            calls += 1
            async with store.pool.acquire() as c, c.transaction():
                await c.execute("SELECT 1")
                if calls == 1:
                    await _terminate_others(pg_url)
                await c.execute("SELECT 1")
            return await store.commit_batch(batches[2])

        await with_retry(interrupted, attempts=5, base_delay=0.05)
        assert calls == 2

        # and while it keeps happening mid-run, nothing is lost or doubled
        stop = asyncio.Event()

        async def terminator():
            while not stop.is_set():
                await asyncio.sleep(0.15)
                await _terminate_others(pg_url)

        killer = asyncio.create_task(terminator())
        for batch in batches[3:]:
            await with_retry(lambda b=batch: commit(b), attempts=20, base_delay=0.02)
        stop.set()
        await killer
        assert await with_retry(lambda: table_count(store, "swaps"), base_delay=0.02) == 3000
        print(json.dumps({"terminations_failed_commits": len(failures), "kinds": sorted(set(failures))}))
        await store.pool.close()
    run(body)


def test_errors_are_redacted_and_non_transient_errors_are_not_retried():
    dsn = "postgresql://pw:s3cret-pass@127.0.0.1:1/pocketwatcher?sslpassword=other-secret"
    assert "s3cret" not in redact_dsn(dsn) and "other-secret" not in redact_dsn(dsn)
    assert redact_dsn(dsn).startswith("postgresql://pw:***@127.0.0.1:1/pocketwatcher")

    async def body():
        with pytest.raises(StoreUnavailable) as err:
            await connect_pool("postgresql://pw:s3cret-pass@127.0.0.1:1/pocketwatcher", connect_timeout=2)
        assert "s3cret" not in str(err.value) and "127.0.0.1:1/pocketwatcher" in str(err.value)
        calls = 0

        async def broken():
            nonlocal calls
            calls += 1
            raise ValueError("a bug, not an outage")

        with pytest.raises(ValueError):
            await with_retry(broken, attempts=5, base_delay=0.01)
        assert calls == 1
    run(body)


def test_commit_throughput(pg_url):
    """Measured, not asserted: swaps/s committed in batches like the runner's."""
    async def body():
        store = await open_store(pg_url)
        mints = [f"Mint{i:04d}" for i in range(200)]
        n, size = 40_000, 1_000
        swaps = [(swap(i, mint=mints[i % 200], slot=10_000 + i // 20, tx_index=i % 20),
                  Enrichment(1_699_000_000, f"c{i % 50}", i % 11 == 0)) for i in range(n)]
        await store.commit_batch(swaps[:size])  # warm up: connection, statement cache
        t0 = time.perf_counter()
        for k in range(size, n, size):
            await store.commit_batch(swaps[k:k + size])
        fresh = (n - size) / (time.perf_counter() - t0)
        t0 = time.perf_counter()
        for k in range(0, n, size):
            await store.commit_batch(swaps[k:k + size])
        replay = n / (time.perf_counter() - t0)
        print(json.dumps({"bench": "commit_batch", "batch": size, "swaps": n, "swaps_per_s": round(fresh),
                          "replayed_swaps_per_s": round(replay)}))
        await store.pool.close()
    run(body)


def test_survives_a_real_postgresql_restart():
    """The server goes away (socket gone, then 'starting up') and comes back mid-run."""
    from pocketwatcher.store.embedded import EmbeddedServers

    state = Path(tempfile.mkdtemp(prefix="pw-restart-", dir="/tmp"))  # see test_store_embedded's tmp_path
    servers = EmbeddedServers(state)
    _, url = servers.start(need_redis=False)

    def bounce():
        time.sleep(0.2)
        servers.stop()
        time.sleep(1.0)
        servers.start(need_redis=False)

    async def body():
        store = await open_store(url, min_size=2, max_size=2)
        failures, b = [], 0

        async def commit(batch):
            try:
                return await store.commit_batch(batch)
            except Exception as e:
                failures.append(type(e).__name__)
                raise

        restart = asyncio.create_task(asyncio.to_thread(bounce))
        while not restart.done() or b < 3:
            batch = [(swap(b * 100 + i, slot=5000 + b, tx_index=i), None) for i in range(100)]
            await with_retry(lambda batch=batch: commit(batch), attempts=None, base_delay=0.05, max_delay=0.5)
            b += 1
            await asyncio.sleep(0.05)
        await restart
        assert failures, "no commit ran while the server was down"
        assert (await store.counts())["swaps"] == b * 100
        print(json.dumps({"restart_failed_commits": len(failures), "kinds": sorted(set(failures))}))
        await store.pool.close()

    try:
        run(body)
    finally:
        servers.stop()
        shutil.rmtree(state, ignore_errors=True)
