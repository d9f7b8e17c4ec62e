"""``pocketwatcher backtest``: the live engine over stored swaps, then what each alert was worth.

The engine is the same ``TriggerEngine`` the runner uses, fed in chain order. Its state
is per mint, so the work splits by ``hash(mint)`` across worker processes exactly as the
runner splits stream partitions; each worker runs the engine on its share (Arrow record
batches from DuckDB, fed as column lists, see ``data``), keeps the SOL prices it reads
and computes its own alerts' outcomes from them (``outcomes.PriceSeries``: no second
pass over the data); the main process merges the workers' tables in chain order and
computes the per-trigger metrics in DuckDB. A progress bar (rows, rate, elapsed, ETA)
shows on stderr when it is a terminal (or with ``progress=True``).
"""

from __future__ import annotations

import gc
import json
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ..triggers.engine import TriggerEngine
from ..triggers.trade import ix_key
from .data import connect, resolve, stream_record_batches, swap_ids_of, swaps_view, to_columns
from .outcomes import HORIZONS, PriceSeries, metrics_sql
from .parallel import Bar, default_workers, duckdb_threads, report, run_parts

ALERT_SCHEMA = pa.schema([
    ("id", pa.string()), ("trigger", pa.string()), ("version", pa.int32()), ("mint", pa.string()),
    ("signature", pa.string()), ("ix", pa.string()), ("slot", pa.uint64()), ("block_time", pa.int64()),
    ("severity", pa.string()), ("features", pa.string()),
])


class BacktestResult:
    """Alerts with their outcomes (``table``; ``alerts`` as dicts, built on first use),
    per-trigger metrics, and where the time went (``timing``)."""

    def __init__(self, table: pa.Table, metrics: list[dict], trades: int, seconds: float, out_dir: Path | None,
                 timing: dict | None = None) -> None:
        self.table, self.metrics, self.trades, self.seconds, self.out_dir = table, metrics, trades, seconds, out_dir
        self.timing = timing or {}
        self._alerts: list[dict] | None = None

    @property
    def alerts(self) -> list[dict]:
        if self._alerts is None:
            self._alerts = self.table.to_pylist()
        return self._alerts


# -- engine workers ---------------------------------------------------------------------
def _engine_part(args) -> dict:
    """One worker: the engine over one partition of the mints. Returns its alerts (with
    their outcomes as a table, or as dicts), the trades it saw, and its CPU time."""
    swaps_glob, events, part, parts, trigger_path, trigger_text, as_dicts, threads, latency_slots = args
    from ..triggers.config import parse_triggers

    cpu0, t0 = time.process_time(), time.perf_counter()
    engine = TriggerEngine(parse_triggers(trigger_text, source=trigger_path))
    prices = None if as_dicts else PriceSeries()
    alerts = []
    rows = 0
    gc_was = gc.isenabled()
    gc.disable()  # the engine makes no reference cycles; collections would only rescan its state
    try:
        for rb in stream_record_batches(swaps_glob, events, part=part, parts=parts, threads=threads):
            alerts.extend(engine.feed_columns(to_columns(rb, swap_ids=False), swap_ids_of(rb)))
            if prices is not None:
                prices.add(rb)
            rows += rb.num_rows
            report(part, rows)
    finally:
        if gc_was:
            gc.enable()
    out = {"trades": engine.trades}
    if as_dicts:
        out["alerts"] = [a.to_dict() for a in alerts]
    else:
        table = pa.table(_alert_columns(alerts), schema=_SORTABLE)
        out["table"] = prices.outcomes(table, end_t=_end_time(swaps_glob), latency_slots=latency_slots)
    out["cpu_s"], out["wall_s"] = time.process_time() - cpu0, time.perf_counter() - t0
    return out


_SORTABLE = pa.schema([*ALERT_SCHEMA, ("ix_outer", pa.int64()), ("ix_inner", pa.int64())])


