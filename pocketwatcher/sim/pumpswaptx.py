"""Graduation and PumpSwap transactions: ``migrate``, PumpSwap ``buy`` / ``sell``.

``migrate`` (pump.fun, sent by the migration keeper) moves the curve's 206.9 M reserved
tokens and its SOL (less the 0.015 SOL pool migration fee) into a new canonical PumpSwap
pool through a ``create_pool`` CPI, burns the LP tokens and emits
CompletePumpAmmMigrationEvent. PumpSwap trades wrap SOL into a temporary wSOL account
(create, transfer, SyncNative ... CloseAccount) around the swap, whose inner
``TransferChecked`` legs are, for a buy: pool base vault → user, user → pool quote vault
(``quote_amount_in_with_lp_fee``), user → protocol fee account, user → coin-creator vault;
a sell mirrors them (the pool pays the user, then both fees). Accounts per PROTOCOL_FACTS
§3 (23 for buy, 21 for sell).
"""

from __future__ import annotations

import struct

from . import events as ev
from .accounts import SPL_RENT, T22_RENT, rent
from .amm import CREATOR_FEE_BPS, LP_FEE_BPS, PROTOCOL_FEE_BPS, SwapQuote
from .curve import POOL_MIGRATION_FEE
from .encoder import (
    Encoder,
    ata_ix,
    cu_limit_ix,
    cu_price_data,
    cu_price_ix,
    transfer_checked,
)
from .encoder import tx_fee as _tx_fee
from .entities import Token, Wallet
from .pumptx import (
    _BUY_IX,
    _GETFEES,
    _SELL_IX,
    BOT_SWAP,
    EVENT_TAG,
    GET_FEES,
    PUMP_ID,
    _b2a,
    _checked,
    _event_ix,
    _fees_ix,
    _price,
    _sys,
    _tail,
    _with_path,
    fail_spec,
    wrap,
)
from .shape import Ix, Spec, V

PAMM_BUY = bytes([102, 6, 61, 18, 1, 218, 235, 234])
PAMM_SELL = bytes([51, 230, 133, 164, 1, 127, 131, 173])
MIGRATE = bytes([155, 234, 231, 146, 236, 158, 162, 30])
CREATE_POOL = bytes([233, 146, 209, 142, 207, 104, 64, 188])
PAMM_ID = "pAMMBay6oceH9fJKBRHGP5D4bD4sWpmSwMn52FMfXEA"
PAMM_FEES_RET = "FAAAAAAAAAAFAAAAAAAAAAUAAAAAAAAA"  # (lp 20, protocol 5, creator 5) bps
ERRORS = {6004: "ExceededSlippage. Error Number: 6004. Error Message: Exceeded slippage tolerance."}
POOL_RENT = rent(243)
LP_MINT_RENT = rent(82)

SWAP_ACCS = ("pool", "user", "@pamm_config", "mint", "@wsol", "ub", "wq", "pb", "pq", "@pamm_fee", "@pamm_fee_ata",
             "@token22", "@token", "@system", "@atoken", "@pamm_event_auth", "@pamm", "ccv_ata", "ccv_auth")
BUY_ACCS = SWAP_ACCS + ("@pamm_gva", "puva", "@pamm_fee_config", "@pfee")
SELL_ACCS = SWAP_ACCS + ("@pamm_fee_config", "@pfee")
_CHECKED = ("Program log: Instruction: TransferChecked",)


def _xfer(prog: str, accs: tuple, var: str) -> Ix:
    if prog == "@token22":
        return Ix(prog, accs, V(var), logs=_CHECKED, cu=6_147)
    return Ix(prog, accs, V(var), cu=105)  # SPL Token in 2026 (p-token): no log, ~100 CU


