"""pump.fun trades: buy and sell — as mainnet encodes them in 2026.

Layouts follow PROTOCOL_FACTS §2 and real transactions in ``shared/fixtures/tx``: buy takes
the 16 named accounts plus ``bonding_curve_v2`` and a second fee recipient (18), sell the
14 named plus the same two (16); inner instructions in mainnet order (fee-program CPI,
Token-2022 ``TransferChecked`` of the tokens, system transfers of the SOL on buys — the
program moves lamports itself on sells — then the TradeEvent self-CPI). A buy that takes
the last token also emits CompleteEvent. Failed trades stop at the slippage check
(``TooMuchSolRequired`` 6002, ``TooLittleSolReceived`` 6003, ``BondingCurveComplete``
6005): no transfers, no events, only the fee is charged.
"""

from __future__ import annotations

import binascii
import struct

from . import events as ev
from .accounts import T22_RENT, unb58
from .curve import CREATOR_FEE_BPS, FEE_BPS, Quote
from .encoder import (
    Encoder,
    ata_ix,
    create_account,
    cu_limit_ix,
    cu_price_ix,
)
from .entities import UVA_RENT, UVA_SIZE, Token, Wallet
from .shape import Ix, Spec, V

BUY = bytes([102, 6, 61, 18, 1, 218, 235, 234])
SELL = bytes([51, 230, 133, 164, 1, 127, 131, 173])
GET_FEES = bytes.fromhex("9aed8a5ca202a2bb")
FEES_RET = "AAAAAAAAAABfAAAAAAAAAB4AAAAAAAAA"  # (lp 0, protocol 95, creator 30) bps
BOT_SWAP = bytes.fromhex("f0f3774c5c21c072")
_BUY_IX = struct.Struct("<8sQQB").pack  # discriminator, amount, max/min quote, (buy: track_volume)
_SELL_IX = struct.Struct("<8sQQ").pack
_GETFEES = struct.Struct("<8sBQQ32x").pack  # GetFeesWithQuoteMint(is_pump_pool, market cap, trade size, mint 0)
_sys = struct.Struct("<IQ").pack
_checked = struct.Struct("<BQB").pack
_price = struct.Struct("<BQ").pack
_b2a = binascii.b2a_base64
EVENT_TAG = ev.EVENT_TAG

BUY_ACCS = ("@pump_global", "@pump_fee", "mint", "bc", "abc", "au", "user", "@system", "@token22", "cv",
            "@pump_event_auth", "@pump", "@pump_gva", "uva", "@pump_fee_config", "@pfee", "bcv2", "@pump_fee2")
SELL_ACCS = ("@pump_global", "@pump_fee", "mint", "bc", "abc", "au", "user", "@system", "cv", "@token22",
             "@pump_event_auth", "@pump", "@pump_fee_config", "@pfee", "bcv2", "@pump_fee2")
ROLES = ("user", "mint", "bc", "abc", "au", "cv", "uva", "bcv2", "tip")  # as buy/sell pass them to the shape
ERRORS = {
    6002: "TooMuchSolRequired. Error Number: 6002. Error Message: slippage: Too much SOL required to buy "
          "the given amount of tokens.",
    6003: "TooLittleSolReceived. Error Number: 6003. Error Message: slippage: Too little SOL received to "
          "sell the given amount of tokens.",
    6005: "BondingCurveComplete. Error Number: 6005. Error Message: The bonding curve has completed and "
          "liquidity migrated to raydium.",
}
PUMP_ID = "6EF8rrecthR5Dkzon8Nwu78hRvfCKubJ14M5uBEwF6P"
PUMP_PK = unb58(PUMP_ID)


def fail_spec(code: int, program_id: str, wrapped: bool, name: str, errors: dict) -> tuple:
    lines = [f"Program log: AnchorError occurred. Error Code: {errors[code]}"]
    if wrapped:  # the bot program relays the CPI's failure
        lines = [f"Program {program_id} invoke [2]", f"Program log: Instruction: {name}", *lines,
                 f"Program {program_id} consumed 21034 of 161219 compute units",
                 f"Program {program_id} failed: custom program error: 0x{code:x}"]
    else:
        lines = [f"Program log: Instruction: {name}", *lines]
    return code, tuple(lines)


