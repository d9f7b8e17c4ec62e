# ---
# jupyter:
#   jupytext:
#     notebook_metadata_filter: -jupytext.text_representation.jupytext_version
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Backtest report
#
# The trigger file's backtest over a set of exported swaps: per-trigger metrics, the
# distribution of returns at each horizon, and alerts per hour over time. Meant to be
# rendered headless by papermill (scheduled, or after a change to the triggers):
#
# ```bash
# pocketwatcher report --swaps DIR --out out/report          # → out/report/report.ipynb (+ .html)
# papermill notebooks/backtest_report.ipynb out/report/report.ipynb -k python3 \
#     -p SWAPS DIR -p OUT out/report -p LATENCY_SLOTS 2
# ```
#
# `OUT` receives `alerts.parquet` and `metrics.parquet` (the files `pocketwatcher backtest
# --out` writes) and each figure as a PNG. Without `SWAPS` the report simulates
# `SIM_MINUTES` of market with `SEED` into `OUT/simulated/` first.

# %% tags=["parameters"]
SWAPS: str = ""  # a folder from `pocketwatcher export-swaps`, a Parquet file or a glob; empty: simulate
TRIGGERS: str = ""  # the trigger file; empty: the repository's triggers.toml
OUT: str = ""  # folder for alerts.parquet, metrics.parquet and the figures; empty: a new temp folder
LATENCY_SLOTS: int = 2  # slots between an alert and the entry swap
SIM_MINUTES: float = 10.0  # minutes of simulated market when SWAPS is empty
SEED: int = 1  # simulator seed when SWAPS is empty
WORKERS: int = 0  # backtest engine processes; 0: one per core

# %%
# %matplotlib inline
import sys
import tempfile
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
from IPython.display import Markdown, display

if "inline" not in matplotlib.get_backend():
    matplotlib.use("Agg")  # headless outside a notebook: the figures still go to OUT
import matplotlib.pyplot as plt

from pocketwatcher.backtest.data import connect, resolve, swaps_view
from pocketwatcher.backtest.outcomes import HORIZONS
from pocketwatcher.backtest.run import run_backtest
from pocketwatcher.triggers.config import DEFAULT_TRIGGERS, load_triggers

pd.set_option("display.width", 160)

# %%
out_dir = Path(OUT).expanduser() if OUT else Path(tempfile.mkdtemp(prefix="pocketwatcher-report-"))
out_dir.mkdir(parents=True, exist_ok=True)
if SWAPS:
    swaps_path = Path(SWAPS).expanduser()
else:
    from pocketwatcher.sim import simulate
    from pocketwatcher.store.parquet import export_capture

    summary = simulate(SIM_MINUTES, SEED, out_dir / "simulated", progress=False)
    export_capture(out_dir / "simulated" / "capture.pwcap", out_dir / "simulated" / "export", progress=False)
    swaps_path = out_dir / "simulated" / "export"
triggers = load_triggers(TRIGGERS or DEFAULT_TRIGGERS)

con = connect()
swaps_view(con, resolve(swaps_path)[0])
n_swaps, n_mints, t_first, t_last = con.execute(
    "SELECT count(*), count(DISTINCT mint), min(block_time), max(block_time) FROM swaps").fetchall()[0]
con.close()


def utc(t: int) -> str:
    return pd.Timestamp(t, unit="s", tz="UTC").strftime("%Y-%m-%d %H:%M:%S UTC")


display(Markdown(f"""
| | |
|---|---|
| swaps | `{swaps_path}`{"" if SWAPS else f" (simulated: {SIM_MINUTES:g} min, seed {SEED})"} |
| span | {utc(t_first)} → {utc(t_last)} ({(t_last - t_first) / 3600:.2f} h), {n_swaps:,} swaps, {n_mints:,} mints |
| triggers | `{triggers.source}`, {len(triggers.enabled)} enabled, version `{triggers.version_hash[:12]}` |
| entry latency | {LATENCY_SLOTS} slots |
| output | `{out_dir}` |
| kernel | `{sys.executable}` (Python {sys.version.split()[0]}) |
"""))

# %% [markdown]
# ## Backtest
#
# The live engine over the swaps in chain order; each alert is entered at the first swap
# `LATENCY_SLOTS` after it. Returns are price multiples − 1 at each horizon (unknown when
# the data ends before it), the hit rate is the share of entries reaching 2× within 24 h or
# the data, and the expectancy is that of "take profit at 2×, else exit after 1 h". On data
# shorter than that hour, only entries that reached 2× have a known outcome, so the
# expectancy then reads high.

# %%
result = run_backtest(swaps_path, triggers, out_dir, latency_slots=LATENCY_SLOTS, workers=WORKERS or None)
alerts = pd.read_parquet(out_dir / "alerts.parquet")
metrics = pd.read_parquet(out_dir / "metrics.parquet")
print(f"{result.trades:,} swaps → {len(alerts):,} alerts in {result.seconds:.1f} s; "
      f"wrote {out_dir / 'alerts.parquet'} and {out_dir / 'metrics.parquet'}")

