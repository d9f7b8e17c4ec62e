"""New tokens: when they launch, with which archetype, and what is set up around the launch.

Launch times are a Poisson process at ``launches_per_minute``. Each launch is planned 45 s
ahead so that wallets can be funded *before* they are used, as on mainnet: a serial dev's
fresh wallet and a bundler's fresh wallets receive SOL from their actor's funder seconds
to a minute before the creation slot. The creation slot holds the ``create_v2`` (+ dev
buy) transaction and, for bundled launches, the bundle's buys right behind it (consecutive
indices, the last one tipping Jito); snipers follow in the next slots.

``warm_start`` seeds tokens that were already live when the capture began (their history
is state, not transactions): graduated pools, a runner close to completion, growers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from . import archetypes
from .accounts import SPL_RENT, T22_RENT
from .agents import RESERVE, SOL
from .amm import Pool
from .archetypes import AMM_PHASES, Life
from .config import ARCHETYPES
from .createtx import mint_rents
from .curve import POOL_MIGRATION_FEE
from .entities import CURVE_RENT, UVA_RENT, Token
from .pumpswaptx import LP_MINT_RENT, POOL_RENT

if TYPE_CHECKING:
    from .market import Market

LOOKAHEAD = 45.0
_WORDS = ("Moon", "Cat", "Pepe", "Doge", "Frog", "Based", "Chad", "Giga", "Pump", "Sol", "Wif", "Hat", "Bonk",
          "Mog", "Turbo", "Retard", "Alpha", "Meme", "Elon", "Trump", "Penguin", "Goat", "Ape", "Banana", "Rocket",
          "Lambo", "Diamond", "Hands", "Degen", "Rizz", "Sigma", "Ghost", "Shark", "Panda", "Tiger", "Dragon",
          "Pixel", "Cyber", "Quantum", "Neko", "Shiba", "Inu", "Baby", "King", "Queen", "Lord", "Wojak", "Boden")


class Launches:
    def __init__(self, m: Market) -> None:
        self.m = m
        self.rng = m.rng
        self.clock = 0.0
        self.rate = m.cfg.launches_per_minute / 60.0 / m.shards
        shares = m.cfg.shares
        self.kinds = [k for k in ARCHETYPES if shares.get(k, 0) > 0]
        self.weights = [shares[k] for k in self.kinds]

    def start(self) -> None:
        self._next()

    def _next(self) -> None:
        t = self.clock + self.rng.expovariate(self.rate)
        self.clock = t
        if t < self.m.end:
            self.m.at(max(0.0, t - LOOKAHEAD), self._plan, t)

    def _name(self) -> tuple[str, str]:
        rng = self.rng
        a, b = rng.choice(_WORDS), rng.choice(_WORDS)
        name = a if rng.random() < 0.3 else f"{a} {b}"
        sym = (a[:3] + b[:2]).upper() if " " in name else a.upper()[:6]
        return name, sym

    def _plan(self, t: float) -> None:
        self._next()
        m, rng = self.m, self.rng
        arch = rng.choices(self.kinds, self.weights)[0]
        p = archetypes.plan(arch, rng)
        dev_need = int(p.dev_buy * SOL) + RESERVE * 2
        if rng.random() < (0.6 if arch in ("rug", "bundled") else 0.25):
            a = m.agents.pools["dev"][rng.randrange(len(m.agents.pools["dev"]))]
            dev = m.agents.fresh(a, dev_need + int(rng.uniform(0.05, 0.5) * SOL), t)
        else:
            dev = m.agents.one_off_dev()
        name, sym = self._name()
        tok = Token(m.next_token_id, m.keys, dev, name, sym, arch)
        m.next_token_id += m.shards
        tok.life = life = Life(m, tok, p.phases, t)
        life.reserved.add(dev)
        bundle = []
        if p.bundle:
            b = m.agents.pools["bundler"][rng.randrange(len(m.agents.pools["bundler"]))]
            tok.bundler = b
            for _ in range(p.bundle):
                spend = int(rng.uniform(0.5, 2.5) * SOL)
                w = m.agents.fresh(b, spend * 3 // 2 + RESERVE * 2, t)
                life.reserved.add(w)
                bundle.append((w, spend))
        m.at(t, self._launch, tok, int(p.dev_buy * SOL), bundle)
        swarm = arch == "sniper_swarm"
        for _ in range(p.snipes):
            m.at(t + rng.uniform(0.05, 1.6 if swarm else 4.0), self._snipe, tok, swarm)
        if p.dev_dump is not None:
            m.at(t + p.dev_dump, life.exit, dev, 1.0)
        if p.bundle_exit is not None:
            start, spread = p.bundle_exit
            for w, _ in bundle:
                m.at(t + start + rng.uniform(0, spread), life.exit, w, 1.0)

    def _launch(self, tok: Token, dev_spend: int, bundle: list) -> None:
        m = self.m
        tr = m.trading
        if not tr.create(tok.dev, tok, dev_spend):  # never launched: snipes and exits find nothing to trade
            return
        for i, (w, spend) in enumerate(bundle):
            tip = tr.tip(int(self.rng.uniform(0.001, 0.01) * SOL)) if i == len(bundle) - 1 else None
            tr.buy(w, tok, spend, tip=tip, bundle=True)
        m.at(m.now + self.rng.expovariate(max(tok.life.phases[0].rate, 0.01)), tok.life.tick)

    def _snipe(self, tok: Token, swarm: bool) -> None:
        m, rng = self.m, self.rng
        spend = int(rng.uniform(0.3, 2.5) * SOL)
        w = m.agents.pick("sniper", spend)
        if w is None or tok.launch_slot == 0:
            return
        tip = m.trading.tip(int(rng.uniform(0.0005, 0.005) * SOL)) if rng.random() < 0.5 else None
        if m.buy(w, tok, spend, tip=tip):
            tok.life.reserved.add(w)
            m.at(m.now + rng.uniform(5, 120) if swarm else m.now + rng.uniform(20, 600), tok.life.exit, w, 1.0)

    # ---- tokens already live when the capture starts ------------------------------------------

    def warm_start(self, n: int) -> None:
        m, rng = self.m, self.rng
        kinds = ("pool", "pool", "late_runner", "slow", "slow", "slow")
        for i in range(m.shard, n, m.shards):
            kind = kinds[i % len(kinds)]
            arch = "runner" if kind in ("pool", "late_runner") else "slow"
            name, sym = self._name()
            tok = Token(m.next_token_id, m.keys, m.agents.one_off_dev(), name, sym, arch)
            m.next_token_id += m.shards
            tok.pre_existing = True
            age = int(rng.uniform(3_000, 40_000))
            tok.launch_slot = m.cfg.start_slot - age
            tok.mint.set_lam(mint_rents(tok)[0])
            tok.bc.set_lam(CURVE_RENT)
            tok.abc.set_lam(T22_RENT)
            tok.abc.set_tok(tok.curve.supply)
            target = {"pool": 1.0, "late_runner": rng.uniform(0.55, 0.8), "slow": rng.uniform(0.1, 0.45)}[kind]
            self._seed_holders(tok, target)
            if kind == "pool":
                tok.complete_slot = tok.migrated_slot = tok.launch_slot + int(age * rng.uniform(0.05, 0.5))
                self._seed_pool(tok)
                tok.life = Life(m, tok, AMM_PHASES, -rng.uniform(60, 1_800))
            else:
                p = archetypes.plan(arch, rng)
                tok.life = Life(m, tok, p.phases[-1:], -rng.uniform(60, 600))
            m.truth.tokens.append(tok)
            m.at(rng.uniform(0, 3), tok.life.tick)

    def _seed_holders(self, tok: Token, progress: float) -> None:
        c = tok.curve
        rng = self.rng
        while c.progress() < progress and not c.complete:
            w = self.m.agents.retail_wallet(0.7)
            q = c.buy_quote(max(1, c.tokens_for_sol(int(rng.lognormvariate(0, 1.0) * SOL))))
            c.apply_buy(q)
            au = w.ata(tok)
            if au.lam == 0:
                au.set_lam(T22_RENT)
            if not w.uva_ok:
                w.uva.set_lam(UVA_RENT)
                w.uva_ok = True
            tok.add_holder(w)
            au.add_tok(q.tokens)
            tok.abc.add_tok(-q.tokens)
            tok.bc.add_lam(q.sol)

    def _seed_pool(self, tok: Token) -> None:
        m = self.m
        tok.init_pool_accounts(m.enc.consts)
        base, quote = tok.abc.tok, tok.curve.real_sol - POOL_MIGRATION_FEE
        tok.abc.set_tok(0)
        tok.bc.add_lam(-tok.curve.real_sol)
        for acct, lam in ((tok.pool, POOL_RENT), (tok.lp_mint, LP_MINT_RENT), (tok.pb, T22_RENT)):
            acct.set_lam(lam)
        tok.pb.set_tok(base)
        tok.pq.set_tok(quote)
        tok.pq.set_lam(SPL_RENT + quote)
        tok.amm = Pool(base, quote)
