"""Feature values of a mint at a trade: one small reader per catalogue entry.

``readers(names)`` returns (name, function) pairs for just the features a trigger set
uses; each function reads a ``MintState`` already updated with the trade (the trade's
time is ``last_t``, its side ``is_buy``, its SOL size ``swap_lamports``).
``getters(names)`` gives the same as functions of ``(state, trade)`` for callers that
hold the trade. ``COST`` ranks features by what a read costs, so the engine can test
cheap conditions first (an ``and`` stops at the first false one).
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Iterable

from ..enrich.cto import DEFAULT as CTO_SCORER
from .catalogue import CATALOGUE, WINDOWS
from .features import _NB, _NS, _VB, _VS, CURVE_TOKENS, INITIAL_VTOK, PUMP_SUPPLY_RAW, MintState

Reader = Callable[[MintState], object]
Getter = Callable[[MintState, object], object]


def _share(part: float, whole: float) -> float | None:
    return part / whole if whole > 0 else None


def _window_reader(base: str, w: str) -> Reader:
    # counts and volumes: the log's last running total minus the one before the window's
    # start; windows are brought up to date when read (``advance``; maps: ``sync``), and
    # the check that one already is stays inline
    if base in _TOTALS:
        k = _TOTALS[base]

        def total(s):
            win = s.windows[w]
            log = win.log
            if win.at != len(log):
                win.advance()
            return log[-1][k] - log[win.start - 1][k]
        return total
    if base == "trades":
        return _pair(_NB, _NS, operator.add)(w)
    if base in ("unique_buyers", "unique_sellers"):
        attr = "buyers" if base == "unique_buyers" else "sellers"

        def unique(s):
            win = s.windows[w]
            if win.added != len(win.log) or win.at != len(win.log):
                win.sync()
            return len(getattr(win, attr))
        return unique
    if base in _VOLUMES:
        return _VOLUMES[base](w)
    if base == "top_buyer_share":
        def top_buyer_share(s):
            win = s.windows[w]
            log = win.log
            if win.added != len(log) or win.at != len(log):
                win.sync()
            return _share(max(win.bvol_by.values(), default=0.0), log[-1][_VB] - log[win.start - 1][_VB])
        return top_buyer_share
    if base == "fresh_buyer_share":
        def fresh_buyer_share(s):
            win = s.windows[w]
            return _share(win.fresh, win.buys)
        return fresh_buyer_share
    if base == "price_change_pct":
        def price_change(s):
            p0 = s.windows[w].start_price()
            if p0 is None or s.price is None or p0 <= 0:
                return None
            return (s.price / p0 - 1.0) * 100.0
        return price_change
    raise KeyError(base)


def _pair(i: int, j: int, combine: Callable[[int, int], int], per: float | None = None
          ) -> Callable[[str], Reader]:
    """A reader of ``combine(window's total i, window's total j)`` (``/ per`` if given)."""
    def make(w: str) -> Reader:
        def pair(s):
            win = s.windows[w]
            log = win.log
            if win.at != len(log):
                win.advance()
            last, before = log[-1], log[win.start - 1]
            v = combine(last[i] - before[i], last[j] - before[j])
            return v if per is None else v / per
        return pair
    return make


_TOTALS = {"buys": _NB, "sells": _NS}
_VOLUMES = {"buy_volume_sol": _pair(_VB, _VS, lambda b, s: b, 1e9),
            "sell_volume_sol": _pair(_VB, _VS, lambda b, s: s, 1e9),
            "volume_sol": _pair(_VB, _VS, operator.add, 1e9), "net_flow_sol": _pair(_VB, _VS, operator.sub, 1e9)}


def _synced(s: MintState, w: str):
    win = s.windows[w]
    if win.added != len(win.log) or win.at != len(win.log):
        win.sync()
    return win


def _bonding_progress(s: MintState):
    if s.migrated:
        return 1.0
    if s.vtok is None:
        return None
    return min(1.0, max(0.0, (INITIAL_VTOK - s.vtok) / CURVE_TOKENS))


def _dev_sold_pct(s: MintState):
    if s.creator is None or s.dev_peak <= 0:
        return None if s.creator is None else 0.0
    return min(1.0, s.dev_sold_total / s.dev_peak)


def _largest_cluster_share(s: MintState):
    w = _synced(s, "5m")
    return _share(max(w.cvol.values(), default=0.0), w.bvol)


def _cto_score(s: MintState):
    """``enrich.cto.cto_score`` over the log's tuples: buys after the creator's exit in
    the 1h window, by cluster (tests check the two agree)."""
    exit_t = s.dev_exit_t
    if exit_t is None:
        return None
    win = s.windows.get("1h")
    if win is None:
        return None
    win.sync()
    log, first = win.log, win.start
    if first < len(log) and log[first][0] > exit_t:  # the whole window is after the exit
        clusters, vol, total = len(win.clusters), max(win.cvol.values(), default=0), win.bvol
    else:
        per: dict[str, int] = {}
        total = 0
        for i in range(len(log) - 1, first - 1, -1):
            t, is_buy, sol, _w, cluster = log[i][:5]
            if t <= exit_t:
                break
            if is_buy and cluster is not None:
                per[cluster] = per.get(cluster, 0) + sol
                total += sol
        clusters, vol = len(per), max(per.values(), default=0)
    share = vol / total if total > 0 else None
    return CTO_SCORER.score(clusters, share, s.last_t - exit_t)


SCALAR: dict[str, Reader] = {
    "age_s": lambda s: s.last_t - s.created_t if s.created_t is not None else None,
    "mcap_sol": lambda s: s.mcap,
    "price_sol": lambda s: s.price,
    "bonding_progress": _bonding_progress,
    "migrated": lambda s: s.migrated,
    "dev_sold": lambda s: (s.dev_sold_total > 0) if s.creator is not None else None,
    "dev_sold_pct": _dev_sold_pct,
    "dev_exited_s": lambda s: s.last_t - s.dev_exit_t if s.dev_exit_t is not None else None,
    "bundle_share": lambda s: s.bundle_tokens / PUMP_SUPPLY_RAW if s.is_pump else None,
    "cto_score": _cto_score,
    "buyer_clusters_5m": lambda s: len(_synced(s, "5m").clusters),
    "largest_cluster_share_5m": _largest_cluster_share,
    "smart_buyers_1h": lambda s: len(_synced(s, "1h").smart),
    "swap_sol": lambda s: s.swap_lamports / 1e9 if s.swap_lamports is not None else None,
    "is_buy": lambda s: s.is_buy,
}

# relative cost of a read: a field of the state 1; a window's count or volume 2 (it may
# move the window's start first); a window's map 3 (it may also fill the map); a max
# over a map 4; the CTO score 30 (it may scan the window)
_MAPS = ("unique_buyers", "unique_sellers", "price_change_pct")
COST: dict[str, float] = {name: 1.0 for name in CATALOGUE}
for _w in WINDOWS:
    for _name in CATALOGUE:
        if _name.endswith("_" + _w):
            COST[_name] = 3.0 if _name.startswith(_MAPS) else 2.0
    COST[f"top_buyer_share_{_w}"] = 4.0
COST.update({"cto_score": 30.0, "largest_cluster_share_5m": 4.0, "buyer_clusters_5m": 3.0, "smart_buyers_1h": 3.0,
             "bonding_progress": 1.5})


def reader(name: str) -> Reader:
    if name not in CATALOGUE:
        raise KeyError(f"unknown feature {name!r}")
    if name in SCALAR:
        return SCALAR[name]
    for w in WINDOWS:
        if name.endswith("_" + w):
            return _window_reader(name[: -len(w) - 1], w)
    raise KeyError(f"no getter for feature {name!r}")


def readers(names: Iterable[str]) -> list[tuple[str, Reader]]:
    return [(name, reader(name)) for name in sorted(set(names))]


def getters(names: Iterable[str]) -> list[tuple[str, Getter]]:
    """(name, f(state, trade)) pairs; ``trade`` is the one ``state`` was just updated with."""
    def two(r: Reader) -> Getter:
        return lambda s, tr: r(s)

    return [(name, two(r)) for name, r in readers(names)]