names = [t.name for t in triggers.enabled]
colors = {n: plt.get_cmap("tab10")(i % 10) for i, n in enumerate(names)}
per_trigger = (pd.DataFrame({"trigger": names}).merge(metrics, on="trigger", how="left").set_index("trigger")
               .apply(pd.to_numeric).fillna({"alerts": 0, "alerts_per_day": 0.0, "entries": 0})
               .astype({"alerts": int, "entries": int}))
pct = ["hit_rate", *[f"median_return_{h}" for h in HORIZONS], "expectancy", "median_drawdown_before_peak"]
shown = per_trigger[["alerts", "alerts_per_day", "entries", *pct, "median_time_to_2x_s"]].copy()
shown[pct] = (shown[pct] * 100).round(1)
shown["alerts_per_day"] = shown["alerts_per_day"].round(1)
shown["median_time_to_2x_s"] = (shown["median_time_to_2x_s"] / 60).round(1)
shown.columns = ["alerts", "alerts/day", "entries", "hit 2× %", *[f"median {h} %" for h in HORIZONS],
                 "expectancy %", "drawdown before peak %", "time to 2× (min)"]
shown


# %%
def save(fig, name: str) -> None:
    """Write the figure to OUT/name.png, then show it."""
    fig.tight_layout()
    fig.savefig(out_dir / f"{name}.png", dpi=110)
    plt.show()


fig, axes = plt.subplots(1, 3, figsize=(14, 0.45 * len(names) + 1.5), sharey=True)
for ax, col, title in zip(axes, ["alerts_per_day", "hit_rate", "expectancy"],
                          ["alerts per day", "hit rate (2× within 24h)", "expectancy (TP 2× else 1h)"],
                          strict=True):
    ax.barh(names, per_trigger[col].fillna(0), color=[colors[n] for n in names])
    ax.set_title(title)
    ax.axvline(0, color="grey", lw=0.8)
axes[0].invert_yaxis()
save(fig, "metrics")

# %% [markdown]
# ## Returns at each horizon
#
# One box per trigger: the price multiple from entry to the horizon (log scale; 1 is break
# even), with every entry drawn as a dot. A horizon longer than the data has no knowable
# return.

# %%
fig, axes = plt.subplots(1, len(HORIZONS), figsize=(4 * len(HORIZONS), 0.35 * len(names) + 2.5), sharey=True)
for ax, h in zip(axes, HORIZONS, strict=True):
    groups = {n: alerts.loc[alerts["trigger"] == n, f"mult_{h}"].dropna().to_numpy(float) for n in names}
    groups = {n: v for n, v in groups.items() if len(v)}
    ax.set_title(f"{h} after entry")
    ax.set_yticks(range(1, len(names) + 1), names)
    if not groups:
        ax.text(0.5, 0.5, f"unknown: the data ends\nless than {h} after every entry", ha="center",
                va="center", transform=ax.transAxes, color="grey")
        ax.set_xticks([])
        continue
    pos = [names.index(n) + 1 for n in groups]
    ax.boxplot(list(groups.values()), positions=pos, orientation="horizontal", widths=0.6, showfliers=False)
    for p, (n, v) in zip(pos, groups.items(), strict=True):
        ax.scatter(v, p + np.random.default_rng(p).uniform(-0.15, 0.15, len(v)), s=8, color=colors[n], alpha=0.7)
    ax.set_xscale("log")
    ax.axvline(1, color="grey", lw=0.8)
    ax.set_xlabel("price multiple")
axes[0].set_ylim(len(names) + 0.5, 0.5)
save(fig, "returns")

# %% [markdown]
# ## Alerts per hour over time
#
# Alerts of each trigger per time bin, as a rate per hour (bins of a minute up to a day,
# depending on the span of the data).

# %%
bin_s = next((b for b in (60, 300, 900, 3600, 4 * 3600) if (t_last - t_first) / b <= 72), 86400)
edges = np.arange(t_first // bin_s * bin_s, t_last + bin_s, bin_s)
starts = edges[:-1].astype("datetime64[s]")
fig, ax = plt.subplots(figsize=(14, 4))
bottom = np.zeros(len(starts))
for n in names:
    rate = np.histogram(alerts.loc[alerts["trigger"] == n, "block_time"], bins=edges)[0] * 3600 / bin_s
    if rate.any():
        ax.bar(starts, rate, width=np.timedelta64(bin_s, "s"), align="edge", bottom=bottom, color=colors[n],
               label=n)
        bottom += rate
ax.set(ylabel="alerts per hour", title=f"alerts per hour ({bin_s // 60}-minute bins, UTC)")
if bottom.any():
    ax.legend(fontsize=8, ncols=2)
save(fig, "alerts_per_hour")

# %% [markdown]
# ## Files

# %%
pd.DataFrame([{"file": p.name, "bytes": p.stat().st_size} for p in sorted(out_dir.iterdir()) if p.is_file()])
