"""Feature values of a mint at a trade: one small getter per catalogue entry.

``getters(names)`` returns (name, function) pairs for just the features a trigger set
uses; each function reads a ``MintState`` (already updated with the trade) and the trade.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from ..enrich.cto import cto_score
from .catalogue import CATALOGUE, WINDOWS
from .features import CURVE_TOKENS, INITIAL_VTOK, PUMP_SUPPLY_RAW, MintState

Getter = Callable[[MintState, object], object]


def _share(part: float, whole: float) -> float | None:
    return part / whole if whole > 0 else None


def _window_getter(base: str, w: str) -> Getter:
    def win(s: MintState):
        return s.windows[w]

    if base == "buys":
        return lambda s, tr: win(s).buys
    if base == "sells":
        return lambda s, tr: win(s).sells
    if base == "trades":
        return lambda s, tr: win(s).buys + win(s).sells
    if base == "unique_buyers":
        return lambda s, tr: len(win(s).buyers)
    if base == "unique_sellers":
        return lambda s, tr: len(win(s).sellers)
    if base == "buy_volume_sol":
        return lambda s, tr: win(s).bvol / 1e9
    if base == "sell_volume_sol":
        return lambda s, tr: win(s).svol / 1e9
    if base == "volume_sol":
        return lambda s, tr: (win(s).bvol + win(s).svol) / 1e9
    if base == "net_flow_sol":
        return lambda s, tr: (win(s).bvol - win(s).svol) / 1e9
    if base == "top_buyer_share":
        return lambda s, tr: _share(max(win(s).bvol_by.values(), default=0.0), win(s).bvol)
    if base == "fresh_buyer_share":
        return lambda s, tr: _share(win(s).fresh, win(s).buys)
    if base == "price_change_pct":
        def price_change(s, tr):
            p0 = win(s).start_price()
            if p0 is None or s.price is None or p0 <= 0:
                return None
            return (s.price / p0 - 1.0) * 100.0
        return price_change
    raise KeyError(base)


def _bonding_progress(s: MintState, tr):
    if s.migrated:
        return 1.0
    if s.vtok is None:
        return None
    return min(1.0, max(0.0, (INITIAL_VTOK - s.vtok) / CURVE_TOKENS))


def _dev_sold_pct(s: MintState, tr):
    if s.creator is None or s.dev_peak <= 0:
        return None if s.creator is None else 0.0
    return min(1.0, s.dev_sold_total / s.dev_peak)


def _largest_cluster_share(s: MintState, tr):
    w = s.windows["5m"]
    return _share(max(w.cvol.values(), default=0.0), w.bvol)


SCALAR: dict[str, Getter] = {
    "age_s": lambda s, tr: tr.t - s.created_t if s.created_t is not None else None,
    "mcap_sol": lambda s, tr: s.mcap,
    "price_sol": lambda s, tr: s.price,
    "bonding_progress": _bonding_progress,
    "migrated": lambda s, tr: s.migrated,
    "dev_sold": lambda s, tr: (s.dev_sold_total > 0) if s.creator is not None else None,
    "dev_sold_pct": _dev_sold_pct,
    "dev_exited_s": lambda s, tr: tr.t - s.dev_exit_t if s.dev_exit_t is not None else None,
    "bundle_share": lambda s, tr: s.bundle_tokens / PUMP_SUPPLY_RAW if s.is_pump else None,
    "cto_score": lambda s, tr: cto_score(s, tr.t),
    "buyer_clusters_5m": lambda s, tr: len(s.windows["5m"].clusters),
    "largest_cluster_share_5m": _largest_cluster_share,
    "smart_buyers_1h": lambda s, tr: len(s.windows["1h"].smart),
    "swap_sol": lambda s, tr: tr.sol,
    "is_buy": lambda s, tr: tr.is_buy,
}


def getters(names: Iterable[str]) -> list[tuple[str, Getter]]:
    out = []
    for name in sorted(set(names)):
        if name not in CATALOGUE:
            raise KeyError(f"unknown feature {name!r}")
        if name in SCALAR:
            out.append((name, SCALAR[name]))
            continue
        for w in WINDOWS:
            if name.endswith("_" + w):
                out.append((name, _window_getter(name[: -len(w) - 1], w)))
                break
        else:
            raise KeyError(f"no getter for feature {name!r}")
    return out