class PumpSwapTx:
    def __init__(self, enc: Encoder) -> None:
        self.enc = enc
        self.fee_ata = enc.consts["pamm_fee_ata"]
        self.fee_pk = enc.consts["pamm_fee"].pk

    # ---- PumpSwap trades -------------------------------------------------------------------------

    def swap(self, w: Wallet, tok: Token, s: SwapQuote, limit: int, ts: int, fail: int, st: tuple,
             tip: tuple | None = None) -> tuple[bytes, str]:
        """Buy (``s.is_buy``) or sell on the token's pool; ``limit`` = max quote in / min quote out.

        ``st`` = (v0, cu_limit, cu_price, jitter, bot program or None), as in :class:`PumpTx`.
        """
        enc = self.enc
        v0, cu_limit, cu_price, jitter, bot = st
        ub = w.ata(tok)
        ub_new = ub.lam == 0
        buy = s.is_buy
        key = ("pamm", buy, v0, fail, ub_new, bot, tip is not None, cu_limit, jitter)
        sh = enc._shapes.get(key) or enc.shape(key, self._spec, buy, v0, fail, ub_new, bot, tip, cu_limit, jitter,
                                               structure=key[:-2])
        full = sh.accounts((w.acct, tok.mint, tok.pool, ub, w.wsol, tok.pb, tok.pq, tok.ccv_ata, tok.ccv_auth, w.puva,
                            tip[0] if tip else None))
        pre = sh.snapshot(full)
        fee = 5_000 + -(-cu_limit * cu_price // 1_000_000)  # tx_fee(1, cu_limit, cu_price), without the call
        user = w.acct
        base = s.base
        # instruction data packed here, not through the encoder's helpers: one call less per value
        wq_init = b"\x12" + user.pk
        vals = {"cup": _price(3, cu_price),
                "ix": _BUY_IX(PAMM_BUY, base, limit, 1) if buy else _SELL_IX(PAMM_SELL, base, limit),
                "botix": _SELL_IX(BOT_SWAP, base, limit), "wq_init": wq_init, "t_wrap": _sys(2, limit)}
        if ub_new:
            vals["ata_init"] = wq_init
        if fail:
            user.add_lam(-fee)
            return enc.finish(sh, full, pre, vals, fee), sh.swap_path
        amm = tok.amm
        user_base, pool_base, pool_quote = ub.tok, amm.base_reserve, amm.quote_reserve
        amm.apply(s)
        fee_ata = self.fee_ata
        quote, lp_fee, proto_fee, creator_fee = s.quote, s.lp_fee, s.protocol_fee, s.creator_fee
        fees = proto_fee + creator_fee
        # SwapQuote.user_quote / pool_quote, without the properties
        uq = quote + lp_fee + fees if buy else quote - lp_fee - fees
        pool_q = quote + lp_fee if buy else uq
        cost = fee + (T22_RENT if ub_new else 0)
        if ub_new:
            ub.add_lam(T22_RENT)
        pb, pq, ccv_ata = tok.pb, tok.pq, tok.ccv_ata
        # token amounts changed in place (Account.add_tok): the TokenBalance caches are reset below
        if buy:
            if ub.tok == 0:  # Token.add_holder
                tok.holders.append(w)
            ub.tok += base
            pb.tok -= base
            cost += uq
            pq_delta = pool_q
        else:
            ub.tok -= base
            pb.tok += base
            cost -= uq
            pq_delta = -(pool_q + fees)
        pq.tok += pq_delta
        fee_ata.tok += proto_fee
        ccv_ata.tok += creator_fee
        ub.tbm = pb.tbm = pq.tbm = fee_ata.tbm = ccv_ata.tbm = None
        pq.add_lam(pq_delta)
        fee_ata.add_lam(proto_fee)
        ccv_ata.add_lam(creator_fee)
        if tip:
            cost += tip[1]
            tip[0].add_lam(tip[1])
            vals["t_tip"] = _sys(2, tip[1])
        user.add_lam(-cost)
        w.volume += quote
        keys = b"".join((tok.pool.pk, user.pk, ub.pk, w.wsol.pk, self.fee_pk, fee_ata.pk))
        if buy:
            e = ev.buy_event(ts, base, limit, user_base, limit, pool_base, pool_quote, quote, LP_FEE_BPS,
                             lp_fee, PROTOCOL_FEE_BPS, proto_fee, pool_q, uq, keys, tok.dev.acct.pk,
                             CREATOR_FEE_BPS, creator_fee, w.volume)
        else:
            e = ev.sell_event(ts, base, limit, user_base, 0, pool_base, pool_quote, quote, LP_FEE_BPS, lp_fee,
                              PROTOCOL_FEE_BPS, proto_fee, quote - lp_fee, uq, keys, tok.dev.acct.pk,
                              CREATOR_FEE_BPS, creator_fee)
        vals["getfees"] = _GETFEES(GET_FEES, 0, 0, quote)
        vals["x_base"] = _checked(12, base, 6)
        vals["x_quote"] = _checked(12, pool_q, 9)
        vals["x_proto"] = _checked(12, proto_fee, 9)
        vals["x_creator"] = _checked(12, creator_fee, 9)
        vals["ev"] = EVENT_TAG + e  # ev.cpi(e) / ev.log(e), inlined
        vals["log_ev"] = b"Program data: " + _b2a(e, newline=False)
        return enc.finish(sh, full, pre, vals, fee), sh.swap_path

    def _spec(self, buy, v0, fail, ub_new, bot, tip, cu_limit, jitter) -> Spec:
        wsol_ata = ata_ix("user", "wq", "user", "@wsol", False, True, "wq_init")
        ixs = [cu_limit_ix(cu_limit), cu_price_ix(), wsol_ata]
        if buy:
            ixs += [Ix("@system", ("user", "wq"), V("t_wrap")),
                    Ix("@token", ("wq",), b"\x11", cu=76),
                    ata_ix("user", "ub", "user", "mint", True, ub_new, "ata_init")]
            kids = [_fees_ix("@pamm_fee_config", "@pamm", PAMM_FEES_RET),
                    _xfer("@token22", ("pb", "mint", "ub", "pool"), "x_base"),
                    _xfer("@token", ("wq", "@wsol", "pq", "user"), "x_quote"),
                    _xfer("@token", ("wq", "@wsol", "@pamm_fee_ata", "user"), "x_proto"),
                    _xfer("@token", ("wq", "@wsol", "ccv_ata", "user"), "x_creator"),
                    _event_ix("@pamm", "@pamm_event_auth", "ev")]
            swap = Ix("@pamm", BUY_ACCS, V("ix"), logs=("Program log: Instruction: Buy",), cu=31_000 + 977 * jitter,
                      children=kids)
        else:
            kids = [_fees_ix("@pamm_fee_config", "@pamm", PAMM_FEES_RET),
                    _xfer("@token22", ("ub", "mint", "pb", "user"), "x_base"),
                    _xfer("@token", ("pq", "@wsol", "wq", "pool"), "x_quote"),
                    _xfer("@token", ("pq", "@wsol", "@pamm_fee_ata", "pool"), "x_proto"),
                    _xfer("@token", ("pq", "@wsol", "ccv_ata", "pool"), "x_creator"),
                    _event_ix("@pamm", "@pamm_event_auth", "ev")]
            swap = Ix("@pamm", SELL_ACCS, V("ix"), logs=("Program log: Instruction: Sell",), cu=30_000 + 983 * jitter,
                      children=kids)
        outer = len(ixs)
        f = fail_spec(fail, PAMM_ID, bot is not None, "Buy" if buy else "Sell", ERRORS) if fail else None
        ixs.append(wrap(swap, bot, f))
        ixs.append(Ix("@token", ("wq", "user", "user"), b"\x09", cu=112))  # p-token: no log
        _tail(ixs, tip)
        toks = ("pb", "pq", "@pamm_fee_ata", "ccv_ata") + (() if ub_new else ("ub",))
        post = toks if fail else ("pb", "pq", "@pamm_fee_ata", "ccv_ata", "ub")
        writable = {"user", "wq", "ub", "pool", "pb", "pq", "@pamm_fee_ata", "ccv_ata", "ccv_auth", "puva", "tip"}
        spec = Spec(("user",), frozenset(writable), ixs, cu_limit, toks, post,
                    self.enc.table_spec("pumpswap") if v0 else None,
                    roles=("user", "mint", "pool", "ub", "wq", "pb", "pq", "ccv_ata", "ccv_auth", "puva", "tip"))
        return _with_path(spec, outer, bot)

    # ---- migrate --------------------------------------------------------------------------------

    def migrate(self, tok: Token, ts: int, *, v0: bool = False, cu_price: int = 500_000) -> bytes:
        """Graduate a completed curve into its PumpSwap pool (sent by the migration keeper)."""
        enc = self.enc
        cu_limit = 400_000
        sh = enc.shape(("migrate", v0), self._migrate_spec, v0, cu_limit)
        full = sh.accounts((tok.mint, tok.bc, tok.abc, tok.pool, tok.pauth, tok.pauth_mint, tok.pauth_wsol, tok.lp_mint,
                            tok.user_pool, tok.pb, tok.pq))
        pre = sh.snapshot(full)
        fee = _tx_fee(1, cu_limit, cu_price)
        keeper = enc.consts["keeper"]
        base = tok.abc.tok
        sol = tok.curve.real_sol
        quote = sol - POOL_MIGRATION_FEE
        lp = int((base * quote) ** 0.5) - 100
        # the keeper pays the new accounts' rent and keeps the pool migration fee
        keeper.add_lam(POOL_MIGRATION_FEE - (fee + POOL_RENT + LP_MINT_RENT + T22_RENT * 2 + SPL_RENT))
        tok.pool.add_lam(POOL_RENT)
        tok.lp_mint.add_lam(LP_MINT_RENT)
        tok.user_pool.add_lam(T22_RENT)
        tok.pb.add_lam(T22_RENT)
        tok.pq.add_lam(SPL_RENT + quote)
        tok.bc.add_lam(-sol)
        tok.abc.set_tok(0)
        tok.pb.set_tok(base)
        tok.pq.set_tok(quote)
        pe = ev.create_pool_event(ts, tok.pauth.pk, tok.mint.pk, enc.consts["wsol"].pk, base, quote, lp,
                                  tok.pool.pk, tok.lp_mint.pk, tok.pauth_mint.pk, tok.pauth_wsol.pk, tok.dev.acct.pk)
        me = ev.migration_event(keeper.pk, tok.mint.pk, base, sol, POOL_MIGRATION_FEE, tok.bc.pk, ts, tok.pool.pk)
        vals = {"cup": cu_price_data(cu_price), "x_base": transfer_checked(base, 6),
                "x_pool_base": transfer_checked(base, 6), "x_pool_quote": transfer_checked(quote, 9),
                "cp": CREATE_POOL + struct.pack("<HQQ", 0, base, quote) + tok.dev.acct.pk + b"\x00",
                "lp_mint_to": b"\x07" + struct.pack("<Q", lp), "lp_burn": b"\x08" + struct.pack("<Q", lp),
                "pev": ev.cpi(pe), "log_pev": ev.log(pe), "mev": ev.cpi(me), "log_mev": ev.log(me)}
        return enc.finish(sh, full, pre, vals, fee)

    def _migrate_spec(self, v0: bool, cu_limit: int) -> Spec:
        t22, tok = "@token22", "@token"
        pool_kids = [
            _xfer(t22, ("pauth_mint", "mint", "pb", "pauth"), "x_pool_base"),
            _xfer(tok, ("pauth_wsol", "@wsol", "pq", "pauth"), "x_pool_quote"),
            Ix(t22, ("lp_mint", "user_pool", "pool"), V("lp_mint_to"), logs=("Program log: Instruction: MintTo",),
               cu=4_492),
            _event_ix("@pamm", "@pamm_event_auth", "pev"),
        ]
        create_pool = Ix("@pamm", ("pool", "@pamm_config", "pauth", "mint", "@wsol", "lp_mint", "pauth_mint",
                                   "pauth_wsol", "user_pool", "pb", "pq", "@system", t22, t22, tok, "@atoken",
                                   "@pamm_event_auth", "@pamm"), V("cp"),
                         logs=("Program log: Instruction: CreatePool",), cu=41_000, children=pool_kids)
        kids = [
            _xfer(t22, ("abc", "mint", "pauth_mint", "bc"), "x_base"),
            Ix(tok, ("pauth_wsol",), b"\x11", cu=76),
            create_pool,
            Ix(t22, ("user_pool", "lp_mint", "pauth"), V("lp_burn"), logs=("Program log: Instruction: Burn",),
               cu=4_752),
            _event_ix("@pump", "@pump_event_auth", "mev"),
        ]
        migrate = Ix("@pump", ("@pump_global", "@keeper", "mint", "bc", "abc", "@keeper", "@system", tok, "@pamm",
                               "pool", "pauth", "pauth_mint", "pauth_wsol", "@pamm_config", "@wsol", "lp_mint",
                               "user_pool", "pb", "pq", t22, "@atoken", "@pamm_event_auth", "@pump_event_auth",
                               "@pump"), MIGRATE, logs=("Program log: Instruction: Migrate",), cu=52_000,
                     children=kids)
        writable = {"@keeper", "bc", "abc", "pool", "pauth", "pauth_mint", "pauth_wsol", "lp_mint", "user_pool",
                    "pb", "pq"}
        return Spec(("@keeper",), frozenset(writable), [cu_limit_ix(cu_limit), cu_price_ix(), migrate], cu_limit,
                    ("abc",), ("abc", "pb", "pq"), self.enc.table_spec("pumpswap", "pump") if v0 else None,
                    roles=("mint", "bc", "abc", "pool", "pauth", "pauth_mint", "pauth_wsol", "lp_mint", "user_pool",
                           "pb", "pq"))


__all__ = ["PumpSwapTx", "PUMP_ID"]
