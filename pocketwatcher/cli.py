"""The ``pocketwatcher`` command line (also ``python -m pocketwatcher``)."""

from __future__ import annotations

import json
import logging
import os
import sys
from pathlib import Path

# The runner starts subprocesses (embedded servers) while gRPC threads run; gRPC's fork
# handlers cannot help there and only print a warning per fork.
os.environ.setdefault("GRPC_ENABLE_FORK_SUPPORT", "false")

import typer

app = typer.Typer(
    help="Pocketwatcher: Solana DEX swaps (pump.fun first) → triggers → Discord/Telegram alerts.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

REPO_ROOT = Path(__file__).resolve().parent.parent
SAMPLE_TX_DIR = REPO_ROOT / "data" / "sample_tx"


def _swap_rows(paths: list[Path], alt_resolver=None):
    from .parse import parse_transaction_full, parse_update_full
    from .parse.loaders import load_file
    from .parse.txview import TxError

    for path in paths:
        try:
            items = load_file(path)
        except (OSError, TxError) as e:
            typer.secho(f"{path}: skipped: {e}", err=True, fg="yellow")
            continue
        for item in items:
            if isinstance(item, dict):
                res = parse_transaction_full(item, alt_resolver=alt_resolver)
            else:
                res = parse_update_full(item)
            if res.reason and res.reason != "failed_transaction":
                typer.secho(f"{path}: a transaction gave no swaps: {res.reason}", err=True, fg="yellow")
            yield path, res


def _fmt_amount(raw: int, dec: int | None) -> str:
    if dec is None:
        return str(raw)
    return f"{raw / 10**dec:,.{min(dec, 4)}f}"


def _print_table(results, title: str) -> int:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title, show_lines=False)
    for col in ("tx", "ix", "program", "side", "mint", "tokens", "quote", "price", "trader"):
        table.add_column(col, no_wrap=True, justify="right" if col in ("tokens", "quote", "price") else "left")
    n = 0
    for _path, res in results:
        for s in res.swaps:
            n += 1
            q = "SOL" if s.quote_mint.startswith("So111") else s.quote_mint[:4] + "…"
            table.add_row(
                s.signature[:6] + "…", s.ix, s.program + (f"/{s.router}" if s.router else ""),
                "[green]buy[/]" if s.side == "buy" else "[red]sell[/]", s.mint[:5] + "…" + s.mint[-4:],
                _fmt_amount(s.token_amount, s.token_decimals),
                f"{_fmt_amount(s.quote_amount, s.quote_decimals)} {q}",
                f"{s.price:.3g}" if s.price else "-", s.trader[:6] + "…",
            )
    Console().print(table)
    return n


@app.command()
def parse(
    files: list[Path] = typer.Argument(..., help="JSON files: a getTransaction result, an envelope, "
                                       "a list of them, or Yellowstone updates written as JSON."),
    jsonl: bool = typer.Option(False, "--jsonl", help="One JSON object per swap per line instead of a table."),
    alt_rpc: str = typer.Option(None, "--alt-rpc", envvar="POCKETWATCHER_ALT_RPC",
                                help="JSON-RPC URL to resolve address lookup tables of v0 transactions "
                                     "saved without their loaded addresses."),
) -> None:
    """Parse transactions from JSON files and print their swaps."""
    resolver = None
    if alt_rpc:
        from .parse.alt import AltResolver

        resolver = AltResolver(alt_rpc)
    results = _swap_rows(files, resolver)
    if jsonl:
        out = sys.stdout
        for _path, res in results:
            for s in res.swaps:
                out.write(json.dumps(s.to_dict(), separators=(",", ":")) + "\n")
        return
    _print_table(results, "swaps")


SAMPLE_CAPTURE = REPO_ROOT / "data" / "sample.pwcap"


