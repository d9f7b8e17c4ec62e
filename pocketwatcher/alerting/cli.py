"""``pocketwatcher alerts ...``: list recent alerts, requeue dead deliveries, send test alerts,
run the dispatcher alone.

Each function works from ``DATABASE_URL`` (or the URL given) alone and applies the
migrations first, so ``send-test`` checks a fresh deployment end to end: config,
secrets, network, the service's answer and the outbox. The main CLI mounts
``alerts_app`` (``app.add_typer(alerts_app, name="alerts")``) or calls the functions.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import signal
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import typer

from ..store.migrate import migrate
from . import outbox
from .config import AlertingConfig, AlertingConfigError, default_config_path, load_alerting_config
from .dispatcher import Dispatcher
from .redact import redact

_B58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"


def _url(database_url: str | None) -> str:
    url = database_url or os.environ.get("DATABASE_URL", "")
    if not url:
        raise SystemExit("DATABASE_URL is not set: export it (postgresql://user@host:5432/db) or pass --database-url")
    return url


def _config(config_path: Path | str | None) -> AlertingConfig:
    try:
        return load_alerting_config(config_path if config_path is not None else default_config_path())
    except AlertingConfigError as e:
        raise SystemExit(str(e)) from None


async def _connect(url: str) -> asyncpg.Connection:
    try:
        conn = await asyncpg.connect(url, timeout=15)
    except (OSError, asyncpg.PostgresError) as e:
        raise SystemExit(f"cannot connect to DATABASE_URL ({redact(e)}); is PostgreSQL running?") from None
    await migrate(conn)
    return conn


def alerts_list(database_url: str | None = None, limit: int = 20, as_json: bool = False) -> list[dict]:
    """Print the latest alerts with each delivery's state; return them."""
    async def go() -> list[dict]:
        conn = await _connect(_url(database_url))
        try:
            return await outbox.recent(conn, limit)
        finally:
            await conn.close()

    rows = asyncio.run(go())
    if as_json:
        for r in rows:
            print(json.dumps({**r, "created_at": r["created_at"].isoformat()}, ensure_ascii=False))
        return rows
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"latest {len(rows)} alerts")
    for col in ("created", "alert", "trigger", "token", "deliveries"):
        table.add_column(col, overflow="fold")
    for r in rows:
        token = r["token_symbol"] or r["token_name"] or (r["mint"][:6] + "…")
        deliveries = "\n".join(f"{d['channel']}: {d['state']} ({d['attempts']})"
                               + (f" {d['reason']}" if d["state"] != "sent" and d["reason"] else "")
                               for d in r["deliveries"])
        table.add_row(r["created_at"].strftime("%Y-%m-%d %H:%M:%S"), r["id"], r["trigger"], token, deliveries)
    Console(markup=False, highlight=False).print(table)
    return rows


def alerts_retry_dead(database_url: str | None = None, channel: str | None = None) -> int:
    """Requeue dead deliveries (of one channel, or all) for a new round; return how many (prints nothing)."""
    async def go() -> int:
        conn = await _connect(_url(database_url))
        try:
            return await outbox.retry_dead(conn, channel)
        finally:
            await conn.close()

    return asyncio.run(go())


def make_test_alert(channels: list[str], n: int) -> dict:
    """A recognisable test alert (``test-`` id, TEST symbol) with the fields a real one has."""
    mint = "".join(secrets.choice(_B58) for _ in range(40)) + "pump"
    return {"id": f"test-{uuid.uuid4().hex[:24]}", "trigger": "send_test", "version": 1, "mint": mint,
            "signature": "", "ix": "", "slot": 0, "block_time": int(time.time()), "severity": "info",
            "channels": channels, "token_name": f"Pocketwatcher test #{n}", "token_symbol": "TEST",
            "features": {"mcap_sol": 42.0, "price_sol": 4.2e-08, "age_s": 300, "unique_buyers_60s": 12,
                         "net_flow_sol_60s": 3.5, "top_buyer_share_60s": 0.21}}


