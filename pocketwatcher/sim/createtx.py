"""pump.fun launches: ``create_v2`` of a Token-2022 mint, usually with the dev's first buy.

Mirrors real 2026 launches (``4WSwDTuv…`` in shared/fixtures): the create instruction
CPIs the System Program (mint and curve accounts), Token-2022 (metadata pointer, mint,
token metadata, mint of the 1 B supply to the curve's account, authority revoked), the
ATA program for the curve's token account, and emits CreateEvent; the dev's ATA
creation and buy follow in the same transaction, signed by the dev and the mint keypair.
"""

from __future__ import annotations

import struct

from . import events as ev
from .accounts import T22_RENT, rent
from .curve import CREATOR_FEE_BPS, FEE_BPS, Quote
from .encoder import (
    TOKEN22_PK,
    Encoder,
    ata_ix,
    create_account,
    cu_limit_ix,
    cu_price_data,
    cu_price_ix,
    system_transfer,
    transfer_checked,
    tx_fee,
)
from .entities import CURVE_RENT, CURVE_SIZE, UVA_RENT, Token, Wallet
from .pumptx import _BUY_IX, _GETFEES, BUY, GET_FEES, _event_ix, _tail, _with_path, buy_ix
from .shape import Ix, Spec, V

CREATE_V2 = bytes([214, 144, 76, 236, 95, 139, 49, 180])
_q = struct.Struct("<Q").pack


def mint_rents(tok: Token) -> tuple[int, int]:
    """(the mint's rent, the top-up part of it). The mint is created at 234 bytes, then
    topped up for its metadata (a 4-byte TLV header, 80 bytes of fields and the three
    strings): MrD2… tops up 894,080 for 410 bytes."""
    top_up = 5_080 * (84 + len(tok.name) + len(tok.symbol) + len(tok.uri))
    return rent(234) + top_up, top_up


