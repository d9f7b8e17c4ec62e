"""Instruction tree, token transfers and `Program data:` logs of a TxView.

Pure helpers shared by the program decoders.
"""

from __future__ import annotations

import base64
import struct
from dataclasses import dataclass

from .programs.registry import SYSTEM, TOKEN, TOKEN22
from .txview import TxError, TxView

_u64 = struct.Struct("<Q")


def build_parents(view: TxView) -> tuple[list[int], list[int]]:
    """(parents, ends) of the instruction tree.

    parent[i] = position (in view.ixs) of the instruction that invoked ixs[i], -1 for a
    top-level one; ends[i] = one past the last descendant of ixs[i] (descendants are
    contiguous in execution order). Uses stack heights; an inner instruction without one
    is taken as a direct child of its top-level instruction (transactions from before
    heights were recorded).
    """
    ixs = view.ixs
    n = len(ixs)
    parents = [-1] * n
    ends = list(range(1, n + 1))
    stack: list[tuple[int, int]] = []  # (height, position)
    for pos in range(n):
        ix = ixs[pos]
        if ix.inner is None:
            stack = [(1, pos)]
            continue
        h = ix.height
        if h is None:
            parents[pos] = stack[0][1] if stack else -1
            continue
        while stack and stack[-1][0] >= h:
            stack.pop()
        parents[pos] = stack[-1][1] if stack else -1
        stack.append((h, pos))
    for pos in range(n - 1, -1, -1):
        p = parents[pos]
        if p >= 0 and ends[pos] > ends[p]:
            ends[p] = ends[pos]
    return parents, ends


@dataclass(slots=True)
class Transfer:
    pos: int  # position in view.ixs
    src: int
    dst: int
    auth: int
    amount: int
    mint: str | None
    decimals: int | None


def decode_transfer(view: TxView, pos: int) -> Transfer | None:
    ix = view.ixs[pos]
    data = ix.data
    if not data:
        return None
    pid = view.keys[ix.program]
    if pid != TOKEN and pid != TOKEN22:
        return None
    tag = data[0]
    accs = ix.accounts
    if tag == 3 and len(data) >= 9 and len(accs) >= 3:
        return Transfer(pos, accs[0], accs[1], accs[2], _u64.unpack_from(data, 1)[0], None, None)
    if tag == 12 and len(data) >= 10 and len(accs) >= 4:
        return Transfer(pos, accs[0], accs[2], accs[3], _u64.unpack_from(data, 1)[0],
                        view.keys[accs[1]], data[9])
    if tag == 26 and len(data) >= 11 and data[1] == 1 and len(accs) >= 4:
        return Transfer(pos, accs[0], accs[2], accs[3], _u64.unpack_from(data, 2)[0],
                        view.keys[accs[1]], data[10])
    return None


def system_transfer(view: TxView, pos: int) -> tuple[int, int, int] | None:
    ix = view.ixs[pos]
    if view.keys[ix.program] != SYSTEM or len(ix.data) < 12 or len(ix.accounts) < 2:
        return None
    if struct.unpack_from("<I", ix.data, 0)[0] != 2:
        return None
    return ix.accounts[0], ix.accounts[1], _u64.unpack_from(ix.data, 4)[0]


def log_data_by_ix(view: TxView) -> dict[int, list[bytes]]:
    """`Program data:` payloads keyed by the position of the instruction that logged them.

    Each ``invoke [1]`` line starts the next top-level instruction; inside it, the k-th
    invoke belongs to the k-th instruction of that group. An invoke whose program does
    not match is kept on the stack as unknown (its data lines are dropped) without
    consuming an instruction, and groups the view left out (compute budget, ATA, ...)
    are simply not found. So a payload is attributed only where the program ids agree.
    """
    out: dict[int, list[bytes]] = {}
    logs = view.logs
    if not logs:
        return out
    ixs = view.ixs
    keys = view.keys
    first_of: dict[int, int] = {}
    for pos, ix in enumerate(ixs):
        if ix.inner is None:
            first_of[ix.outer] = pos
    outer = -1
    n = -1  # next position to match inside the current group
    stack: list[int] = []
    for line in logs:
        if line.__class__ is not str:
            break
        if line.startswith("Program ") and " invoke [" in line:
            prog = line[8:line.index(" invoke [")]
            if line.endswith(" invoke [1]"):
                outer += 1
                stack = []
                n = first_of.get(outer, -1)
            if n >= 0 and n < len(ixs) and ixs[n].outer == outer and keys[ixs[n].program] == prog:
                stack.append(n)
                n += 1
            else:
                stack.append(-1)
        elif line.__class__ is not str:
            break
        elif line.startswith("Program data: "):
            if stack and stack[-1] >= 0:
                try:
                    out.setdefault(stack[-1], []).append(base64.b64decode(line[14:]))
                except ValueError:
                    pass
        elif line.startswith("Program ") and (line.endswith(" success") or " failed" in line):
            if stack:
                stack.pop()
        elif line.startswith("Log truncated"):
            break
    return out


