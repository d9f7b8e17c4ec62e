"""The trigger engine: a pure object fed trades in order, emitting alerts.

The same object runs live (fed from Redis), in the backtest (fed from Parquet) and in
tests (fed from a list). It reads time only from the trades (``Trade.t``, the block
time), so the same trades give the same alerts, alert for alert, wherever it runs.

Per trade: update the mint's state, then for each enabled trigger whose program set
and market-cap floor admit the trade and whose cooldown has passed, evaluate its
``when`` over the mint's state (cheapest conditions first; an ``and`` stops at the
first false one). A firing gives an ``Alert`` whose id is a hash of (trigger name,
trigger version, mint, firing swap id).

Two ways in, one code path: ``on_trade(Trade)`` (the runner) and ``feed_columns``
(the backtest: a batch as column lists, no ``Trade`` objects built).

Memory stays bounded: a mint idle for ``idle_evict_s`` of event time loses its windows
(they are empty by then) and keeps only a small summary (launch, creator, curve, dev
holding) in a bounded LRU, from which it is restored if it trades again.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from .features import MintState, Needs, Window
from .values import COST, reader, readers


def alert_id(trigger: str, version: int, mint: str, swap_id: str) -> str:
    """Lowercase hex (32 chars = 128 bits) of sha256 over the alert's identity."""
    return hashlib.sha256(f"{trigger}\x1f{version}\x1f{mint}\x1f{swap_id}".encode()).hexdigest()[:32]


@dataclass(slots=True)
class Alert:
    id: str
    trigger: str
    version: int
    mint: str
    signature: str
    ix: str
    slot: int
    block_time: int
    severity: str
    channels: list[str]
    features: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"id": self.id, "trigger": self.trigger, "version": self.version, "mint": self.mint,
                "signature": self.signature, "ix": self.ix, "slot": self.slot, "block_time": self.block_time,
                "severity": self.severity, "channels": list(self.channels), "features": dict(self.features)}


def _cost(name: str) -> float:
    return COST.get(name, 1.0)


class _Compiled:
    __slots__ = ("cfg", "name", "version", "expr", "floor", "programs", "cooldown", "once", "readers",
                 "evaluate")

    def __init__(self, cfg) -> None:
        self.cfg = cfg
        self.name = cfg.name
        self.version = cfg.version
        self.expr = cfg.expr
        self.evaluate = cfg.expr.reader(reader, _cost, truth=True)  # MintState -> truthy when it fires
        self.floor = cfg.mcap_floor_sol or None
        self.programs = frozenset(cfg.programs) if cfg.programs else None
        self.cooldown = cfg.cooldown_s
        self.once = cfg.once
        self.readers = readers(cfg.expr.features | {"mcap_sol"})


# the columns of a batch for ``feed_columns``, in this order
BATCH_COLUMNS = ("k", "mint", "t", "slot", "is_buy", "tokens", "lamports", "price", "program", "vtok", "mcap",
                 "trader", "first_seen", "cluster", "smart", "signature", "ix")
_SIG = BATCH_COLUMNS.index("signature")


