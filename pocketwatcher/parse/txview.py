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

from dataclasses import dataclass, field


class TxError(ValueError):
    """Input that cannot be understood as a transaction; carries a short reason code."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


@dataclass(slots=True)
class Ix:
    """One executed instruction (top-level or CPI).

    ``outer`` is the top-level index; ``inner`` the position inside
    ``meta.innerInstructions[outer].instructions`` (None for a top-level one).
    ``height`` is the stack height (1 = top-level, 2 = first CPI level, ...);
    None when the source did not record it (old transactions).
    """

    program: int  # index into TxView.keys
    accounts: list[int]
    data: bytes
    outer: int
    inner: int | None
    height: int | None

    @property
    def path(self) -> str:
        return str(self.outer) if self.inner is None else f"{self.outer}.{self.inner}"


@dataclass(slots=True)
class TokenBal:
    mint: str
    owner: str | None
    amount: int
    decimals: int
    program: str | None


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
