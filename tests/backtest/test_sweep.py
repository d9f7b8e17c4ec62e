"""The sweep (atoms evaluated once per placeholder value, settings combined in numpy,
cooldowns for all mints at once) against the plain way: every setting's condition in
SQL over every row, and the engine's cooldown rule walked row by row."""

from __future__ import annotations

import random

import duckdb
import pyarrow as pa
import pytest

from pocketwatcher.backtest.sweep import expand_grid, sweep
from pocketwatcher.triggers.engine import alert_id
from pocketwatcher.triggers.expr import compile_expr


def _features(seed: int, backwards: bool) -> pa.Table:
    rnd = random.Random(seed)
    rows = []
    for m in range(25):
        t = 1_700_000_000 + rnd.randint(0, 100)
        for _ in range(rnd.choice([1, 3, 40, 150])):
            t += rnd.choice([0, 0, 1, 3, 10, 15, 30, 200, 300, 600, 1000])  # gaps of exactly a cooldown too
            if backwards and rnd.random() < 0.04:
                t -= rnd.randint(1, 400)
            rows.append({"mint": f"m{m:02d}", "block_time": t,
                         "mcap_sol": rnd.choice([None, 20.0, 35.0, 50.0, 400.0]),
                         "unique_buyers_60s": rnd.randint(0, 20),
                         "net_flow_sol_60s": rnd.choice([None, -1.0, 0.0, 0.5, 2.5, 7.0]),
                         "top_buyer_share_60s": rnd.choice([None, 0.1, 0.3, 0.5, 0.9]),
                         "migrated": rnd.choice([None, True, False]), "is_buy": rnd.random() < 0.6})
    rnd.shuffle(rows)  # the table's order is ord, not mint
    for i, r in enumerate(rows):
        r.update(ord=i + 1, signature=f"s{i}", ix="1", swap_id=f"s{i}:1", slot=1000 + i, program="pumpfun")
    return pa.Table.from_pylist(sorted(rows, key=lambda r: r["ord"]))


def _plain(ft: pa.Table, template: str, settings: list[dict], floor: float, cooldown: int, once: bool):
    """(setting, ord, id) of every alert, the obvious way."""
    params = sorted({p for s in settings for p in s})
    where = compile_expr(template, params={p: 1.0 for p in params}).to_sql(
        column=lambda c: f'f."{c}"', param=lambda p: f's."{p}"')
    con = duckdb.connect()
    con.register("f", ft)
    con.register("s", pa.table({"setting_id": range(len(settings)), **{p: [float(s[p]) for s in settings]
                                                                        for p in params}}))
    floor_sql = f'AND f."mcap_sol" >= {floor!r}' if floor else ""
    rows = con.execute(f"""SELECT s.setting_id, f.mint, f.ord, f.block_time, f.swap_id FROM f, s
                           WHERE ({where}) IS TRUE {floor_sql} ORDER BY s.setting_id, f.mint, f.ord""").fetchall()
    out, last = set(), {}
    for sid, mint, ord_, t, swap in rows:
        prev = last.get((sid, mint))
        if prev is not None and (once or t - prev < cooldown):
            continue
        last[(sid, mint)] = t
        out.add((sid, ord_, alert_id("probe", 1, mint, swap)))
    return out


TEMPLATES = [
    ("unique_buyers_60s >= $b and net_flow_sol_60s >= $f and top_buyer_share_60s < $s",
     {"b": [3, 8, 15], "f": [0.0, 2.5], "s": [0.35, 0.95]}),
    ("not (unique_buyers_60s < $b or net_flow_sol_60s < $f) or migrated", {"b": [2, 10], "f": [-1.0, 0.5, 5.0]}),
    ("net_flow_sol_60s * $k >= $m and is_buy == true", {"k": [-1.0, 0.5, 2.0], "m": [0.0, 3.0]}),
    ("not migrated and (top_buyer_share_60s > $s) == is_buy", {"s": [0.2, 0.4]}),
    ("unique_buyers_60s >= 4", {}),
]


@pytest.mark.parametrize("template, grid", TEMPLATES)
@pytest.mark.parametrize("cooldown, once", [(0, False), (30, False), (600, False), (0, True)])
@pytest.mark.parametrize("backwards", [False, True])
def test_sweep_equals_plain_evaluation(template, grid, cooldown, once, backwards):
    ft = _features(len(template) + cooldown, backwards)
    settings = expand_grid(grid) if grid else [{}]
    res = sweep(ft, template, settings, mcap_floor=40.0, cooldown_s=cooldown, once=once, name="probe", version=1)
    got = set(zip(res.alerts["setting_id"].to_pylist(), res.alerts["ord"].to_pylist(),
                  res.alerts["id"].to_pylist(), strict=True))
    want = _plain(ft, template, settings, 40.0, cooldown, once)
    assert got == want
    assert [p["alerts"] for p in res.per_setting] == [sum(1 for w in want if w[0] == i) for i in range(len(settings))]
    keys = list(zip(res.alerts["setting_id"].to_pylist(), res.alerts["mint"].to_pylist(),
                    res.alerts["ord"].to_pylist(), strict=True))
    assert keys == sorted(keys)  # by setting, mint, then chain order