class TriggerEngine:
    def __init__(self, triggers, *, idle_evict_s: int = 7200, max_summaries: int = 500_000) -> None:
        self.idle_evict_s = idle_evict_s
        self.max_summaries = max_summaries
        self.mints: OrderedDict[str, MintState] = OrderedDict()  # least recently traded first
        self.summaries: OrderedDict[str, MintState] = OrderedDict()
        self.trades = 0
        self.alerts = 0
        self._out: list[Alert] = []  # where the trade being handled puts its alerts
        self._swap = None  # feed_columns without swap ids: row -> (signature, ix)
        self.load(triggers)

    def load(self, triggers) -> None:
        """Swap in a trigger set (hot reload). Mint state and cooldowns carry over by name."""
        self.set_triggers([_Compiled(t) for t in getattr(triggers, "triggers", triggers) if t.enabled])

    def set_triggers(self, compiled: list, extra_features: frozenset[str] = frozenset()) -> None:
        """Install compiled triggers (anything with ``_Compiled``'s fields) and the windows they read."""
        self.triggers = compiled
        names = set(extra_features)
        for t in self.triggers:
            names |= set(t.expr.features)
        self.needs = Needs.from_features(names | {"mcap_sol"})
        self._by_program: dict[str, tuple] = {}
        for st in self.mints.values():
            for w, parts in self.needs.windows.items():
                win = st.windows.get(w)
                if win is None:  # windows a new trigger needs start empty, grow from now on
                    st.add_window(w, parts)
                elif not _keeps(win, parts):  # an aggregate more: rebuilt from the log it spans
                    st.rebuild_window(w, parts)

    def _for_program(self, program: str) -> tuple:
        """The triggers a trade of ``program`` may fire, in file order, as the fields the hot loop reads."""
        trigs = tuple((t.floor, t.name, t.once, t.cooldown, t.evaluate, t) for t in self.triggers
                      if t.programs is None or program in t.programs)
        self._by_program[program] = trigs
        return trigs

    # -- inputs -------------------------------------------------------------------------
    def _state(self, mint: str) -> MintState:
        st = self.mints.get(mint)
        if st is None:
            st = self.summaries.pop(mint, None)
            if st is not None:
                st.set_windows(self.needs.windows)
            else:
                st = MintState(mint, self.needs.windows)
            self.mints[mint] = st
        else:
            self.mints.move_to_end(mint)
        return st

    def on_create(self, mint: str, creator: str | None, t: int, slot: int | None) -> None:
        self._state(mint).on_create(creator, t, slot)

    def on_trade(self, tr) -> list[Alert]:
        out = self._out = []
        self._row(1, tr.mint, tr.t, tr.slot, tr.is_buy, tr.tokens, tr.lamports, tr.price, tr.program, tr.vtok,
                  tr.mcap, tr.trader, tr.first_seen, tr.cluster, tr.smart, tr.signature, tr.ix, tr.id)
        if out:
            self.alerts += len(out)
        return out

    def feed(self, trades):
        """Yield the alerts of a stream of trades, in order."""
        for tr in trades:
            yield from self.on_trade(tr)

    def feed_columns(self, cols: Sequence[Sequence], swap: Callable[[int], tuple[str, str]] | None = None
                     ) -> list[Alert]:
        """A batch of creates and trades in chain order, as equal-length columns named by
        ``BATCH_COLUMNS`` (``k`` 1 for a trade; 0 for a create, whose creator is in
        ``trader``; the fields of a trade as in ``Trade``): the same as ``on_create`` /
        ``on_trade`` row by row, without building objects. Returns the alerts, in order.

        With ``swap``, the last two columns (signature, ix) are left out: only a firing
        swap needs them, and ``swap(row)`` gives them for the batch's row number."""
        out = self._out = []
        if swap is None:
            deque(map(self._row, *cols), maxlen=0)
        else:
            self._swap = swap
            try:
                deque(map(self._row, *cols[:_SIG], range(len(cols[0]))), maxlen=0)
            finally:
                self._swap = None
        self.alerts += len(out)
        return out

    def _row(self, k, mint, t, slot, is_buy, tokens, lamports, price, program, vtok, mcap, trader, first_seen,
             cluster, smart, signature, ix=None, swap_id=None) -> None:
        """One create (``k`` 0) or trade: the engine's hot path; alerts go to ``self._out``."""
        mints = self.mints
        st = mints.get(mint)
        if st is None:
            st = self._state(mint)
        else:
            mints.move_to_end(mint)
        if not k:
            st.on_create(trader, t, slot)
            return
        self.trades += 1
        st.update(t, slot, is_buy, tokens, lamports, price, program, vtok, mcap, trader, first_seen, cluster,
                  smart)
        if next(iter(mints.values())).last_t < t - self.idle_evict_s:
            self._evict(t)
        trigs = self._by_program.get(program)
        if trigs is None:
            trigs = self._for_program(program)
        if not trigs:
            return
        cap = st.mcap
        fired = st.fired
        for floor, name, once, cooldown, evaluate, trig in trigs:
            if floor is not None and (cap is None or cap < floor):
                continue
            if fired:
                last = fired.get(name)
                if last is not None and (once or t - last < cooldown):
                    continue
            if evaluate(st):
                fired[name] = t
                cfg = trig.cfg
                if ix is None and self._swap is not None:  # a batch without swap ids: signature is the row
                    signature, ix = self._swap(signature)
                self._out.append(Alert(
                    alert_id(name, trig.version, mint, swap_id or f"{signature}:{ix}"), name, trig.version, mint,
                    signature, ix, slot, t, cfg.severity, list(cfg.channels),
                    {f: r(st) for f, r in trig.readers}))

    # -- memory -------------------------------------------------------------------------
    def _evict(self, now: int) -> None:
        mints = self.mints
        cutoff = now - self.idle_evict_s
        while mints:
            st = next(iter(mints.values()))
            if st.last_t >= cutoff:
                return
            del mints[st.mint]
            st.drop_windows()
            self.summaries[st.mint] = st
            if len(self.summaries) > self.max_summaries:
                self.summaries.popitem(last=False)

    def stats(self) -> dict:
        return {"trades": self.trades, "alerts": self.alerts, "live_mints": len(self.mints),
                "summaries": len(self.summaries)}


def _keeps(win: Window, parts: set[str]) -> bool:
    return all(getattr(win, "k_" + p, True) for p in parts)
