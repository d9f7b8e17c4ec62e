"""Executing intents: quotes, slippage limits, on-chain failures, and the ground truth of each trade.

A trade intent (wallet, token, SOL to spend / tokens to sell) becomes one transaction: on the
bonding curve until the token graduates, on its PumpSwap pool after. Whether it fails is
decided here: slippage (the price moved past the user's limit) with a probability that
depends on the actor kind and on how many trades hit the token in the same slot, steered
so that the run's share of failed transactions tracks ``SimConfig.failed_share``; and every
trade between completion and migration fails with ``BondingCurveComplete``. A failed
attempt carries limits that really would fail, changes nothing but the fee payer's
balance, and goes to ``truth/failed`` instead of ``truth/trades``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .agents import RESERVE, SOL
from .amm import Pool
from .archetypes import AMM_PHASES
from .curve import Quote

if TYPE_CHECKING:
    from .entities import Token, Wallet
    from .market import Market

FAIL_MULT = {"retail": 0.8, "sniper": 2.4, "bot": 1.4, "smart_money": 0.6, "bundler": 0.0, "dev": 0.0}
# kind -> (compute-unit limits, priority fee range in micro-lamports per CU, slippage range)
STYLE = {
    "retail": ((200_000, 300_000), (20_000, 400_000), (0.05, 0.25)),
    "sniper": ((150_000,), (1_000_000, 8_000_000), (0.3, 1.0)),
    "bot": ((150_000,), (200_000, 2_000_000), (0.1, 0.5)),
    "smart_money": ((250_000,), (100_000, 1_500_000), (0.03, 0.15)),
    "bundler": ((200_000,), (500_000, 3_000_000), (0.5, 1.0)),
    "dev": ((300_000,), (200_000, 2_000_000), (0.1, 0.3)),
}
# STYLE as (limits, len(limits), price low, price span): _style runs once per transaction
_STYLE_FAST = {k: (lim, len(lim), plo, phi - plo) for k, (lim, (plo, phi), _) in STYLE.items()}
JITTER = 2  # compute-unit variants per shape (more variety = more shapes to compile)
MIN_SOL = 100_000  # smaller trades are not worth sending
BONDING_CURVE_COMPLETE, TOO_MUCH_SOL, TOO_LITTLE_SOL, EXCEEDED_SLIPPAGE = 6005, 6002, 6003, 6004


class Trading:
    def __init__(self, m: Market) -> None:
        self.m = m
        self.rng = m.rng
        self.enc = m.enc
        self.fail_scale = max(m.cfg.failed_share, 0.01)
        self.target = m.cfg.failed_share
        self.v0_share = m.cfg.v0_share
        # each shard tips its own Jito tip accounts: their balances stay continuous in the merged stream
        self.tips = [m.enc.consts[f"tip{i}"] for i in range(8) if i % m.shards == m.shard]

    # ---- policy ------------------------------------------------------------------------------

    def _style(self, w: Wallet) -> tuple:
        """(v0, cu_limit, cu_price, jitter, bot program): how this sender builds transactions."""
        r = self.rng.random
        actor = w.actor
        limits, n, plo, span = _STYLE_FAST[actor.kind]
        x = r()
        return r() < self.v0_share, limits[int(x * n)], int(plo + span * r()), int(r() * JITTER), actor.program

    def _slip(self, w: Wallet) -> float:
        lo, hi = STYLE[w.actor.kind][2]
        return lo + (hi - lo) * self.rng.random()  # rng.uniform(lo, hi), without its Python frame

    def _fails(self, w: Wallet, tok: Token) -> bool:
        enc = self.enc
        share = enc.failed / enc.transactions if enc.transactions else 0.0
        s = self.fail_scale * (1.02 if share < self.target else 0.98)
        self.fail_scale = s = 2.0 if s >= 2.0 else (s if s > 0.01 else 0.01)
        p = s * FAIL_MULT[w.actor.kind] * (1 + 0.3 * self.m.slot_trades.get(tok.id, 0))
        return self.rng.random() < (p if p < 0.9 else 0.9)

    def tip(self, lamports: int) -> tuple:
        tips = self.tips
        return tips[int(self.rng.random() * len(tips))], lamports

    def _done(self, sig: bytes, path: str, w: Wallet, tok: Token, side: str, tokens: int, quote: int,
              program: str) -> None:
        m = self.m
        m.truth.trade(sig, path, m.slot, m.index, m.block_time, tok.mint, w, side, tokens, quote, program)
        tok.trades += 1
        m.slot_trades[tok.id] = m.slot_trades.get(tok.id, 0) + 1

    def _failed(self, sig: bytes, w: Wallet, tok: Token, side: str, program: str, code: int) -> bool:
        m = self.m
        m.truth.fail(sig, m.slot, m.index, tok.mint, w, side, program, code)
        m.slot_trades[tok.id] = m.slot_trades.get(tok.id, 0) + 1
        return False

    # ---- intents -----------------------------------------------------------------------------

    def buy(self, w: Wallet, tok: Token, spend: int, *, tip: tuple | None = None, bundle: bool = False) -> bool:
        """Spend up to ``spend`` lamports (fees included) on ``tok``; True when it executed."""
        m = self.m
        spend = min(spend, (w.acct.lam - RESERVE - (tip[1] if tip else 0)) * 2 // 3)
        if spend < MIN_SOL or not w.funded:
            return False
        st = self._style(w)
        fail = not bundle and self._fails(w, tok)
        if tok.amm is not None:
            return self._swap(w, tok, True, spend, fail, tip, st)
        c = tok.curve
        if c.complete:  # after the last token sold, before migration: the program rejects it
            q = Quote(spend * c.virtual_token // c.virtual_sol, spend, 0, 0)
            m.position()
            sig, _ = m.pump.buy(w, tok, q, spend, m.block_time, BONDING_CURVE_COMPLETE, st)
            return self._failed(sig, w, tok, "buy", "pumpfun", BONDING_CURVE_COMPLETE)
        q = c.buy_quote(max(1, c.tokens_for_sol(spend)))
        if q.sol < MIN_SOL:
            return False
        m.position(bundle)
        if fail:
            limit = int(q.total * (1 - (0.002 + (0.12 - 0.002) * self.rng.random())))
            sig, _ = m.pump.buy(w, tok, q, limit, m.block_time, TOO_MUCH_SOL, st)
            return self._failed(sig, w, tok, "buy", "pumpfun", TOO_MUCH_SOL)
        sig, path = m.pump.buy(w, tok, q, int(q.total * (1 + self._slip(w))), m.block_time, 0, st, tip)
        self._done(sig, path, w, tok, "buy", q.tokens, q.sol, "pumpfun")
        if c.complete:
            tok.complete_slot = m.slot
            m.at(m.now + self.rng.uniform(2.0, 20.0), self.migrate, tok)
        return True

    def sell(self, w: Wallet, tok: Token, tokens: int, *, tip: tuple | None = None) -> bool:
        m = self.m
        tokens = min(tokens, w.holding(tok))
        if tokens <= 0 or w.acct.lam < RESERVE // 3:
            return False
        st = self._style(w)
        fail = self._fails(w, tok)
        if tok.amm is not None:
            return self._swap(w, tok, False, tokens, fail, tip, st)
        c = tok.curve
        q = c.sell_quote(tokens)
        if q.sol < MIN_SOL:
            return False
        net = q.sol - q.fee - q.creator_fee
        m.position()
        if c.complete:
            sig, _ = m.pump.sell(w, tok, q, net, m.block_time, BONDING_CURVE_COMPLETE, st)
            return self._failed(sig, w, tok, "sell", "pumpfun", BONDING_CURVE_COMPLETE)
        if fail:
            limit = int(net * (1 + (0.002 + (0.12 - 0.002) * self.rng.random()))) + 1
            sig, _ = m.pump.sell(w, tok, q, limit, m.block_time, TOO_LITTLE_SOL, st)
            return self._failed(sig, w, tok, "sell", "pumpfun", TOO_LITTLE_SOL)
        sig, path = m.pump.sell(w, tok, q, int(net * (1 - self._slip(w))), m.block_time, 0, st, tip)
        self._done(sig, path, w, tok, "sell", q.tokens, q.sol, "pumpfun")
        return True

    def _swap(self, w: Wallet, tok: Token, buy: bool, amount: int, fail: bool, tip, st: tuple) -> bool:
        m, amm = self.m, tok.amm
        if st[1] < 200_000:
            st = (st[0], 200_000, *st[2:])
        if buy:
            base = amm.base_for_quote(amount)
            if not 0 < base < amm.base_reserve // 2:
                return False
            s = amm.buy_quote(base)
            ok_limit = min(int(s.user_quote * (1 + self._slip(w))), w.acct.lam - RESERVE // 2)
            bad_limit = int(s.user_quote * (1 - (0.002 + (0.12 - 0.002) * self.rng.random())))
        else:
            s = amm.sell_quote(amount)
            if s.quote < MIN_SOL:
                return False
            ok_limit = int(s.user_quote * (1 - self._slip(w)))
            bad_limit = int(s.user_quote * (1 + (0.002 + (0.12 - 0.002) * self.rng.random()))) + 1
        side = "buy" if buy else "sell"
        m.position()
        if fail:
            sig, _ = m.pswap.swap(w, tok, s, bad_limit, m.block_time, EXCEEDED_SLIPPAGE, st)
            return self._failed(sig, w, tok, side, "pumpswap", EXCEEDED_SLIPPAGE)
        sig, path = m.pswap.swap(w, tok, s, ok_limit, m.block_time, 0, st, tip)
        self._done(sig, path, w, tok, side, s.base, s.pool_quote if buy else s.user_quote, "pumpswap")
        return True

    # ---- lifecycle ---------------------------------------------------------------------------

    def create(self, w: Wallet, tok: Token, dev_spend: int, tip: tuple | None = None) -> bool:
        """Launch ``tok`` from ``w`` with a dev buy of up to ``dev_spend``; False when ``w`` cannot pay.

        The rent of the new accounts (mint, curve, their token accounts, the dev's volume
        accumulator) and the fee stay below ``RESERVE`` (~11M lamports at most); the dev buy
        is shrunk to what the wallet holds above it.
        """
        m = self.m
        if not w.funded or w.acct.lam - (tip[1] if tip else 0) < RESERVE:
            return False
        st = self._style(w)
        c = tok.curve
        q = None
        dev_spend = min(dev_spend, (w.acct.lam - RESERVE - (tip[1] if tip else 0)) * 2 // 3)
        if dev_spend > MIN_SOL:
            q = c.buy_quote(c.tokens_for_sol(dev_spend))
        m.position()
        sig, path = m.create_tx.create(w, tok, q, int(q.total * 1.2) if q else 0, m.block_time, v0=st[0], tip=tip,
                                  cu_price=st[2])
        tok.launch_slot = m.slot
        m.truth.tokens.append(tok)
        if q is not None:
            self._done(sig, path, w, tok, "buy", q.tokens, q.sol, "pumpfun")
        return True

    def migrate(self, tok: Token) -> None:
        m = self.m
        tok.init_pool_accounts(self.enc.consts)
        m.position()
        m.pswap.migrate(tok, m.block_time, v0=self.rng.random() < m.cfg.v0_share)
        tok.amm = Pool(tok.pb.tok, tok.pq.tok)
        tok.migrated_slot = m.slot
        if tok.life is not None:
            tok.life.restart(AMM_PHASES, m.now)

    def fund(self, src: Wallet, dst: Wallet, lamports: int) -> None:
        m = self.m
        if src.acct.lam < lamports + SOL:
            src.acct.add_lam(1_000 * SOL)  # funders are refilled from outside the simulated market
        m.position()
        sig = m.xfer.fund(src, dst, lamports, cu_price=int(self.rng.uniform(10_000, 200_000)))
        m.truth.fund(m.slot, m.index, sig, src, dst, lamports)