def alerts_send_test(database_url: str | None = None, count: int = 1, channel: str | None = None,
                     config_path: Path | str | None = None, timeout_s: float = 300.0) -> dict:
    """Queue ``count`` test alerts, dispatch until each is sent or dead, print and return a
    summary; the JSON summary is the last line printed."""
    url, config = _url(database_url), _config(config_path)
    if channel is not None and channel not in config.channels:
        raise SystemExit(f"channel '{channel}' is not configured; configured: {', '.join(sorted(config.channels))}")
    names = [channel] if channel else sorted(config.channels)

    async def go() -> dict:
        conn = await _connect(url)
        try:
            alerts = [make_test_alert(names, i + 1) for i in range(count)]
            async with conn.transaction():
                for a in alerts:
                    await outbox.enqueue(conn, a, names)
            ids = [a["id"] for a in alerts]
            t0 = time.monotonic()
            d = Dispatcher(url, config)
            done = await d.run_until_idle(ids, timeout=timeout_s)
            summary = {"alerts": count, "channels": await outbox.summary(conn, ids),
                       "seconds": round(time.monotonic() - t0, 3)}
            if not done:
                summary["timed_out"] = True
            if d.notices:
                summary["notices"] = d.notices
            return summary
        finally:
            await conn.close()

    summary = asyncio.run(go())
    sys.stdout.flush()
    print(redact(json.dumps(summary, ensure_ascii=False)), flush=True)
    return summary


def alerts_dispatch(database_url: str | None = None, config_path: Path | str | None = None) -> None:
    """Run the dispatcher alone until SIGINT/SIGTERM (SIGBREAK on Windows), then drain and return."""
    url, config = _url(database_url), _config(config_path)

    async def go() -> None:
        conn = await _connect(url)
        await conn.close()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for name in ("SIGINT", "SIGTERM", "SIGBREAK"):
            sig = getattr(signal, name, None)
            if sig is None:
                continue
            try:
                loop.add_signal_handler(sig, stop.set)
            except (NotImplementedError, RuntimeError):
                signal.signal(sig, lambda *_: loop.call_soon_threadsafe(stop.set))
        d = Dispatcher(url, config)
        print(f"{datetime.now(UTC):%H:%M:%S} dispatching to {', '.join(sorted(config.channels))}", file=sys.stderr)
        await d.run(stop)
        print(json.dumps({"stopped": True, "stats": d.stats()}), file=sys.stderr)

    asyncio.run(go())


# -- typer wiring ----------------------------------------------------------------------------
alerts_app = typer.Typer(help="Alert delivery: list, retry dead deliveries, send test alerts, dispatch.",
                         no_args_is_help=True)
_DB = typer.Option(None, "--database-url", envvar="DATABASE_URL", help="PostgreSQL URL (default $DATABASE_URL).")
_CONFIG = typer.Option(None, "--config", help="pocketwatcher.toml (default $POCKETWATCHER_CONFIG or "
                       "./pocketwatcher.toml if present; channels from the environment otherwise).")


@alerts_app.command("list")
def _list_cmd(limit: int = typer.Option(20, "--limit", "-n"), as_json: bool = typer.Option(False, "--json"),
              database_url: str = _DB) -> None:
    """Recent alerts with the state of each delivery."""
    alerts_list(database_url, limit, as_json)


@alerts_app.command("retry-dead")
def _retry_cmd(channel: str = typer.Option(None, "--channel", help="Only this channel's dead deliveries."),
               database_url: str = _DB) -> None:
    """Put dead deliveries back in the outbox for a new round of attempts."""
    n = alerts_retry_dead(database_url, channel)
    typer.echo(f"{n} dead deliveries requeued" + (f" on channel '{channel}'" if channel else ""))


@alerts_app.command("send-test")
def _send_test_cmd(count: int = typer.Option(1, "--count", min=1), channel: str = typer.Option(None, "--channel"),
                   config: Path = _CONFIG, database_url: str = _DB) -> None:
    """Queue N test alerts, deliver them, print a JSON summary (last line); exit 1 if any is not sent."""
    s = alerts_send_test(database_url, count, channel, config)
    if s.get("timed_out") or any(c["dead"] or c.get("open") for c in s["channels"].values()):
        raise typer.Exit(1)


@alerts_app.command("dispatch")
def _dispatch_cmd(config: Path = _CONFIG, database_url: str = _DB) -> None:
    """Run only the dispatcher (the runner runs one itself) until SIGINT/SIGTERM."""
    alerts_dispatch(database_url, config)
