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
# # Tune triggers
#
# Exported swaps in DuckDB, the feature catalogue, a backtest of the trigger file, and a
# threshold sweep of one trigger whose chosen value is written back into a trigger file.
#
# Open it with `pip install -e '.[workbench]'` then `jupyter lab notebooks/`. It is paired
# with `tune_triggers.py` by jupytext (`notebooks/jupytext.toml`): the `.py` is what gets
# reviewed, and saving in JupyterLab updates both files.
#
# Set the parameters in the next cell. With `SWAPS = ""` the notebook simulates a few
# minutes of market first, so it runs anywhere; for real data point `SWAPS` at a folder
# written by `pocketwatcher export-swaps CAPTURE --out DIR`.

# %% tags=["parameters"]
SWAPS: str = ""  # a folder from `pocketwatcher export-swaps`, a Parquet file or a glob; empty: simulate
TRIGGERS: str = ""  # the trigger file; empty: the repository's triggers.toml
SIM_MINUTES: float = 10.0  # minutes of simulated market when SWAPS is "" (horizons longer than the data are unknown)
SEED: int = 7  # simulator seed: the same seed gives the same swaps
LATENCY_SLOTS: int = 2  # slots between an alert and the entry swap
WORKERS: int = 1  # backtest engine processes; 0: one per core (worth it above ~1 M swaps)
SWEEP_TRIGGER: str = "buyer_burst"  # the trigger to tune
SWEEP_FEATURE: str = "unique_buyers_60s"  # the feature whose threshold in that trigger's `when` is swept
SWEEP_VALUES: list = [4, 6, 8, 10, 14, 16, 20, 24]  # thresholds to try (the current one is added)
MIN_ENTRIES: int = 3  # a threshold is suggested only if its alerts had at least this many entries
CHOSEN = None  # the threshold to write back; None: the suggested one
WRITE_TO: str = ""  # where the edited trigger file goes; empty: a temp file (name the original to overwrite it)

# %%
# %matplotlib inline
import dataclasses
import difflib
import re
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from IPython.display import Markdown, display

from pocketwatcher.backtest.data import connect, resolve, swaps_view
from pocketwatcher.backtest.outcomes import HORIZONS, WSOL, compute_outcomes, metrics_sql
from pocketwatcher.backtest.run import run_backtest
from pocketwatcher.backtest.sweep import feature_table, sweep
from pocketwatcher.triggers.catalogue import CATALOGUE
from pocketwatcher.triggers.config import DEFAULT_TRIGGERS, load_triggers, parse_triggers

pd.set_option("display.max_colwidth", 100)
pd.set_option("display.width", 160)

# %% [markdown]
# ## Swaps
#
# DuckDB reads the Parquet files in place. `swaps_view` defines the view `swaps` the
# backtest itself reads (plus `ix_outer`/`ix_inner` for chain order), so any query here
# sees exactly the backtest's input.

# %%
if SWAPS:
    swaps_path = Path(SWAPS).expanduser()
else:
    from pocketwatcher.sim import simulate
    from pocketwatcher.store.parquet import export_capture

    sim_dir = Path(tempfile.mkdtemp(prefix="pocketwatcher-sim-"))
    simulate(SIM_MINUTES, SEED, sim_dir, progress=False)
    swaps_path = sim_dir / "export"
    export_capture(sim_dir / "capture.pwcap", swaps_path, progress=False)
print(f"swaps: {swaps_path}")

con = connect()
swaps_glob, events_path = resolve(swaps_path)
swaps_view(con, swaps_glob)
con.sql("""
    SELECT count(*) AS swaps, count(DISTINCT mint) AS mints, count(DISTINCT trader) AS traders,
           to_timestamp(min(block_time)) AS first_swap, to_timestamp(max(block_time)) AS last_swap
    FROM swaps
""").df()

# %% [markdown]
# Where the SOL volume is, by program and side, and the busiest mints:

# %%
display(con.sql(f"""
    SELECT program, side, count(*) AS swaps, round(sum(quote_amount) / 1e9, 1) AS volume_sol
    FROM swaps WHERE quote_mint = '{WSOL}' GROUP BY ALL ORDER BY program, side
""").df())
con.sql(f"""
    SELECT mint, count(*) AS swaps, count(DISTINCT trader) AS traders,
           round(sum(quote_amount) / 1e9, 1) AS volume_sol, round(max(mcap_sol), 1) AS max_mcap_sol
    FROM swaps WHERE quote_mint = '{WSOL}' GROUP BY mint ORDER BY volume_sol DESC LIMIT 10
""").df()

