"""The trigger engine: a pure object fed trades in order, emitting alerts.

The same object runs live (fed from Redis), in the backtest (fed from Parquet) and in
tests (fed from a list). It reads time only from the trades (``Trade.t``, the block
time), so the same trades give the same alerts, alert for alert, wherever it runs.

Per trade: update the mint's state, then for each enabled trigger whose program set
and market-cap floor admit the trade and whose cooldown has passed, compute the
features it reads and evaluate its ``when``. A firing gives an ``Alert`` whose id is a
hash of (trigger name, trigger version, mint, firing swap id).

Memory stays bounded: a mint idle for ``idle_evict_s`` of event time loses its windows
(they are empty by then) and keeps only a small summary (launch, creator, curve, dev
holding) in a bounded LRU, from which it is restored if it trades again.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from dataclasses import dataclass, field

from .features import MintState, Needs
from .values import getters


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


class _LazyValues:
    """Feature values of one trade, computed on first read: ``and`` chains stop at the
    first false comparison, so most evaluations read one or two features."""

    __slots__ = ("st", "tr", "getters", "cache")

    def __init__(self, st, tr, getters: dict) -> None:
        self.st, self.tr, self.getters, self.cache = st, tr, getters, {}

    def get(self, name, default=None):
        c = self.cache
        if name in c:
            return c[name]
        v = c[name] = self.getters[name](self.st, self.tr)
        return v


class _Compiled:
    __slots__ = ("cfg", "name", "version", "expr", "floor", "programs", "cooldown", "once", "getters",
                 "evaluate")

    def __init__(self, cfg) -> None:
        self.cfg = cfg
        self.name = cfg.name
        self.version = cfg.version
        self.expr = cfg.expr
        self.evaluate = cfg.expr.evaluate
        self.floor = cfg.mcap_floor_sol
        self.programs = frozenset(cfg.programs) if cfg.programs else None
        self.cooldown = cfg.cooldown_s
        self.once = cfg.once
        self.getters = getters(cfg.expr.features | {"mcap_sol"})


class TriggerEngine:
    def __init__(self, triggers, *, idle_evict_s: int = 7200, max_summaries: int = 500_000) -> None:
        self.idle_evict_s = idle_evict_s
        self.max_summaries = max_summaries
        self.mints: OrderedDict[str, MintState] = OrderedDict()  # least recently traded first
        self.summaries: OrderedDict[str, MintState] = OrderedDict()
        self.trades = 0
        self.alerts = 0
        self.load(triggers)

    def load(self, triggers) -> None:
        """Swap in a trigger set (hot reload). Mint state and cooldowns carry over by name."""
        self.triggers = [_Compiled(t) for t in getattr(triggers, "triggers", triggers) if t.enabled]
        names = set()
        for t in self.triggers:
            names |= set(t.expr.features)
        self.needs = Needs.from_features(names | {"mcap_sol"})
        self._getters = {name: g for t in self.triggers for name, g in t.getters}
        for st in self.mints.values():  # windows a new trigger needs start empty, grow from now on
            for w, parts in self.needs.windows.items():
                if w not in st.windows:
                    from .features import WINDOWS, Window

                    st.windows[w] = Window(WINDOWS[w], parts)

    # -- inputs -------------------------------------------------------------------------
    def _state(self, mint: str) -> MintState:
        st = self.mints.get(mint)
        if st is None:
            st = self.summaries.pop(mint, None)
            if st is not None:
                from .features import WINDOWS, Window

                st.windows = {w: Window(WINDOWS[w], parts) for w, parts in self.needs.windows.items()}
            else:
                st = MintState(mint, self.needs.windows)
            self.mints[mint] = st
        else:
            self.mints.move_to_end(mint)
        return st

    def on_create(self, mint: str, creator: str | None, t: int, slot: int | None) -> None:
        self._state(mint).on_create(creator, t, slot)

    def on_trade(self, tr) -> list[Alert]:
        self.trades += 1
        st = self._state(tr.mint)
        st.on_trade(tr)
        self._evict(tr.t)
        out: list[Alert] | None = None
        mcap = st.mcap
        values = None
        for trig in self.triggers:
            if trig.programs is not None and tr.program not in trig.programs:
                continue
            if trig.floor and (mcap is None or mcap < trig.floor):
                continue
            last = st.fired.get(trig.name)
            if last is not None and (trig.once or tr.t - last < trig.cooldown):
                continue
            if values is None:
                values = _LazyValues(st, tr, self._getters)
            if trig.evaluate(values) is True:
                st.fired[trig.name] = tr.t
                snapshot = {name: values.get(name) for name, _g in trig.getters}
                a = Alert(alert_id(trig.name, trig.version, tr.mint, tr.id), trig.name, trig.version,
                          tr.mint, tr.signature, tr.ix, tr.slot, tr.t, trig.cfg.severity,
                          list(trig.cfg.channels), snapshot)
                if out is None:
                    out = []
                out.append(a)
        if out:
            self.alerts += len(out)
            return out
        return []

    def feed(self, trades):
        """Yield the alerts of a stream of trades, in order."""
        for tr in trades:
            yield from self.on_trade(tr)

    # -- memory -------------------------------------------------------------------------
    def _evict(self, now: int) -> None:
        mints = self.mints
        cutoff = now - self.idle_evict_s
        while mints:
            mint, st = next(iter(mints.items()))
            if st.last_t >= cutoff:
                return
            del mints[mint]
            st.windows = {}
            self.summaries[mint] = st
            if len(self.summaries) > self.max_summaries:
                self.summaries.popitem(last=False)

    def stats(self) -> dict:
        return {"trades": self.trades, "alerts": self.alerts, "live_mints": len(self.mints),
                "summaries": len(self.summaries)}
