"""``pocketwatcher backtest``: the live engine over stored swaps, then what each alert was worth.

The engine is the same ``TriggerEngine`` the runner uses, fed in chain order. Its state
is per mint, so the work splits by ``hash(mint)`` across worker processes exactly as the
runner splits stream partitions; each worker runs the engine on its share, and the
alerts are merged in chain order. Outcomes and metrics are computed in DuckDB.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import time
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from ..triggers.engine import TriggerEngine
from ..triggers.trade import ix_key
from .data import connect, resolve, stream_batches, swaps_view
from .outcomes import HORIZONS, compute_outcomes, metrics_sql

ALERT_SCHEMA = pa.schema([
    ("id", pa.string()), ("trigger", pa.string()), ("version", pa.int32()), ("mint", pa.string()),
    ("signature", pa.string()), ("ix", pa.string()), ("slot", pa.uint64()), ("block_time", pa.int64()),
    ("severity", pa.string()), ("features", pa.string()),
])


@dataclass
class BacktestResult:
    alerts: list[dict]
    metrics: list[dict]
    trades: int
    seconds: float
    out_dir: Path | None


def _engine_part(args) -> tuple[list[dict], int]:
    swaps_glob, events, part, parts, trigger_path, trigger_text = args
    from ..triggers.config import parse_triggers

    triggers = parse_triggers(trigger_text, source=trigger_path)
    engine = TriggerEngine(triggers)
    alerts = []
    for cols in stream_batches(swaps_glob, events, part=part, parts=parts):
        alerts.extend(a.to_dict() for a in engine.feed_columns(cols))
    return alerts, engine.trades


def run_engine(swaps_path, triggers, *, workers: int | None = None) -> tuple[list[dict], int]:
    """All alerts of a trigger set over stored swaps, in chain order."""
    swaps_glob, events = resolve(swaps_path)
    text = Path(triggers.source).read_text() if Path(str(triggers.source)).exists() else triggers.text
    workers = workers or max(1, min(os.cpu_count() or 1, 8))
    jobs = [(swaps_glob, events, k, workers, str(triggers.source), text) for k in range(workers)]
    if workers == 1:
        results = [_engine_part(jobs[0])]
    else:
        with mp.get_context("spawn").Pool(workers) as pool:
            results = pool.map(_engine_part, jobs)
    alerts = [a for part, _n in results for a in part]
    alerts.sort(key=lambda a: (a["slot"], ix_key(a["ix"]), a["trigger"]))
    return alerts, sum(n for _a, n in results)


def run_backtest(swaps_path, triggers, out_dir: Path | None = None, *, latency_slots: int = 2,
                 workers: int | None = None) -> BacktestResult:
    t0 = time.perf_counter()
    alerts, n_trades = run_engine(swaps_path, triggers, workers=workers)
    swaps_glob, _events = resolve(swaps_path)
    con = connect()
    swaps_view(con, swaps_glob)
    rows = [{**a, "features": json.dumps(a["features"], sort_keys=True, default=_num)} for a in alerts]
    table = pa.Table.from_pylist([{k: r.get(k) for k in ALERT_SCHEMA.names} for r in rows], schema=ALERT_SCHEMA)
    outcomes = compute_outcomes(con, table, latency_slots)
    con.register("outcomes", outcomes)
    metrics = con.sql(metrics_sql()).to_arrow_table()
    if out_dir is not None:
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        pq.write_table(outcomes, out_dir / "alerts.parquet")
        pq.write_table(metrics, out_dir / "metrics.parquet")
    con.close()
    return BacktestResult(outcomes.to_pylist(), metrics.to_pylist(), n_trades, time.perf_counter() - t0, out_dir)


def _num(v):
    return float(v)


def print_metrics(result: BacktestResult) -> None:
    from rich.console import Console
    from rich.table import Table

    t = Table(title=f"backtest: {result.trades:,} swaps, {len(result.alerts):,} alerts, {result.seconds:.1f} s")
    cols = ["trigger", "alerts", "alerts/day", "hit 2x", *[f"med {h}" for h in HORIZONS], "expectancy"]
    for c in cols:
        t.add_column(c, justify="left" if c == "trigger" else "right")

    def pct(v):
        return "-" if v is None else f"{v * 100:+.0f}%"

    for m in result.metrics:
        t.add_row(m["trigger"], f"{m['alerts']:,}", f"{m['alerts_per_day']:.1f}",
                  "-" if m["hit_rate"] is None else f"{m['hit_rate'] * 100:.0f}%",
                  *[pct(m[f"median_return_{h}"]) for h in HORIZONS], pct(m["expectancy"]))
    Console().print(t)
