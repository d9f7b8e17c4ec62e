"""Accounts of the simulated chain: keys, lamports and token balances, with their wire forms cached.

Every account the simulator touches is an :class:`Account` that carries, next to its
state, the pre-encoded protobuf pieces a transaction needs (the key field, the varint of
its lamports, the body of its ``TokenBalance``). A transaction's *pre* values are then
free (they are the previous transaction's *post* values) and only changed accounts are
re-encoded — that is most of why the simulator is fast.

Keys are deterministic per seed: ``sha256(domain || seed || label)``. Well-known mainnet
accounts (programs, pump.fun globals, fee recipients, Jito tip accounts) keep their real
addresses. Mints are made to end in ``pump`` like most pump.fun mints, by arithmetic (the
last four base58 digits are the value mod 58**4), not by a vanity search; none of the
derived keys are real PDAs or on-curve points, and signatures do not verify.
"""

from __future__ import annotations

import hashlib

from solders.pubkey import Pubkey

from .wire import _BD, _DEC, _POW, _V, _VC, ui_token_amount, varint


def rent(size: int) -> int:
    """Rent-exempt minimum of a ``size``-byte account at 2026 mainnet's rate: 5,080 lamports
    per (size + 128). Checked on the Oct 2026 fixtures (MrD2…): a Token-2022 ATA 1,513,840,
    a volume accumulator (137 bytes) 1,346,200, a bonding curve (141) 1,366,520, a mint with
    its metadata (410) 2,733,040, an empty account 650,240 (the old rate was 6,960)."""
    return (size + 128) * 5_080


SPL_RENT = rent(165)  # SPL token account
T22_RENT = rent(170)  # Token-2022 account (ImmutableOwner)
WALLET_RENT = rent(0)


def b58(pk: bytes) -> str:
    return str(Pubkey.from_bytes(pk))


def unb58(s: str) -> bytes:
    return bytes(Pubkey.from_string(s))


class Account:
    """One account: its key and current lamports / token amount, with cached wire pieces.

    ``kf`` is the ``Message.account_keys`` field. ``lamv`` is the varint of ``lam``, kept in
    step by :meth:`set_lam` / :meth:`add_lam` (the only ways to change ``lam``), so that a
    shape packs a transaction's balances without a Python loop. For token accounts, ``tbm``
    (the ``TokenBalance`` body after ``account_index``) is a cache that hot code invalidates
    by setting it to None after changing ``tok``; :meth:`tb` rebuilds it when a transaction
    is encoded.
    """

    __slots__ = ("pk", "_b58", "kf", "lam", "lamv", "tok", "tbm", "tbl", "_tb_head", "_tb_tail", "decimals",
                 "fixed", "_as_mint", "_as_owner")

    def __init__(self, pk: bytes, lam: int = 0) -> None:
        self.pk = pk
        self._b58 = None
        self.kf = b"\x12\x20" + pk
        self.lam = 0
        self.lamv = b"\x00"
        if lam:
            self.set_lam(lam)
        self.tok = 0
        self.tbm = self.tbl = None
        self._tb_head = self._tb_tail = b""
        self._as_mint = self._as_owner = None  # this account's TokenBalance pieces as a mint / an owner
        self.decimals = 0
        self.fixed = False  # lamports never change (programs, sysvars, configs): shapes may bake them in

    @property
    def b58(self) -> str:
        s = self._b58
        if s is None:
            s = self._b58 = b58(self.pk)
        return s

    def tb(self) -> bytes:
        """Rebuild ``tbm``, and ``tbl``: the length prefix of a ``TokenBalance`` field of ``tbm``
        behind a 2-byte ``account_index`` field (see :func:`plans.token_fields`)."""
        amount = self.tok
        d = self.decimals
        a = b"%d" % amount
        la = len(a)
        if amount > 0 and la > d > 0:
            # ui_token_amount(amount, d, head, tail) for a whole part of at least one digit,
            # inlined (2-5 token balances change per transaction): same bytes, one join
            f = a[-d:].rstrip(b"0")
            u = a[:-d] + b"." + f if f else a[:-d]
            lu = len(u)
            v = b"".join((self._tb_head, b"\x1a", _V[15 + la + lu], _BD(9, amount / _POW[d]), _DEC[d], _V[la], a,
                          b"\x22", _V[lu], u, self._tb_tail))
        elif amount < 0:
            raise ValueError(f"{self.b58}: token amount went negative ({amount})")
        else:
            v = ui_token_amount(amount, d, self._tb_head, self._tb_tail)
        self.tbm = v
        self.tbl = _V[2 + len(v)]
        return v

    def set_lam(self, lam: int) -> None:
        if lam < 0:
            raise ValueError(f"{self.b58}: lamports went negative ({lam})")
        self.lam = lam
        self.lamv = varint(lam)

    def add_lam(self, d: int) -> None:
        lam = self.lam + d
        # varint(lam) without the call, for the ranges trades hit: most wallets and vaults,
        # rent-sized accounts (token accounts, fee recipient 2), the big fee recipients
        if 268_435_456 <= lam < 4_398_046_511_104:
            self.lamv = _VC[lam & 16383] + _VC[(lam >> 14) & 16383] + _V[lam >> 28]
        elif 16384 <= lam < 268_435_456:
            self.lamv = _VC[lam & 16383] + _V[lam >> 14]
        elif 4_398_046_511_104 <= lam < 72_057_594_037_927_936:
            self.lamv = _VC[lam & 16383] + _VC[(lam >> 14) & 16383] + _VC[(lam >> 28) & 16383] + _V[lam >> 42]
        elif lam < 0:
            raise ValueError(f"{self.b58}: lamports went negative ({lam})")
        else:
            self.lamv = varint(lam)
        self.lam = lam

    def make_token(self, mint: Account, owner: Account, program: str, decimals: int) -> Account:
        """Turn this account into a token account of ``mint`` owned by ``owner``."""
        head = mint._as_mint
        if head is None:
            m = mint.b58.encode()
            head = mint._as_mint = b"\x12" + _V[len(m)] + m
        tail = owner._as_owner
        if tail is None or tail[0] != program:
            o = owner.b58.encode()
            p = program.encode()
            tail = owner._as_owner = (program, b"\x22" + _V[len(o)] + o + b"\x2a" + _V[len(p)] + p)
        self._tb_head = head
        self._tb_tail = tail[1]
        self.decimals = decimals
        self.tbm = None
        return self

    def set_tok(self, amount: int) -> None:
        self.tok = amount
        self.tbm = None

    def add_tok(self, d: int) -> None:
        self.tok += d
        self.tbm = None

    def __repr__(self) -> str:
        return f"Account({self.b58}, lam={self.lam}, tok={self.tok})"