class CreateTx:
    def __init__(self, enc: Encoder) -> None:
        self.enc = enc

    def create(self, w: Wallet, tok: Token, q: Quote | None, max_sol: int, ts: int, *, v0: bool = False,
               tip: tuple | None = None, cu_limit: int = 400_000, cu_price: int = 200_000) -> tuple[bytes, str]:
        """``create_v2`` of ``tok`` by ``w``, with the dev's first buy in the same transaction."""
        enc = self.enc
        uva_new = not w.uva_ok
        # the metadata strings are the only variable-length values: their lengths are part of the shape
        key = ("create", v0, q is not None, uva_new, tip is not None, cu_limit, len(tok.name.encode()),
               len(tok.symbol.encode()), len(tok.uri))
        sh = enc.shape(key, self._create_spec, v0, q is not None, uva_new, tip, cu_limit, structure=key[:-4])
        au = w.ata(tok)
        full = sh.accounts((w.acct, tok.mint, tok.bc, tok.abc, au, tok.cv, w.uva, tok.bcv2, tok.mstate, tok.mvault,
                            tip[0] if tip else None))
        pre = sh.snapshot(full)
        fee = tx_fee(2, cu_limit, cu_price)
        user = w.acct
        mint_rent, top_up = mint_rents(tok)
        c = tok.curve
        meta = _s(tok.name) + _s(tok.symbol) + _s(tok.uri)
        e = ev.create_event(tok.name, tok.symbol, tok.uri, tok.mint.pk, tok.bc.pk, user.pk, user.pk, ts,
                            c.virtual_token, c.virtual_sol, c.real_token, c.supply, TOKEN22_PK)
        vals = {
            "cup": cu_price_data(cu_price),
            "cix": CREATE_V2 + meta + user.pk + b"\x00\x00",
            "c_mint": create_account(mint_rent - top_up, 234, TOKEN22_PK),
            "c_mptr": b"\x27\x00" + enc.consts["pump_mint_auth"].pk + tok.mint.pk,
            "c_abc_init": b"\x12" + tok.bc.pk,
            "c_topup": system_transfer(top_up),
            "c_meta": bytes.fromhex("d2e11ea258b84d8d") + meta,
            "cev": ev.cpi(e), "log_cev": ev.log(e),
        }
        cost = fee + mint_rent + CURVE_RENT + T22_RENT
        tok.mint.add_lam(mint_rent)
        tok.bc.add_lam(CURVE_RENT)
        tok.abc.add_lam(T22_RENT)
        tok.abc.add_tok(c.supply)
        if tip:
            cost += tip[1]
            tip[0].add_lam(tip[1])
            vals["t_tip"] = system_transfer(tip[1])
        user.add_lam(-cost)
        if q is not None:  # the dev buy, exactly as in buy()
            mcap = c.market_cap()
            c.apply_buy(q)
            user.add_lam(-(q.total + T22_RENT + (UVA_RENT if uva_new else 0)))
            au.add_lam(T22_RENT)
            if uva_new:
                w.uva.add_lam(UVA_RENT)
                w.uva_ok = True
            tok.add_holder(w)
            au.add_tok(q.tokens)
            tok.abc.add_tok(-q.tokens)
            tok.bc.add_lam(q.sol)
            tok.cv.add_lam(q.creator_fee)
            half = q.fee // 2
            enc.consts["pump_fee"].add_lam(half)
            enc.consts["pump_fee2"].add_lam(q.fee - half)
            w.volume += q.sol
            te = ev.trade_event(tok.mint.pk, q.sol, q.tokens, True, user.pk, ts, c.virtual_sol, c.virtual_token,
                                c.real_sol, c.real_token, enc.consts["pump_fee"].pk, FEE_BPS, q.fee, user.pk,
                                CREATOR_FEE_BPS, q.creator_fee, w.volume)
            vals.update(ix=_BUY_IX(BUY, q.tokens, max_sol, 1), ata_init=b"\x12" + user.pk,
                        getfees=_GETFEES(GET_FEES, 1, mcap, 0), xfer=transfer_checked(q.tokens, 6),
                        t_creator=system_transfer(q.creator_fee), t_curve=system_transfer(q.sol),
                        t_fee2=system_transfer(q.fee - half), t_fee=system_transfer(half), ev=ev.cpi(te),
                        log_ev=ev.log(te))
        return enc.finish(sh, full, pre, vals, fee), sh.swap_path

    def _create_spec(self, v0, dev_buy, uva_new, tip, cu_limit) -> Spec:
        t22 = "@token22"
        auth = "@pump_mint_auth"
        kids = [
            Ix("@system", ("user", "mint"), V("c_mint")),
            Ix(t22, ("mint",), V("c_mptr"), logs=("Program log: MetadataPointerInstruction::Initialize",), cu=925),
            Ix(t22, ("mint",), b"\x14\x06" + self.enc.consts["pump_mint_auth"].pk + b"\x00",
               logs=("Program log: Instruction: InitializeMint2",), cu=1_772),
            Ix("@system", ("user", "bc"), create_account(CURVE_RENT, CURVE_SIZE, self.enc.consts["pump"].pk)),
            _abc_ata(),
            Ix("@system", ("user", "mint"), V("c_topup")),
            Ix(t22, ("mint", auth, "mint", auth), V("c_meta"),
               logs=("Program log: TokenMetadataInstruction: Initialize",), cu=3_547),
            Ix(t22, ("mint", auth), bytes.fromhex("d7e4a6e45464567b") + bytes(32),
               logs=("Program log: TokenMetadataInstruction: UpdateAuthority",), cu=3_737),
            Ix(t22, ("mint", "abc", auth), b"\x07" + _q(1_000_000_000_000_000),
               logs=("Program log: Instruction: MintTo",), cu=1_714),
            Ix(t22, ("mint", auth), b"\x06\x00\x00", logs=("Program log: Instruction: SetAuthority",), cu=1_044),
            _event_ix("@pump", "@pump_event_auth", "cev"),
        ]
        create = Ix("@pump", ("mint", auth, "bc", "abc", "@pump_global", "user", "@system", t22, "@atoken",
                              "@mayhem", "@mayhem_params", "@mayhem_vault", "mstate", "mvault",
                              "@pump_event_auth", "@pump"), V("cix"),
                    logs=("Program log: Instruction: CreateV2",), cu=38_000, children=kids)
        ixs = [cu_limit_ix(cu_limit), cu_price_ix(), create]
        if dev_buy:
            ixs += [ata_ix("user", "au", "user", "mint", True, True, "ata_init"), buy_ix(uva_new, False, 0)]
        _tail(ixs, tip)
        writable = {"user", "mint", "bc", "abc", "au", "cv", "uva", "@pump_fee", "@pump_fee2", "tip", "@mayhem",
                    "@mayhem_vault", "mstate", "mvault"}
        post = ("abc", "au") if dev_buy else ("abc",)
        spec = Spec(("user", "mint"), frozenset(writable), ixs, cu_limit, (), post,
                    self.enc.table_spec("pump") if v0 else None,
                    roles=("user", "mint", "bc", "abc", "au", "cv", "uva", "bcv2", "mstate", "mvault", "tip"))
        return _with_path(spec, 4 if dev_buy else None, None)


def _abc_ata() -> Ix:
    """The curve's token account, created by pump.fun through the ATA program (nested CPIs)."""
    ix = ata_ix("user", "abc", "bc", "mint", True, True, "c_abc_init")
    ix.data = b"\x00"
    ix.logs = ("Program log: Create",)
    return ix


def _s(s: str) -> bytes:
    b = s.encode()
    return struct.pack("<I", len(b)) + b
