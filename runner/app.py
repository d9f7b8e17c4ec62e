"""The live runner: ingest → swap streams → detect (per partition) → PostgreSQL → dispatch.

Wiring only; every piece is a library module. One process runs ingest (if an endpoint
is configured), the detect workers for the partitions it holds a lease on, and the
alert dispatcher. Several processes share the partitions through Redis leases; when one
dies its leases expire and the others take its partitions (and pending entries) over.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import signal
import socket
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from pocketwatcher.parse.programs.registry import KNOWN_PROGRAMS

from .metrics import Metrics

log = logging.getLogger("pocketwatcher.runner")


@dataclass
class RunnerSettings:
    redis_url: str | None = None
    database_url: str | None = None
    geyser_endpoint: str | None = None
    geyser_x_token: str | None = field(default=None, repr=False)
    triggers: Path = Path("triggers.toml")
    config: Path | None = None  # pocketwatcher.toml (channels, routes)
    partitions: int = 8
    prefix: str = "pw:"  # Redis key prefix (tests and side-by-side deployments use their own)
    metrics_port: int = 9108
    dashboard_port: int = 0
    stop_after_idle: float | None = None
    state_dir: Path | None = None
    lease_ttl_ms: int = 10_000
    claim_idle_ms: int = 10_000
    max_deliveries: int = 5
    startup_wait_s: float = 120.0  # how long to wait for Redis/PostgreSQL to come up on start
    dispatch: bool = True
    ingest: bool = True
    detect: bool = True
    # subscribe and parse in a child process (the other core); None: when there are 2+ cores
    parse_process: bool | None = None
    owner_id: str = field(default_factory=lambda: f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}")
    programs: list[str] = field(default_factory=lambda: sorted(KNOWN_PROGRAMS))

    @classmethod
    def from_env(cls, **overrides) -> RunnerSettings:
        env = os.environ
        s = cls(redis_url=env.get("REDIS_URL") or None, database_url=env.get("DATABASE_URL") or None,
                geyser_endpoint=env.get("GEYSER_ENDPOINT") or None, geyser_x_token=env.get("GEYSER_X_TOKEN") or None)
        if env.get("POCKETWATCHER_PREFIX"):
            s.prefix = env["POCKETWATCHER_PREFIX"]
        for k, v in overrides.items():
            if v is not None:
                setattr(s, k, v)
        return s


def install_signal_handlers(loop: asyncio.AbstractEventLoop, stop: asyncio.Event) -> None:
    """SIGINT, SIGTERM (and SIGBREAK on Windows) set ``stop``; works on every platform."""
    if threading.current_thread() is not threading.main_thread():
        return

    def handler(signum, _frame):
        log.info("signal %s: stopping intake, draining", signal.Signals(signum).name)
        loop.call_soon_threadsafe(stop.set)

    for name in ("SIGINT", "SIGTERM", "SIGBREAK"):
        if hasattr(signal, name):
            signal.signal(getattr(signal, name), handler)


class Runner:
    def __init__(self, settings: RunnerSettings, *, on_alert=None) -> None:
        self.s = settings
        self.stop = asyncio.Event()
        self.metrics = Metrics()
        self.on_alert = on_alert
        self.workers: dict[int, tuple] = {}
        self.embedded = None
        self.ingest = None
        self.started_at = time.monotonic()

    async def _connect(self):
        import redis.asyncio as aioredis

        from pocketwatcher.store.migrate import migrate
        from pocketwatcher.store.postgres import Store, connect_pool

        s = self.s
        if not s.redis_url or not s.database_url:
            from pocketwatcher.store.embedded import EmbeddedServers, default_state_dir

            self.embedded = EmbeddedServers(s.state_dir or default_state_dir())
            r_url, d_url = await asyncio.to_thread(self.embedded.start, need_redis=not s.redis_url,
                                                   need_postgres=not s.database_url)
            s.redis_url = s.redis_url or r_url
            s.database_url = s.database_url or d_url
        self.redis = aioredis.Redis.from_url(s.redis_url, socket_timeout=10, socket_connect_timeout=5,
                                             health_check_interval=15)
        self.pool = await self._wait_for("PostgreSQL", lambda: connect_pool(
            s.database_url, max_size=max(4, s.partitions // 2 + 2)))
        await self._wait_for("PostgreSQL", lambda: migrate(self.pool))
        self.store = Store(self.pool)

    async def _wait_for(self, what: str, fn):
        """Run a start-up step, waiting (with backoff, up to ``startup_wait_s``) while its
        server is unreachable: a runner started alongside Redis or PostgreSQL, or during
        their restart, comes up when they do instead of exiting. Other errors raise at once."""
        import redis.exceptions

        from pocketwatcher.geyser.client import backoff
        from pocketwatcher.store.postgres import is_transient

        delays = backoff(0.2, 5.0)
        deadline = time.monotonic() + self.s.startup_wait_s
        while True:
            try:
                return await fn()
            except Exception as e:
                transient = is_transient(e) or isinstance(e, (redis.exceptions.ConnectionError,
                                                              redis.exceptions.TimeoutError))
                if not transient or self.stop.is_set() or time.monotonic() > deadline:
                    raise
                log.warning("%s not reachable yet (%s); waiting", what, type(e).__name__)
                await _sleep(self.stop, next(delays))

    async def run(self) -> int:
        from pocketwatcher.store.leases import PartitionLeases
        from pocketwatcher.store.streams import SwapStreams
        from pocketwatcher.triggers.config import load_triggers

        s = self.s
        await self._connect()
        # The engine and the enricher hold millions of long-lived objects: with the default
        # thresholds the cyclic GC walks them over and over, in pauses that land on alert
        # latency. Freeze what start-up built and collect the young generation less often.
        gc.freeze()
        gc.set_threshold(50_000, 20, 100)
        self.triggers = load_triggers(s.triggers)
        from pocketwatcher.alerting.config import load_alerting_config

        self.alerting = load_alerting_config(s.config)
        self.streams = SwapStreams(self.redis, prefix=s.prefix, parts=s.partitions)
        await self._wait_for("Redis", self.streams.ensure_groups)
        self.leases = PartitionLeases(self.redis, s.prefix, s.partitions, s.owner_id, ttl_ms=s.lease_ttl_ms)
        tasks = [asyncio.create_task(self._lease_loop(), name="leases")]
        if s.metrics_port:
            self.metrics.serve(s.metrics_port)
        if s.ingest and s.geyser_endpoint:
            from .ingest import Ingest

            self.ingest = Ingest(s.geyser_endpoint, s.geyser_x_token, self.streams, self.redis,
                                 programs=s.programs, prefix=s.prefix, stop=self.stop, metrics=self.metrics,
                                 parse_process=s.parse_process if s.parse_process is not None
                                 else (os.cpu_count() or 1) >= 2)
            tasks.append(asyncio.create_task(self.ingest.run(self.store), name="ingest"))
        if s.dispatch:
            tasks.append(asyncio.create_task(self._dispatch(), name="dispatch"))
        if s.stop_after_idle:
            tasks.append(asyncio.create_task(self._idle_watch(), name="idle"))
        tasks.append(asyncio.create_task(self._stats_loop(), name="stats"))
        for t in tasks:
            t.add_done_callback(self._task_done)
        await self.stop.wait()
        await self._shutdown(tasks)
        return 1 if getattr(self, "failed", False) else 0

    def _task_done(self, t: asyncio.Task) -> None:
        """A pipeline task that dies is an outage, not a detail: log it and stop (exit 1)."""
        if t.cancelled() or t.exception() is None:
            return
        log.error("%s failed: %s: %s", t.get_name(), type(t.exception()).__name__, t.exception(),
                  exc_info=t.exception())
        self.failed = True
        self.stop.set()

    async def _lease_loop(self) -> None:
        from pocketwatcher.store.streams import PartitionConsumer

        from .detect import PartitionWorker

        if not self.s.detect:
            return  # an ingest-only runner takes no partitions and is not counted as an owner
        while not self.stop.is_set():
            try:
                held = set(await self.leases.renew())
                for k in list(self.workers):
                    if k not in held:
                        log.warning("partition %d: lease lost, stopping its worker", k)
                        w, t = self.workers.pop(k)
                        w.lost.set()
                        t.cancel()
                for k in await self.leases.acquire_some():
                    consumer = PartitionConsumer(self.redis, self.streams, k, self.s.owner_id,
                                                 claim_idle_ms=self.s.claim_idle_ms,
                                                 max_deliveries=self.s.max_deliveries)
                    w = PartitionWorker(k, self.s.partitions, self.streams, consumer, self.store, self.triggers,
                                        stop=self.stop, metrics=self.metrics, on_alert=self.on_alert,
                                        route=self.alerting.channels_for)
                    self.workers[k] = (w, asyncio.create_task(w.run(), name=f"detect-{k}"))
                    log.info("partition %d: taken", k)
                for k in self.leases.surplus() if hasattr(self.leases, "surplus") else ():
                    if k in self.workers:
                        w, t = self.workers.pop(k)
                        w.lost.set()
                        await asyncio.wait([t], timeout=5)
                        await self.leases.release(k)
                self.metrics.set("partitions_held", len(self.workers))
            except Exception as e:  # noqa: BLE001 - Redis restarts: keep trying
                self.metrics.inc("redis_errors")
                log.warning("leases: %s: %s", type(e).__name__, e)
            await _sleep(self.stop, self.s.lease_ttl_ms / 3000)

    async def _dispatch(self) -> None:
        from pocketwatcher.alerting.dispatcher import Dispatcher
        from pocketwatcher.geyser.client import backoff

        delays = backoff(0.5, 10.0)
        while not self.stop.is_set():  # the dispatcher is crash-safe: restart it after a DB outage
            try:
                await Dispatcher(self.s.database_url, self.alerting).run(self.stop)
            except Exception as e:  # noqa: BLE001
                log.warning("dispatcher: %s: %s; restarting", type(e).__name__, e)
                await _sleep(self.stop, next(delays))

    async def _idle_watch(self) -> None:
        """--stop-after-idle: exit once no transaction came for that long and all is committed."""
        while not self.stop.is_set():
            await _sleep(self.stop, 0.5)
            if self.ingest is None:
                continue
            if self.ingest.idle_for() >= 1.0:
                await self.ingest.flush(idle=True)
            if self.ingest.idle_for() < self.s.stop_after_idle or self.ingest.buffer:
                continue
            try:
                st = await self.streams.stats()
            except Exception as e:  # noqa: BLE001 - Redis restarting: not idle, not an outage of ours
                log.debug("idle check: %s", e)
                continue
            if st.get("pending", 1) == 0 and st.get("lag", 1) == 0 and self.ingest.idle_for() >= self.s.stop_after_idle:
                log.info("idle for %.0f s with everything committed: stopping", self.ingest.idle_for())
                self.stop.set()

    async def _stats_loop(self) -> None:
        while not self.stop.is_set():
            try:
                st = await self.streams.stats()
                for key in ("length", "pending", "lag", "dead"):
                    if key in st:
                        self.metrics.set(f"stream_{key}", st[key])
                await self.streams.trim_all()
            except Exception as e:  # noqa: BLE001
                log.debug("stats: %s", e)
            await _sleep(self.stop, 2.0)

    async def _shutdown(self, tasks) -> None:
        """Stop intake first, let detect finish its batch and commit, then close."""
        deadline = 20.0
        ingest = [t for t in tasks if t.get_name() == "ingest"]
        if ingest:
            await asyncio.wait(ingest, timeout=deadline / 2)
        workers = [t for _w, t in self.workers.values()]
        if workers:
            await asyncio.wait(workers, timeout=deadline / 2)
        for t in tasks + workers:
            if not t.done():
                t.cancel()
        await asyncio.gather(*tasks, *workers, return_exceptions=True)
        try:
            await self.leases.release_all()
        except Exception:  # noqa: BLE001
            pass
        await self.pool.close()
        await self.redis.aclose()
        self.metrics.close()
        if self.embedded is not None:
            self.embedded.stop()
        logging.shutdown()


async def _sleep(stop: asyncio.Event, seconds: float) -> None:
    try:
        await asyncio.wait_for(stop.wait(), timeout=seconds)
    except TimeoutError:
        pass


def run(settings: RunnerSettings, *, on_alert=None) -> int:
    async def main() -> int:
        runner = Runner(settings, on_alert=on_alert)
        install_signal_handlers(asyncio.get_running_loop(), runner.stop)
        return await runner.run()

    return asyncio.run(main())
