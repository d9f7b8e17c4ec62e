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

Only the alerted mints' prices are loaded (DuckDB → numpy, in chain order, the mint as
a number); all alerts are then answered together with numpy: binary searches over keys
that order (mint, slot) and (mint, time), range maxima and minima with ``reduceat``, and
first crossings by scanning all open alerts forward in blocks. Where a mint's block
times go backwards in chain order (a binary search then has no single answer) the
alerts are answered one by one, as they always were (``_outcome``).
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

HORIZONS = {"5m": 300, "30m": 1800, "1h": 3600, "24h": 86400}
WSOL = "So11111111111111111111111111111111111111112"


def compute_outcomes(con, alerts: pa.Table, latency_slots: int) -> pa.Table:
    """``alerts`` (id, mint, slot, ...) → the same rows with entry and outcome columns
    (prices from the ``swaps`` view of ``con``)."""
    con.register("alerts_in", alerts)
    end_t = con.execute("SELECT max(block_time) FROM swaps").fetchall()[0][0] or 0
    mints = _mints(alerts)
    con.register("alerted_mints", pa.table({"mint": mints, "code": pa.array(range(len(mints)), pa.int64())}))
    series = con.execute(f"""
        SELECT a.code, s.slot, s.block_time, s.price FROM swaps s JOIN alerted_mints a ON s.mint = a.mint
        WHERE s.price > 0 AND s.quote_mint = '{WSOL}'
        ORDER BY a.code, s.slot, coalesce(s.tx_index, 0), s.ix_outer, s.ix_inner
    """).fetchnumpy()
    con.unregister("alerted_mints")
    return outcomes_for(alerts, mints, *(np.asarray(series[c], dtype=d) for c, d in (
        ("code", np.int64), ("slot", np.int64), ("block_time", np.int64), ("price", np.float64))),
        end_t=end_t, latency_slots=latency_slots)


def _mints(alerts: pa.Table) -> pa.Array:
    return pc.unique(_mint_column(alerts).combine_chunks()) if alerts.num_rows else pa.array([], pa.string())


def _mint_column(alerts: pa.Table):
    """The alerts' mints as plain strings (a sweep's alerts hold them as a dictionary)."""
    col = alerts["mint"]
    return col.cast(pa.string()) if pa.types.is_dictionary(col.type) else col


def outcomes_for(alerts: pa.Table, mints: pa.Array, codes, slots, times, prices, *, end_t: int,
                 latency_slots: int) -> pa.Table:
    """Outcome columns appended to ``alerts``, from the SOL prices of the alerted mints:
    ``codes`` (index into ``mints``), ``slots``, ``times``, ``prices``, sorted by mint then
    chain order; ``end_t`` is where the data ends."""
    a_code = np.asarray(pc.index_in(_mint_column(alerts), value_set=mints), dtype=np.int64)
    min_slot = np.asarray(alerts["slot"], dtype=np.int64) + latency_slots
    bounds = np.searchsorted(codes, np.arange(len(mints) + 1))  # mint c: rows bounds[c]:bounds[c + 1]
    cols = _vectorised(codes, slots, times, prices, bounds, a_code, min_slot, end_t)
    if cols is None:  # times out of order somewhere: one alert at a time
        lists: dict[str, list] = {k: [] for k in _COLUMNS}
        for c, ms in zip(a_code.tolist(), min_slot.tolist(), strict=True):
            _outcome(lists, (int(bounds[c]), int(bounds[c + 1])), slots, times, prices, ms, end_t)
        cols = {k: pa.array(v, pa.int64() if k in _INT_COLUMNS else pa.float64()) for k, v in lists.items()}
    out = alerts
    for k in _COLUMNS:
        out = out.append_column(k, cols[k])
    return out


