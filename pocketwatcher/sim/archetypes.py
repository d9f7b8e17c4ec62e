"""Token archetypes: how each kind of launch trades over its life.

A token's life is a list of :class:`Phase` objects (length, trade rate, buy probability,
median size, who trades) plus a few scripted moments (dev dump, bundle exit, revival):

- **dud**: a dev buy and a trickle of small trades for 0.5–5 minutes, then silence.
- **rug**: buyers pile in for 1–8 minutes, then the dev (and its bundle, if any) sells
  everything within a few slots; panic sells follow, then nothing.
- **slow**: a steady, slightly buy-heavy flow that fades over tens of minutes.
- **runner**: a fast, buy-heavy run that completes the curve; the keeper migrates it to
  PumpSwap seconds later and trading continues there with a decaying rate.
- **bundled**: one actor's fresh wallets buy in the creation slot (with a Jito tip), then
  leave in a staggered exit while retail trickles in.
- **sniper_swarm**: 8–30 sniper buys land in the first slots (many fail on slippage) and
  flip within minutes.
- **cto** (community takeover): the dev sells out early, the token goes quiet for minutes,
  then many brand-new wallets revive it.

Every launch may also draw a sniper or two, bots flip small amounts in active tokens and
smart money enters growers and runners early.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from heapq import heappush
from math import log
from typing import TYPE_CHECKING

from .agents import SOL

if TYPE_CHECKING:
    from .entities import Token, Wallet
    from .market import Market

INF = math.inf


@dataclass(slots=True)
class Phase:
    name: str
    length: float  # seconds
    rate: float  # trade attempts per second at the start of the phase
    buy_p: float
    size: float  # median buy, SOL
    new_p: float = 0.35  # share of retail buys from brand-new wallets
    bot_p: float = 0.10
    smart_p: float = 0.0
    half_life: float = 0.0  # seconds; 0 = constant rate


@dataclass(slots=True)
class Plan:
    phases: list
    dev_buy: float  # SOL; 0 = none
    bundle: int = 0  # wallets buying in the creation slot
    snipes: int = 0
    dev_dump: float | None = None  # seconds after launch
    bundle_exit: tuple | None = None  # (start, spread) seconds after launch


def plan(archetype: str, rng) -> Plan:
    u = rng.uniform
    snipes = 2 if rng.random() < 0.1 else (1 if rng.random() < 0.25 else 0)
    if archetype == "dud":
        life = u(30, 300)
        return Plan([Phase("trickle", life, u(0.02, 0.08), 0.5, 0.15, bot_p=0.05)],
                    u(0.2, 1.5) if rng.random() < 0.7 else 0, snipes=snipes,
                    dev_dump=u(20, life) if rng.random() < 0.4 else None)
    if archetype == "rug":
        pump = u(60, 480)
        bundle = rng.randint(3, 8) if rng.random() < 0.35 else 0
        return Plan([Phase("pump", pump, u(0.3, 1.0), 0.8, 0.5, bot_p=0.15),
                     Phase("panic", u(20, 90), 0.6, 0.15, 0.1),
                     Phase("dead", u(60, 300), 0.01, 0.3, 0.05)],
                    u(1.0, 4.0), bundle=bundle, snipes=snipes, dev_dump=pump,
                    bundle_exit=(pump, 6.0) if bundle else None)
    if archetype == "slow":
        return Plan([Phase("grow", INF, u(0.03, 0.1), 0.6, 0.4, smart_p=0.08, half_life=u(900, 2_400))],
                    u(0.5, 2.0), snipes=snipes)
    if archetype == "runner":
        return Plan([Phase("early", u(20, 60), u(0.4, 0.8), 0.7, 0.5, smart_p=0.15),
                     Phase("run", INF, u(2.0, 3.5), 0.76, 1.0, bot_p=0.15, smart_p=0.1)],
                    u(0.5, 3.0), snipes=snipes + 1)
    if archetype == "bundled":
        n = rng.randint(4, 14)
        return Plan([Phase("trickle", u(60, 300), u(0.1, 0.4), 0.6, 0.3),
                     Phase("fade", u(60, 300), 0.05, 0.35, 0.15)],
                    u(0.5, 3.0), bundle=n, snipes=snipes, dev_dump=u(120, 600) if rng.random() < 0.6 else None,
                    bundle_exit=(u(30, 120), u(60, 400)))
    if archetype == "sniper_swarm":
        return Plan([Phase("frenzy", u(20, 60), u(0.8, 2.0), 0.6, 0.4, bot_p=0.2),
                     Phase("fade", u(60, 240), 0.08, 0.4, 0.15)],
                    u(0.3, 2.0), snipes=rng.randint(8, 30))
    if archetype == "cto":
        launch = u(40, 120)
        return Plan([Phase("launch", launch, u(0.15, 0.4), 0.65, 0.3),
                     Phase("quiet", u(150, 480), 0.004, 0.5, 0.05),
                     Phase("revival", u(90, 300), u(0.5, 1.2), 0.85, 0.5, new_p=0.92, bot_p=0.04),
                     Phase("community", INF, 0.1, 0.6, 0.4, smart_p=0.05, half_life=1_200.0)],
                    u(1.0, 3.0), snipes=snipes, dev_dump=launch)
    raise ValueError(f"unknown archetype {archetype!r}")


def _lognormal_table(n: int = 4096, sigma: float = 0.9) -> list[float]:
    """Quantiles of a median-1 lognormal: sizing a buy is then one random() and a lookup."""
    from statistics import NormalDist

    nd = NormalDist(0, sigma)
    return [math.exp(nd.inv_cdf((k + 0.5) / n)) for k in range(n)]


LOGNORMAL = _lognormal_table()

AMM_PHASES = [Phase("pumpswap", INF, 1.2, 0.52, 0.8, bot_p=0.2, smart_p=0.05, half_life=900.0)]


class Life:
    """Drives one token's trading: one pending tick at a time on the market's clock."""

    __slots__ = ("m", "tok", "phases", "i", "start", "end", "reserved", "_tick")

    def __init__(self, m: Market, tok: Token, phases: list, t0: float) -> None:
        self.m = m
        self.tok = tok
        self._tick = self.tick  # one bound method for all of this token's ticks
        self.reserved: set = set()  # wallets with a scripted exit (dev, bundle, snipers)
        self.restart(phases, t0)

    def restart(self, phases: list, t0: float) -> None:
        self.phases = phases
        self.i = 0
        self.start = t0
        self.end = t0 + phases[0].length

    def tick(self) -> None:
        m = self.m
        now = m.now
        while now >= self.end:
            self.i += 1
            if self.i >= len(self.phases):
                return  # the token is dead
            self.start = self.end
            self.end = self.start + self.phases[self.i].length
        ph = self.phases[self.i]
        rate = ph.rate * 0.5 ** ((now - self.start) / ph.half_life) if ph.half_life else ph.rate
        if rate < 0.0005:
            if self.end < INF:
                m.at(self.end, self.tick)
            return
        self.trade(ph)
        nxt = now - log(1.0 - m.rng.random()) / rate  # exponential waiting time
        # m.at(..., self.tick) inlined (one per trade); never sleep through the next phase
        m._seq += 1
        heappush(m.queue, (nxt if nxt < self.end else self.end, m._seq, self._tick, ()))

    def trade(self, ph: Phase) -> None:
        m, rng, tok = self.m, self.m.rng, self.tok
        if rng.random() >= ph.buy_p:
            w = self.seller()
            if w is not None:
                frac = 1.0 if rng.random() < 0.4 else 0.2 + (0.8 - 0.2) * rng.random()  # rng.uniform(0.2, 0.8)
                m.sell(w, tok, max(1, int(w.holding(tok) * frac)))
            return
        r = rng.random()
        if r < ph.bot_p:
            self.bot_flip(ph)
        elif r < ph.bot_p + ph.smart_p:
            w = m.agents.pick("smart_money", 6 * SOL)
            if w is not None and m.buy(w, tok, int((1.0 + (6.0 - 1.0) * rng.random()) * SOL)):
                self.reserved.add(w)
                m.at(m.now + rng.uniform(120, 1200), self.exit, w, rng.uniform(0.5, 1.0))
        else:
            w = m.agents.retail_wallet(ph.new_p)
            m.buy(w, tok, int(ph.size * LOGNORMAL[int(rng.random() * 4096)] * SOL) + 5_000_000)

    def bot_flip(self, ph: Phase) -> None:
        m, rng = self.m, self.m.rng
        w = m.agents.pick("bot", SOL)
        if w is not None and m.buy(w, self.tok, int((0.05 + (0.6 - 0.05) * rng.random()) * SOL)):
            self.reserved.add(w)
            m.at(m.now + rng.uniform(4, 90), self.exit, w, 1.0)

    def seller(self) -> Wallet | None:
        hs = self.tok.holders
        rng = self.m.rng
        for _ in range(4):
            if not hs:
                return None
            i = int(rng.random() * len(hs))
            w = hs[i]
            if w.holding(self.tok) == 0:
                hs[i] = hs[-1]
                hs.pop()
                continue
            if w not in self.reserved and w is not self.tok.dev:
                return w
        return None

    def exit(self, w: Wallet, frac: float = 1.0) -> None:
        """A scripted sell (dev dump, bundle exit, sniper/bot/smart-money take-profit)."""
        held = w.holding(self.tok)
        if held:
            self.m.sell(w, self.tok, held if frac >= 1 else max(1, int(held * frac)))
