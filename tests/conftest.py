"""Shared test helpers: where the fixture transactions live.

Fixtures whose licence allows it are copied under tests/fixtures/; the rest (and the
expected swaps) are read from ../shared beside the checkout, which CI always has.
Set POCKETWATCHER_SHARED to point elsewhere.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("POCKETWATCHER_SHARED", REPO.parent / "shared"))
SHARED_TX = SHARED / "fixtures" / "tx"
LOCAL_TX = REPO / "tests" / "fixtures" / "tx"


def fixture_files() -> list[Path]:
    """Every fixture file, each name once (the shared copy when both exist)."""
    files: dict[str, Path] = {p.name: p for p in sorted(LOCAL_TX.glob("*.json"))}
    if SHARED_TX.is_dir():
        files.update({p.name: p for p in sorted(SHARED_TX.glob("*.json"))})
    return [files[k] for k in sorted(files)]


def expected_swaps() -> dict:
    path = SHARED / "fixtures" / "expected_dev.json"
    if not path.exists():
        pytest.fail(f"{path} is missing: the tests need ../shared beside the checkout "
                    "(or POCKETWATCHER_SHARED)")
    return json.loads(path.read_text())


# -- real servers ---------------------------------------------------------------------
# Integration tests use the PostgreSQL and Redis that run on this machine (and in CI):
# each test session creates its own database and Redis key prefix and removes them
# afterwards, so runs never collide or depend on leftovers. Set PW_TEST_PG_ADMIN /
# PW_TEST_REDIS to point elsewhere.

import asyncio  # noqa: E402
import uuid  # noqa: E402

PG_ADMIN = os.environ.get("PW_TEST_PG_ADMIN", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_BASE = os.environ.get("PW_TEST_REDIS", "redis://127.0.0.1:6379/0")


def _pg_dsn(dbname: str) -> str:
    base, _, _ = PG_ADMIN.rpartition("/")
    return f"{base}/{dbname}"


async def _pg_admin(sql: str) -> None:
    import asyncpg

    con = await asyncpg.connect(PG_ADMIN, timeout=10)
    try:
        await con.execute(sql)
    finally:
        await con.close()


def new_database() -> str:
    """Create an empty database for a test and return its URL (drop it with drop_database)."""
    name = f"pw_test_{uuid.uuid4().hex[:12]}"
    asyncio.run(_pg_admin(f'CREATE DATABASE "{name}"'))
    return _pg_dsn(name)


def drop_database(url: str) -> None:
    name = url.rsplit("/", 1)[1]
    asyncio.run(_pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture
def pg_url():
    """A fresh PostgreSQL database on the machine's server; dropped after the test."""
    try:
        url = new_database()
    except OSError as e:
        pytest.fail(f"PostgreSQL is not reachable at {PG_ADMIN} ({e}); start it (see README)")
    yield url
    drop_database(url)


@pytest.fixture
def redis_prefix():
    """(redis URL, unique key prefix); every key under the prefix is deleted afterwards."""
    import redis

    prefix = f"pwtest:{uuid.uuid4().hex[:10]}:"
    r = redis.Redis.from_url(REDIS_BASE)
    try:
        r.ping()
    except redis.ConnectionError as e:
        pytest.fail(f"Redis is not reachable at {REDIS_BASE} ({e}); start it (see README)")
    yield REDIS_BASE, prefix
    for key in r.scan_iter(match=prefix + "*", count=1000):
        r.delete(key)
    r.close()


# -- simulated market and runner fixtures (shared: one conftest, see tests/README) -------

@pytest.fixture(scope="session")
def sim_export(tmp_path_factory):
    from pocketwatcher.sim import simulate
    from pocketwatcher.store.parquet import export_capture

    d = tmp_path_factory.mktemp("sim")
    summary = simulate(12.0, 11, d, progress=False)
    export_capture(d / "capture.pwcap", d / "export", progress=False)
    return d, summary


SAMPLE = REPO / "data" / "sample.pwcap"


@pytest.fixture(scope="session")
def expected(tmp_path_factory):
    """(swap ids, alert ids) of the sample capture, from export + backtest."""
    from pocketwatcher.backtest.run import run_engine
    from pocketwatcher.store.parquet import export_capture
    from pocketwatcher.triggers.config import load_triggers

    d = tmp_path_factory.mktemp("expected")
    export_capture(SAMPLE, d, progress=False)
    import duckdb

    swaps = {f"{s}:{i}" for s, i in duckdb.sql(f"SELECT signature, ix FROM '{d}/swaps/*.parquet'").fetchall()}
    alerts, _n = run_engine(d, load_triggers(REPO / "triggers.toml"), workers=1)
    return swaps, {a["id"] for a in alerts}


@pytest.fixture
def replay_server():
    from pocketwatcher.geyser.server import ReplayServer

    def start(speed=None):
        srv = ReplayServer(SAMPLE, port=0, speed=speed, ping_interval=1.0)
        srv.start()
        servers.append(srv)
        return srv

    servers: list = []
    yield start
    for s in servers:
        s.stop(0.5)


async def db_state(url: str) -> tuple[set[str], set[str]]:
    import asyncpg

    con = await asyncpg.connect(url)
    try:
        swaps = {f"{r[0]}:{r[1]}" for r in await con.fetch("SELECT signature, ix FROM swaps")}
        alerts = {r[0] for r in await con.fetch("SELECT id FROM alerts")}
        return swaps, alerts
    finally:
        await con.close()