def _fees_ix(config: str, prog: str, ret: str = FEES_RET) -> Ix:
    """The fee program's CPI; it returns (lp, protocol, creator) bps as three u64s."""
    return Ix("@pfee", (config, prog), V("getfees"), logs=("Program log: Instruction: GetFeesWithQuoteMint",),
              cu=3_360, ret=ret)


def _event_ix(prog: str, auth: str, var: str) -> Ix:
    return Ix(prog, (auth,), V(var), pre=(V("log_" + var),), cu=2_164)


def buy_ix(uva_new: bool, completes: bool, jitter: int) -> Ix:
    kids = [Ix("@system", ("user", "uva"), create_account(UVA_RENT, UVA_SIZE, PUMP_PK))] if uva_new else []
    kids += [
        _fees_ix("@pump_fee_config", "@pump"),
        Ix("@token22", ("abc", "mint", "au", "bc"), V("xfer"), logs=("Program log: Instruction: TransferChecked",),
           cu=2_562),
        Ix("@system", ("user", "cv"), V("t_creator")),
        Ix("@system", ("user", "bc"), V("t_curve")),
        Ix("@system", ("user", "@pump_fee2"), V("t_fee2")),
        Ix("@system", ("user", "@pump_fee"), V("t_fee")),
        _event_ix("@pump", "@pump_event_auth", "ev"),
    ]
    if completes:
        kids.append(_event_ix("@pump", "@pump_event_auth", "ev2"))
    return Ix("@pump", BUY_ACCS, V("ix"), logs=("Program log: Instruction: Buy",), cu=24_000 + 997 * jitter,
              children=kids)


def sell_ix(jitter: int) -> Ix:
    kids = [
        _fees_ix("@pump_fee_config", "@pump"),
        Ix("@token22", ("au", "mint", "abc", "user"), V("xfer"), logs=("Program log: Instruction: TransferChecked",),
           cu=2_562),
        _event_ix("@pump", "@pump_event_auth", "ev"),
    ]
    return Ix("@pump", SELL_ACCS, V("ix"), logs=("Program log: Instruction: Sell",), cu=21_000 + 991 * jitter,
              children=kids)


def wrap(ix: Ix, bot: str | None, fail: tuple | None) -> Ix:
    """Route ``ix`` through a trading bot's own program (a CPI), or mark it failing."""
    if bot is None:
        ix.fail = fail
        if fail:
            ix.logs = ()
        return ix
    accs = ("user",) + tuple(a for a in ix.accs if a != "user") + (ix.prog,)
    return Ix("@" + bot, accs, V("botix"), cu=9_000, children=[ix], fail=fail)


def _tail(spec_ixs: list, tip: bool) -> None:
    if tip:
        spec_ixs.append(Ix("@system", ("user", "tip"), V("t_tip")))


