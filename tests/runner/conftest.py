"""Fixtures for runner tests: the sample capture replayed by a real gRPC server, and what the
backtest says the runner must end up with (same swaps, same alert ids)."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
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
