"""TxView → swaps and token lifecycle events, dispatched on program id first."""

from __future__ import annotations

from .programs import pumpfun, token_pool
from .programs.registry import NOT_POOLS, PUMPFUN, ROUTERS, TOKEN, TOKEN22, TOKEN_POOLS
from .swap import Swap
from .tree import TokenInfo, Transfer, build_parents, decode_transfer, log_data_by_ix
from .txview import TxView


class Ctx:
    __slots__ = ("view", "parents", "ends", "_tokens", "_logs", "notes")

    def __init__(self, view: TxView) -> None:
        self.view = view
        self.parents, self.ends = build_parents(view)
        self._tokens: TokenInfo | None = None
        self._logs: dict | None = None
        self.notes: list[str] = []

    @property
    def tokens(self) -> TokenInfo:
        """Token accounts' owners/mints, read on first use (pump.fun trades never need them)."""
        if self._tokens is None:
            self._tokens = TokenInfo(self.view)
        return self._tokens

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


_PUMP, _POOL, _UNKNOWN = 1, 2, 3


def _role(pid: str) -> int:
    if pid == PUMPFUN:
        return _PUMP
    if pid in TOKEN_POOLS:
        return _POOL
    if pid in NOT_POOLS or pid in ROUTERS:
        return 0
    return _UNKNOWN


def decode_view(view: TxView) -> tuple[list[Swap], list[pumpfun.TokenEvent], list[str]]:
    """All swaps and lifecycle events of a successful transaction, in instruction order."""
    keys = view.keys
    ixs = view.ixs
    n = len(ixs)
    token_progs = (_index_of(keys, TOKEN), _index_of(keys, TOKEN22))
    transfers: dict[int, Transfer] = {}
    roles: dict[int, int] = {}  # program index -> role
    work: list[int] = []  # positions worth decoding, in execution order
    for pos in range(n):
        prog = ixs[pos].program
        if prog in token_progs:
            t = token_transfer(view, pos)
            if t is not None:
                transfers[pos] = t
            continue
        role = roles.get(prog)
        if role is None:
            role = roles[prog] = _role(keys[prog])
        if role:
            work.append(pos)
    if not work or (len(transfers) < 2 and _PUMP not in roles.values()):
        return [], [], []  # no pool swap is possible without two transfers or the curve
    ctx = Ctx(view)
    ends = ctx.ends
    found: list[tuple[int, Swap]] = []
    events: list[tuple[int, pumpfun.TokenEvent]] = []
    claimed = [False] * n  # transfers / subtrees already explained by a deeper swap
    # Deepest first: a pool CPI'd by a router or a bot is decoded before its caller,
    # and the caller then sees those transfers as taken.
    for pos in reversed(work):
        role = roles[ixs[pos].program]
        end = ends[pos]
        if role == _PUMP:
            sw, ev = pumpfun.decode(ctx, pos)
            if ev:
                events.extend((pos, e) for e in ev)
            for s in sw:
                s.router = ctx.router_of(pos)
                found.append((pos, s))
                _claim(claimed, pos, end)
            continue
        if end == pos + 1:
            continue
        if role == _UNKNOWN:  # only a clean pair of its own direct transfers counts
            if any(claimed[pos + 1:end]):
                continue
            parents = ctx.parents
            cand = [t for q, t in transfers.items() if parents[q] == pos]
            strict = True
            name = "other"
        else:
            cand = [t for q, t in transfers.items() if pos < q < end and not claimed[q]]
            strict = False
            name = TOKEN_POOLS[keys[ixs[pos].program]]
        if len(cand) < 2:
            continue
        s = token_pool.decode(ctx, pos, cand, name, strict)
        if s is not None:
            s.router = ctx.router_of(pos)
            found.append((pos, s))
            _claim(claimed, pos, end)
    payer = keys[0]
    for _, s in found:
        s.fee_payer = payer
    if len(found) > 1:
        found.sort(key=lambda x: x[0])
    if len(events) > 1:
        events.sort(key=lambda x: x[0])
    return [s for _, s in found], [e for _, e in events], ctx.notes


def _index_of(keys: list[str], key: str) -> int | None:
    return keys.index(key) if key in keys else None  # no exception on the common miss


def _claim(claimed: list[bool], pos: int, end: int) -> None:
    claimed[pos:end] = [True] * (end - pos)


token_transfer = decode_transfer
