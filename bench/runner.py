"""Runner throughput and latency through the real pipeline. Prints one JSON line.

    python bench/runner.py [--minutes 20] [--launches 60]

A simulated market is replayed by the gRPC replay server at --speed max into the runner
(real Redis Streams on 127.0.0.1:6379 under a fresh key prefix, a fresh PostgreSQL
database on 127.0.0.1:5432). Two layouts:

- one process: ingest + detect (+ no dispatch) in one event loop;
- two processes: ingest alone in a child process (``--no-detect``), detect in this one.

The replay server runs in a process of its own (as a remote provider would).
``--parse process|inline`` says where ingest parses (a child process, the default with
two or more cores, or the runner's own process), so both can be compared back to back.

Figures: sustained transactions per second (transactions the replay streamed to the
runner — the capture's successful ones; the subscription excludes failed ones — ÷ time
from the runner's start to the last commit; ``steady_tx_per_s`` over the middle 80 % of
the swaps, without start-up and tail; ``exited_s`` when the runner had stopped, after
``--stop-after-idle``), and the p50/p99 latency from a swap's transaction being received
to its swap and alerts being committed (``p99_ms_by_tenth``: per tenth of the run, in
commit order). ``--paced-rate R`` also replays at the speed that averages R tx/s (the
capture's slots are bursty: peaks run higher). Target: 5,000 tx/s with p99 under 250 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))


def pct(xs: list[float], q: float) -> float | None:
    if not xs:
        return None
    xs = sorted(xs)
    return round(xs[min(len(xs) - 1, int(q * len(xs)))] * 1000, 1)


def steady_rate(timeline: list[tuple[float, float]], total: float, n_tx: int) -> dict:
    """The sustained rate: transactions/s while the middle 80 % of the swaps were committed
    (start-up — connecting, migrations, spawning the parse child — and the tail left out),
    and when the first swap was committed."""
    if total <= 0 or len(timeline) < 3:
        return {}
    first = next((t for t, c in timeline if c > 0), None)
    lo = next(((t, c) for t, c in timeline if c >= 0.1 * total), None)
    hi = next(((t, c) for t, c in timeline if c >= 0.9 * total), None)
    if lo is None or hi is None or hi[0] <= lo[0]:
        return {"first_commit_s": first}
    per_swap = n_tx / total
    return {"first_commit_s": round(first, 1),
            "steady_tx_per_s": round((hi[1] - lo[1]) * per_swap / (hi[0] - lo[0]))}


def run_layout(capture: Path, split: bool, n_tx: int, speed: str = "max", parse_process: bool | None = None) -> dict:
    from conftest import drop_database, new_database

    db = new_database()
    try:
        return asyncio.run(_run_layout(capture, split, n_tx, db, speed, parse_process))
    finally:
        drop_database(db)


async def _run_layout(capture: Path, split: bool, n_tx: int, db: str, speed: str = "max",
                      parse_process: bool | None = None) -> dict:
    import socket

    import redis

    from runner.app import Runner, RunnerSettings

    # the replay server runs in its own process, as a provider would: in this one it
    # would compete with the runner for the GIL
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    srv = subprocess.Popen([sys.executable, "-m", "pocketwatcher", "replay", str(capture), "--port", str(port),
                            "--speed", speed], cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    import grpc

    grpc.channel_ready_future(grpc.insecure_channel(f"127.0.0.1:{port}")).result(timeout=30)
    prefix = f"pwbench:{uuid.uuid4().hex[:8]}:"
    endpoint = f"http://127.0.0.1:{port}"
    child = None
    try:
        settings = RunnerSettings(redis_url="redis://127.0.0.1:6379/0", database_url=db, prefix=prefix,
                                  geyser_endpoint=endpoint, partitions=4, metrics_port=0, dispatch=False,
                                  stop_after_idle=3.0, lease_ttl_ms=3000, triggers=REPO / "triggers.toml",
                                  ingest=not split, parse_process=parse_process)
        if split:
            env = {**os.environ, "REDIS_URL": settings.redis_url, "DATABASE_URL": db, "GEYSER_ENDPOINT": endpoint,
                   "POCKETWATCHER_PREFIX": prefix}
            child = subprocess.Popen([sys.executable, "-m", "pocketwatcher", "run", "--no-detect", "--metrics-port",
                                      "0", "--partitions", "4", "--stop-after-idle", "3",
                                      *({True: ["--parse-process"], False: ["--parse-inline"]}.get(parse_process, []))], cwd=REPO, env=env,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            settings.stop_after_idle = None
        runner = Runner(settings)
        t0 = time.time()
        task = asyncio.create_task(runner.run())
        timeline: list[tuple[float, float]] = []  # (seconds since start, swaps committed)

        async def sample() -> None:
            while True:
                timeline.append((time.time() - t0, runner.metrics.value("swaps_committed")))
                await asyncio.sleep(0.25)
        sampler = asyncio.create_task(sample())
        if split:
            while child.poll() is None:
                await asyncio.sleep(0.5)
            # ingest finished: wait for detect to drain, then stop
            while True:
                await asyncio.sleep(0.5)
                st = await runner.streams.stats()
                if st.get("lag", 1) == 0 and st.get("pending", 1) == 0:
                    break
            runner.stop.set()
        await task
        sampler.cancel()
        if os.environ.get("PW_BENCH_TIMELINE"):
            print(json.dumps(timeline), file=sys.stderr)
        lat = runner.metrics.latencies
        committed = runner.metrics.value("swaps_committed")
        # start to the last commit (the timeline's first sample holding every swap), not to
        # the exit: the idle wait and the shutdown that end a batch replay are not throughput
        busy = next((t for t, c in timeline if c >= committed), time.time() - t0)
        stopped = round(time.time() - t0, 1)
        out = {"transactions": n_tx, "seconds": round(busy, 1), "tx_per_s": round(n_tx / busy),
               "swaps_committed": int(committed), "exited_s": stopped, **steady_rate(timeline, committed, n_tx),
               "p50_ms": pct(lat, 0.5), "p99_ms": pct(lat, 0.99),
               "p99_ms_by_tenth": [pct(lat[i * len(lat) // 10:(i + 1) * len(lat) // 10], 0.99) for i in range(10)]}
    finally:
        if child and child.poll() is None:
            child.kill()
        srv.terminate()
        srv.wait(10)
        r = redis.Redis()
        for k in r.scan_iter(match=prefix + "*", count=1000):
            r.delete(k)
    return out


def memory_probe(mints: int, parts: int = 8) -> dict:
    """Peak RSS of a runner's state for ``mints`` live mints, in a child process of its own.

    It runs the runner's per-swap code paths without the servers: ingest's enricher
    (wallet first-seen, clusters, smart money) and its seen-id set, the stream record
    encoded and decoded, and one TriggerEngine per partition with the detect worker's
    committed-id map — every mint trading 6 times inside one hour of event time, so none
    is evicted. Libraries the runner imports (gRPC, redis, asyncpg, DuckDB...) are loaded
    first, so the figure is the whole process, not only the state.
    """
    code = f"""
