"""Solana transactions → swaps. Pure: no I/O, never raises on bad input.

``parse_transaction`` takes a decoded JSON-RPC ``getTransaction`` result;
``parse_update`` takes a Yellowstone ``SubscribeUpdate`` (message or bytes). Both
build the same :class:`TxView` and run the same decoders, so they give identical swaps.
A transaction that cannot be understood yields no swaps and a counted reason in
:data:`STATS` (logged at debug level).
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field, fields
from operator import attrgetter

from .decode import decode_view
from .grpc_view import view_from_update
from .programs.pumpfun import TokenEvent
from .programs.registry import SYSTEM
from .rpc_view import view_from_rpc
from .swap import Swap
from .txview import TxError, TxView

log = logging.getLogger("pocketwatcher.parse")


@dataclass
class ParseStats:
    transactions: int = 0
    swaps: int = 0
    reasons: Counter = field(default_factory=Counter)

    def reset(self) -> None:
        self.transactions = self.swaps = 0
        self.reasons.clear()


STATS = ParseStats()


@dataclass(slots=True)
class SolTransfer:
    """A plain top-level SOL transfer between wallets (how actors fund their wallets)."""

    signature: str
    slot: int | None
    block_time: int | None
    ix: str
    source: str
    destination: str
    lamports: int
    tx_index: int | None = None

    def __reduce__(self):  # by position, like Swap (see there)
        return (SolTransfer, _transfer_values(self))


_transfer_values = attrgetter(*(f.name for f in fields(SolTransfer)))


@dataclass(slots=True)
class ParseResult:
    swaps: list[Swap]
    events: list[TokenEvent]
    reason: str | None = None  # why nothing could be read, when that happened
    view: TxView | None = None
    transfers: list[SolTransfer] = field(default_factory=list)
    received_at: float | None = None  # set by the runner's ingest (wall clock, metrics only)


def sol_transfers(view: TxView) -> list[SolTransfer]:
    """Top-level System Program transfers of a successful transaction."""
    from .tree import system_transfer

    out = []
    if view.failed:
        return out
    for pos, ix in enumerate(view.ixs):
        if ix.inner is None and view.keys[ix.program] == SYSTEM:
            t = system_transfer(view, pos)
            if t is not None and t[2] > 0:
                out.append(SolTransfer(view.signature, view.slot, view.block_time, ix.path,
                                       view.keys[t[0]], view.keys[t[1]], t[2], view.index))
    return out


def _skip(reason: str, detail: str = "", sig: str = "") -> ParseResult:
    STATS.reasons[reason] += 1
    log.debug("no swaps from %s: %s %s", sig or "<unknown tx>", reason, detail)
    return ParseResult([], [], reason)


def parse_view(view: TxView) -> ParseResult:
    STATS.transactions += 1
    if view.failed:
        STATS.reasons["failed_transaction"] += 1
        return ParseResult([], [], "failed_transaction", view)
    try:
        swaps, events, notes = decode_view(view)
    except TxError as e:
        return _skip(e.reason, e.detail, view.signature)
    except Exception as e:  # noqa: BLE001 - a decoder bug must not stop the stream
        return _skip("decoder_error", f"{type(e).__name__}: {e}", view.signature)
    for n in notes:
        STATS.reasons[n] += 1
    STATS.swaps += len(swaps)
    return ParseResult(swaps, events, None, view)


def parse_transaction_full(tx: dict, *, alt_resolver=None) -> ParseResult:
    try:
        view = view_from_rpc(tx, skip_inert=True, alt_resolver=alt_resolver)
    except TxError as e:
        STATS.transactions += 1
        return _skip(e.reason, e.detail)
    except Exception as e:  # noqa: BLE001
        STATS.transactions += 1
        return _skip("malformed", f"{type(e).__name__}: {e}")
    return parse_view(view)


def parse_transaction(tx: dict, *, alt_resolver=None) -> list[Swap]:
    """Swaps of one decoded JSON-RPC transaction (the ``result`` object)."""
    return parse_transaction_full(tx, alt_resolver=alt_resolver).swaps


def parse_update_full(update, *, transfers: bool = False) -> ParseResult:
    """Like :func:`parse_update`, with the reason, the view and lifecycle events.

    ``transfers=True`` also collects plain SOL transfers (wallet funding): the hot-path
    view then keeps the top-level System Program transfers it would otherwise skip.
    """
    try:
        view = view_from_update(update, skip_inert=True, keep_sol_transfers=transfers)
    except TxError as e:
        STATS.transactions += 1
        return _skip(e.reason, e.detail)
    except Exception as e:  # noqa: BLE001
        STATS.transactions += 1
        return _skip("malformed", f"{type(e).__name__}: {e}")
    res = parse_view(view)
    if transfers:
        res.transfers = sol_transfers(view)
    return res


def parse_update(update) -> list[Swap]:
    """Swaps of a Yellowstone ``SubscribeUpdate`` (message or serialized bytes)."""
    return parse_update_full(update).swaps


__all__ = ["Swap", "TokenEvent", "TxError", "TxView", "ParseResult", "SolTransfer", "STATS", "parse_transaction",
           "parse_transaction_full", "parse_update", "parse_update_full", "parse_view"]