# %% [markdown]
# ## Feature catalogue
#
# The names a trigger's `when` may use (also `pocketwatcher features`). All are computed
# per mint over event time (block times); an unknown value makes a comparison unknown,
# and a trigger fires only when its `when` is true.

# %%
pd.DataFrame([dataclasses.asdict(f) for f in CATALOGUE.values()]).set_index("name")

# %% [markdown]
# ## Triggers
#
# The trigger file, validated as the runner validates it (an error names the line).

# %%
triggers = load_triggers(TRIGGERS or DEFAULT_TRIGGERS)
print(f"{triggers.source}: {len(triggers)} triggers, version {triggers.version_hash[:12]}")
pd.DataFrame([{
    "trigger": t.name, "v": t.version, "when": t.when, "mcap_floor_sol": t.mcap_floor_sol,
    "cooldown": "once" if t.once else f"{t.cooldown_s}s", "programs": ",".join(sorted(t.programs)) or "any",
    "severity": t.severity, "enabled": t.enabled,
} for t in triggers]).set_index("trigger")

# %% [markdown]
# ## Backtest
#
# The live engine over the swaps in chain order, then what a trader acting on each alert
# would have had: entry at the first swap `LATENCY_SLOTS` after the alert, price multiples
# at each horizon, hit rate (2× within 24 h or the data) and the expectancy of "take profit
# at 2×, else exit after 1 h". Horizons longer than the data are unknown (NaN); on data
# shorter than an hour only the entries that reached 2× have a known 1 h outcome, so the
# expectancy reads high.

# %%
bt_dir = Path(tempfile.mkdtemp(prefix="pocketwatcher-backtest-"))
result = run_backtest(swaps_path, triggers, bt_dir, latency_slots=LATENCY_SLOTS, workers=WORKERS or None)
alerts = pd.read_parquet(bt_dir / "alerts.parquet")
per_trigger = (pd.DataFrame({"trigger": [t.name for t in triggers.enabled]})
               .merge(pd.read_parquet(bt_dir / "metrics.parquet"), on="trigger", how="left")
               .set_index("trigger").apply(pd.to_numeric)
               .fillna({"alerts": 0, "alerts_per_day": 0.0, "entries": 0})
               .astype({"alerts": int, "entries": int}))
print(f"{result.trades:,} swaps, {len(alerts):,} alerts in {result.seconds:.1f} s (alerts.parquet, "
      f"metrics.parquet in {bt_dir})")
per_trigger[["alerts", "alerts_per_day", "entries", "hit_rate", *[f"median_return_{h}" for h in HORIZONS],
             "expectancy"]].round(3)

# %% [markdown]
# Frequency against payoff: each trigger at (alerts per day, payoff), sized by its entries;
# and the median return of each trigger's entries at each horizon the data covers. The
# payoff is the expectancy when the data spans the 1 h exit, else the hit rate (the same
# figure ranks the thresholds of the sweep below).

# %%
span_s = con.execute("SELECT max(block_time) - min(block_time) FROM swaps").fetchall()[0][0]
payoff = "expectancy" if span_s >= HORIZONS["1h"] else "hit_rate"
payoff_label = {"expectancy": "expectancy (TP 2× else exit 1h)", "hit_rate": "hit rate (2× within 24h)"}[payoff]
print(f"the data spans {span_s / 60:.0f} min: payoff = {payoff}")

fired = per_trigger[per_trigger["alerts"] > 0]
fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(13, 4.5))
ax1.scatter(fired["alerts_per_day"], fired[payoff], s=20 + 8 * fired["entries"], alpha=0.6)
for name, row in fired.iterrows():
    ax1.annotate(name, (row["alerts_per_day"], row[payoff]), fontsize=8, xytext=(4, 4),
                 textcoords="offset points")
ax1.axhline(0, color="grey", lw=0.8)
ax1.set(xlabel="alerts per day", ylabel=payoff_label, title="frequency vs payoff")
medians = fired[[f"median_return_{h}" for h in HORIZONS]].set_axis(list(HORIZONS), axis=1).dropna(axis=1, how="all")
if medians.empty:
    ax2.text(0.5, 0.5, "the data ends before the first horizon\nafter every entry", ha="center", va="center")
