"""Helpers and fixtures shared by the alerting tests (imported by name: tests/ has no packages).

A plain module, not a conftest.py: another conftest would shadow ``tests/conftest.py``
for the suites that ``from conftest import ...``. Tests import the fixtures they use.

Configs here shorten timeouts, backoffs and leases so the suite stays fast; the
defaults themselves are tested in test_alerting_config.py.
"""

from __future__ import annotations

import asyncio
import json

import asyncpg
import pytest

from pocketwatcher.alerting import outbox
from pocketwatcher.alerting.config import parse_alerting
from pocketwatcher.alerting.testing import FakeChatServer
from pocketwatcher.store.migrate import migrate

DISCORD_TOKEN = "discordSecretTok3n-ABCDEFGHIJKLMNOP"
TELEGRAM_TOKEN = "7123456789:AAH-telegramSecretToken_abcdefghijKLM"
FAST = {"timeout_s": 0.5, "backoff_base_s": 0.05, "backoff_max_s": 0.2, "rate": [], "concurrency": 2}


@pytest.fixture(name="fake")
def fake_fixture():
    """The fake Discord/Telegram/webhook server on a free local port."""
    with FakeChatServer() as server:
        yield server


@pytest.fixture(name="db")
def db_fixture(pg_url):
    """A migrated database's URL."""
    asyncio.run(migrate(pg_url))
    return pg_url


def make_config(fake: FakeChatServer, channels: dict[str, dict] | None = None, *, lease_s: float = 2.0,
                **common):
    """Channels pointing at ``fake``; ``channels`` maps name → {kind, ...overrides}."""
    env, tables = {}, {}
    channels = channels if channels is not None else {"discord": {"kind": "discord"}, "telegram": {
        "kind": "telegram"}, "hook": {"kind": "webhook"}}
    for name, spec in channels.items():
        spec = {**FAST, **common, **spec}
        kind = spec["kind"]
        var = f"SECRET_{name.upper()}"
        if kind == "discord":
            env[var] = fake.discord_url(spec.pop("webhook_id", "111"), spec.pop("token", DISCORD_TOKEN))
            spec["webhook_url_env"] = var
        elif kind == "telegram":
            env[var] = spec.pop("token", TELEGRAM_TOKEN)
            spec.update(bot_token_env=var, api_base=fake.url)
            spec.setdefault("chat_id", -100123)
        elif kind == "webhook":
            env[var] = fake.url + spec.pop("path", f"/hook/{name}")
            spec["url_env"] = var
        tables[name] = spec
    return parse_alerting({"channels": tables, "dispatcher": {"lease_s": lease_s, "poll_s": 0.05}}, env)


def alert(i: int, channels: list[str], **extra) -> dict:
    return {"id": f"a{i:04d}", "trigger": "buyer_burst", "version": 1, "mint": f"Mint{i:04d}" + "x" * 36,
            "signature": f"sig{i}", "ix": "1", "slot": 1000 + i, "block_time": 1_700_000_000 + i,
            "severity": "info", "features": {"mcap_sol": 55.5, "price_sol": 5.5e-8, "age_s": 320,
                                             "unique_buyers_60s": 14}, **extra}


async def seed(url: str, n: int, channels: list[str], start: int = 0) -> list[str]:
    conn = await asyncpg.connect(url)
    try:
        async with conn.transaction():
            for i in range(start, start + n):
                await outbox.enqueue(conn, alert(i, channels), channels, token_name=f"Token {i}",
                                     token_symbol=f"T{i}")
    finally:
        await conn.close()
    return [f"a{i:04d}" for i in range(start, start + n)]


async def fetch(url: str, sql: str, *args) -> list[dict]:
    conn = await asyncpg.connect(url)
    try:
        return [dict(r) for r in await conn.fetch(sql, *args)]
    finally:
        await conn.close()


def deliveries(url: str) -> dict[tuple[str, str], dict]:
    rows = asyncio.run(fetch(url, "SELECT * FROM alert_deliveries"))
    return {(r["alert_id"], r["channel"]): r for r in rows}


def attempts(url: str) -> list[dict]:
    return asyncio.run(fetch(url, "SELECT * FROM alert_attempts ORDER BY id"))


def dumps_rows(rows) -> str:
    return json.dumps(rows, default=str)