class KeyFactory:
    """Deterministic keys for one seed."""

    def __init__(self, seed: int) -> None:
        self._prefix = b"pocketwatcher-sim/" + seed.to_bytes(8, "little", signed=True) + b"/"

    def key(self, label: str | bytes) -> bytes:
        if isinstance(label, str):
            label = label.encode()
        return hashlib.sha256(self._prefix + label).digest()

    def account(self, label: str | bytes, lam: int = 0) -> Account:
        return Account(self.key(label), lam)

    def mint_key(self, label: str) -> bytes:
        return pump_suffix(self.key(label))


_ALPHABET = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_M4 = 58**4
_PUMP = 0
for _c in "pump":
    _PUMP = _PUMP * 58 + _ALPHABET.index(_c)


def pump_suffix(pk: bytes) -> bytes:
    """The nearest 32-byte value whose base58 form ends in ``pump``."""
    n = int.from_bytes(pk, "big")
    n = n - n % _M4 + _PUMP
    if n >= 1 << 256:
        n -= _M4
    return n.to_bytes(32, "big")


def derived(owner: bytes, *parts: bytes) -> bytes:
    """Seed-independent stand-in for a PDA/ATA address (the same inputs give the same key)."""
    return hashlib.sha256(b"pw-derived/" + owner + b"/".join(parts)).digest()


# ---- well-known mainnet accounts (real addresses) ----------------------------------------------

COMPUTE_BUDGET = "ComputeBudget111111111111111111111111111111"
SYSTEM = "11111111111111111111111111111111"
TOKEN = "TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA"
TOKEN22 = "TokenzQdBNbLqP5VEhdkAS6EPFLC1PHnBqCXEpPxuEb"
ATOKEN = "ATokenGPvbdGVxr1b2hvZbsiqW5xWH25efTNsLJA8knL"
WSOL = "So11111111111111111111111111111111111111112"
PUMP = "6EF8rrecthR5Dkzon8Nwu78hRvfCKubJ14M5uBEwF6P"
PAMM = "pAMMBay6oceH9fJKBRHGP5D4bD4sWpmSwMn52FMfXEA"
PFEE = "pfeeUxB6jkeY1Hxd7CsFCAjcbHA9rWtchMGdZ6VojVZ"

