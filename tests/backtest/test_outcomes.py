"""Outcomes computed for all alerts at once equal the one-alert-at-a-time computation."""

from __future__ import annotations

import random

import pyarrow as pa
import pytest

from pocketwatcher.backtest import outcomes
from pocketwatcher.backtest.data import connect
from pocketwatcher.backtest.outcomes import WSOL, compute_outcomes


def _market(seed: int, backwards: bool = False):
    rnd = random.Random(seed)
    rows = []
    for m in range(12):
        slot, t, price = 1000 + rnd.randint(0, 50), 1_700_000_000 + rnd.randint(0, 500), rnd.uniform(1e-8, 1e-7)
        for _ in range(rnd.choice([0, 1, 5, 80, 400])):
            step = rnd.choice([0, 1, 1, 2, 40])
            if step:  # a block time per slot
                slot += step
                t += rnd.choice([0, 0, 1, 5, 60, 900, 5000])
                if backwards and rnd.random() < 0.05:
                    t -= 30
            price *= rnd.choice([0.5, 0.9, 1.0, 1.0, 1.1, 1.5, 2.0, 2.5])
            rows.append({"mint": f"m{m}", "slot": slot, "tx_index": rnd.randint(0, 3), "ix": str(rnd.randint(0, 3)),
                         "block_time": t, "price": price if rnd.random() > 0.05 else 0.0,
                         "quote_mint": WSOL if rnd.random() > 0.05 else "USDC"})
    swaps = pa.Table.from_pylist(rows)
    alerts = [{"id": str(i), "mint": r["mint"], "slot": r["slot"]} for i, r in enumerate(rows) if rnd.random() < 0.2]
    alerts.append({"id": "none", "mint": "no-such-mint", "slot": 5})
    return swaps, pa.Table.from_pylist(alerts, schema=pa.schema([("id", pa.string()), ("mint", pa.string()),
                                                                  ("slot", pa.uint64())]))


def _outcomes(swaps, alerts, latency, vectorised=True, expect_vectorised=None):
    con = connect()
    con.register("raw", swaps)
    con.execute("CREATE VIEW swaps AS SELECT *, CAST(ix AS INTEGER) AS ix_outer, 0 AS ix_inner FROM raw")
    saved = outcomes._vectorised
    used = []

    def spy(*a):
        cols = saved(*a) if vectorised else None
        used.append(cols is not None)
        return cols

    outcomes._vectorised = spy
    try:
        rows = compute_outcomes(con, alerts, latency).to_pylist()
    finally:
        outcomes._vectorised = saved
        con.close()
    if expect_vectorised is not None:
        assert used == [expect_vectorised]
    return rows


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("latency", [0, 2, 50])
def test_vectorised_outcomes_equal_alert_by_alert(seed, latency):
    swaps, alerts = _market(seed)
    fast = _outcomes(swaps, alerts, latency, expect_vectorised=True)
    slow = _outcomes(swaps, alerts, latency, vectorised=False)
    assert len(fast) == alerts.num_rows and any(r["entry_price"] is not None for r in fast)
    assert fast == slow


def test_times_out_of_order_fall_back_to_one_by_one():
    swaps, alerts = _market(3, backwards=True)
    assert _outcomes(swaps, alerts, 2, expect_vectorised=False) == _outcomes(swaps, alerts, 2, vectorised=False)


def test_no_alerts():
    swaps, alerts = _market(1)
    assert _outcomes(swaps, alerts.slice(0, 0), 2) == []
