"""SOL transfers between wallets: how multi-wallet actors fund the wallets they are about to use.

On mainnet a sniper, bundler or serial dev sends SOL from one common wallet to fresh
wallets seconds to minutes before they trade; the transfers are in the stream (and give
those wallets away). A top-level System Program transfer gives no swap to any parser.
"""

from __future__ import annotations

from .encoder import Encoder, cu_limit_ix, cu_price_data, cu_price_ix, system_transfer, tx_fee
from .entities import Wallet
from .shape import Ix, Spec, V


class TransferTx:
    def __init__(self, enc: Encoder) -> None:
        self.enc = enc

    def fund(self, src: Wallet, dst: Wallet, lamports: int, *, cu_price: int = 50_000) -> bytes:
        enc = self.enc
        sh = enc.shape(("fund",), self._spec)
        full = sh.accounts((src.acct, dst.acct))
        pre = sh.snapshot(full)
        fee = tx_fee(1, 1_000, cu_price)
        src.acct.add_lam(-(lamports + fee))
        dst.acct.add_lam(lamports)
        return enc.finish(sh, full, pre, {"cup": cu_price_data(cu_price), "t": system_transfer(lamports)}, fee)

    @staticmethod
    def _spec() -> Spec:
        ixs = [cu_limit_ix(1_000), cu_price_ix(), Ix("@system", ("src", "dst"), V("t"))]
        return Spec(("src",), frozenset({"src", "dst"}), ixs, 1_000, roles=("src", "dst"))
