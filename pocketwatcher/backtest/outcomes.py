"""What a trader acting on each alert would have had, and per-trigger metrics.

Entry: the first SOL-priced swap of the alert's mint at least ``latency_slots`` slots
after the alert's slot (the time to see the alert and land a transaction); its price
is the entry price. For each horizon h (5m, 30m, 1h, 24h):

- ``mult_h``: the last price at or before entry + h, over the entry price (NULL when
  the data ends before entry + h: not knowable, not counted);
- ``max_mult_h``: the highest price in [entry, entry + h] over the entry price (≥ 1);

plus ``drawdown_before_peak`` (lowest price between entry and the 24h peak, as a
fraction below entry) and ``time_to_2x_s`` (seconds until a price ≥ 2× entry, within
24h and the data).

Per trigger: alerts, alerts per day (over the data's span), entries, hit rate (share of
entries that reached 2× within 24h or the end of the data), median and mean return
(mult − 1) at each horizon, and expectancy: the mean return of the rule "take profit
at 2×, else exit at 1h".

Only the alerted mints' prices are loaded (DuckDB → numpy, in chain order); each alert
is then a few binary searches over its mint's series.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

HORIZONS = {"5m": 300, "30m": 1800, "1h": 3600, "24h": 86400}
WSOL = "So11111111111111111111111111111111111111112"


def compute_outcomes(con, alerts: pa.Table, latency_slots: int) -> pa.Table:
    """``alerts`` (id, mint, slot, ...) → the same rows with entry and outcome columns."""
    con.register("alerts_in", alerts)
    end_t = con.execute("SELECT max(block_time) FROM swaps").fetchall()[0][0] or 0
    series = con.execute(f"""
        SELECT mint, slot, block_time, price FROM swaps
        WHERE price > 0 AND quote_mint = '{WSOL}' AND mint IN (SELECT DISTINCT mint FROM alerts_in)
        ORDER BY mint, slot, coalesce(tx_index, 0), ix_outer, ix_inner
    """).fetchnumpy()
    mints = series["mint"]
    slots = np.asarray(series["slot"], dtype=np.int64)
    times = np.asarray(series["block_time"], dtype=np.int64)
    prices = np.asarray(series["price"], dtype=np.float64)
    bounds: dict[str, tuple[int, int]] = {}
    if len(mints):
        mints = np.asarray(mints, dtype=object)
        change = np.flatnonzero(mints[1:] != mints[:-1]) + 1
        starts = np.r_[0, change]
        ends = np.r_[change, len(mints)]
        bounds = {mints[s]: (s, e) for s, e in zip(starts.tolist(), ends.tolist(), strict=True)}
    cols: dict[str, list] = {k: [] for k in ("entry_slot", "entry_time", "entry_price", "time_to_2x_s",
                                             "drawdown_before_peak")}
    for h in HORIZONS:
        cols[f"mult_{h}"] = []
        cols[f"max_mult_{h}"] = []
    for mint, slot in zip(alerts["mint"].to_pylist(), alerts["slot"].to_pylist(), strict=True):
        _outcome(cols, bounds.get(mint), slots, times, prices, slot + latency_slots, end_t)
    out = alerts
    for k, v in cols.items():
        out = out.append_column(k, pa.array(v, pa.float64() if k != "entry_slot" and k != "entry_time"
                                            else pa.int64()))
    return out


def _outcome(cols, bound, slots, times, prices, min_slot: int, end_t: int) -> None:
    def none():
        for k in cols:
            cols[k].append(None)

    if bound is None:
        return none()
    s, e = bound
    i = s + int(np.searchsorted(slots[s:e], min_slot, side="left"))
    if i >= e:
        return none()
    p0, t0 = prices[i], times[i]
    cols["entry_slot"].append(int(slots[i]))
    cols["entry_time"].append(int(t0))
    cols["entry_price"].append(float(p0))
    day_end = i + int(np.searchsorted(times[i:e], t0 + 86400, side="right"))
    window = prices[i:day_end]
    hit = np.flatnonzero(window >= 2 * p0)
    cols["time_to_2x_s"].append(float(times[i + hit[0]] - t0) if len(hit) else None)
    peak = int(np.argmax(window))
    cols["drawdown_before_peak"].append(float(1 - window[: peak + 1].min() / p0))
    for h, secs in HORIZONS.items():
        j = i + int(np.searchsorted(times[i:e], t0 + secs, side="right"))  # one past the last ≤ t0+h
        cols[f"mult_{h}"].append(float(prices[j - 1] / p0) if t0 + secs <= end_t else None)
        cols[f"max_mult_{h}"].append(float(prices[i:j].max() / p0))


def metrics_sql() -> str:
    per_h = ",\n".join(
        f"median(mult_{h} - 1) AS median_return_{h}, avg(mult_{h} - 1) AS mean_return_{h}" for h in HORIZONS)
    return f"""
    WITH span AS (SELECT greatest((max(block_time) - min(block_time)) / 86400.0, 1.0 / 24) AS days FROM swaps)
    SELECT trigger,
           count(*) AS alerts,
           count(*) / any_value(span.days) AS alerts_per_day,
           count(entry_price) AS entries,
           avg(CASE WHEN entry_price IS NULL THEN NULL WHEN time_to_2x_s IS NOT NULL THEN 1.0 ELSE 0.0 END)
               AS hit_rate,
           {per_h},
           avg(CASE WHEN entry_price IS NULL THEN NULL
                    WHEN time_to_2x_s IS NOT NULL AND time_to_2x_s <= 3600 THEN 1.0
                    ELSE mult_1h - 1 END) AS expectancy,
           median(time_to_2x_s) AS median_time_to_2x_s,
           median(drawdown_before_peak) AS median_drawdown_before_peak
    FROM outcomes, span
    GROUP BY trigger
    ORDER BY trigger
    """
