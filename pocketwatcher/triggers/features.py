"""Per-mint feature state, updated incrementally over event time.

A ``MintState`` holds the mint's long-lived facts (launch, creator holding, curve,
bundle) and one ``Window`` per window length in use. A window keeps the trades of its
span in a deque and running aggregates that are updated as trades enter and expire,
so a feature costs O(1) per swap whatever the traffic. Only the aggregates some trigger
reads are maintained (``Needs``): a trigger set without top-buyer features never builds
per-wallet volume maps.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from .catalogue import WINDOWS

PUMP_SUPPLY_RAW = 1_000_000_000_000_000
PUMP_SUPPLY = 1_000_000_000.0  # whole tokens
CURVE_TOKENS = 793_100_000_000_000
INITIAL_VTOK = 1_073_000_000_000_000
FRESH_S = 600  # a wallet first seen less than this before its buy is "fresh"
DEV_EXIT_FRACTION = 0.01


@dataclass
class Needs:
    """Which aggregates each window must keep, derived from the features in use."""

    windows: dict[str, set[str]] = field(default_factory=dict)

    @classmethod
    def from_features(cls, names) -> Needs:
        needs: dict[str, set[str]] = {}
        parts = {
            "buys": {"count"}, "sells": {"count"}, "trades": {"count"},
            "unique_buyers": {"buyers"}, "unique_sellers": {"sellers"},
            "buy_volume_sol": {"vol"}, "sell_volume_sol": {"vol"}, "volume_sol": {"vol"},
            "net_flow_sol": {"vol"}, "price_change_pct": {"price"}, "top_buyer_share": {"vol", "bvol_by"},
            "fresh_buyer_share": {"count", "fresh"},
        }
        for name in names:
            for w in WINDOWS:
                suffix = "_" + w
                if name.endswith(suffix):
                    base = name[: -len(suffix)]
                    if base in parts:
                        needs.setdefault(w, set()).update(parts[base])
        if {"buyer_clusters_5m", "largest_cluster_share_5m", "cto_score"} & set(names):
            needs.setdefault("5m", set()).update({"clusters", "vol"})
        if "cto_score" in names:
            needs.setdefault("1h", set()).update({"clusters", "vol"})
        if "smart_buyers_1h" in names:
            needs.setdefault("1h", set()).add("smart")
        return cls(needs)


_EMPTY: dict = {}  # shared, never written: a window that does not keep that aggregate


class Window:
    __slots__ = ("span", "q", "buys", "sells", "bvol", "svol", "buyers", "sellers", "bvol_by", "fresh",
                 "clusters", "cvol", "smart", "out_price", "k_buyers", "k_sellers", "k_bvol_by",
                 "k_fresh", "k_clusters", "k_smart", "k_price")

    def __init__(self, span: int, parts: set[str]) -> None:
        self.span = span
        self.q: deque = deque()
        self.buys = self.sells = 0
        self.bvol = self.svol = 0  # lamports
        self.k_buyers = "buyers" in parts
        self.k_sellers = "sellers" in parts
        self.k_bvol_by = "bvol_by" in parts
        self.k_fresh = "fresh" in parts
        self.k_clusters = "clusters" in parts
        self.k_smart = "smart" in parts
        self.k_price = "price" in parts
        # maps only for the aggregates in use (100k live mints × 4 windows adds up)
        self.buyers: dict[str, int] = {} if self.k_buyers else _EMPTY
        self.sellers: dict[str, int] = {} if self.k_sellers else _EMPTY
        self.bvol_by: dict[str, int] = {} if self.k_bvol_by else _EMPTY
        self.fresh = 0
        self.clusters: dict[str, int] = {} if self.k_clusters else _EMPTY
        self.cvol: dict[str, int] = {} if self.k_clusters else _EMPTY
        self.smart: dict[str, int] = {} if self.k_smart else _EMPTY
        self.out_price: float | None = None  # last price at or before the window's start

    def add(self, tr, fresh: bool) -> None:
        self.q.append(tr)
        sol = tr.lamports
        if tr.is_buy:
            self.buys += 1
            self.bvol += sol
            w = tr.trader
            if self.k_buyers:
                self.buyers[w] = self.buyers.get(w, 0) + 1
            if self.k_bvol_by:
                self.bvol_by[w] = self.bvol_by.get(w, 0) + sol
            if self.k_fresh and fresh:
                self.fresh += 1
            if self.k_clusters and tr.cluster is not None:
                c = tr.cluster
                self.clusters[c] = self.clusters.get(c, 0) + 1
                self.cvol[c] = self.cvol.get(c, 0) + sol
            if self.k_smart and tr.smart:
                self.smart[w] = self.smart.get(w, 0) + 1
        else:
            self.sells += 1
            self.svol += sol
            if self.k_sellers:
                self.sellers[tr.trader] = self.sellers.get(tr.trader, 0) + 1

    def expire(self, now: int) -> None:
        q = self.q
        cutoff = now - self.span
        while q and q[0].t <= cutoff:
            tr = q.popleft()
            fresh = tr.first_seen is not None and tr.is_buy and tr.t - tr.first_seen < FRESH_S
            if tr.price is not None:
                self.out_price = tr.price
            sol = tr.lamports
            if tr.is_buy:
                self.buys -= 1
                self.bvol -= sol
                w = tr.trader
                if self.k_buyers:
                    _dec(self.buyers, w)
                if self.k_bvol_by:
                    v = self.bvol_by.get(w, 0) - sol
                    if v:
                        self.bvol_by[w] = v
                    else:
                        self.bvol_by.pop(w, None)
                if self.k_fresh and fresh:
                    self.fresh -= 1
                if self.k_clusters and tr.cluster is not None:
                    c = tr.cluster
                    if _dec(self.clusters, c):
                        self.cvol.pop(c, None)
                    else:
                        self.cvol[c] -= sol
                if self.k_smart and tr.smart:
                    _dec(self.smart, w)
            else:
                self.sells -= 1
                self.svol -= sol
                if self.k_sellers:
                    _dec(self.sellers, tr.trader)

    def start_price(self) -> float | None:
        if self.out_price is not None:
            return self.out_price
        for tr in self.q:
            if tr.price is not None:
                return tr.price
        return None


def _dec(d: dict, k) -> bool:
    """Decrement a counter; True when it reached zero (and was removed)."""
    n = d[k] - 1
    if n:
        d[k] = n
        return False
    del d[k]
    return True


class MintState:
    __slots__ = ("mint", "created_t", "launch_slot", "creator", "is_pump", "price", "mcap", "vtok",
                 "migrated", "last_t", "dev_hold", "dev_peak", "dev_sold_total", "dev_exit_t", "bundle_tokens",
                 "windows", "fired")

    def __init__(self, mint: str, spans: dict[str, set[str]]) -> None:
        self.mint = mint
        self.created_t: int | None = None
        self.launch_slot: int | None = None
        self.creator: str | None = None
        self.is_pump = mint.endswith("pump")
        self.price: float | None = None
        self.mcap: float | None = None
        self.vtok: int | None = None
        self.migrated = False
        self.last_t = 0
        self.dev_hold = 0
        self.dev_peak = 0
        self.dev_sold_total = 0
        self.dev_exit_t: int | None = None
        self.bundle_tokens = 0
        self.windows = {w: Window(WINDOWS[w], parts) for w, parts in spans.items()}
        self.fired: dict[str, int] = {}  # trigger name -> event time of its last alert on this mint

    def on_create(self, creator: str | None, t: int, slot: int | None) -> None:
        self.creator = creator
        self.created_t = t
        self.launch_slot = slot
        self.is_pump = True

    def on_trade(self, tr) -> None:
        t = tr.t
        self.last_t = t
        if self.created_t is None:
            self.created_t = t
            self.launch_slot = tr.slot
        if tr.program == "pumpfun":
            self.is_pump = True
        elif tr.program == "pumpswap" and self.is_pump:
            self.migrated = True
        if tr.price is not None:
            self.price = tr.price
            if tr.mcap is not None:
                self.mcap = tr.mcap
            elif self.is_pump:
                self.mcap = tr.price * PUMP_SUPPLY
        if tr.vtok is not None and tr.program == "pumpfun":
            self.vtok = tr.vtok
        if self.creator is not None and tr.trader == self.creator:
            if tr.is_buy:
                self.dev_hold += tr.tokens
                self.dev_peak = max(self.dev_peak, self.dev_hold)
            else:
                self.dev_hold = max(0, self.dev_hold - tr.tokens)
                self.dev_sold_total += tr.tokens
                if self.dev_exit_t is None and self.dev_hold <= self.dev_peak * DEV_EXIT_FRACTION:
                    self.dev_exit_t = t
        elif tr.is_buy and self.launch_slot is not None and tr.slot == self.launch_slot:
            self.bundle_tokens += tr.tokens
        fresh = tr.first_seen is not None and tr.is_buy and t - tr.first_seen < FRESH_S
        for win in self.windows.values():
            win.expire(t)
            win.add(tr, fresh)
