"""The embedded Redis and PostgreSQL: real servers that start, persist, stop and leave nothing behind."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import asyncpg
import psutil
import pytest
import redis

from pocketwatcher.store.embedded import EmbeddedServerError, EmbeddedServers, default_state_dir
from pocketwatcher.store.migrate import migrate

pytestmark = pytest.mark.integration


@pytest.fixture
def tmp_path():
    """A directory outside pytest's base temp: when run as root, pgserver runs PostgreSQL as a
    separate user that must traverse the parents, and each pytest session makes its base 0700."""
    path = Path(tempfile.mkdtemp(prefix="pw-emb-", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def server_pids(state_dir: Path) -> dict[str, int]:
    pids = {}
    for name, path in (("redis", state_dir / "redis" / "redis.pid"), ("postgres", state_dir / "pg" / "postmaster.pid")):
        if path.exists():
            pids[name] = int(path.read_text().split()[0])
    return pids


def leftovers(state_dir: Path, pids: dict[str, int]) -> list[str]:
    """Server processes still alive: the recorded pids, or any process naming the directory."""
    found = []
    for p in psutil.process_iter(["pid", "name", "cmdline", "status"]):
        if p.info["status"] == psutil.STATUS_ZOMBIE:
            continue
        cmd = " ".join(p.info["cmdline"] or [])
        if p.info["pid"] in pids.values() or (str(state_dir) in cmd and ("redis" in cmd or "postgres" in cmd)):
            found.append(f"{p.info['pid']} {cmd}")
    return found


async def pg_roundtrip(url: str, value: str | None) -> str | None:
    """Write ``value`` (if given) and read back what is stored, through the real schema."""
    await migrate(url)
    conn = await asyncpg.connect(url, timeout=10)
    try:
        if value is not None:
            await conn.execute("INSERT INTO runner_state (key, value) VALUES ('probe', to_jsonb($1::text)) "
                               "ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value", value)
        return await conn.fetchval("SELECT value #>> '{}' FROM runner_state WHERE key = 'probe'")
    finally:
        await conn.close()


def test_start_use_stop_restart(tmp_path):
    state = tmp_path / "state"
    times = {}
    t0 = time.perf_counter()
    servers = EmbeddedServers(state)
    redis_url, database_url = servers.start()
    times["first_start_s"] = time.perf_counter() - t0
    assert redis_url.startswith("unix://") and redis_url.endswith("?db=0")
    assert database_url.startswith("postgresql://") and "/pocketwatcher?" in database_url
    assert asyncio.run(pg_roundtrip(database_url, "kept")) == "kept"
    r = redis.Redis.from_url(redis_url)
    entry = r.xadd("pw:swaps:0", {"swap": b"payload"})
    r.close()
    pids = server_pids(state)
    assert set(pids) == {"redis", "postgres"} and leftovers(state, pids)

    t0 = time.perf_counter()
    servers.stop()
    times["stop_s"] = time.perf_counter() - t0
    assert leftovers(state, pids) == []

    # two users of one directory: the data is still there, and only the last stop stops the servers
    t0 = time.perf_counter()
    a, b = EmbeddedServers(state), EmbeddedServers(state)
    urls = a.start()
    times["restart_s"] = time.perf_counter() - t0
    assert b.start() == urls
    assert asyncio.run(pg_roundtrip(urls[1], None)) == "kept"
    r = redis.Redis.from_url(urls[0])
    assert [e[0] for e in r.xrange("pw:swaps:0")] == [entry]
    r.close()
    pids = server_pids(state)
    a.stop()
    assert asyncio.run(pg_roundtrip(b.database_url, None)) == "kept"
    assert redis.Redis.from_url(b.redis_url).ping()
    b.stop()
    assert leftovers(state, pids) == []
    print(json.dumps({"bench": "embedded_servers", **{k: round(v, 2) for k, v in times.items()}}))


def test_adopts_servers_left_by_a_crashed_process(tmp_path):
    state = tmp_path / "s"
    crash = ("import os, sys; from pocketwatcher.store.embedded import EmbeddedServers; "
             "print(EmbeddedServers(sys.argv[1]).start()[0], flush=True); os._exit(1)")
    out = subprocess.run([sys.executable, "-c", crash, str(state)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 1, out.stderr
    orphaned = server_pids(state)
    assert all(psutil.pid_exists(p) for p in orphaned.values())  # the crash left them running
    with EmbeddedServers(state) as servers:
        assert server_pids(state) == orphaned  # adopted, not started twice
        assert servers.redis_url == out.stdout.strip()
        assert redis.Redis.from_url(servers.redis_url).ping()
    assert leftovers(state, orphaned) == []


def test_long_state_dir_uses_short_sockets(tmp_path):
    state = tmp_path / ("deep-" * 12) / "pocketwatcher-state"
    assert len(str(state / "redis" / "redis.sock")) > 107
    with EmbeddedServers(state) as servers:
        sock = servers.redis_socket()
        assert str(sock).startswith("/tmp/pocketwatcher-") and sock.exists()
        assert redis.Redis.from_url(servers.redis_url).set("k", "v")
        assert asyncio.run(pg_roundtrip(servers.database_url, "long")) == "long"
        pids = server_pids(state)
    assert leftovers(state, pids) == [] and not sock.exists()


def test_redis_only_and_errors_say_what_to_do(tmp_path, monkeypatch):
    with EmbeddedServers(tmp_path / "r") as servers:
        pass
    assert servers.redis_url is None  # stopped
    only = EmbeddedServers(tmp_path / "r")
    assert only.start(need_postgres=False)[1] is None
    assert not (tmp_path / "r" / "pg" / "postmaster.pid").exists()
    only.stop()

    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(EmbeddedServerError, match="REDIS_URL and DATABASE_URL"):
        EmbeddedServers(blocker / "state").start()

    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg"))
    assert default_state_dir() == tmp_path / "xdg" / "pocketwatcher"
    monkeypatch.delenv("XDG_STATE_HOME")
    assert default_state_dir() == Path.home() / ".local" / "state" / "pocketwatcher"
