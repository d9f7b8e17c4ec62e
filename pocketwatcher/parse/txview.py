"""The normalized transaction view every decoder reads.

Both input shapes (JSON-RPC ``getTransaction`` in any encoding, and a Yellowstone
``SubscribeUpdateTransaction``) are turned into one ``TxView`` so that decoders are
written once and both paths give identical swaps by construction.

Account keys are the *full* list: static keys ++ loaded writable ++ loaded readonly.
Every index (instruction accounts, program ids, token-balance ``account_index``)
refers to that list. Instructions are kept in execution order: each top-level
instruction followed by its inner (CPI) instructions.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import based58


class TxError(ValueError):
    """Input that cannot be understood as a transaction; carries a short reason code."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


class Ix:
    """One executed instruction (top-level or CPI).

    ``outer`` is the top-level index; ``inner`` the position inside
    ``meta.innerInstructions[outer].instructions`` (None for a top-level one).
    ``height`` is the stack height (1 = top-level, 2 = first CPI level, ...);
    None when the source did not record it (old transactions).
    ``data`` may be given as the base58 text of a JSON-RPC transaction: it is decoded
    on first use, so instructions no decoder looks at cost nothing.
    """

    __slots__ = ("program", "accounts", "_data", "outer", "inner", "height")

    def __init__(self, program: int, accounts: bytes | list[int], data: bytes | str, outer: int,
                 inner: int | None, height: int | None) -> None:
        self.program = program
        self.accounts = accounts
        self._data = data
        self.outer = outer
        self.inner = inner
        self.height = height

    @property
    def data(self) -> bytes:
        d = self._data
        if d.__class__ is str:
            try:
                d = based58.b58decode(d.encode()) if d else b""
            except Exception as e:  # noqa: BLE001 - the library raises several types
                raise TxError("bad_base58", f"instruction {self.path} data") from e
            self._data = d
        return d

    @data.setter
    def data(self, value: bytes) -> None:
        self._data = value

    @property
    def path(self) -> str:
        return str(self.outer) if self.inner is None else f"{self.outer}.{self.inner}"

    def _key(self):
        return (self.program, list(self.accounts), bytes(self.data), self.outer, self.inner, self.height)

    def __eq__(self, other) -> bool:
        return isinstance(other, Ix) and self._key() == other._key()

    def __repr__(self) -> str:
        return (f"Ix(program={self.program}, accounts={self.accounts}, data={self.data!r}, "
                f"outer={self.outer}, inner={self.inner}, height={self.height})")


@dataclass(slots=True)
class TokenBal:
    mint: str
    owner: str | None
    amount: int
    decimals: int
    program: str | None


class LazyBalances(Mapping):
    """Token balances kept in their source form and converted to ``TokenBal`` on first read.

    The hot path (``tree.TokenInfo``) reads the few fields it needs straight from ``raw``
    (``kind`` says whether that is a protobuf repeated field or a list of RPC dicts);
    everything else sees an ordinary read-only mapping.
    """

    __slots__ = ("raw", "kind", "_convert", "_d")

    def __init__(self, raw, kind: str, convert) -> None:
        self.raw = raw
        self.kind = kind
        self._convert = convert
        self._d: dict[int, TokenBal] | None = None

    def _dict(self) -> dict[int, TokenBal]:
        if self._d is None:
            self._d = self._convert(self.raw)
        return self._d

    def __getitem__(self, k: int) -> TokenBal:
        return self._dict()[k]

    def __iter__(self):
        return iter(self._dict())

    def __len__(self) -> int:
        return len(self._dict())

    def __repr__(self) -> str:
        return f"LazyBalances({self._dict()!r})"


@dataclass(slots=True)
class TxView:
    signature: str
    slot: int | None
    block_time: int | None
    index: int | None  # position in block, when the source knows it
    keys: list[str]
    num_signers: int  # header.num_required_signatures: keys[:num_signers] signed
    ixs: list[Ix]
    logs: list[str] | None
    pre_tokens: dict[int, TokenBal]
    post_tokens: dict[int, TokenBal]
    pre_balances: list[int]
    post_balances: list[int]
    fee: int
    failed: bool
    # the error as the source gave it: RPC JSON value (e.g. {"InstructionError": [2, {"Custom": 1}]})
    # or the raw bincode bytes from protobuf; None on success
    err: object = None
    version: int | str | None = None  # "legacy" or 0
    # table address, writable indexes, readonly indexes (as in the message)
    lookups: list[tuple[str, bytes, bytes]] = field(default_factory=list)
    num_static_keys: int = 0
    num_loaded_writable: int = 0
    # header fields kept so the view can be re-encoded losslessly
    num_readonly_signed: int = 0
    num_readonly_unsigned: int = 0
    recent_blockhash: str = ""
    signatures: list[str] = field(default_factory=list)
    compute_units: int | None = None
    # False when instruction groups that cannot hold a swap were left out (hot path);
    # such a view is for decoding only, never for re-encoding.
    complete: bool = True
