"""The encoding context shared by every transaction builder.

Holds the well-known accounts, the simulated address lookup tables, the cache of
compiled :class:`~pocketwatcher.sim.shape.Shape` objects (keyed by transaction variant),
the deterministic signature stream, and the slot's output: each transaction's
``SubscribeUpdateTransactionInfo`` body (without its index), the market time it was sent at
and which ones are bundled behind the previous one. The builders (``createtx``, ``pumptx``,
``pumpswaptx``, ``transfertx``) ask it for a shape, change account state, and call
:meth:`Encoder.finish`; the stream merger (:mod:`pocketwatcher.sim.stream`) places them in
their block.
"""

from __future__ import annotations

import random
import struct
from collections.abc import Callable

from .accounts import SPL_RENT, T22_RENT, TOKEN, TOKEN22, Account, derived, known_accounts, unb58
from .shape import Ix, Shape, Spec, V

FEE_PER_SIGNATURE = 5_000
TOKEN_PK = unb58(TOKEN)
TOKEN22_PK = unb58(TOKEN22)

# Address lookup tables: a fixed table per program family, holding its constant accounts.
TABLES = {
    "pump": ("pump_global", "pump_event_auth", "pump_fee", "pump_fee2", "pump_gva", "pump_fee_config", "pfee",
             "system", "token22", "atoken", "pump_mint_auth", "mayhem", "mayhem_params", "mayhem_vault", "rent",
             "token", "wsol", "pump"),
    "pumpswap": ("pamm_config", "pamm_event_auth", "pamm_fee", "pamm_fee_ata", "pamm_gva", "pamm_fee_config",
                 "pfee", "wsol", "token", "token22", "system", "atoken", "pamm"),
}

_u32 = struct.Struct("<I").pack
_u64 = struct.Struct("<Q").pack
_sys = struct.Struct("<IQ").pack
_checked = struct.Struct("<BQB").pack
_price = struct.Struct("<BQ").pack


def system_transfer(lamports: int) -> bytes:
    return _sys(2, lamports)


def create_account(lamports: int, space: int, owner: bytes) -> bytes:
    return b"\x00\x00\x00\x00" + _u64(lamports) + _u64(space) + owner


def transfer_checked(amount: int, decimals: int) -> bytes:
    return _checked(12, amount, decimals)


def cu_limit_ix(limit: int) -> Ix:
    return Ix("@cb", (), b"\x02" + _u32(limit))


def cu_price_ix() -> Ix:
    return Ix("@cb", (), V("cup"))


def cu_price_data(micro_lamports: int) -> bytes:
    return _price(3, micro_lamports)


# SPL Token's compute units in Oct 2026 (p-token; the fixtures show 37-229 CU and no
# "Instruction:" logs): GetAccountDataSize, InitializeImmutableOwner, InitializeAccount3
SPL_TOKEN_CU = (179, 37, 229)


def ata_ix(payer: str, ata: str, owner: str, mint: str, t22: bool, new: bool, init_var: str) -> Ix:
    """ATA ``CreateIdempotent``; with the account-creation CPIs when the account is new."""
    prog = "@token22" if t22 else "@token"
    kids = []
    if new:
        size, rent, ret = (170, T22_RENT, "qgAAAAAAAAA=") if t22 else (165, SPL_RENT, "pQAAAAAAAAA=")
        if t22:
            logs = [(f"Program log: Instruction: {n}",) for n in ("GetAccountDataSize", "InitializeImmutableOwner",
                                                                  "InitializeAccount3")]
            cus = (1523, 736, 2153)
        else:  # SPL Token in 2026 (p-token) logs no instruction names and costs a few hundred CU
            logs, cus = [(), (), ()], SPL_TOKEN_CU
        kids = [
            Ix(prog, (mint,), b"\x15\x07\x00", logs=logs[0], cu=cus[0], ret=ret),
            Ix("@system", (payer, ata), create_account(rent, size, TOKEN22_PK if t22 else TOKEN_PK)),
            Ix(prog, (ata,), b"\x16", pre=("Program log: Initialize the associated token account",),
               logs=logs[1], cu=cus[1]),
            Ix(prog, (ata, mint), V(init_var), logs=logs[2], cu=cus[2]),
        ]
    return Ix("@atoken", (payer, ata, owner, mint, "@system", prog), b"\x01",
              logs=("Program log: CreateIdempotent",), cu=12_640 if new else 4_338, children=kids)