def _alert_line(a) -> str:
    import datetime as dt

    f = a.features
    t = dt.datetime.fromtimestamp(a.block_time, dt.UTC).strftime("%H:%M:%S")
    figs = []
    if f.get("mcap_sol") is not None:
        figs.append(f"mcap {f['mcap_sol']:.0f} SOL")
    for k, v in f.items():
        if k == "mcap_sol" or v is None or len(figs) >= 5:
            continue
        figs.append(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}")
    return f"{t}  {a.trigger:<20} {a.mint}  " + "  ".join(figs)


@app.command()
def demo(
    duration: float = typer.Option(None, "--duration", help="Stop after this many seconds (default: when the "
                                   "sample has been fully processed)."),
    speed: str = typer.Option("10", "--speed", help="Replay speed: 1 = as recorded, 10 = ten times faster, max."),
    state_dir: Path = typer.Option(None, "--state-dir", help="Where the embedded Redis/PostgreSQL keep their "
                                   "data (default: $XDG_STATE_HOME/pocketwatcher/demo)."),
    sample: Path = typer.Option(SAMPLE_CAPTURE, "--capture", help="The capture to replay."),
) -> None:
    """The full pipeline on the shipped sample: embedded Redis + PostgreSQL, a replay server, the runner.

    Prints each alert as it fires (time, trigger, mint, key figures); stops everything it
    started and exits 0 on Ctrl-C or after --duration.
    """
    import shutil
    import threading

    from runner.app import RunnerSettings, run

    from .geyser.server import ReplayServer, parse_speed
    from .store.embedded import default_state_dir

    state = state_dir or (default_state_dir() / "demo")
    if state.exists():
        shutil.rmtree(state)  # each demo starts from a clean slate
    state.mkdir(parents=True)
    server = ReplayServer(sample, port=0, speed=parse_speed(speed))
    server.start()
    typer.secho(f"replaying {sample.name} on 127.0.0.1:{server.port} at speed {speed}; "
                f"embedded Redis + PostgreSQL under {state}", fg="cyan")
    typer.secho("time      trigger              mint                                          key figures",
                bold=True)
    settings = RunnerSettings.from_env(geyser_endpoint=f"http://127.0.0.1:{server.port}", state_dir=state,
                                       metrics_port=0, dispatch=False, stop_after_idle=4.0,
                                       triggers=DEFAULT_TRIGGERS, partitions=4, lease_ttl_ms=3000)
    settings.redis_url = settings.database_url = None  # the demo always runs on the embedded servers
    counter = [0]

    def on_alert(a) -> None:
        counter[0] += 1
        typer.echo(_alert_line(a))

    timer = None
    if duration:
        import os
        import signal as _signal

        timer = threading.Timer(duration, lambda: os.kill(os.getpid(), _signal.SIGINT))
        timer.daemon = True
        timer.start()
    try:
        code = run(settings, on_alert=on_alert)
    finally:
        if timer:
            timer.cancel()
        server.stop(1.0)
    typer.secho(f"{counter[0]} alerts; stopped cleanly", fg="cyan")
    raise typer.Exit(code)