import sys, json
sys.path.insert(0, {str(REPO)!r})
import grpc, redis.asyncio, asyncpg, duckdb, pyarrow  # noqa: F401 - what the runner process holds
import runner.app, runner.ingest, runner.detect  # noqa: F401
from pocketwatcher.enrich.wallets import Enricher
from pocketwatcher.parse import Swap
from pocketwatcher.store.streams import partition_of
from pocketwatcher.triggers.config import load_triggers
from pocketwatcher.triggers.engine import TriggerEngine
from pocketwatcher.triggers.trade import Trade
from runner.records import decode, encode_swap
WSOL = "So11111111111111111111111111111111111111112"
triggers = load_triggers({str(REPO / 'triggers.toml')!r})
engines = [TriggerEngine(triggers) for _ in range({parts})]
committed = [dict() for _ in range({parts})]
enricher, seen = Enricher(), set()
t, n = 1_800_000_000, 0
for i in range({mints}):
    mint = f"{{i:07d}}" + "M" * 36 + "pump"
    k = partition_of(mint, {parts})
    engines[k].on_create(mint, f"dev{{i:07d}}" + "D" * 34, t, 1000 + i)
    for j in range(6):
        n += 1
        sig = f"{{i:07d}}{{j}}" + "S" * 80
        s = Swap(sig, 1000 + i, t + j, "2", "pumpfun", "curve" + mint[:39], f"w{{(i * 7 + j) % 50000:06d}}" + "W" * 37,
                 mint, "buy" if j % 3 != 2 else "sell", 10**12, 6, WSOL, 10**8, 9, 3e-8 + j * 1e-9,
                 fee_payer=None, virtual_sol_reserves=31 * 10**9, virtual_token_reserves=10**15, mcap_sol=32.0,
                 fees={{"protocol": 95, "creator": 5}})
        rec = encode_swap(s, enricher.on_swap(s, s.fee_payer), 1.0)
        seen.add(s.id)
        if len(seen) > 500_000:
            seen.clear()
        _kind, (s2, e2, _rx) = decode(rec)
        engines[k].on_trade(Trade.from_swap(s2, e2))
        committed[k][s2.id] = None
        if len(committed[k]) > 1_000_000:
            committed[k] = dict.fromkeys(list(committed[k])[-200_000:])
    t += 0 if i % 50 else 1
