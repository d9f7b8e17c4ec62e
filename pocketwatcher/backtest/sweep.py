"""Threshold sweeps: features computed once, every setting evaluated in DuckDB.

1. ``feature_table``: run the engine's feature code over the swaps once (worker
   processes split by mint, as in the backtest) and keep, for every trade that passes a
   trigger's program filter, the values of the features the trigger template reads
   (plus mcap, mint, time, order).
2. ``sweep``: the template's atoms (its comparisons and bool features, what its
   and/or/not combine) are compiled to SQL and evaluated by DuckDB once per distinct
   value of the placeholders each uses, over the rows above the market-cap floor; a
   setting's condition is its atoms' columns combined with SQL's three-valued logic
   (numpy), so 1,000 settings of a 10 x 10 x 10 grid cost 30 SQL conditions and 1,000
   vector combinations, and no (setting, row) candidate list is ever built.
3. Cooldowns: per (setting, mint), the first true row fires, then the next one at least
   ``cooldown`` later, and so on (``once``: only the first) — the engine's rule, applied
   to all mints of a setting at once with binary searches over (mint, time) keys.

For a setting equal to a trigger, the alerts equal the engine's alerts for that trigger
(``tests/backtest/test_parity.py``); every setting's alerts equal a plain per-setting
SQL evaluation with the cooldown walked row by row (``tests/backtest/test_sweep.py``).
"""

from __future__ import annotations

import gc
import itertools
import re
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..triggers.engine import TriggerEngine, alert_id
from ..triggers.values import readers
from .data import connect, resolve, stream_record_batches, to_columns
from .parallel import Bar, default_workers, duckdb_threads, report, run_parts

_PLACEHOLDER = re.compile(r"\$([a-z_][a-z0-9_]*)")


@dataclass
class Sweep:
    settings: list[dict]
    alerts: pa.Table  # setting_id, mint, ord, block_time, swap_id, signature, ix, slot, id (strings as
    #                   dictionaries over the firing rows: a row fires in many settings)
    per_setting: list[dict]


def feature_table(swaps_path, features: set[str], programs: set[str] | None = None, *,
                  workers: int | None = None, progress: bool | None = None) -> pa.Table:
    """One row per trade: order, trade id, mint, time, program, and the named features.

    The engine's own code computes them (its state updates and feature readers), split
    by mint across worker processes like the backtest; ``ord`` is a trade's position
    among all trades in chain order, and the table is in that order."""
    swaps_glob, events = resolve(swaps_path)
    names = tuple(sorted(set(features) | {"mcap_sol"}))
    workers = workers or default_workers()
    jobs = [(swaps_glob, events, k, workers, names, frozenset(programs or ()), duckdb_threads(workers))
            for k in range(workers)]
    with Bar(progress) as bar:
        parts = run_parts(_feature_part, jobs, bar, swaps_glob=swaps_glob, events=events,
                          label=f"features ({workers} worker{'s' if workers > 1 else ''})")
    table = pa.concat_tables(parts, promote_options="permissive") if len(parts) > 1 else parts[0]
    return table.take(pc.sort_indices(table["ord"])) if len(parts) > 1 else table


class _Recorder:
    """A trigger that never fires and records the features of every trade it is asked
    about (the engine asks it about every trade of its programs, in order)."""

    def __init__(self, names: tuple[str, ...], programs: frozenset[str]) -> None:
        self.name, self.version, self.floor, self.once, self.cooldown = "__features__", 1, None, False, None
        self.programs = programs or None
        self.expr = type("E", (), {"features": frozenset(names)})()
        self.reads = [(name, read) for name, read in readers(names)]
        self.values: dict[str, list] = {name: [] for name in names}
        cols = [(self.values[name].append, read) for name, read in self.reads]

        def evaluate(st) -> bool:
            for append, read in cols:
                append(read(st))
            return False

        self.evaluate = evaluate


