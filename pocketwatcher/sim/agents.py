"""Who trades: actor kinds, their wallets, and how multi-wallet actors fund those wallets.

Kinds and why they exist in the stream:

- **retail** — one wallet each (pre-funded before the capture); most buyers. A share of
  buys comes from brand-new wallets, the rest from earlier ones (recent ones more likely).
- **sniper** — a handful of actors with 4–10 wallets each, buying in the first slots.
- **bot** — volume / flip bots with 2–5 wallets, small sizes, both sides; some route every
  trade through their own on-chain program (a CPI into the DEX: the swap is at ``k.0``).
- **smart_money** — a few well-funded wallets entering growers and runners early.
- **bundler** — buys a launch with several fresh wallets in its creation slot.
- **dev** — creates tokens: mostly one-off wallets, some serial devs launching from a fresh
  wallet each time.

Actors with several wallets keep them topped up from one common *funder* wallet, with
SOL transfers a few seconds to a minute before the wallet trades — those transfers are
transactions in the stream, and rows in ``truth/funding``.
"""

from __future__ import annotations

from math import log
from typing import TYPE_CHECKING

from .entities import Actor, Wallet

if TYPE_CHECKING:
    from .market import Market

SOL = 1_000_000_000
RESERVE = 15_000_000  # lamports a wallet keeps for fees and rent
# kind -> (actors, wallets per actor (lo, hi), top-up SOL (lo, hi))
POOLS = {
    "sniper": (8, (4, 10), (2.0, 8.0)),
    "bot": (5, (2, 5), (3.0, 12.0)),
    "smart_money": (12, (1, 2), (20.0, 200.0)),
    "bundler": (5, (0, 0), (1.0, 3.0)),
    "dev": (6, (0, 0), (2.0, 6.0)),  # serial devs; one-off devs are created per launch
}


class Agents:
    def __init__(self, m: Market) -> None:
        self.m = m
        self.rng = m.rng
        self.retail: list[Actor] = []
        self.pools: dict[str, list[Actor]] = {}
        self._n = 0
        for kind, (count, (lo, hi), (flo, fhi)) in POOLS.items():
            actors = []
            for i in range(m.shard, count, m.shards):  # each shard has its share of every pool
                a = Actor(f"{kind}-{i:02d}", kind)
                a.funder = self.wallet(a, "funder", int(self.rng.uniform(500, 5_000) * SOL))
                for _ in range(self.rng.randint(lo, hi)):
                    self.wallet(a, "trader", int(self.rng.uniform(flo, fhi) * SOL))
                if kind == "bot" and self.rng.random() < m.cfg.bot_program_share:
                    a.program = f"botprog{i}"
                    m.enc.add_const(a.program, m.keys.account(f"program:{a.id}", 1_141_440))
                actors.append(a)
            self.pools[kind] = actors

    def wallet(self, actor: Actor, role: str, lamports: int) -> Wallet:
        self._n += 1
        w = Wallet(self.m.keys.account(f"wallet:{actor.id}:{self._n}", lamports), actor, role)
        if role != "funder":
            actor.wallets.append(w)
        w.funded = True
        self.m.truth.wallet(actor, w)
        return w

    # ---- picking wallets -------------------------------------------------------------------------

    def retail_wallet(self, new_p: float = 0.35) -> Wallet:
        rng = self.rng
        if not self.retail or rng.random() < new_p:
            a = Actor(f"retail-{len(self.retail) * self.m.shards + self.m.shard:05d}", "retail")
            self.retail.append(a)
            return self.wallet(a, "trader", int(min(rng.lognormvariate(0.7, 1.0), 200) * SOL) + RESERVE)
        n = len(self.retail)
        i = n - 1 - min(int(-log(1.0 - rng.random()) * 150), n - 1)  # recent wallets are more active
        return self.retail[i].wallets[0]

    def one_off_dev(self) -> Wallet:
        a = Actor(f"dev-{self.m.next_token_id:05d}", "dev")
        return self.wallet(a, "dev", int(self.rng.uniform(1.5, 12) * SOL))

    def pick(self, kind: str, need: int) -> Wallet | None:
        """A funded wallet of a random actor of ``kind`` holding at least ``need`` lamports."""
        actors = self.pools[kind]
        a = actors[int(self.rng.random() * len(actors))]
        return self.ready(a, need)

    def ready(self, a: Actor, need: int) -> Wallet | None:
        ws = a.wallets
        n = len(ws)
        for k in range(n):
            w = ws[(a.cursor + k) % n]
            lam = w.acct.lam
            if w.funded and lam >= need + RESERVE:
                a.cursor = (a.cursor + k + 1) % n
                if lam - need < POOLS[a.kind][2][0] * SOL:  # running low: line up the next wallet
                    self._maintain(a)
                return w
        self._maintain(a)
        return None

    def _maintain(self, a: Actor) -> None:
        """Keep at least two wallets stocked: schedule a top-up (or a fresh wallet) soon."""
        if a.pending:  # a top-up is already on its way
            return
        lo, hi = POOLS[a.kind][2]
        stocked = sum(1 for w in a.wallets if w.funded and w.acct.lam >= lo * SOL / 2)
        if stocked >= 2:
            return
        rng = self.rng
        if not a.wallets or rng.random() < 0.5:
            w = self.wallet(a, "trader", 0)
            w.funded = False
        else:
            w = min(a.wallets, key=lambda x: x.acct.lam)
        a.pending = True
        self.fund(a, w, int(rng.uniform(lo, hi) * SOL), self.m.now + rng.uniform(1.0, 20.0))

    def fresh(self, a: Actor, lamports: int, t_use: float) -> Wallet:
        """A new wallet of ``a`` funded shortly before ``t_use``.

        The funding never comes after the use: a launch is planned ``LOOKAHEAD`` ahead, but one
        in the run's first second can be planned when its time has already passed (the first
        slots skipped: their events run in the next produced slot). The funding is then queued
        at ``t_use`` itself, ahead of the use (same time, inserted first), in the same slot.
        """
        w = self.wallet(a, "trader" if a.kind != "dev" else "dev", 0)
        w.funded = False
        t = max(self.m.now, t_use - self.rng.uniform(3.0, 40.0))
        self.m.at(t if t <= t_use else t_use, self._do_fund, a, w, lamports)
        return w

    def fund(self, a: Actor, w: Wallet, lamports: int, t: float) -> None:
        self.m.at(max(t, self.m.now), self._do_fund, a, w, lamports)

    def _do_fund(self, a: Actor, w: Wallet, lamports: int) -> None:
        self.m.fund(a.funder, w, lamports)
        w.funded = True
        a.pending = False