else:
    medians.plot.bar(ax=ax2, rot=30)
ax2.axhline(0, color="grey", lw=0.8)
ax2.set(ylabel="median return (multiple − 1)", xlabel="", title="median return by horizon")
fig.tight_layout()
plt.show()

# %% [markdown]
# The alerts themselves, with the feature values that made them fire:

# %%
alerts[["trigger", "mint", "block_time", "features", "entry_price", "mult_5m", "max_mult_1h",
        "time_to_2x_s"]].head(20)

# %% [markdown]
# ## Sweep one threshold
#
# The chosen trigger's `when` becomes a template: the number compared with `SWEEP_FEATURE`
# is replaced by `$threshold`. `feature_table` runs the engine's feature code over the swaps
# once; `sweep` evaluates every threshold in one DuckDB query and applies the trigger's
# cooldown per mint, exactly as the engine would. Each setting is then scored like a
# trigger of its own.

# %%
trig = triggers.get(SWEEP_TRIGGER)
if trig is None:
    raise ValueError(f"SWEEP_TRIGGER {SWEEP_TRIGGER!r} is not in {triggers.source}; "
                     f"pick one of {[t.name for t in triggers]}")
threshold_re = re.compile(rf"(\b{re.escape(SWEEP_FEATURE)}\s*(?:>=|<=|>|<)\s*)(-?\d+(?:\.\d*)?(?:[eE]-?\d+)?)")
m = threshold_re.search(trig.when)
if m is None:
    raise ValueError(f"trigger {trig.name!r}: no `{SWEEP_FEATURE} <op> NUMBER` in its when: {trig.when!r}; "
                     "set SWEEP_FEATURE to a feature compared with a number there")
current = float(m.group(2))
template = trig.when[:m.start(2)] + "$threshold" + trig.when[m.end(2):]
values = sorted({*(float(v) for v in SWEEP_VALUES), current, *([float(CHOSEN)] if CHOSEN is not None else [])})
print(f"template: {template}\ncurrent:  {current:g}\nvalues:   {', '.join(f'{v:g}' for v in values)}")

ftable = feature_table(swaps_path, set(trig.expr.features), set(trig.programs) or None)
swept = sweep(ftable, template, [{"threshold": v} for v in values], mcap_floor=trig.mcap_floor_sol or 0.0,
              cooldown_s=trig.cooldown_s or 0, once=trig.once, name=trig.name, version=trig.version)

# %% [markdown]
# Parity check: the setting equal to the current threshold gives exactly the alerts the
# engine gave that trigger in the backtest above (the same ids).

# %%
at_current = swept.alerts.filter(pc.equal(swept.alerts["setting_id"], values.index(current)))
assert set(at_current["id"].to_pylist()) == set(alerts.loc[alerts["trigger"] == trig.name, "id"]), \
    "the sweep at the current threshold disagrees with the engine"
print(f"{at_current.num_rows} alerts at {SWEEP_FEATURE} {current:g}: same ids as the backtest")

# %%
scored = swept.alerts.append_column(
    "trigger", pa.array([str(i) for i in swept.alerts["setting_id"].to_pylist()], pa.string()))
con.register("outcomes", compute_outcomes(con, scored, LATENCY_SLOTS))
by_setting = con.sql(metrics_sql()).df().assign(setting_id=lambda d: d["trigger"].astype(int))
table = (pd.DataFrame(swept.per_setting)[["setting_id", "threshold"]]
         .merge(by_setting.drop(columns="trigger"), on="setting_id", how="left")
         .set_index("threshold").apply(pd.to_numeric)
         .fillna({"alerts": 0, "alerts_per_day": 0.0, "entries": 0})
         .astype({"alerts": int, "entries": int}))
eligible = table[(table["entries"] >= MIN_ENTRIES) & table[payoff].notna()]
suggested = eligible.sort_values([payoff, "alerts"], ascending=False).index[0] if len(eligible) else current
chosen = float(CHOSEN) if CHOSEN is not None else float(suggested)
print(f"suggested {SWEEP_FEATURE} threshold: {suggested:g} (best {payoff} with ≥ {MIN_ENTRIES} entries); "
      f"chosen: {chosen:g}")