def _feature_part(args) -> pa.Table:
    swaps_glob, events, part, parts, names, programs, threads = args
    rec = _Recorder(names, programs)
    engine = TriggerEngine([])
    engine.set_triggers([rec], extra_features=frozenset(names))
    tables, rows = [], 0
    gc_was = gc.isenabled()
    gc.disable()  # see run._engine_part
    try:
        for rb in stream_record_batches(swaps_glob, events, part=part, parts=parts, threads=threads,
                                        with_ord=True):
            for v in rec.values.values():
                v.clear()
            engine.feed_columns(to_columns(rb, swap_ids=False), _never)
            keep = rb.column("k")
            if programs:
                keep = pc.and_(keep, pc.is_in(rb.column("program"), value_set=pa.array(sorted(programs))))
            sub = rb.filter(keep)
            cols = {"ord": sub.column("ord"),
                    "swap_id": pc.binary_join_element_wise(sub.column("signature"), sub.column("ix"), ":"),
                    "signature": sub.column("signature"), "ix": sub.column("ix"), "mint": sub.column("mint"),
                    "slot": sub.column("slot"), "block_time": sub.column("t"), "program": sub.column("program")}
            for name in names:
                cols[name] = pa.array(rec.values[name])
            tables.append(pa.table(cols))
            rows += rb.num_rows
            report(part, rows)
    finally:
        if gc_was:
            gc.enable()
    return pa.concat_tables(tables, promote_options="permissive") if tables else _empty(names)


def _never(row: int):
    raise AssertionError("the feature recorder never fires")


def _empty(names) -> pa.Table:
    return pa.table({"ord": pa.array([], pa.int64()), **{c: pa.array([], pa.string()) for c in
                     ("swap_id", "signature", "ix", "mint")}, "slot": pa.array([], pa.int64()),
                     "block_time": pa.array([], pa.int64()), "program": pa.array([], pa.string()),
                     **{n: pa.array([], pa.null()) for n in names}})


def expand_grid(grid: dict[str, list[float]]) -> list[dict]:
    keys = sorted(grid)
    return [dict(zip(keys, vals, strict=True)) for vals in itertools.product(*(grid[k] for k in keys))]


def sweep(ftable: pa.Table, template: str, settings: list[dict], *, mcap_floor: float = 0.0,
          cooldown_s: int = 600, once: bool = False, name: str = "sweep", version: int = 1,
          progress: bool | None = None) -> Sweep:
    """Evaluate ``template`` (a ``when`` with ``$placeholders``) for every setting.

    The template's comparisons (and bool features) are its atoms: DuckDB evaluates each
    once per distinct value of the placeholders it uses (a grid's 10 x 10 x 10 settings
    of three one-placeholder comparisons are 30 columns, not 1,000 conditions), over the
    rows above the market-cap floor. A setting's condition is then its atoms' columns
    combined with SQL's three-valued and/or/not, in numpy, and its cooldowns applied to
    the true rows, all mints at once."""
    from ..triggers.expr import compile_expr, logic_atoms, node_params, node_sql

    params = sorted(set(_PLACEHOLDER.findall(template)))
    missing = [p for p in params if any(p not in s for s in settings)]
    if missing:
        raise ValueError(f"settings lack values for {missing} used in {template!r}")
    cond = compile_expr(template, params={p: 1.0 for p in params})  # type-checks the template
    atoms = logic_atoms(cond.node)
    need_false = _needs_false(cond.node)
    sql_of: dict[str, int] = {}  # atom SQL with its values -> column number
    picks = np.empty((len(settings), len(atoms)), dtype=np.int64)  # setting, atom -> column
    for i, st in enumerate(settings):
        for j, atom in enumerate(atoms):
            sql = node_sql(atom, {p: st[p] for p in node_params(atom)}, column=lambda c: f'f."{c}"')
            picks[i, j] = sql_of.setdefault(sql, len(sql_of))
    falses = {int(c) for j, atom in enumerate(atoms) if id(atom) in need_false for c in picks[:, j]}
    con = connect()
    con.register("features_in", ftable)
    floor = f'WHERE f."mcap_sol" >= {float(mcap_floor)!r}' if mcap_floor else ""
    tests = [f"({sql}) IS TRUE AS t{k}" for sql, k in sql_of.items()]
    tests += [f"({sql}) IS FALSE AS f{k}" for sql, k in sql_of.items() if k in falses]
    rows = con.sql(f"""
        SELECT f.mint, f.ord, f.block_time, f.swap_id, f.signature, f.ix, f.slot{''.join(', ' + t for t in tests)}
        FROM features_in f {floor}
        ORDER BY f.mint, f.ord
    """).to_arrow_table()
    con.close()
    truth = _Columns(rows, "t", len(sql_of))
    falsity = _Columns(rows, "f", len(sql_of))
    combine = _skeleton(cond.node, {id(a): j for j, a in enumerate(atoms)})
    chains = _Chains(rows, cooldown_s, once)
    setting_ids, positions = [], []
    with Bar(progress) as bar:
        bar.start(len(settings), f"{len(settings):,} settings over {rows.num_rows:,} rows", unit="settings")
        for i in range(len(settings)):
            mask, _ = combine(picks[i], truth, falsity, False)
            fired = chains.fired(np.flatnonzero(mask))
            setting_ids.append(np.full(len(fired), i, dtype=np.int64))
            positions.append(fired)
            if i % 16 == 15:
                bar.set(i + 1)
        bar.set(len(settings))
    sid = np.concatenate(setting_ids) if setting_ids else np.zeros(0, dtype=np.int64)
    pos = np.concatenate(positions) if positions else np.zeros(0, dtype=np.int64)
    fired = _alerts_table(rows, sid, pos, name, version)
    counts = np.bincount(sid, minlength=len(settings))
    per = [{**s, "setting_id": i, "alerts": int(counts[i])} for i, s in enumerate(settings)]
    return Sweep(settings, fired, per)