@app.command("run")
def run_cmd(
    triggers: Path = typer.Option(None, "--triggers", "-t", help="Trigger file (default: triggers.toml)."),
    config: Path = typer.Option(None, "--config", "-c", envvar="POCKETWATCHER_CONFIG",
                                help="pocketwatcher.toml: alert channels and routes."),
    partitions: int = typer.Option(8, "--partitions", help="Swap stream partitions (all runners must agree)."),
    metrics_port: int = typer.Option(9108, "--metrics-port", help="Prometheus /metrics port; 0 = off."),
    dashboard_port: int = typer.Option(0, "--dashboard-port", help="Dashboard port; 0 = off."),
    stop_after_idle: float = typer.Option(None, "--stop-after-idle",
                                          help="Exit 0 once no transaction arrived for this long and all is committed."),
    state_dir: Path = typer.Option(None, "--state-dir", help="Embedded servers' data (when REDIS_URL / "
                                   "DATABASE_URL are not set)."),
    no_ingest: bool = typer.Option(False, "--no-ingest", help="Only detect/dispatch (another runner ingests)."),
    no_detect: bool = typer.Option(False, "--no-detect", help="Only ingest (other runners detect)."),
    parse_process: bool = typer.Option(None, "--parse-process/--parse-inline",
                                       help="Parse the stream in a child process (default with 2+ cores) or in "
                                       "the runner's own."),
    debug: bool = typer.Option(False, "--debug", help="Debug logging."),
) -> None:
    """The live runner. Env: GEYSER_ENDPOINT (http:// or https://), GEYSER_X_TOKEN, REDIS_URL, DATABASE_URL."""
    from runner.app import RunnerSettings, run

    _setup_logging(debug)
    _load_triggers(triggers)  # fail early, with the line, on a bad trigger file
    settings = RunnerSettings.from_env(triggers=triggers or DEFAULT_TRIGGERS, config=config, partitions=partitions,
                                       metrics_port=metrics_port, dashboard_port=dashboard_port,
                                       stop_after_idle=stop_after_idle, state_dir=state_dir,
                                       ingest=not no_ingest, detect=not no_detect, parse_process=parse_process)
    if not settings.geyser_endpoint and not no_ingest:
        typer.secho("GEYSER_ENDPOINT is not set (http://host:port or https://host); run `pocketwatcher replay "
                    "data/sample.pwcap` and point it at http://127.0.0.1:10000, or pass --no-ingest",
                    err=True, fg="red")
        raise typer.Exit(2)
    raise typer.Exit(run(settings))


@app.command()
def status(
    partitions: int = typer.Option(8, "--partitions", help="Swap stream partitions (as the runners use)."),
    dead: int = typer.Option(10, "--dead", help="How many of the newest dead letters to show."),
    as_json: bool = typer.Option(False, "--json", help="One JSON object instead of tables."),
) -> None:
    """Stream lag/pending/dead letters per partition, runners and their partitions, ingest's
    last slot and gaps (needs REDIS_URL; POCKETWATCHER_PREFIX if the runners use one)."""
    import asyncio
    import os

    import redis.asyncio as aioredis

    from runner.status import collect, render

    url = os.environ.get("REDIS_URL")
    if not url:
        typer.secho("REDIS_URL is not set: point it at the Redis the runners use", err=True, fg="red")
        raise typer.Exit(2)

    async def go():
        r = aioredis.Redis.from_url(url, socket_connect_timeout=5)
        try:
            return await collect(r, os.environ.get("POCKETWATCHER_PREFIX") or "pw:", partitions, dead)
        finally:
            await r.aclose()

    try:
        s = asyncio.run(go())
    except OSError as e:
        typer.secho(f"cannot reach Redis: {e}", err=True, fg="red")
        raise typer.Exit(1) from None
    except Exception as e:  # redis.exceptions.ConnectionError is not an OSError
        if type(e).__module__.startswith("redis"):
            typer.secho(f"cannot reach Redis: {type(e).__name__}: {e}", err=True, fg="red")
            raise typer.Exit(1) from None
        raise
    if as_json:
        typer.echo(json.dumps(s, default=str))
    else:
        render(s)


def _setup_logging(debug: bool) -> None:
    import json as _json

    class JsonFormatter(logging.Formatter):
        def format(self, r: logging.LogRecord) -> str:
            return _json.dumps({"t": round(r.created, 3), "level": r.levelname, "logger": r.name,
                                "msg": r.getMessage()})

    h = logging.StreamHandler()
    h.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [h]
    root.setLevel(logging.DEBUG if debug else logging.INFO)
    logging.getLogger("httpx").setLevel(logging.WARNING)


alerts_app = typer.Typer(help="Alert outbox: list, retry dead deliveries, send test alerts.", no_args_is_help=True)
app.add_typer(alerts_app, name="alerts")


