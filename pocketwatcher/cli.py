"""The ``pocketwatcher`` command line (also ``python -m pocketwatcher``)."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

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


@app.command()
def demo() -> None:
    """Run the demo: parse the sample mainnet transactions shipped in data/ into a table."""
    from .parse import STATS

    paths = sorted(SAMPLE_TX_DIR.glob("*.json"))
    if not paths:
        typer.secho(f"no sample transactions under {SAMPLE_TX_DIR}", err=True, fg="red")
        raise typer.Exit(1)
    n = _print_table(_swap_rows(paths), f"swaps in {len(paths)} sample files")
    typer.echo(f"{STATS.transactions} transactions, {n} swaps; "
               f"no-swap reasons: {dict(STATS.reasons) or 'none'}")


@app.command()
def simulate(
    minutes: float = typer.Option(5.0, "--minutes", "-m", help="Simulated minutes of market activity."),
    seed: int = typer.Option(1, "--seed", "-s", help="Random seed: the same seed gives the same bytes."),
    out: Path = typer.Option(..., "--out", "-o", help="Folder for capture.pwcap and truth/."),
    launches_per_minute: float = typer.Option(20.0, "--launches-per-minute", help="Token launch rate."),
) -> None:
    """Simulate a pump.fun-era market into a capture plus ground truth."""
    from .sim import simulate as run_sim

    summary = run_sim(minutes, seed, out, launches_per_minute=launches_per_minute, progress=True)
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
    except (CaptureError, ValueError) as e:
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
