"""What a trader acting on each alert would have had, and per-trigger metrics, in DuckDB.

Entry: the first SOL-priced swap of the alert's mint at least ``latency_slots`` slots
after the alert's slot (the time to see the alert and land a transaction); its price
is the entry price. For each horizon h (5m, 30m, 1h, 24h):

- ``mult_h``: the last price at or before entry + h, over the entry price (NULL when
  the data ends before entry + h: not knowable, not counted);
- ``max_mult_h``: the highest price in (entry, entry + h] over the entry price (≥ 1);

plus ``drawdown_before_peak`` (lowest price between entry and the 24h peak, as a
fraction below entry), and ``time_to_2x_s`` (seconds until a price ≥ 2× entry, within 24h).

Per trigger: alerts, alerts per day (over the data's span), entries, hit rate (share of
entries that reached 2× within 24h), median and mean return (mult − 1) at each horizon,
and expectancy: the mean return of the rule "take profit at 2×, else exit at 1h".
"""

from __future__ import annotations

HORIZONS = {"5m": 300, "30m": 1800, "1h": 3600, "24h": 86400}


def outcomes_sql(latency_slots: int) -> str:
    mults = ",\n".join(
        f"""CASE WHEN e.entry_time + {s} <= (SELECT max(block_time) FROM priced)
                 THEN (SELECT p.price FROM priced p WHERE p.mint = e.mint AND p.block_time <= e.entry_time + {s}
                       ORDER BY p.block_time DESC, p.ord DESC LIMIT 1) / e.entry_price END AS mult_{h},
            coalesce((SELECT max(p.price) FROM priced p WHERE p.mint = e.mint AND p.block_time > e.entry_time
                      AND p.block_time <= e.entry_time + {s}) / e.entry_price, 1.0) AS max_mult_{h}"""
        for h, s in HORIZONS.items())
    return f"""
    WITH priced AS (
        SELECT mint, slot, block_time, price, row_number() OVER () AS ord
        FROM swaps WHERE price IS NOT NULL AND price > 0
          AND quote_mint = 'So11111111111111111111111111111111111111112'
    ),
    entries AS (
        SELECT a.*, en.slot AS entry_slot, en.block_time AS entry_time, en.price AS entry_price
        FROM alerts a
        LEFT JOIN LATERAL (
            SELECT p.slot, p.block_time, p.price FROM priced p
            WHERE p.mint = a.mint AND p.slot >= a.slot + {int(latency_slots)}
            ORDER BY p.slot, p.ord LIMIT 1
        ) en ON true
    )
    SELECT e.*,
        {mults},
        (SELECT min(p.block_time) - e.entry_time FROM priced p WHERE p.mint = e.mint
            AND p.block_time >= e.entry_time AND p.block_time <= e.entry_time + 86400
            AND p.price >= 2 * e.entry_price) AS time_to_2x_s,
        (SELECT 1 - min(p.price) / e.entry_price FROM priced p, (
            SELECT q.block_time AS peak_t FROM priced q WHERE q.mint = e.mint AND q.block_time >= e.entry_time
              AND q.block_time <= e.entry_time + 86400 ORDER BY q.price DESC, q.block_time LIMIT 1) pk
         WHERE p.mint = e.mint AND p.block_time >= e.entry_time AND p.block_time <= pk.peak_t) AS drawdown_before_peak
    FROM entries e
    """


def metrics_sql(span_days_expr: str = "span.days") -> str:
    per_h = ",\n".join(
        f"median(mult_{h} - 1) AS median_return_{h}, avg(mult_{h} - 1) AS mean_return_{h}" for h in HORIZONS)
    return f"""
    WITH span AS (SELECT greatest((max(block_time) - min(block_time)) / 86400.0, 1.0 / 24) AS days FROM swaps)
    SELECT trigger,
           count(*) AS alerts,
           count(*) / any_value({span_days_expr}) AS alerts_per_day,
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