class TokenInfo:
    """Owner/mint/decimals of token accounts from the pre/post token balances.

    Protobuf balances are read lazily, per account a decoder asks about: most of a
    transaction's token accounts are never looked at.
    """

    __slots__ = ("view", "_acc", "_dec", "_raw")

    def __init__(self, view: TxView) -> None:
        self.view = view
        acc: dict[int, tuple[str, str | None, int] | None] = {}
        dec: dict[str, int] = {}
        self._raw = None
        kinds = (getattr(view.pre_tokens, "kind", None), getattr(view.post_tokens, "kind", None))
        if kinds == ("protobuf", "protobuf"):  # index only, fields on demand
            raw = {tb.account_index: tb for tb in view.pre_tokens.raw}
            for tb in view.post_tokens.raw:
                raw[tb.account_index] = tb
            if raw and max(raw) >= len(view.keys):
                raise TxError("bad_index", f"token balance account_index {max(raw)}")
            self._raw = raw
        elif kinds == ("rpc", "rpc"):
            nkeys = len(view.keys)
            for bals in (view.post_tokens.raw, view.pre_tokens.raw):
                for b in bals:
                    try:
                        idx = b["accountIndex"]
                        if idx in acc:
                            continue
                        mint = b["mint"]
                        owner = b.get("owner") or None
                        d = b["uiTokenAmount"]["decimals"]
                    except (KeyError, TypeError) as e:
                        raise TxError("malformed", f"token balance: {e}") from None
                    if idx.__class__ is not int or not 0 <= idx < nkeys:
                        raise TxError("bad_index", f"token balance accountIndex {idx!r:.20}")
                    if mint.__class__ is not str or not (owner is None or owner.__class__ is str) \
                            or d.__class__ is not int or not 0 <= d <= 255:
                        raise TxError("malformed", f"token balance of account {idx}")
                    acc[idx] = (mint, owner, d)
                    dec[mint] = d
        else:
            for bals in (view.pre_tokens, view.post_tokens):
                for idx, b in bals.items():
                    acc[idx] = (b.mint, b.owner or (acc.get(idx, (None, None, 0))[1]), b.decimals)
                    dec[b.mint] = b.decimals
        self._acc = acc
        self._dec = dec

    def _load(self, idx: int):
        tb = self._raw.get(idx) if self._raw is not None else None
        if tb is None:
            self._acc[idx] = None
            return None
        d = tb.ui_token_amount.decimals
        if d > 255:
            raise TxError("malformed", f"token balance decimals {d}")
        a = self._acc[idx] = (tb.mint, tb.owner or None, d)
        self._dec[a[0]] = d
        return a

    def mint(self, idx: int) -> str | None:
        a = self._acc.get(idx, 0)
        if a == 0:
            a = self._load(idx)
        return a[0] if a else None

    def owner(self, idx: int) -> str | None:
        a = self._acc.get(idx, 0)
        if a == 0:
            a = self._load(idx)
        return a[1] if a else None

    def decimals(self, mint: str) -> int | None:
        d = self._dec.get(mint)
        if d is None and self._raw is not None:
            for idx in self._raw:
                if idx not in self._acc:
                    self._load(idx)
            d = self._dec.get(mint)
        return d

    def delta(self, idx: int) -> int:
        pre = self.view.pre_tokens.get(idx)
        post = self.view.post_tokens.get(idx)
        return (post.amount if post else 0) - (pre.amount if pre else 0)
