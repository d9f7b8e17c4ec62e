"""Backtest engine figures. Prints one JSON line.

    python bench/backtest.py [--swaps 10000000] [--sweep-swaps 1000000] [--settings 1000] [--mints 100000]

- engine_swaps_per_s: TriggerEngine with the default triggers, one core, fed ``Trade``
  objects through ``on_trade`` (the runner's way in); engine_batch_swaps_per_s: the same
  swaps as column batches through ``feed_columns`` (the backtest's way in);
- backtest_s: ``run_backtest`` end to end (workers: DuckDB read + engine + outcomes;
  then merge + metrics + writing) over N swaps (default 10 M: a simulated market's
  export replicated with fresh mint names and shifted slots/times until it holds N
  swaps). Target < 60 s. backtest_worker_cpu_s: each worker's CPU seconds;
- sweep: the feature table of one trigger template over 1 M swaps, then S settings
  (a grid) evaluated with cooldowns. Target < 30 s for 1,000 settings;
- memory: peak RSS of an engine tracking M live mints (default 100 k). Target < 1 GB.

The machine's load average (1 min) is recorded before and after each timed part
(``load_*``, which counts this benchmark's own processes too), and ``others_cpu_pct_*``
is the share of the machine other processes used while the part ran: on a shared
machine the wall-clock figures are only comparable at the same share.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def base_market(work: Path, minutes: float) -> Path:
    from pocketwatcher.sim import simulate
    from pocketwatcher.store.parquet import export_capture

    d = work / "base"
    if not (d / "export" / "export.json").exists():
        simulate(minutes, 42, d, progress=False)
        export_capture(d / "capture.pwcap", d / "export", progress=False)
    return d / "export"


def replicate(base: Path, out: Path, n_swaps: int) -> int:
    """Copies of the base market, one after another in time, each with its own mints."""
    import duckdb

    con = duckdb.connect()
    src = f"{base}/swaps/*.parquet"
    n, lo, hi, t_lo, t_hi = con.execute(
        f"SELECT count(*), min(slot), max(slot), min(block_time), max(block_time) FROM '{src}'").fetchone()
    copies = -(-n_swaps // n)
    (out / "swaps").mkdir(parents=True, exist_ok=True)
    slot_span, t_span = hi - lo + 10, t_hi - t_lo + 4
    con.execute(f"""
        COPY (
            SELECT * REPLACE (mint || '_' || c.k AS mint, CAST(slot + c.k * {slot_span} AS UBIGINT) AS slot,
                              CAST(block_time + c.k * {t_span} AS BIGINT) AS block_time)
            FROM '{src}', range({copies}) c(k)
            LIMIT {n_swaps}
        ) TO '{out}/swaps/part-00000.parquet' (FORMAT parquet, COMPRESSION zstd, ROW_GROUP_SIZE 200000)
    """)
    con.execute(f"""
        COPY (
            SELECT * REPLACE (mint || '_' || c.k AS mint, CAST(slot + c.k * {slot_span} AS UBIGINT) AS slot,
                              CAST(block_time + c.k * {t_span} AS BIGINT) AS block_time)
            FROM '{base}/events.parquet', range({copies}) c(k)
        ) TO '{out}/events.parquet' (FORMAT parquet)
    """)
    return n_swaps


def engine_rate(export: Path) -> dict:
    """Swaps per second of one engine on one core: through on_trade, and as column batches."""
    from pocketwatcher.backtest.data import iter_stream, resolve, stream_batches
    from pocketwatcher.triggers.config import load_triggers
    from pocketwatcher.triggers.engine import TriggerEngine

    swaps_glob, events = resolve(export)
    triggers = load_triggers(REPO / "triggers.toml")
    stream = list(iter_stream(swaps_glob, events))
    engine = TriggerEngine(triggers)
    t0 = time.perf_counter()
    for kind, item in stream:
        if kind == "trade":
            engine.on_trade(item)
        else:
            engine.on_create(*item)
    rate = engine.trades / (time.perf_counter() - t0)
    batches = list(stream_batches(swaps_glob, events))
    engine = TriggerEngine(triggers)
    t0 = time.perf_counter()
    for cols in batches:
        engine.feed_columns(cols)
    return {"engine_swaps_per_s": round(rate), "engine_batch_swaps_per_s":
            round(engine.trades / (time.perf_counter() - t0)), "engine_swaps": engine.trades}


def memory_probe(mints: int) -> dict:
    """Run in a child process so its peak RSS is its own."""
    code = f"""
import resource, time, json, sys
sys.path.insert(0, {str(REPO)!r})
from pocketwatcher.triggers.config import load_triggers
from pocketwatcher.triggers.engine import TriggerEngine
from pocketwatcher.triggers.trade import Trade
engine = TriggerEngine(load_triggers({str(REPO / 'triggers.toml')!r}))
t = 1_800_000_000
n = 0
for i in range({mints}):
    mint = f"mint{{i:07d}}pump"
    engine.on_create(mint, f"dev{{i}}", t, 1000 + i)
    for j in range(6):
        n += 1
        engine.on_trade(Trade(f"s{{i}}_{{j}}:2", f"s{{i}}_{{j}}", "2", 1000 + i, t + j, mint, f"w{{i % 5000}}_{{j}}",
                              j % 3 != 2, 10**12, 10**8, 3e-8 + j * 1e-9, "pumpfun", 31 * 10**9, 10**15, 32.0,
                              t - 100, f"c{{i % 9000}}", j == 0))
    t += 0 if i % 50 else 1  # 100k mints inside one hour of event time: all stay live
