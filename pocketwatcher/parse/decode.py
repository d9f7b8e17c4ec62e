"""TxView → swaps and token lifecycle events, dispatched on program id first."""

from __future__ import annotations

from .programs import pumpfun, token_pool
from .programs.registry import NOT_POOLS, PUMPFUN, ROUTERS, TOKEN, TOKEN22, TOKEN_POOLS
from .swap import Swap
from .tree import TokenInfo, Transfer, build_parents, decode_transfer, log_data_by_ix, subtree_ends
from .txview import TxView


class Ctx:
    __slots__ = ("view", "parents", "ends", "tokens", "_logs", "notes")

    def __init__(self, view: TxView) -> None:
        self.view = view
        self.parents = build_parents(view)
        self.ends = subtree_ends(self.parents)
        self.tokens = TokenInfo(view)
        self._logs: dict | None = None
        self.notes: list[str] = []

    def log_data(self) -> dict[int, list[bytes]]:
        if self._logs is None:
            self._logs = log_data_by_ix(self.view)
        return self._logs

    def note(self, reason: str) -> None:
        self.notes.append(reason)

    def router_of(self, pos: int) -> str | None:
        keys, ixs, parents = self.view.keys, self.view.ixs, self.parents
        p = parents[pos]
        while p >= 0:
            r = ROUTERS.get(keys[ixs[p].program])
            if r:
                return r
            p = parents[p]
        return None


def decode_view(view: TxView) -> tuple[list[Swap], list[pumpfun.TokenEvent], list[str]]:
    """All swaps and lifecycle events of a successful transaction, in instruction order."""
    keys = view.keys
    ixs = view.ixs
    n = len(ixs)
    token_progs = {i for i, k in enumerate(keys) if k == TOKEN or k == TOKEN22}
    pump = _index_of(keys, PUMPFUN)
    transfers: dict[int, Transfer] = {}
    if token_progs:
        for pos in range(n):
            if ixs[pos].program in token_progs:
                t = token_transfer(view, pos)
                if t is not None:
                    transfers[pos] = t
    if len(transfers) < 2 and pump is None:
        return [], [], []  # no pool swap is possible without two transfers or the curve
    ctx = Ctx(view)
    found: list[tuple[int, Swap]] = []
    events: list[tuple[int, pumpfun.TokenEvent]] = []
    claimed = [False] * n  # transfers / subtrees already explained by a deeper swap
    # Deepest first: a pool CPI'd by a router or a bot is decoded before its caller,
    # and the caller then sees those transfers as taken.
    for pos in range(n - 1, -1, -1):
        pid = keys[ixs[pos].program]
        end = ctx.ends[pos]
        if pid == PUMPFUN:
            sw, ev = pumpfun.decode(ctx, pos)
            events.extend((pos, e) for e in ev)
            for s in sw:
                s.router = ctx.router_of(pos)
                found.append((pos, s))
                _claim(claimed, pos, end)
            continue
        if pid in NOT_POOLS or pid in ROUTERS or end == pos + 1:
            continue
        name = TOKEN_POOLS.get(pid)
        if name is None:  # unknown program: only a clean pair of direct transfers counts
            if any(claimed[q] for q in range(pos + 1, end)):
                continue
            cand = [t for q, t in transfers.items() if ctx.parents[q] == pos]
            strict = True
            name = "other"
        else:
            cand = [t for q, t in transfers.items() if pos < q < end and not claimed[q]]
            strict = False
        if len(cand) < 2:
            continue
        s = token_pool.decode(ctx, pos, cand, name, strict)
        if s is not None:
            s.router = ctx.router_of(pos)
            found.append((pos, s))
            _claim(claimed, pos, end)
    found.sort(key=lambda x: x[0])
    events.sort(key=lambda x: x[0])
    return [s for _, s in found], [e for _, e in events], ctx.notes


def _index_of(keys: list[str], key: str) -> int | None:
    try:
        return keys.index(key)
    except ValueError:
        return None


def _claim(claimed: list[bool], pos: int, end: int) -> None:
    for q in range(pos, end):
        claimed[q] = True


token_transfer = decode_transfer
