"""Per-mint feature state, updated incrementally over event time.

A ``MintState`` holds the mint's long-lived facts (launch, creator holding, curve,
bundle) and one ``Window`` per window length in use. The mint keeps one log of its
recent trades (an ``Entry`` tuple each, carrying the mint's running totals of buys,
sells, their volumes and fresh buys), shared by its windows: a window is a start index
into the log, so its counts and volumes are differences of two totals, plus the
per-wallet / per-cluster maps some feature reads, updated as trades enter and as the
start moves past trades older than the span. A feature costs O(1) per swap whatever
the traffic. Only the maps some trigger reads are maintained (``Needs``): a trigger set
without top-buyer features never builds per-wallet volume maps.

The hot path is ``MintState.update`` with the trade's fields as arguments, so a caller
holding column arrays (the backtest) never builds a ``Trade`` object; ``on_trade(tr)``
is the same update from a ``Trade``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

from .catalogue import WINDOWS

PUMP_SUPPLY_RAW = 1_000_000_000_000_000
PUMP_SUPPLY = 1_000_000_000.0  # whole tokens
CURVE_TOKENS = 793_100_000_000_000
INITIAL_VTOK = 1_073_000_000_000_000
FRESH_S = 600  # a wallet first seen less than this before its buy is "fresh"
DEV_EXIT_FRACTION = 0.01
COMPACT_MIN = 256  # the log drops the trades every window has passed once it holds this many


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
        if {"buyer_clusters_5m", "largest_cluster_share_5m"} & set(names):
            needs.setdefault("5m", set()).update({"clusters", "vol"})
        if "cto_score" in names:  # reads the 1h window only
            needs.setdefault("1h", set()).update({"clusters", "vol"})
        if "smart_buyers_1h" in names:
            needs.setdefault("1h", set()).add("smart")
        return cls(needs)


class Entry(NamedTuple):
    """One trade in a mint's log: what the windows add and later take out again, and the
    mint's running totals up to and including it (integers, so window sums are exact).
    The log stores plain tuples of these fields (a NamedTuple costs 4x as much to build)."""

    t: int
    is_buy: bool
    lamports: int
    trader: str
    cluster: str | None
    smart: bool
    price: float | None
    fresh: bool
    n_buys: int
    n_sells: int
    buy_lamports: int
    sell_lamports: int
    n_fresh: int


_NB, _NS, _VB, _VS, _NF = 8, 9, 10, 11, 12  # the running totals' positions in an Entry
_BASE = (0, False, 0, None, None, False, None, False, 0, 0, 0, 0, 0)  # a new log's first entry: totals 0
_EMPTY: dict = {}  # shared, never written: a window that does not keep that aggregate


class Window:
    """The trades of the last ``span`` seconds of one mint: ``log[start:]``.

    ``log[start - 1]`` always exists (a log begins with a base entry and compaction keeps
    one before the oldest start), so a count is the last entry's total minus that one's.

    Windows are brought up to date lazily, when a feature reads them: ``advance`` moves
    the start past the trades at or before (the last trade's time - span), taking out of
    the maps those they hold; ``sync`` also adds the trades not yet in the maps. This is exactly what updating on every trade gives,
    as long as the mint's trade times do not go backwards between two updates (the
    expiry cutoffs then only grow, and moving the start once to the last cutoff is the
    same as moving it trade by trade); ``MintState.update`` advances every window before
    a trade earlier than the one before it. A trade that enters and leaves the window
    between two reads never touches the maps.
    """

    __slots__ = ("span", "log", "start", "added", "at", "buyers", "sellers", "bvol_by", "clusters", "cvol",
                 "smart", "out_price", "k_buyers", "k_sellers", "k_bvol_by", "k_clusters", "k_smart", "k_maps",
                 "parts")

    def __init__(self, span: int, parts: set[str], log: list | None = None) -> None:
        self.span = span
        self.log: list = [_BASE] if log is None else log
        self.start = self.added = self.at = len(self.log)  # a window starts empty, whatever the log holds
        self.parts = frozenset(parts)
        self.k_buyers = "buyers" in parts
        self.k_sellers = "sellers" in parts
        self.k_bvol_by = "bvol_by" in parts
        self.k_clusters = "clusters" in parts
        self.k_smart = "smart" in parts
        self.k_maps = self.k_buyers or self.k_bvol_by or self.k_clusters or self.k_smart or self.k_sellers
        # maps only for the aggregates in use (100k live mints × 4 windows adds up)
        self.buyers: dict[str, int] = {} if self.k_buyers else _EMPTY
        self.sellers: dict[str, int] = {} if self.k_sellers else _EMPTY
        self.bvol_by: dict[str, int] = {} if self.k_bvol_by else _EMPTY
        self.clusters: dict[str, int] = {} if self.k_clusters else _EMPTY
        self.cvol: dict[str, int] = {} if self.k_clusters else _EMPTY
        self.smart: dict[str, int] = {} if self.k_smart else _EMPTY
        self.out_price: float | None = None  # last price at or before the window's start

    # counts and volumes (lamports) of the window: differences of running totals
    buys = property(lambda self: self.total(_NB))
    sells = property(lambda self: self.total(_NS))
    bvol = property(lambda self: self.total(_VB))
    svol = property(lambda self: self.total(_VS))
    fresh = property(lambda self: self.total(_NF))

    def total(self, k: int) -> int:
        """The window's share of running total ``k`` (an ``Entry`` position)."""
        self.advance()
        return self.log[-1][k] - self.log[self.start - 1][k]

    @property
    def q(self) -> list[Entry]:
        """The window's trades, oldest first (a copy; the log holds plain tuples)."""
        self.advance()
        return [Entry._make(e) for e in self.log[self.start:]]

    def advance(self) -> None:
        """Move the start past the trades at or before the last trade's time - span,
        taking those the maps hold out of them. ``at``: the log's length when last done."""
        log = self.log
        n = len(log)
        if self.at == n:
            return
        self.at = n
        i = self.start
        if i >= n:
            return
        cutoff = log[-1][0] - self.span
        if log[i][0] > cutoff:
            return
        added = self.added
        price = None
        while i < n:
            e = log[i]
            if e[0] > cutoff:
                break
            if e[6] is not None:
                price = e[6]
            if i < added and self.k_maps:
                self._remove(e)
            i += 1
        if price is not None:
            self.out_price = price
        self.start = i
        if added < i:
            self.added = i  # never added, now out: skipped

    def sync(self) -> None:
        """Up to date, maps included."""
        log = self.log
        n = len(log)
        if self.at != n:
            self.advance()
        if self.added < n:
            for i in range(self.added, n):
                self._add(log[i])
            self.added = n

    def _add(self, e: tuple) -> None:
        _t, is_buy, sol, w, cluster, smart = e[:6]
        if is_buy:
            if self.k_buyers:
                d = self.buyers
                d[w] = d.get(w, 0) + 1
            if self.k_bvol_by:
                d = self.bvol_by
                d[w] = d.get(w, 0) + sol
            if self.k_clusters and cluster is not None:
                d = self.clusters
                d[cluster] = d.get(cluster, 0) + 1
                d = self.cvol
                d[cluster] = d.get(cluster, 0) + sol
            if smart and self.k_smart:
                d = self.smart
                d[w] = d.get(w, 0) + 1
        elif self.k_sellers:
            d = self.sellers
            d[w] = d.get(w, 0) + 1

    def _remove(self, e: tuple) -> None:
        _t, is_buy, sol, w, cluster, smart = e[:6]
        if is_buy:
            if self.k_buyers:
                _dec(self.buyers, w)
            if self.k_bvol_by:  # a volume may be 0 (a non-SOL quote): absent counts as 0
                v = self.bvol_by.get(w, 0) - sol
                if v:
                    self.bvol_by[w] = v
                else:
                    self.bvol_by.pop(w, None)
            if self.k_clusters and cluster is not None:
                if _dec(self.clusters, cluster):
                    del self.cvol[cluster]
                else:
                    self.cvol[cluster] -= sol
            if smart and self.k_smart:
                _dec(self.smart, w)
        elif self.k_sellers:
            _dec(self.sellers, w)

    def start_price(self) -> float | None:
        self.advance()
        if self.out_price is not None:
            return self.out_price
        log = self.log
        for i in range(self.start, len(log)):
            p = log[i][6]
            if p is not None:
                return p
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
                 "windows", "wins", "log", "compact_at", "fired", "is_buy", "swap_lamports")

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
        self.fired: dict[str, int] = {}  # trigger name -> event time of its last alert on this mint
        self.is_buy = False  # the last trade's side and SOL size (None when not SOL-priced)
        self.swap_lamports: int | None = None
        self.set_windows(spans)

    def set_windows(self, spans: dict[str, set[str]]) -> None:
        """Fresh, empty windows (a new mint, or one restored from its summary)."""
        self.log: list = [_BASE]
        self.compact_at = COMPACT_MIN
        self.windows = {w: Window(WINDOWS[w], parts, self.log) for w, parts in spans.items()}
        self.wins = tuple(self.windows.values())

    def add_window(self, w: str, parts: set[str]) -> None:
        """A window a newly loaded trigger needs: empty now, growing from the next trade."""
        self.windows[w] = Window(WINDOWS[w], parts, self.log)
        self.wins = tuple(self.windows.values())

    def rebuild_window(self, w: str, parts: set[str]) -> None:
        """The window with more maps (a newly loaded trigger reads them), refilled from the
        trades it holds: the log keeps every trade some window still spans."""
        old = self.windows[w]
        old.advance()
        win = Window(old.span, old.parts | set(parts), self.log)
        win.start = win.added = old.start  # maps empty: the next read fills them
        win.at = old.at
        win.out_price = old.out_price
        self.windows[w] = win
        self.wins = tuple(self.windows.values())

    def drop_windows(self) -> None:
        """Idle: windows and log go (they are empty by now), the summary stays."""
        self.windows = _EMPTY
        self.wins = ()
        self.log = ()  # type: ignore[assignment]  # (a summary never reads it)

    def on_create(self, creator: str | None, t: int, slot: int | None) -> None:
        self.creator = creator
        self.created_t = t
        self.launch_slot = slot
        self.is_pump = True

    def on_trade(self, tr) -> None:
        self.update(tr.t, tr.slot, tr.is_buy, tr.tokens, tr.lamports, tr.price, tr.program, tr.vtok, tr.mcap,
                    tr.trader, tr.first_seen, tr.cluster, tr.smart)

    def update(self, t: int, slot: int, is_buy: bool, tokens: int, sol: int, price: float | None, program: str,
               vtok: int | None, mcap: float | None, trader: str, first_seen: int | None, cluster: str | None,
               smart: bool) -> None:
        """Apply one trade (the fields of a ``Trade``, see there)."""
        if t < self.last_t and self.wins:  # time went backwards: windows as of the trade before, now
            for win in self.wins:
                win.advance()
        self.last_t = t
        self.is_buy = is_buy
        if self.created_t is None:
            self.created_t = t
            self.launch_slot = slot
        if program == "pumpfun":
            self.is_pump = True
            if vtok is not None:
                self.vtok = vtok
        elif program == "pumpswap" and self.is_pump:
            self.migrated = True
        if price is not None:
            self.swap_lamports = sol
            self.price = price
            if mcap is not None:
                self.mcap = mcap
            elif self.is_pump:
                self.mcap = price * PUMP_SUPPLY
        else:
            self.swap_lamports = None
        if self.creator is not None and trader == self.creator:
            if is_buy:
                self.dev_hold += tokens
                self.dev_peak = max(self.dev_peak, self.dev_hold)
            else:
                self.dev_hold = max(0, self.dev_hold - tokens)
                self.dev_sold_total += tokens
                if self.dev_exit_t is None and self.dev_hold <= self.dev_peak * DEV_EXIT_FRACTION:
                    self.dev_exit_t = t
        elif is_buy and slot == self.launch_slot and self.launch_slot is not None:
            self.bundle_tokens += tokens
        if not self.wins:
            return
        log = self.log
        _t, _b, _s, _w, _c, _m, _p, _f, nb, ns, vb, vs, nf = log[-1]
        if is_buy:
            if first_seen is not None and t - first_seen < FRESH_S:
                log.append((t, True, sol, trader, cluster, smart, price, True, nb + 1, ns, vb + sol, vs, nf + 1))
            else:
                log.append((t, True, sol, trader, cluster, smart, price, False, nb + 1, ns, vb + sol, vs, nf))
        else:
            log.append((t, False, sol, trader, cluster, smart, price, False, nb, ns + 1, vb, vs + sol, nf))
        if len(log) >= self.compact_at:
            self._compact()

    def _compact(self) -> None:
        """Drop the trades every window has passed, keeping one before the oldest start."""
        log, wins = self.log, self.wins
        for w in wins:
            w.advance()
        k = min(w.start for w in wins) - 1
        if k > 0:
            del log[:k]
            for w in wins:
                w.start -= k
                w.added -= k
                w.at -= k
        self.compact_at = max(COMPACT_MIN, 2 * len(log))
