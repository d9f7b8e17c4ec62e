"""Threshold sweeps: features computed once, every setting evaluated in DuckDB.

1. ``feature_table``: run the engine's feature code over the swaps once and keep, for
   every trade that passes a trigger's program filter, the values of the features the
   trigger template reads (plus mcap, mint, time, order).
2. ``sweep``: bind the template's ``$placeholders`` to columns of a settings table and
   evaluate the compiled SQL of ``when`` against the feature table for all settings in
   one query: the rows where it is true are the candidates.
3. Cooldowns: per (setting, mint), the first candidate fires, then the next candidate at
   least ``cooldown`` later, and so on (``once``: only the first) — the engine's rule,
   applied with a jump search over each group's sorted times.

For a setting equal to a trigger, the alerts equal the engine's alerts for that trigger
(``tests/backtest/test_parity.py``).
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..triggers.engine import TriggerEngine, alert_id
from ..triggers.features import MintState
from ..triggers.values import getters
from .data import connect, iter_stream, resolve

_PLACEHOLDER = re.compile(r"\$([a-z_][a-z0-9_]*)")


@dataclass
class Sweep:
    settings: list[dict]
    alerts: pa.Table  # setting_id, mint, signature, ix, slot, block_time, alert id
    per_setting: list[dict]


def feature_table(swaps_path, features: set[str], programs: set[str] | None = None) -> pa.Table:
    """One row per trade: order, trade id, mint, time, program, and the named features."""
    swaps_glob, events = resolve(swaps_path)
    names = sorted(set(features) | {"mcap_sol"})
    gets = getters(names)

    class _Probe(TriggerEngine):
        """The engine's own state updates, minus trigger evaluation."""

    from ..triggers.features import Needs

    engine = _Probe([])
    engine.needs = Needs.from_features(names)
    cols: dict[str, list] = {k: [] for k in ("ord", "swap_id", "signature", "ix", "mint", "slot", "block_time",
                                             "program", *names)}
    n = 0
    for kind, item in iter_stream(swaps_glob, events):
        if kind == "create":
            engine.on_create(*item)
            continue
        tr = item
        st: MintState = engine._state(tr.mint)
        st.on_trade(tr)
        engine._evict(tr.t)
        n += 1
        if programs and tr.program not in programs:
            continue
        cols["ord"].append(n)
        cols["swap_id"].append(tr.id)
        cols["signature"].append(tr.signature)
        cols["ix"].append(tr.ix)
        cols["mint"].append(tr.mint)
        cols["slot"].append(tr.slot)
        cols["block_time"].append(tr.t)
        cols["program"].append(tr.program)
        for name, g in gets:
            cols[name].append(g(st, tr))
    return pa.table(cols)


def expand_grid(grid: dict[str, list[float]]) -> list[dict]:
    keys = sorted(grid)
    return [dict(zip(keys, vals, strict=True)) for vals in itertools.product(*(grid[k] for k in keys))]


def sweep(ftable: pa.Table, template: str, settings: list[dict], *, mcap_floor: float = 0.0,
          cooldown_s: int = 600, once: bool = False, name: str = "sweep", version: int = 1) -> Sweep:
    """Evaluate ``template`` (a ``when`` with ``$placeholders``) for every setting."""
    from ..triggers.expr import compile_expr

    params = sorted(set(_PLACEHOLDER.findall(template)))
    missing = [p for p in params if any(p not in s for s in settings)]
    if missing:
        raise ValueError(f"settings lack values for {missing} used in {template!r}")
    # type-check once with placeholder values, then render placeholders as settings columns
    cond = compile_expr(template, params={p: 1.0 for p in params})
    where = cond.to_sql(column=lambda c: f'f."{c}"', param=lambda p: f's."{p}"')
    con = connect()
    con.register("features_in", ftable)
    settings_tbl = pa.table({"setting_id": list(range(len(settings))),
                             **{p: [float(s[p]) for s in settings] for p in params}})
    con.register("settings_in", settings_tbl)
    floor = f'AND f."mcap_sol" >= {float(mcap_floor)!r}' if mcap_floor else ""
    cand = con.sql(f"""
        SELECT s.setting_id, f.mint, f.ord, f.block_time, f.swap_id, f.signature, f.ix, f.slot
        FROM features_in f, settings_in s
        WHERE ({where}) IS TRUE {floor}
        ORDER BY s.setting_id, f.mint, f.ord
    """).to_arrow_table()
    con.close()
    fired = _apply_cooldown(cand, cooldown_s, once)
    ids = [alert_id(name, version, m, sid) for m, sid in zip(fired["mint"].to_pylist(),
                                                             fired["swap_id"].to_pylist(), strict=True)]
    fired = fired.append_column("id", pa.array(ids, pa.string()))
    counts = np.bincount(np.asarray(fired["setting_id"].to_numpy(), dtype=np.int64), minlength=len(settings))
    per = [{**s, "setting_id": i, "alerts": int(counts[i])} for i, s in enumerate(settings)]
    return Sweep(settings, fired, per)


def _apply_cooldown(cand: pa.Table, cooldown_s: int, once: bool) -> pa.Table:
    """The engine's cooldown rule over sorted candidates, vectorised across groups.

    Each candidate's successor is the first candidate of its (setting, mint) group at
    least ``cooldown_s`` later; firing follows that chain from each group's first
    candidate, one vectorised step for all groups at a time.
    """
    n = cand.num_rows
    if n == 0:
        return cand
    sid = cand["setting_id"].to_numpy().astype(np.int64)
    # one dictionary for the whole column (per-chunk dictionaries would give clashing codes)
    mint_codes = pc.dictionary_encode(cand["mint"].combine_chunks()).indices.to_numpy().astype(np.int64)
    t = cand["block_time"].to_numpy().astype(np.int64)
    new_group = np.r_[True, (sid[1:] != sid[:-1]) | (mint_codes[1:] != mint_codes[:-1])]
    gid = np.cumsum(new_group) - 1
    firsts = np.flatnonzero(new_group)
    if once:
        return cand.take(pa.array(firsts, pa.int64()))
    # global key: groups far apart on one axis, so a search never crosses into the next group
    span = int(t.max() - t.min()) + int(cooldown_s) + 1
    key = gid * span + (t - t.min())
    nxt = np.searchsorted(key, key + int(cooldown_s), side="left")
    valid_next = (nxt < n) & (gid[np.minimum(nxt, n - 1)] == gid)
    nxt = np.where(valid_next, nxt, -1)
    keep = []
    cur = firsts
    while len(cur):
        keep.append(cur)
        cur = nxt[cur]
        cur = cur[cur >= 0]
    idx = np.sort(np.concatenate(keep))
    return cand.take(pa.array(idx, pa.int64()))