@alerts_app.command("list")
def alerts_list_cmd(limit: int = typer.Option(20, "--limit", "-n"),
                    as_json: bool = typer.Option(False, "--json")) -> None:
    """Recent alerts with their delivery state (needs DATABASE_URL)."""
    from .alerting.cli import alerts_list

    alerts_list(None, limit, as_json)


@alerts_app.command("retry-dead")
def alerts_retry_dead_cmd(channel: str = typer.Option(None, "--channel")) -> None:
    """Requeue dead deliveries (needs DATABASE_URL)."""
    from .alerting.cli import alerts_retry_dead

    typer.echo(f"{alerts_retry_dead(None, channel)} deliveries requeued")


@alerts_app.command("send-test")
def alerts_send_test_cmd(count: int = typer.Option(1, "--count", "-n"),
                         channel: str = typer.Option(None, "--channel"),
                         config: Path = typer.Option(None, "--config", "-c", envvar="POCKETWATCHER_CONFIG")) -> None:
    """Queue N test alerts, dispatch until delivered or dead; last line: a JSON summary."""
    from .alerting.cli import alerts_send_test

    alerts_send_test(None, count, channel, config)


@app.command()
def simulate(
    minutes: float = typer.Option(5.0, "--minutes", "-m", help="Simulated minutes of market activity."),
    seed: int = typer.Option(1, "--seed", "-s", help="Random seed: the same seed gives the same bytes."),
    out: Path = typer.Option(..., "--out", "-o", help="Folder for capture.pwcap and truth/."),
    launches_per_minute: float = typer.Option(20.0, "--launches-per-minute", help="Token launch rate."),
    shards: int = typer.Option(2, "--shards", help="Independent market shards (1-4), merged into one stream; "
                                                  "part of the run's definition, like the seed."),
    inline: bool = typer.Option(False, "--inline", help="Run the shards in this process, in turn, not a process "
                                                        "each (same bytes, slower with 2+ cores)."),
    level: int = typer.Option(1, "--level", min=1, max=19, help="zstd level of the capture: 1 is fast, 3 is "
                                                                 "~20 % smaller (data/sample.pwcap)."),
) -> None:
    """Simulate a pump.fun-era market into a capture plus ground truth."""
    from pydantic import ValidationError

    from .sim import SimConfig
    from .sim import simulate as run_sim

    try:
        cfg = SimConfig(launches_per_minute=launches_per_minute, shards=shards)
    except ValidationError as e:
        typer.secho(f"simulate: {e}", err=True, fg="red")
        raise typer.Exit(2) from None
    summary = run_sim(minutes, seed, out, config=cfg, progress=True, processes=False if inline else None, level=level)
    typer.echo(json.dumps(summary, default=str))


@app.command()
def replay(
    capture: Path = typer.Argument(..., help="A .pwcap capture to stream."),
    port: int = typer.Option(10000, "--port", "-p", help="TCP port (0 = any free port)."),
    host: str = typer.Option("127.0.0.1", "--host", help="Interface to bind."),
    speed: str = typer.Option("max", "--speed", help="max (as fast as the client reads) or a factor: 1, 10, ..."),
    x_token: str = typer.Option(None, "--x-token", envvar="GEYSER_X_TOKEN",
                                help="Require this x-token from clients (never printed)."),
) -> None:
    """Serve a capture over the Yellowstone Geyser gRPC protocol."""
    from .geyser.capture import CaptureError
    from .geyser.server import parse_speed, serve_forever

    try:
        code = serve_forever(capture, host=host, port=port, speed=parse_speed(speed), x_token=x_token)
    except (CaptureError, ValueError, OSError) as e:
        typer.secho(str(e), err=True, fg="red")
        raise typer.Exit(2) from None
    raise typer.Exit(code)