def _alerts_table(rows: pa.Table, sid: np.ndarray, pos: np.ndarray, name: str, version: int) -> pa.Table:
    """(setting, row) pairs as the alerts table. A row fires in many settings, so the
    string columns are dictionaries over the rows that fire (one alert id per row)."""
    seen = np.zeros(rows.num_rows, dtype=bool)
    seen[pos] = True
    uniq = np.flatnonzero(seen)
    back = pa.array((np.cumsum(seen) - 1)[pos], pa.int32())  # position -> its place in uniq
    take = pa.array(uniq, pa.int64())
    vals = {c: rows[c].take(take).combine_chunks() for c in ("mint", "swap_id", "signature", "ix")}
    ids = pa.array([alert_id(name, version, m, sw) for m, sw in zip(vals["mint"].to_pylist(),
                                                                    vals["swap_id"].to_pylist(), strict=True)],
                   pa.string())

    def strings(values: pa.Array) -> pa.Array:
        return pa.DictionaryArray.from_arrays(back, values)

    at = pa.array(pos, pa.int64())
    return pa.table({"setting_id": pa.array(sid, pa.int64()), "mint": strings(vals["mint"]),
                     "ord": rows["ord"].take(at), "block_time": rows["block_time"].take(at),
                     "swap_id": strings(vals["swap_id"]), "signature": strings(vals["signature"]),
                     "ix": strings(vals["ix"]), "slot": rows["slot"].take(at), "id": strings(ids)})


def _needs_false(node) -> set[int]:
    """The atoms (by id) whose falsity matters: those under a ``not``."""
    from ..triggers.expr import Binary, Unary, logic_atoms

    out: set[int] = set()

    def walk(n, under_not: bool) -> None:
        if isinstance(n, Binary) and n.op in ("and", "or"):
            walk(n.left, under_not)
            walk(n.right, under_not)
        elif isinstance(n, Unary) and n.op == "not":
            for a in logic_atoms(n.operand):
                out.add(id(a))
        elif under_not:
            out.add(id(n))

    walk(node, False)
    return out


def _skeleton(node, atom_index: dict[int, int]):
    """``f(picks, truth, falsity, want_false) -> (is true, is false or None)`` over rows:
    the template's and/or/not in SQL's three-valued logic, each atom a pair of columns
    (true / false; neither = unknown)."""
    from ..triggers.expr import Binary, Unary

    if isinstance(node, Binary) and node.op in ("and", "or"):
        left, right = _skeleton(node.left, atom_index), _skeleton(node.right, atom_index)
        conj = node.op == "and"

        def both(picks, truth, falsity, want_false):
            lt, lf = left(picks, truth, falsity, want_false)
            rt, rf = right(picks, truth, falsity, want_false)
            t = (lt & rt) if conj else (lt | rt)
            return t, None if not want_false else ((lf | rf) if conj else (lf & rf))
        return both
    if isinstance(node, Unary) and node.op == "not":
        inner = _skeleton(node.operand, atom_index)

        def negate(picks, truth, falsity, want_false):
            t, f = inner(picks, truth, falsity, True)
            return f, t
        return negate
    j = atom_index[id(node)]

    def atom(picks, truth, falsity, want_false):
        c = picks[j]
        return truth[c], falsity[c] if want_false else None
    return atom