def _alert_columns(alerts) -> dict[str, list]:
    cols: dict[str, list] = {k: [] for k in _SORTABLE.names}
    for a in alerts:
        for k in ("id", "trigger", "version", "mint", "signature", "ix", "slot", "block_time", "severity"):
            cols[k].append(getattr(a, k))
        cols["features"].append(json.dumps(a.features, sort_keys=True, default=_num))
        outer, inner = ix_key(a.ix)
        cols["ix_outer"].append(outer)
        cols["ix_inner"].append(inner)
    return cols


def _end_time(swaps_glob: str) -> int:
    """Where the data ends: the last block time of all swaps (every partition)."""
    con = connect(1)
    try:
        return con.execute(f"SELECT max(block_time) FROM read_parquet('{_q(swaps_glob)}', union_by_name = true)"
                           ).fetchone()[0] or 0
    finally:
        con.close()


def _run_parts(swaps_path, triggers, workers: int | None, as_dicts: bool, bar: Bar,
               latency_slots: int = 0) -> list[dict]:
    swaps_glob, events = resolve(swaps_path)
    text = getattr(triggers, "text", None)
    if text is None:  # a trigger set built in code: its file, as the workers must parse it
        text = Path(triggers.source).read_text()
    workers = workers or default_workers()
    jobs = [(swaps_glob, events, k, workers, str(triggers.source), text, as_dicts, duckdb_threads(workers),
             latency_slots) for k in range(workers)]
    return run_parts(_engine_part, jobs, bar, swaps_glob=swaps_glob, events=events,
                     label=f"engine ({workers} worker{'s' if workers > 1 else ''})",
                     then=None if as_dicts else "outcomes")


def _q(s: str) -> str:
    return s.replace("'", "''")


def run_engine(swaps_path, triggers, *, workers: int | None = None,
               progress: bool | None = None) -> tuple[list[dict], int]:
    """All alerts of a trigger set over stored swaps, in chain order."""
    with Bar(progress) as bar:
        results = _run_parts(swaps_path, triggers, workers, True, bar)
    alerts = [a for r in results for a in r["alerts"]]
    alerts.sort(key=lambda a: (a["slot"], ix_key(a["ix"]), a["trigger"]))
    return alerts, sum(r["trades"] for r in results)


def _merged(results: list[dict]) -> pa.Table:
    """The workers' alerts (with outcomes) as one table in chain order (slot, instruction, trigger)."""
    table = pa.concat_tables([r["table"] for r in results])
    order = pc.sort_indices(table, sort_keys=[("slot", "ascending"), ("ix_outer", "ascending"),
                                              ("ix_inner", "ascending"), ("trigger", "ascending")])
    return table.take(order).drop_columns(["ix_outer", "ix_inner"])


def run_backtest(swaps_path, triggers, out_dir: Path | None = None, *, latency_slots: int = 2,
                 workers: int | None = None, progress: bool | None = None) -> BacktestResult:
    t0 = time.perf_counter()
    with Bar(progress) as bar:
        results = _run_parts(swaps_path, triggers, workers, False, bar, latency_slots)
        t1 = time.perf_counter()
        bar.phase("metrics")
        outcomes = _merged(results)
        swaps_glob, _events = resolve(swaps_path)
        con = connect()
        swaps_view(con, swaps_glob)
        con.register("outcomes", outcomes)
        metrics = con.sql(metrics_sql()).to_arrow_table()
        t2 = time.perf_counter()
    if out_dir is not None:
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        pq.write_table(outcomes, out_dir / "alerts.parquet")
        pq.write_table(metrics, out_dir / "metrics.parquet")
    con.close()
    t3 = time.perf_counter()
    timing = {"workers_s": t1 - t0, "merge_metrics_s": t2 - t1, "write_s": t3 - t2,
              "worker_cpu_s": [round(r["cpu_s"], 2) for r in results]}
    return BacktestResult(outcomes, metrics.to_pylist(), sum(r["trades"] for r in results), t3 - t0, out_dir,
                          timing)


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