class PriceSeries:
    """The SOL prices a worker reads on its way through its share of the swaps (the
    engine's input batches, in chain order), kept compactly, so the outcomes of its own
    alerts need no second pass over the data: the same rows, in the same order, as the
    ``compute_outcomes`` query gives (price > 0 as DuckDB compares: NaN counts)."""

    def __init__(self) -> None:
        self.chunks: list[pa.RecordBatch] = []

    def add(self, batch: pa.RecordBatch) -> None:
        """A batch with columns mint, slot, t, price (NULL when the quote is not SOL)."""
        price = batch.column("price")
        keep = pc.fill_null(pc.or_(pc.greater(price, 0), pc.is_nan(price)), False)
        sub = batch.filter(keep)
        if sub.num_rows:
            self.chunks.append(pa.record_batch([pc.dictionary_encode(sub.column("mint")), sub.column("slot"),
                                                sub.column("t"), sub.column("price")],
                                               names=["mint", "slot", "t", "price"]))

    def outcomes(self, alerts: pa.Table, *, end_t: int, latency_slots: int) -> pa.Table:
        mints = _mints(alerts)
        parts: dict[str, list[np.ndarray]] = {"code": [], "slot": [], "t": [], "price": []}
        for ch in self.chunks:  # each chunk's dictionary mapped onto the alerted mints once
            mapped = np.asarray(pc.fill_null(pc.index_in(ch.column("mint").dictionary, value_set=mints), -1),
                                dtype=np.int64)
            c = mapped[np.asarray(ch.column("mint").indices)]
            sel = np.flatnonzero(c >= 0)
            parts["code"].append(c[sel])
            for k in ("slot", "t", "price"):  # no nulls here: numpy views of the Arrow buffers
                parts[k].append(np.asarray(ch.column(k))[sel])
        if not self.chunks:
            return outcomes_for(alerts, mints, *(np.zeros(0, dtype=d) for d in (np.int64, np.int64, np.int64,
                                                                                  np.float64)),
                                end_t=end_t, latency_slots=latency_slots)
        code = np.concatenate(parts["code"])
        order = np.argsort(code, kind="stable")  # by mint, chain order kept within each
        slots, times, prices = (np.concatenate(parts[k]).astype(d, copy=False)[order]
                                for k, d in (("slot", np.int64), ("t", np.int64), ("price", np.float64)))
        return outcomes_for(alerts, mints, code[order], slots, times, prices, end_t=end_t,
                            latency_slots=latency_slots)


_COLUMNS = ["entry_slot", "entry_time", "entry_price", "time_to_2x_s", "drawdown_before_peak",
            *[f"{m}_{h}" for h in HORIZONS for m in ("mult", "max_mult")]]
_INT_COLUMNS = ("entry_slot", "entry_time")


def _vectorised(codes, slots, times, prices, bounds, a_code, min_slot, end_t) -> dict | None:
    """All alerts' outcomes at once (the same numbers ``_outcome`` gives one by one), or
    None when some mint's times are out of order, a price is NaN or the keys would overflow."""
    n, m = len(codes), len(a_code)
    if n and (np.any((np.diff(times) < 0) & (np.diff(codes) == 0)) or np.isnan(prices).any()):
        return None
    if n == 0:  # no prices at all: no entries
        return {c: pa.nulls(m, pa.int64() if c in _INT_COLUMNS else pa.float64())
                for c in _COLUMNS}
    # (mint, slot) and (mint, time) as one increasing int64 key each
    s_lo, t_lo = int(slots.min()), int(times.min())
    s_span = int(slots.max()) - s_lo + 2
    t_span = int(times.max()) - t_lo + max(HORIZONS.values()) + 2
    if len(bounds) * max(s_span, t_span) >= 2**62:
        return None
    e = bounds[a_code + 1]
    i = np.searchsorted(codes * s_span + (slots - s_lo), a_code * s_span + np.clip(min_slot - s_lo, 0, s_span - 1))
    k = np.flatnonzero(i < e)  # the alerts with an entry swap
    ik = i[k]
    t0, p0 = times[ik], prices[ik]
    no_entry = np.ones(m, dtype=bool)
    no_entry[k] = False

    def column(values, unknown=None) -> pa.Array:
        full = np.zeros(m, dtype=values.dtype)
        full[k] = values
        mask = no_entry.copy()
        if unknown is not None:
            mask[k[unknown]] = True
        return pa.array(full, mask=mask)

    cols = {"entry_slot": column(slots[ik]), "entry_time": column(t0), "entry_price": column(p0)}
    tkey = codes * t_span + (times - t_lo)
    padded_max, padded_min = np.append(prices, -np.inf), np.append(prices, np.inf)  # reduceat may start at n
    for h, secs in HORIZONS.items():
        j = np.searchsorted(tkey, a_code[k] * t_span + (t0 + secs - t_lo), side="right")  # one past the last ≤ t0+h
        cols[f"mult_{h}"] = column(prices[j - 1] / p0, unknown=t0 + secs > end_t)
        cols[f"max_mult_{h}"] = column(_range_reduce(np.maximum, padded_max, ik, j) / p0)
        if h == "24h":
            day_end = j
    hit = _first_at_least(prices, ik, day_end, 2 * p0)
    cols["time_to_2x_s"] = column((times[np.maximum(hit, 0)] - t0).astype(np.float64), unknown=hit < 0)
    peak = _first_at_least(prices, ik, day_end, _range_reduce(np.maximum, padded_max, ik, day_end))  # argmax
    cols["drawdown_before_peak"] = column(1 - _range_reduce(np.minimum, padded_min, ik, peak + 1) / p0)
    return cols