class Encoder:
    def __init__(self, sig_seed: int) -> None:
        self.consts: dict[str, Account] = known_accounts()
        self.tables = {name: Account(derived(b"alt", name.encode()), 1_113_600) for name in TABLES}
        self._shapes: dict[tuple, Shape] = {}
        self._structures: dict[tuple, Shape] = {}
        self.share_structures = True  # False compiles every shape from scratch (tests compare the two)
        self._sig = random.Random(sig_seed)
        self._sig_buf = b""
        self._sig_i = 0
        self.blockhash_f = b""
        self.now = 0.0  # market time of the transaction being built (set by Market.position)
        self.bundle_next = False  # it goes right behind the previous one (a bundle)
        self.out: list[bytes] = []  # this slot's transaction-info bodies
        self.times: list[float] = []  # their market times
        self.bundled: list[int] = []  # positions in ``out`` of those placed right behind the previous one
        self.transactions = 0
        self.failed = 0
        self.versioned = 0

    def add_const(self, name: str, account: Account, fixed: bool = True) -> None:
        account.fixed = fixed
        self.consts[name] = account

    def table_spec(self, *families: str) -> tuple:
        return tuple((self.tables[f], TABLES[f]) for f in families)

    def shape(self, key: tuple, make: Callable[..., Spec], *args, structure: tuple | None = None) -> Shape:
        """The compiled shape for ``key``, built from ``make(*args)`` the first time.

        Builders pass the spec function and its arguments rather than a closure: a lambda
        would turn every captured local of the (hot) builder into a cell variable. Keys
        that share a ``structure`` differ only in compute budget or value lengths: the
        first is compiled, the others are its :meth:`Shape.variant`.
        """
        sh = self._shapes.get(key)
        if sh is None:
            spec = make(*args)
            base = self._structures.get(structure) if structure is not None and self.share_structures else None
            if base is None:
                sh = Shape(spec, self.consts)
                if structure is not None:
                    self._structures[structure] = sh
            else:
                sh = base.variant(spec)
            self._shapes[key] = sh
        return sh

    @property
    def shapes(self) -> int:
        return len(self._shapes)

    def _draw(self) -> bytes:
        i = self._sig_i
        if i >= len(self._sig_buf):
            self._sig_buf = self._sig.randbytes(64 * 1024)
            i = 0
        self._sig_i = i + 64
        return self._sig_buf[i:i + 64]

    def finish(self, sh: Shape, full: list[Account], pre: tuple, vals: dict, fee: int) -> bytes:
        """Encode the transaction and add it to the slot's output; returns its 64-byte signature.

        Signatures are deterministic pseudo-random bytes, drawn in blocks of 1,024.
        """
        sig = self._draw()
        sig2 = self._draw() if sh.header[0] == 2 else None  # a create: the mint signs too
        if sh.fail_at is not None:
            self.failed += 1
        out = self.out
        if self.bundle_next:
            self.bundled.append(len(out))
            self.bundle_next = False
        out.append(sh.encode(full, pre, vals, sig, fee, self.blockhash_f, sig2))
        self.times.append(self.now)
        self.transactions += 1
        self.versioned += sh.versioned
        return sig


def tx_fee(num_signers: int, cu_limit: int, cu_price: int) -> int:
    """Base fee per signature plus the priority fee (µ-lamports per CU, rounded up)."""
    return FEE_PER_SIGNATURE * num_signers + -(-cu_limit * cu_price // 1_000_000)