class _Columns:
    """An atom's true (or false) column of ``rows`` as numpy, converted once when they
    all fit in 256 MB, else on every use."""

    def __init__(self, rows: pa.Table, prefix: str, n: int) -> None:
        self.rows, self.prefix = rows, prefix
        self.cache: dict[int, np.ndarray] | None = {} if n * max(rows.num_rows, 1) <= 256 << 20 else None

    def __getitem__(self, c: int) -> np.ndarray:
        if self.cache is not None and c in self.cache:
            return self.cache[c]
        col = np.asarray(self.rows[f"{self.prefix}{c}"].combine_chunks().to_numpy(zero_copy_only=False), dtype=bool)
        if self.cache is not None:
            self.cache[c] = col
        return col


class _Chains:
    """The engine's cooldown rule over one setting's true rows (sorted by mint, then
    chain order): per mint the first fires, then the first at least ``cooldown`` later,
    and so on; ``once``: the first only. All mints advance together, one alert each per
    step. Mints whose block times go backwards somewhere are walked one row at a time."""

    def __init__(self, rows: pa.Table, cooldown_s: int, once: bool) -> None:
        self.cooldown, self.once = int(cooldown_s or 0), once
        mint = rows["mint"].combine_chunks() if rows.num_rows else pa.array([], pa.string())
        n = len(mint)
        new = np.ones(n, dtype=bool)
        if n > 1:
            new[1:] = np.asarray(pc.not_equal(mint[1:], mint[:-1]).to_numpy(zero_copy_only=False), dtype=bool)
        self.code = np.cumsum(new) - 1  # mint number, increasing down the rows
        self.t = np.asarray(rows["block_time"].combine_chunks().to_numpy(zero_copy_only=False), dtype=np.int64)
        back = np.zeros(n, dtype=bool)
        if n > 1:
            back[1:] = (~new[1:]) & (np.diff(self.t) < 0)
        bad_mints = np.unique(self.code[back])
        self.bad = np.isin(self.code, bad_mints) if len(bad_mints) else np.zeros(n, dtype=bool)
        t_lo = int(self.t.min()) if n else 0
        self.span = (int(self.t.max()) - t_lo if n else 0) + self.cooldown + 1
        if n and (int(self.code[-1]) + 1) * self.span >= 2**62:  # keys would overflow: all one by one
            self.bad[:] = True
        self.key = self.code * self.span + (self.t - t_lo)  # increasing within every mint whose times are
        self.t_lo = t_lo
        self.any_bad = bool(self.bad.any())
        self.starts = np.flatnonzero(new)  # each mint's first row
        self.mint_numbers = np.arange(len(self.starts))

    def fired(self, idx: np.ndarray) -> np.ndarray:
        """The rows (of ``idx``, the true ones, ascending) that fire."""
        if len(idx) == 0:
            return idx
        out = []
        if self.any_bad:
            bad = self.bad[idx]
            if bad.any():
                out.append(self._loop(idx[bad]))
                idx = idx[~bad]
                if len(idx) == 0:
                    return out[0]
        if self.cooldown <= 0 and not self.once:
            out.append(idx)
        else:
            # each mint's first true row: the first true row at or after the mint's first row
            j = np.searchsorted(idx, self.starts)
            cur = idx[np.minimum(j, len(idx) - 1)]
            cur = cur[(j < len(idx)) & (self.code[cur] == self.mint_numbers)]
            while len(cur):
                out.append(cur)
                if self.once:
                    break
                c = self.code[cur]
                # first row of the same mint at least cooldown later, then the first true row from there
                at = np.searchsorted(self.key, c * self.span + (self.t[cur] + self.cooldown - self.t_lo))
                j = np.searchsorted(idx, at)
                ok = j < len(idx)
                nxt = idx[np.minimum(j, len(idx) - 1)]
                cur = nxt[ok & (self.code[nxt] == c)]
        return np.sort(np.concatenate(out)) if len(out) > 1 else out[0]

    def _loop(self, idx: np.ndarray) -> np.ndarray:
        keep, last_code, last_t = [], -1, 0
        for i, c, t in zip(idx.tolist(), self.code[idx].tolist(), self.t[idx].tolist(), strict=True):
            if c != last_code:
                keep.append(i)
                last_code, last_t = c, t
            elif not self.once and t - last_t >= self.cooldown:
                keep.append(i)
                last_t = t
        return np.asarray(keep, dtype=np.int64)