@app.command()
def capture(
    endpoint: str = typer.Option(..., "--endpoint", help="http://host:port (plaintext) or https://host (TLS)."),
    out: Path = typer.Option(..., "--out", "-o", help="The .pwcap file to write."),
    x_token: str = typer.Option(None, "--x-token", envvar="GEYSER_X_TOKEN", help="Provider x-token."),
    duration: float = typer.Option(None, "--duration", help="Stop after this many seconds."),
    max_updates: int = typer.Option(None, "--max-updates", help="Stop after this many updates."),
) -> None:
    """Record a live Yellowstone stream (watched programs' transactions + block meta) into a capture."""
    from .geyser.client import GeyserError
    from .geyser.record import record

    try:
        n = record(endpoint, out, x_token=x_token, duration=duration, max_updates=max_updates)
    except GeyserError as e:
        typer.secho(str(e), err=True, fg="red")
        raise typer.Exit(2) from None
    typer.echo(f"{n} updates written to {out}")


@app.command("export-swaps")
def export_swaps(
    capture: Path = typer.Argument(..., help="A .pwcap capture."),
    out: Path = typer.Option(..., "--out", "-o", help="Folder for swaps/*.parquet, events, transfers."),
) -> None:
    """Parse a capture into Parquet swaps (the backtest and notebook input)."""
    from .geyser.capture import CaptureError
    from .store.parquet import export_capture

    try:
        summary = export_capture(capture, out, progress=True)
    except CaptureError as e:
        typer.secho(str(e), err=True, fg="red")
        raise typer.Exit(2) from None
    typer.echo(json.dumps(summary))


DEFAULT_TRIGGERS = REPO_ROOT / "triggers.toml"


def _load_triggers(path: Path | None):
    from .triggers.config import TriggerFileError, load_triggers

    try:
        return load_triggers(path or DEFAULT_TRIGGERS)
    except TriggerFileError as e:
        typer.secho(str(e), err=True, fg="red")
        raise typer.Exit(2) from None
    except FileNotFoundError as e:
        typer.secho(f"{e.filename}: no such trigger file (pass --triggers FILE)", err=True, fg="red")
        raise typer.Exit(2) from None


@app.command()
def backtest(
    swaps: Path = typer.Option(..., "--swaps", help="Folder from export-swaps/export, a Parquet file, or a glob."),
    triggers: Path = typer.Option(None, "--triggers", "-t", help="Trigger file (default: triggers.toml)."),
    out: Path = typer.Option(None, "--out", "-o", help="Folder for alerts.parquet and metrics.parquet."),
    latency_slots: int = typer.Option(2, "--latency-slots", help="Slots between an alert and the entry swap."),
    workers: int = typer.Option(None, "--workers", help="Engine processes (default: one per core)."),
) -> None:
    """Run the trigger engine over stored swaps and score every alert."""
    from .backtest.run import print_metrics, run_backtest

    ts = _load_triggers(triggers)
    try:
        result = run_backtest(swaps, ts, out, latency_slots=latency_slots, workers=workers)
    except FileNotFoundError as e:
        typer.secho(str(e), err=True, fg="red")
        raise typer.Exit(2) from None
    print_metrics(result)
    if out:
        typer.echo(f"wrote {out}/alerts.parquet and {out}/metrics.parquet")