# name -> (address, lamports). Addresses marked "derived" were not confirmed from a primary
# source and are simulator stand-ins.
_KNOWN = {
    "cb": (COMPUTE_BUDGET, 1),
    "system": (SYSTEM, 1),
    "token": (TOKEN, 934_087_680),
    "token22": (TOKEN22, 1_141_440),
    "atoken": (ATOKEN, 731_913_600),
    "wsol": (WSOL, 1_055_700_996_787),
    "rent": ("SysvarRent111111111111111111111111111111111", 1_009_200),
    "pump": (PUMP, 1_141_440),
    "pump_global": ("4wTV1YmiEkRvAtNtsSGPtUrqRYQMe5SKy2uB4Jjaxnjf", 4_089_837_831),
    "pump_event_auth": ("Ce6TQqeHC9p8KetsN6JsjHK7UTZk7nasjjnr7XxXp9F1", 168_261_611),
    "pump_fee": ("62qc2CNXwrYqQScmEdiZFFAnJR262PxWEuNQtxfafNgV", 17_096_070_972_323),
    "pump_fee2": ("GXPFM2caqTtQYC2cJ5yJRi9VDkpsYZXzYdwYpGnLmtDL", 8_548_973),
    "pump_mint_auth": ("TSLvdd1pWpHVjahSpsvCXUbgwsL3JAcvokwaKt1eokM", 1_020_235_880),
    "pump_gva": ("Hq2wp8uJ9jCPsYgNHex8RtqdvMPfVGoYwjvF1ATiwn2Y", 17_016_138),
    "pump_fee_config": ("8Wf5TiAheLUqBrKXeYg2JtAFFMWtKdG2BSFgqUcPVwTt", 37_292_293),
    "pfee": (PFEE, 6_046_721),
    "mayhem": ("MAyhSmzXzV1pTf7LsNkrNwkWKTo4ougAJ1PPg47MD4e", 11_149_834),
    "mayhem_params": ("13ec7XdrjF3h3YcqBTFDSReRcUFwbCnJaAQspM4j6DDJ", 3_104_160),
    "mayhem_vault": ("BwWK17cbHxwWBKZkUYvzxLcNQ1YVyaFezduWbtm2de6s", 59_566_544_074_518),
    "keeper": ("39azUYFWPz3VHgKCf3VChUwbpURdCHRxjWVowf5jUJjg", 3_271_944_562_937),
    "pamm": (PAMM, 1_178_687_650),
    "pamm_config": ("ADyA8hdefvWN2dbGGWFotbzWxrAvLW83WG6QCVXvJKqw", 4_454_454),
    "pamm_event_auth": ("GS4CU59F31iL7aR2Q8zVS8DRrcRnXX1yjQ66TqNVQnaR", 4_641_093),
    "pamm_fee": ("7VtfL8fvgNfhz17qKRMjzQEXgbdpnHHHQRh54R9jP2RJ", 12_128_912_386_297),
    "pamm_fee_ata": ("7GFUN3bWzJMKMRZ34JLsvcqdssDbXnp589SiE33KVwcC", 923_491_601_057),
    "pamm_fee_config": ("5PHirr8joyTMp9JMm6nW7hNDVyEYdkzDqazxPD7RaTjx", 33_103_977),
}
_DERIVED = ("pamm_gva",)  # simulator stand-ins
JITO_TIPS = (
    "96gYZGLnJYVFmbjzopPSU6QiEV5fGqZNyN9nmNhvrZU5", "HFqU5x63VTqvQss8hp11i4wVV8bD44PvwucfZ2bU7gRe",
    "Cw8CFyM9FkoMi7K7Crf6HNQqf4uEMzpKw6QNghXLvLkY", "ADaUMid9yfUytqMBgopwjb2DTLSokTSzL1zt6iGPaS49",
    "DfXygSm4jCyNCybVYYK6DwvWqjKee8pbDmJGcLWNDXjh", "ADuUkR4vqLUMWXxW9gh6D6L8pMSawimctcNZ5pGwDcEt",
    "DttWaMuVvTiduZRnguLF7jNxTgiMBZ1hyAumKUiL2KRL", "3AVi9Tg9Uo68tJfuvoKvqKNWKkC5wPdSSdeBnizKZ6jT",
)


_MUTABLE = {"pump_fee", "pump_fee2", "pamm_fee_ata", "keeper"}  # the well-known accounts trades pay into


def known_accounts() -> dict[str, Account]:
    """A fresh set of the well-known accounts (their lamports are state, so one set per run)."""
    out = {name: Account(unb58(addr), lam) for name, (addr, lam) in _KNOWN.items()}
    for name, acct in out.items():
        acct.fixed = name not in _MUTABLE
    for name in _DERIVED:
        out[name] = Account(derived(b"known", name.encode()), 2_000_000)
    for i, addr in enumerate(JITO_TIPS):
        out[f"tip{i}"] = Account(unb58(addr), 1_000_000_000 + i)
    fee_ata = out["pamm_fee_ata"]
    fee_ata.make_token(out["wsol"], out["pamm_fee"], TOKEN, 9).set_tok(fee_ata.lam - SPL_RENT)
    return out