def hwm():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
print(json.dumps({{"mints": sum(len(e.mints) for e in engines), "swaps": n, "peak_rss_mb": round(hwm(), 1)}}))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO)
    return json.loads(out.stdout.strip().splitlines()[-1])


def stage_costs(capture: Path, limit: int = 20_000) -> dict:
    """CPU per streamed transaction of each runner stage, measured one at a time in this
    process (µs; time.process_time, best of 3) over the capture's successful transactions:
    where a transaction's cost goes, and so what a faster runner must cut.
    Publish and commit run against the real Redis and PostgreSQL (their server-side cost
    is not counted: it runs in their processes)."""
    from pocketwatcher.enrich.wallets import Enricher
    from pocketwatcher.geyser.capture import CaptureReader
    from pocketwatcher.parse import parse_update_full
    from pocketwatcher.proto import geyser_pb2 as pb
    from pocketwatcher.triggers.config import load_triggers
    from pocketwatcher.triggers.engine import TriggerEngine
    from pocketwatcher.triggers.trade import Trade
    from runner.records import decode, encode_swap

    raw = []
    for data in CaptureReader(capture):
        u = pb.SubscribeUpdate.FromString(data)
        if u.WhichOneof("update_oneof") == "transaction" and not u.transaction.transaction.meta.HasField("err"):
            raw.append(data)
            if len(raw) >= limit:
                break
    n = len(raw)

    def best(fn) -> float:
        out = 1e9
        for _ in range(3):
            t = time.process_time()
            fn()
            out = min(out, time.process_time() - t)
        return round(out / n * 1e6, 1)

    ups = [pb.SubscribeUpdate.FromString(d) for d in raw]
    res = [parse_update_full(u, transfers=True) for u in ups]
    swaps = [s for r in res for s in r.swaps]
    enr = Enricher()
    stamped = [(s, enr.on_swap(s, s.fee_payer)) for s in swaps]
    recs = [encode_swap(s, e, 1.0) for s, e in stamped]
    triggers = load_triggers(REPO / "triggers.toml")
    out = {"transactions": n, "swaps": len(swaps),
           "deserialize_us": best(lambda: [pb.SubscribeUpdate.FromString(d) for d in raw]),
           "parse_us": best(lambda: [parse_update_full(u, transfers=True) for u in ups]),
           "enrich_us": best(lambda: [(lambda e: [e.on_swap(s, s.fee_payer) for s in swaps])(Enricher())]),
           "encode_us": best(lambda: [encode_swap(s, e, 1.0) for s, e in stamped]),
           "decode_us": best(lambda: [decode(r) for r in recs])}

    def engine():
        eng = TriggerEngine(triggers)
        for s, e in stamped:
            eng.on_trade(Trade.from_swap(s, e))
    out["engine_us"] = best(engine)
    out.update(asyncio.run(_io_costs(recs, stamped, n)))
    out["runner_total_us"] = round(sum(v for k, v in out.items() if k.endswith("_us")), 1)
    return out


async def _io_costs(recs, stamped, n: int) -> dict:
    """Client-side CPU of publishing the records to Redis Streams, reading and acking them,
    and committing the swaps to PostgreSQL in batches of 500."""
    import redis.asyncio as aioredis
    from conftest import drop_database, new_database

    from pocketwatcher.store.migrate import migrate
    from pocketwatcher.store.postgres import Store, connect_pool
    from pocketwatcher.store.streams import PartitionConsumer, SwapStreams

    prefix = f"pwstage:{uuid.uuid4().hex[:8]}:"
    r = aioredis.Redis.from_url("redis://127.0.0.1:6379/0")
    db = await asyncio.to_thread(new_database)
    try:
        streams = SwapStreams(r, prefix=prefix, parts=4)
        await streams.ensure_groups()
        entries = [(s.mint, rec) for (s, _e), rec in zip(stamped, recs, strict=True)]
        t = time.process_time()
        for i in range(0, len(entries), 500):
            await streams.publish(entries[i:i + 500])
        publish = time.process_time() - t
        t = time.process_time()
        for k in range(4):
            c = PartitionConsumer(r, streams, k, "bench")
            while batch := await c.next_batch(500, block_ms=None):
                await c.ack(i for i, _ in batch)
        consume = time.process_time() - t
        pool = await connect_pool(db)
        await migrate(pool)
        store = Store(pool)
        t = time.process_time()
        for i in range(0, len(stamped), 500):
            await store.commit_batch(stamped[i:i + 500])
        commit = time.process_time() - t
        await pool.close()
    finally:
        async for k in r.scan_iter(match=prefix + "*", count=1000):
            await r.delete(k)
        await r.aclose()
        await asyncio.to_thread(drop_database, db)
    return {"publish_us": round(publish / n * 1e6, 1), "consume_ack_us": round(consume / n * 1e6, 1),
            "commit_us": round(commit / n * 1e6, 1)}