def _range_reduce(op, values, lo, hi):
    """``op.reduce(values[lo[a]:hi[a]])`` for every a (lo < hi), with one ``reduceat``: the
    ranges sorted by start, so the gaps between them add up to at most len(values)."""
    if len(lo) == 0:
        return np.zeros(0)
    order = np.argsort(lo, kind="stable")
    idx = np.empty(2 * len(lo), dtype=np.int64)
    idx[0::2] = lo[order]
    idx[1::2] = hi[order]
    red = op.reduceat(values, idx)[0::2]
    out = np.empty(len(lo))
    out[order] = red
    return out


_B = 64  # block size of the first-crossing search


def _first_at_least(values, lo, hi, thr):
    """The first index in [lo, hi) whose value is >= thr, per query (-1 if none).

    Two levels: the values up to lo's block boundary, then the maxima of whole blocks
    (the same search, recursively, on an array 64 times shorter) to find the first block
    that holds a crossing, then that block; else the tail after the last whole block."""
    res = np.full(len(lo), -1, dtype=np.int64)
    if len(lo) == 0:
        return res
    if len(values) <= 4 * _B:
        return _scan(values, lo, hi, thr, len(values))
    head_end = np.minimum(hi, -(-lo // _B) * _B)
    res[:] = _scan(values, lo, head_end, thr, _B)
    q = np.flatnonzero((res < 0) & (head_end < hi))
    if len(q):
        blo, bhi = head_end[q] // _B, hi[q] // _B
        n_full = len(values) // _B
        maxima = values[: n_full * _B].reshape(n_full, _B).max(axis=1)
        b = _first_at_least(maxima, blo, bhi, thr[q])
        found = b >= 0
        res[q[found]] = _scan(values, b[found] * _B, b[found] * _B + _B, thr[q[found]], _B)
        tail = q[~found]
        res[tail] = _scan(values, np.maximum(bhi[~found] * _B, head_end[tail]), hi[tail], thr[tail], _B)
    return res


def _scan(values, lo, hi, thr, width: int):
    """First index >= thr in [lo, hi) when every range is at most ``width`` long."""
    res = np.full(len(lo), -1, dtype=np.int64)
    last = len(values) - 1
    step = max(1, (1 << 21) // max(width, 1))  # queries per step: bounded memory
    for s in range(0, len(lo), step):
        offs = lo[s:s + step, None] + np.arange(width)
        hit = (offs < hi[s:s + step, None]) & (values[np.minimum(offs, last)] >= thr[s:s + step, None])
        any_hit = hit.any(axis=1)
        res[s:s + step][any_hit] = offs[any_hit, hit[any_hit].argmax(axis=1)]
    return res


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