class PumpTx:
    """Builds pump.fun transactions into an :class:`Encoder`.

    ``st`` is the sender's style: (v0, cu_limit, cu_price, jitter, bot program or None);
    ``tip`` an optional (Jito tip account, lamports).
    """

    def __init__(self, enc: Encoder) -> None:
        self.enc = enc
        self.fee_a = enc.consts["pump_fee"]
        self.fee_b = enc.consts["pump_fee2"]

    # ---- buy ------------------------------------------------------------------------------------

    def buy(self, w: Wallet, tok: Token, q: Quote, max_sol: int, ts: int, fail: int, st: tuple,
            tip: tuple | None = None) -> tuple[bytes, str]:
        """A buy of ``q.tokens`` (or a failed attempt); returns (signature, ix path of the swap)."""
        enc = self.enc
        v0, cu_limit, cu_price, jitter, bot = st
        au = w.ata(tok)
        ata_new = au.lam == 0
        uva_new = not w.uva_ok
        completes = not fail and q.tokens == tok.curve.real_token
        key = ("buy", v0, fail, ata_new, uva_new, completes, bot, tip is not None, cu_limit, jitter)
        sh = enc._shapes.get(key) or enc.shape(key, self._buy_spec, v0, fail, ata_new, uva_new, completes, bot, tip,
                                               cu_limit, jitter, structure=key[:-2])
        user = w.acct
        full = sh.accounts((user, tok.mint, tok.bc, tok.abc, au, tok.cv, w.uva, tok.bcv2, tip[0] if tip else None))
        pre = sh.snapshot(full)
        fee = 5_000 + -(-cu_limit * cu_price // 1_000_000)
        ix = _BUY_IX(BUY, q.tokens, max_sol, 1)
        if fail:
            user.add_lam(-fee)
            vals = {"cup": _price(3, cu_price), "ix": ix}
            if bot:
                vals["botix"] = _SELL_IX(BOT_SWAP, q.tokens, max_sol)
            if ata_new:
                vals["ata_init"] = b"\x12" + user.pk
            return enc.finish(sh, full, pre, vals, fee), sh.swap_path
        c = tok.curve
        mcap = c.virtual_sol * c.supply // c.virtual_token
        c.apply_buy(q)
        sol, pfee, cfee = q.sol, q.fee, q.creator_fee
        half = pfee // 2
        cost = fee + sol + pfee + cfee
        vals = {"cup": _price(3, cu_price), "ix": ix, "getfees": _GETFEES(GET_FEES, 1, mcap, 0),
                "xfer": _checked(12, q.tokens, 6),
                "t_creator": _sys(2, cfee), "t_curve": _sys(2, sol), "t_fee2": _sys(2, pfee - half),
                "t_fee": _sys(2, half)}
        if bot:
            vals["botix"] = _SELL_IX(BOT_SWAP, q.tokens, max_sol)
        if ata_new:
            vals["ata_init"] = b"\x12" + user.pk
            cost += T22_RENT
            au.set_lam(T22_RENT)
        if uva_new:
            cost += UVA_RENT
            w.uva.add_lam(UVA_RENT)
            w.uva_ok = True
        if tip:
            cost += tip[1]
            tip[0].add_lam(tip[1])
            vals["t_tip"] = _sys(2, tip[1])
        user.add_lam(-cost)
        if au.tok == 0:
            tok.holders.append(w)
        au.tok += q.tokens
        au.tbm = None
        abc = tok.abc
        abc.tok -= q.tokens
        abc.tbm = None
        bc = tok.bc
        bc.add_lam(sol)
        e = self._fees_and_event(w, tok, q, user, ts, c, sol, cfee, pfee, half, True)
        vals["ev"] = EVENT_TAG + e
        vals["log_ev"] = b"Program data: " + _b2a(e, newline=False)
        if completes:
            e2 = ev.complete_event(user.pk, tok.mint.pk, tok.bc.pk, ts)
            vals["ev2"] = EVENT_TAG + e2
            vals["log_ev2"] = b"Program data: " + _b2a(e2, newline=False)
        return enc.finish(sh, full, pre, vals, fee), sh.swap_path

    def _fees_and_event(self, w, tok, q, user, ts, c, sol, cfee, pfee, half, is_buy) -> bytes:
        """Credit the creator vault and the two fee recipients, then the TradeEvent payload."""
        cv = tok.cv
        cv.add_lam(cfee)
        fa, fb = self.fee_a, self.fee_b
        fa.add_lam(half)
        fb.add_lam(pfee - half)
        w.volume += sol
        return ev.trade_event(tok.mint.pk, sol, q.tokens, is_buy, user.pk, ts, c.virtual_sol, c.virtual_token,
                              c.real_sol, c.real_token, fa.pk, FEE_BPS, pfee, tok.dev.acct.pk,
                              CREATOR_FEE_BPS, cfee, w.volume)

    def _buy_spec(self, v0, fail, ata_new, uva_new, completes, bot, tip, cu_limit, jitter) -> Spec:
        ixs = [cu_limit_ix(cu_limit), cu_price_ix(), ata_ix("user", "au", "user", "mint", True, ata_new, "ata_init")]
        f = fail_spec(fail, PUMP_ID, bot is not None, "Buy", ERRORS) if fail else None
        ixs.append(wrap(buy_ix(uva_new, completes, jitter), bot, f))
        _tail(ixs, tip)
        toks = ("abc",) if ata_new else ("abc", "au")
        writable = {"user", "au", "bc", "abc", "cv", "uva", "@pump_fee", "@pump_fee2", "tip"}
        spec = Spec(("user",), frozenset(writable), ixs, cu_limit, toks, toks if fail else ("abc", "au"),
                    self.enc.table_spec("pump") if v0 else None, roles=ROLES)
        return _with_path(spec, 3, bot)

    # ---- sell -----------------------------------------------------------------------------------

    def sell(self, w: Wallet, tok: Token, q: Quote, min_sol: int, ts: int, fail: int, st: tuple,
             tip: tuple | None = None) -> tuple[bytes, str]:
        enc = self.enc
        v0, cu_limit, cu_price, jitter, bot = st
        au = w.ata(tok)
        key = ("sell", v0, fail, bot, tip is not None, cu_limit, jitter)
        sh = enc._shapes.get(key) or enc.shape(key, self._sell_spec, v0, fail, bot, tip, cu_limit, jitter,
                                               structure=key[:-2])
        user = w.acct
        full = sh.accounts((user, tok.mint, tok.bc, tok.abc, au, tok.cv, None, tok.bcv2, tip[0] if tip else None))
        pre = sh.snapshot(full)
        fee = 5_000 + -(-cu_limit * cu_price // 1_000_000)
        vals = {"cup": _price(3, cu_price), "ix": _SELL_IX(SELL, q.tokens, min_sol)}
        if bot:
            vals["botix"] = _SELL_IX(BOT_SWAP, q.tokens, min_sol)
        if fail:
            user.add_lam(-fee)
            return enc.finish(sh, full, pre, vals, fee), sh.swap_path
        c = tok.curve
        mcap = c.virtual_sol * c.supply // c.virtual_token
        c.apply_sell(q)
        sol, pfee, cfee = q.sol, q.fee, q.creator_fee
        half = pfee // 2
        gain = sol - pfee - cfee - fee
        if tip:
            gain -= tip[1]
            tip[0].add_lam(tip[1])
            vals["t_tip"] = _sys(2, tip[1])
        user.add_lam(gain)
        au.tok -= q.tokens
        au.tbm = None
        abc = tok.abc
        abc.tok += q.tokens
        abc.tbm = None
        bc = tok.bc
        bc.add_lam(-sol)
        e = self._fees_and_event(w, tok, q, user, ts, c, sol, cfee, pfee, half, False)
        vals["getfees"] = _GETFEES(GET_FEES, 1, mcap, 0)
        vals["xfer"] = _checked(12, q.tokens, 6)
        vals["ev"] = EVENT_TAG + e
        vals["log_ev"] = b"Program data: " + _b2a(e, newline=False)
        return enc.finish(sh, full, pre, vals, fee), sh.swap_path

    def _sell_spec(self, v0, fail, bot, tip, cu_limit, jitter) -> Spec:
        ixs = [cu_limit_ix(cu_limit), cu_price_ix()]
        f = fail_spec(fail, PUMP_ID, bot is not None, "Sell", ERRORS) if fail else None
        ixs.append(wrap(sell_ix(jitter), bot, f))
        _tail(ixs, tip)
        writable = {"user", "au", "bc", "abc", "cv", "@pump_fee", "@pump_fee2", "tip"}
        spec = Spec(("user",), frozenset(writable), ixs, cu_limit, ("abc", "au"), ("abc", "au"),
                    self.enc.table_spec("pump") if v0 else None, roles=ROLES)
        return _with_path(spec, 2, bot)


def _with_path(spec: Spec, outer: int | None, bot: str | None) -> Spec:
    spec.swap_path = None if outer is None else (f"{outer}.0" if bot else str(outer))
    return spec


__all__ = ["PumpTx", "BUY", "SELL", "buy_ix", "fail_spec", "wrap"]