@app.command()
def report(
    swaps: Path = typer.Option(None, "--swaps", help="Folder from export-swaps, a Parquet file or a glob "
                               "(default: simulate --sim-minutes of market first)."),
    triggers: Path = typer.Option(None, "--triggers", "-t", help="Trigger file (default: triggers.toml)."),
    out: Path = typer.Option(Path("out/report"), "--out", "-o",
                             help="Folder for report.ipynb, report.html, alerts/metrics Parquet and figures."),
    latency_slots: int = typer.Option(2, "--latency-slots", help="Slots between an alert and the entry swap."),
    sim_minutes: float = typer.Option(10.0, "--sim-minutes", help="Simulated minutes when --swaps is not given."),
    seed: int = typer.Option(1, "--seed", help="Simulator seed when --swaps is not given."),
    workers: int = typer.Option(0, "--workers", help="Engine processes (0: one per core)."),
    html: bool = typer.Option(True, "--html/--no-html", help="Also render report.html (needs nbconvert)."),
) -> None:
    """Render the backtest report notebook with papermill into OUT/report.ipynb (and report.html)."""
    notebook = REPO_ROOT / "notebooks" / "backtest_report.ipynb"
    if not notebook.is_file():
        typer.secho(f"{notebook}: not found; `report` needs a source checkout installed with "
                    "pip install -e '.[workbench]'", err=True, fg="red")
        raise typer.Exit(2)
    ts = _load_triggers(triggers)
    if swaps is not None:
        from .backtest.data import resolve

        try:
            resolve(swaps)
        except FileNotFoundError as e:
            typer.secho(f"{e} (--swaps)", err=True, fg="red")
            raise typer.Exit(2) from None
    try:
        import papermill
    except ImportError:
        typer.secho("`report` executes a notebook with papermill, which is not installed; "
                    "install the workbench: pip install -e '.[workbench]'", err=True, fg="red")
        raise typer.Exit(2) from None
    out = out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    target = out / "report.ipynb"
    params = {"SWAPS": str(swaps.absolute()) if swaps is not None else "",  # the kernel runs in OUT
              "TRIGGERS": str(Path(ts.source).resolve()), "OUT": str(out), "LATENCY_SLOTS": latency_slots,
              "SIM_MINUTES": sim_minutes, "SEED": seed, "WORKERS": workers}
    try:  # kernel "python3" is this Python when ipykernel is installed beside it
        papermill.execute_notebook(str(notebook), str(target), parameters=params, kernel_name="python3",
                                   cwd=str(out), progress_bar=False)
    except papermill.PapermillExecutionError as e:
        typer.secho(f"the report failed in cell [{e.exec_count}]: {e.ename}: {e.evalue} (the executed "
                    f"notebook with the traceback is {target})", err=True, fg="red")
        raise typer.Exit(1) from None
    typer.echo(f"wrote {target}")
    if html:
        try:
            from nbconvert import HTMLExporter
        except ImportError:
            typer.echo("skipped report.html: nbconvert is not installed (pip install -e '.[workbench]')")
            return
        exporter = HTMLExporter()
        exporter.log.setLevel(logging.ERROR)  # not a warning per figure without alt text
        body, _resources = exporter.from_filename(str(target))
        (out / "report.html").write_text(body, encoding="utf-8")
        typer.echo(f"wrote {out / 'report.html'}")


@app.command()
def features() -> None:
    """List the feature catalogue a trigger's `when` may use, with units."""
    from rich.console import Console
    from rich.table import Table

    from .triggers.catalogue import CATALOGUE

    t = Table(title="features")
    for c in ("name", "type", "unit", "meaning"):
        t.add_column(c)
    for f in CATALOGUE.values():
        t.add_row(f.name, f.type, f.unit, f.doc)
    Console().print(t)


@app.command("check-triggers")
def check_triggers(
    triggers: Path = typer.Argument(None, help="Trigger file (default: triggers.toml)."),
) -> None:
    """Validate a trigger file; prints each trigger or the first problem with its line."""
    ts = _load_triggers(triggers)
    for t in ts.triggers:
        floor = f"mcap ≥ {t.mcap_floor_sol:g} SOL" if t.mcap_floor_sol else "no floor"
        cd = "once per mint" if t.once else f"cooldown {t.cooldown_s}s"
        typer.echo(f"{t.name} v{t.version}: {t.when}  [{floor}; {cd}; → {', '.join(t.channels)}]")
    typer.echo(f"{len(ts.triggers)} triggers OK ({ts.version_hash[:12]})")


@app.callback()
def _main(debug: bool = typer.Option(False, "--debug", help="Debug logging.")) -> None:
    logging.basicConfig(level=logging.DEBUG if debug else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s %(message)s")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