def hwm():  # this process's own peak (ru_maxrss can carry the parent's peak across exec)
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
print(json.dumps({{"live_mints": len(engine.mints), "trades": n, "peak_rss_mb": round(hwm(), 1)}}))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def load() -> float:
    return round(os.getloadavg()[0], 2)


class Others:
    """How busy the machine was with other work while a part ran: the CPU seconds all
    processes used (/proc/stat) minus this process's and its children's, as a share of
    the machine (0 = it had the machine to itself; 50 = others took one of two cores)."""

    def __enter__(self):
        self.t0, self.busy0, self.mine0 = time.perf_counter(), self._busy(), self._mine()
        return self

    def __exit__(self, *exc) -> None:
        wall = time.perf_counter() - self.t0
        others = (self._busy() - self.busy0) - (self._mine() - self.mine0)
        self.pct = round(max(0.0, 100 * others / (wall * (os.cpu_count() or 1))), 1)

    @staticmethod
    def _busy() -> float:
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:]]
        return (sum(v) - v[3] - v[4]) / os.sysconf("SC_CLK_TCK")  # all but idle and iowait

    @staticmethod
    def _mine() -> float:
        import resource

        me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
        return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--swaps", type=int, default=10_000_000)
    ap.add_argument("--sweep-swaps", type=int, default=1_000_000)
    ap.add_argument("--settings", type=int, default=1000)
    ap.add_argument("--mints", type=int, default=100_000)
    ap.add_argument("--base-minutes", type=float, default=60.0)
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    ap.add_argument("--work", type=Path, default=None, help="keep generated data here (and reuse it)")
    ap.add_argument("--only", default="engine,backtest,sweep,memory", help="comma-separated parts to run")
    args = ap.parse_args()
    from pocketwatcher.backtest.run import run_backtest
    from pocketwatcher.backtest.sweep import feature_table, sweep
    from pocketwatcher.triggers.config import load_triggers

    parts = set(args.only.split(","))
    work = args.work or Path(tempfile.mkdtemp(prefix="pw-bench-"))
    base = base_market(work, args.base_minutes)
    out: dict = {"bench": "backtest", "cpus": os.cpu_count()}
    if "engine" in parts:
        out["load_engine"] = load()
        with Others() as o:
            out.update(engine_rate(base))
        out["others_cpu_pct_engine"] = o.pct
    if "backtest" in parts:
        big = work / f"big{args.swaps}"
        if not (big / "swaps").exists():
            replicate(base, big, args.swaps)
        out["load_backtest_before"] = load()
        t0 = time.perf_counter()
        with Others() as o:
            result = run_backtest(big, load_triggers(REPO / "triggers.toml"), work / "bt", workers=args.workers)
        out.update({"backtest_swaps": result.trades, "backtest_alerts": result.table.num_rows,
                    "backtest_s": round(time.perf_counter() - t0, 1), "backtest_target_s": 60,
                    "workers": args.workers, "backtest_worker_cpu_s": result.timing["worker_cpu_s"],
                    "backtest_workers_s": round(result.timing["workers_s"], 1),
                    "backtest_merge_metrics_write_s": round(result.timing["merge_metrics_s"]
                                                            + result.timing["write_s"], 1),
                    "load_backtest_after": load(), "others_cpu_pct_backtest": o.pct})
    if "sweep" in parts:
        mid = work / f"sweep{args.sweep_swaps}"
        if not (mid / "swaps").exists():
            replicate(base, mid, args.sweep_swaps)
        out["load_sweep_before"] = load()
        with Others() as o:
            t0 = time.perf_counter()
            ft = feature_table(mid, {"unique_buyers_60s", "net_flow_sol_60s", "top_buyer_share_60s"},
                               workers=args.workers)
            features_s = time.perf_counter() - t0
            side = round(args.settings ** (1 / 3))
            grid = [{"b": b, "f": f, "s": s} for b in range(4, 4 + side) for f in [0.5 * i for i in range(side)]
                    for s in [0.3 + 0.05 * i for i in range(side)]][: args.settings]
            t0 = time.perf_counter()
            sw = sweep(ft, "unique_buyers_60s >= $b and net_flow_sol_60s >= $f and top_buyer_share_60s < $s",
                       grid, mcap_floor=40.0, cooldown_s=1800)
            sweep_s = time.perf_counter() - t0
        out.update({"sweep_swaps": ft.num_rows, "sweep_settings": len(grid),
                    "sweep_feature_table_s": round(features_s, 1), "sweep_eval_s": round(sweep_s, 1),
                    "sweep_total_s": round(features_s + sweep_s, 1), "sweep_alerts": sw.alerts.num_rows,
                    "sweep_target_s": 30, "load_sweep_after": load(), "others_cpu_pct_sweep": o.pct})
    if "memory" in parts:
        out.update({f"memory_{k}": v for k, v in memory_probe(args.mints).items()})
        out["memory_target_mb"] = 1024
    print(json.dumps(out))


if __name__ == "__main__":
    main()
