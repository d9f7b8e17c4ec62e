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


@app.callback()
def _main(debug: bool = typer.Option(False, "--debug", help="Debug logging.")) -> None:
    logging.basicConfig(level=logging.DEBUG if debug else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s %(message)s")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