table[["alerts", "alerts_per_day", "entries", "hit_rate", "expectancy", "median_return_1h"]].round(3)

# %%
fig, axes = plt.subplots(1, 3, figsize=(14, 3.8), sharex=True)
for ax, col, label in zip(axes, ["hit_rate", "alerts_per_day", "expectancy"],
                          ["hit rate (2× within 24h)", "alerts per day", "expectancy (TP 2× else 1h)"],
                          strict=True):
    ax.plot(table.index, table[col], marker="o")
    ax.axvline(current, color="grey", ls="--", lw=1, label=f"current {current:g}")
    ax.axvline(chosen, color="tab:red", ls=":", lw=1.5, label=f"chosen {chosen:g}")
    ax.set(title=label, xlabel=f"{SWEEP_FEATURE} threshold")
axes[0].legend(fontsize=8)
fig.suptitle(f"{trig.name}: {template}", fontsize=10)
fig.tight_layout()
plt.show()

# %% [markdown]
# ## Write the chosen threshold back
#
# The edit is made in the file's text, so comments and layout stay as they were: the
# number in the trigger's `when` line changes, and its `version` goes up by one (an alert's
# id hashes the version, so alerts of the new definition never collide with the old one's).
# The result is validated before it is written. By default it goes to a temp file; set
# `WRITE_TO` to the trigger file itself to change it, then check it with
# `pocketwatcher check-triggers FILE` (a running runner reloads it and keeps the old set if
# it is invalid).


# %%
def set_threshold(text: str, trigger, pattern: re.Pattern, value: float) -> str:
    """``text`` with ``trigger``'s threshold set to ``value`` and its version bumped (if it changed)."""
    if float(pattern.search(trigger.when).group(2)) == value:
        return text
    lines = text.splitlines(keepends=True)
    start = trigger.line  # the [[trigger]] header (1-based), so lines[start] is the line after it
    end = next((i for i in range(start, len(lines)) if re.match(r"\s*\[", lines[i])), len(lines))
    done = set()
    for i in range(start, end):
        if "when" not in done and re.match(r"\s*when\s*=", lines[i]) and pattern.search(lines[i]):
            lines[i] = pattern.sub(lambda mm: f"{mm.group(1)}{value:g}", lines[i], count=1)
            done.add("when")
        elif "version" not in done and (v := re.match(r"(\s*version\s*=\s*)(\d+)", lines[i])):
            lines[i] = f"{v.group(1)}{int(v.group(2)) + 1}{lines[i][v.end():]}"
            done.add("version")
    if done != {"when", "version"}:
        raise ValueError(f"{trigger.name}: could not find its {sorted({'when', 'version'} - done)} line "
                         f"after line {trigger.line}; edit the file by hand")
    return "".join(lines)


source = Path(triggers.source)
old_text = source.read_text()
new_text = set_threshold(old_text, trig, threshold_re, chosen)
target = Path(WRITE_TO).expanduser() if WRITE_TO else Path(tempfile.mkdtemp(prefix="pocketwatcher-triggers-")) / source.name
tuned = parse_triggers(new_text, source=str(target))  # raises, naming the line, if the edit broke it
target.write_text(new_text)
diff = "".join(difflib.unified_diff(old_text.splitlines(keepends=True), new_text.splitlines(keepends=True),
                                   str(source), str(target)))
display(Markdown(f"Wrote `{target}`:\n\n```diff\n{diff}```" if diff else
                 f"Wrote `{target}`, unchanged: {chosen:g} is the current threshold."))

# %% [markdown]
# The edited file, backtested: the tuned trigger now gives the sweep's alerts at the chosen
# threshold.

# %%
check = run_backtest(swaps_path, tuned, latency_slots=LATENCY_SLOTS, workers=WORKERS or None)
n_new = sum(a["trigger"] == trig.name for a in check.alerts)
assert n_new == int(table.loc[chosen, "alerts"]), (n_new, table.loc[chosen, "alerts"])
print(f"{trig.name} v{tuned.get(trig.name).version}: {tuned.get(trig.name).when}\n"
      f"{n_new} alerts over these swaps (was {int(table.loc[current, 'alerts'])} at {current:g})")
con.close()
