"""Pools that keep reserves in token accounts (PumpSwap, Raydium, Meteora, Orca, ...).

A swap is the pair of token transfers between the trader side and the pool: the
*in* leg (trader → pool vault) and the *out* leg (pool vault → trader, signed by the
pool's authority). Reading the transfers, rather than each program's event layout,
gives the amounts that actually moved (partial fills, Token-2022 fees before
withholding) and works the same for programs we have no layout for.

Pairing rule, strongest first: the in leg lands in an account owned by the authority
that signs the out leg (vaults share the pool authority), or both legs touch
self-owned vault accounts (order books such as Phoenix); the out leg lands in an
account owned by whoever signed the in leg; the in leg is signed by a transaction
signer. Fee transfers beside the swap fail these tests and are left out.
"""

from __future__ import annotations

from ..swap import WSOL, Swap, compute_price, orient
from ..tree import Transfer
from .registry import (
    LAUNCHLAB,
    METEORA_DLMM,
    PUMPSWAP,
    RAYDIUM_CLMM,
    RAYDIUM_CPMM,
    RAYDIUM_V4,
)

# Where the pool account sits in the swap instruction, for layouts we know.
POOL_ACCOUNT = {PUMPSWAP: 0, RAYDIUM_V4: 1, RAYDIUM_CPMM: 3, RAYDIUM_CLMM: 2, LAUNCHLAB: 4,
                METEORA_DLMM: 0}

# Swap discriminators for programs whose non-swap instructions also move tokens both
# ways (so a pair of transfers alone would not prove a swap).
SWAP_TAGS = {
    RAYDIUM_V4: ("tag", {9, 11, 16, 17}),
    PUMPSWAP: ("disc", {bytes([102, 6, 61, 18, 1, 218, 235, 234]), bytes([51, 230, 133, 164, 1, 127, 131, 173]),
                        bytes([198, 46, 21, 82, 180, 217, 232, 112])}),
    RAYDIUM_CPMM: ("disc", {bytes([143, 190, 90, 218, 196, 30, 51, 222]), bytes([55, 217, 98, 86, 163, 74, 180, 173])}),
    LAUNCHLAB: ("disc", {bytes([250, 234, 13, 123, 213, 156, 19, 236]), bytes([24, 211, 116, 40, 105, 3, 153, 56]),
                         bytes([149, 39, 222, 155, 211, 124, 152, 26]), bytes([95, 200, 71, 34, 8, 9, 11, 166])}),
}


def is_swap_instruction(program_id: str, data: bytes) -> bool:
    rule = SWAP_TAGS.get(program_id)
    if rule is None:
        return True
    kind, allowed = rule
    if kind == "tag":
        return bool(data) and data[0] in allowed
    return bytes(data[:8]) in allowed


def _mint(ctx, t: Transfer) -> str | None:
    if t.mint:
        return t.mint
    return ctx.tokens.mint(t.src) or ctx.tokens.mint(t.dst)


def find_pair(ctx, transfers: list[Transfer], strict: bool) -> tuple[Transfer, Transfer] | None:
    """Pick (in_leg, out_leg) among the transfers of one pool instruction."""
    keys = ctx.view.keys
    nsig = ctx.view.num_signers
    owner = ctx.tokens.owner
    # per transfer: (transfer, mint, owner of src, owner of dst, authority key)
    legs = []
    for t in transfers:
        m = _mint(ctx, t)
        if m is not None:
            legs.append((t, m, owner(t.src), owner(t.dst), keys[t.auth]))
    best = None
    best_score = -1.0
    for o, om, osrc, odst, pool_auth in legs:
        for i, im, _isrc, idst, iauth in legs:
            if im == om or i.auth == o.auth:
                continue
            score = 0.0
            if idst == pool_auth or (idst == keys[i.dst] and osrc == keys[o.src]):
                # vaults share the pool authority, or (order books) each vault is
                # its own authority: either way both legs touch the pool's accounts
                score += 8
            elif strict:
                continue
            if odst == iauth:
                score += 4
            elif odst is None:
                score += 2
            elif strict:  # an unknown program paying a third party is no swap of the trader's
                continue
            if i.auth < nsig:
                score += 1
            if i.pos < o.pos:  # deposits usually come first; a tie-breaker only
                score += 0.5
            if score > best_score:
                best, best_score = (i, o), score
    return best


def decode(ctx, pos: int, transfers: list[Transfer], name: str, strict: bool) -> Swap | None:
    view = ctx.view
    ix = view.ixs[pos]
    pid = view.keys[ix.program]
    if not is_swap_instruction(pid, ix.data):
        return None
    pair = find_pair(ctx, transfers, strict)
    if pair is None:
        return None
    i, o = pair
    im, om = _mint(ctx, i), _mint(ctx, o)
    mint, side, tok_amt, qmint, q_amt = orient(im, i.amount, om, o.amount)
    tdec = ctx.tokens.decimals(mint)
    if tdec is None:
        tdec = i.decimals if mint == im else o.decimals
    qdec = ctx.tokens.decimals(qmint)
    if qdec is None:
        qdec = 9 if qmint == WSOL else (i.decimals if qmint == im else o.decimals)
    pool_i = POOL_ACCOUNT.get(pid)
    if pool_i is not None and pool_i < len(ix.accounts):
        pool = view.keys[ix.accounts[pool_i]]
    else:
        pool = ctx.tokens.owner(o.src) or view.keys[o.auth]
    trader = view.keys[i.auth] if i.auth < view.num_signers else view.keys[0]
    return Swap(
        signature=view.signature, slot=view.slot, block_time=view.block_time, ix=ix.path,
        program=name, pool=pool, trader=trader, mint=mint, side=side,
        token_amount=tok_amt, token_decimals=tdec, quote_mint=qmint, quote_amount=q_amt,
        quote_decimals=qdec, price=compute_price(tok_amt, tdec, q_amt, qdec), tx_index=view.index,
    )