def capture_summary(path: Path) -> dict:
    """Transactions, failed ones and parsed swaps of a capture (any capture, not only simulated)."""
    from pocketwatcher.geyser.capture import CaptureReader
    from pocketwatcher.parse import parse_update

    n = failed = swaps = 0
    times = []
    for upd in CaptureReader(path).updates():
        if upd.WhichOneof("update_oneof") == "block_meta":
            times.append(upd.block_meta.block_time.timestamp)
        if upd.WhichOneof("update_oneof") != "transaction":
            continue
        n += 1
        if upd.transaction.transaction.meta.HasField("err"):
            failed += 1
        else:
            swaps += len(parse_update(upd))
    span = (max(times) - min(times)) if times else 0
    return {"transactions": n, "failed": failed, "trades": swaps, "span_s": span}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=20.0)
    ap.add_argument("--launches", type=float, default=60.0)
    ap.add_argument("--seed", type=int, default=5)
    ap.add_argument("--layout", choices=["both", "one", "two", "none"], default="both",
                    help="which max-speed runs to do (none: only the paced run)")
    ap.add_argument("--capture", type=Path, help="replay this capture instead of simulating one")
    ap.add_argument("--paced-rate", type=float, default=1000.0,
                    help="also replay at the speed that offers this many tx/s, for latency at a sustainable "
                         "rate (0 = skip); all of Solana's non-vote traffic is about 1,000 tx/s")
    ap.add_argument("--parse", choices=["auto", "process", "inline"], default="auto",
                    help="where ingest parses: a child process, the runner's own, or auto (child with 2+ cores)")
    ap.add_argument("--stages", action="store_true", help="only the CPU cost of each stage per transaction")
    ap.add_argument("--memory-mints", type=int, default=100_000,
                    help="also measure the memory of a runner tracking this many mints (0 = skip)")
    args = ap.parse_args()

    if args.stages:
        if not args.capture:
            from pocketwatcher.sim import simulate

            work = Path(tempfile.mkdtemp(prefix="pw-runner-bench-"))
            simulate(args.minutes, args.seed, work, launches_per_minute=args.launches, progress=False)
            args.capture = work / "capture.pwcap"
        print(json.dumps({"bench": "runner_stages", **stage_costs(args.capture)}))
        return
    if args.capture:
        capture = args.capture
        summary = capture_summary(capture)
    else:
        from pocketwatcher.sim import simulate

        work = Path(tempfile.mkdtemp(prefix="pw-runner-bench-"))
        summary = simulate(args.minutes, args.seed, work, launches_per_minute=args.launches, progress=False)
        capture = work / "capture.pwcap"
    n_tx = summary["transactions"] - summary["failed"]  # what the subscription streams
    pp = {"auto": None, "process": True, "inline": False}[args.parse]
    one = run_layout(capture, False, n_tx, parse_process=pp) if args.layout in ("both", "one") else {}
    two = run_layout(capture, True, n_tx, parse_process=pp) if args.layout in ("both", "two") else {}
    paced = {}
    if args.paced_rate:
        span = summary.get("span_s") or capture_summary(capture)["span_s"]
        speed = args.paced_rate / (n_tx / span)
        paced = {"offered_tx_per_s": args.paced_rate, "replay_speed": round(speed, 2),
                 **run_layout(capture, False, n_tx, speed=f"{speed:.3f}", parse_process=pp)}
    print(json.dumps({"bench": "runner", "streamed_transactions": n_tx,
                      "capture_transactions": summary["transactions"], "capture_swaps": summary["trades"],
                      **{f"one_process_{k}": v for k, v in one.items()},
                      **{f"two_processes_{k}": v for k, v in two.items()},
                      **{f"paced_{k}": v for k, v in paced.items()},
                      "parse": args.parse, "target_tx_per_s": 5000, "target_p99_ms": 250,
                      **({f"memory_{k}": v for k, v in memory_probe(args.memory_mints).items()}
                         if args.memory_mints else {})}))


if __name__ == "__main__":
    main()
