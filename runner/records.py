"""What travels through the swap streams: one JSON record per swap, token event or SOL transfer.

The record carries everything detect needs to commit and evaluate it — the swap with its
exact block time and the wallet stamps computed at ingest — so a partition can be
processed (and re-processed after a crash) without any other source.
"""

from __future__ import annotations

import json
from dataclasses import fields

from pocketwatcher.enrich.wallets import Enrichment
from pocketwatcher.parse import SolTransfer, Swap, TokenEvent

_SWAP_FIELDS = tuple(f.name for f in fields(Swap))
_TRANSFER_FIELDS = tuple(f.name for f in fields(SolTransfer))


def _flat(obj, names) -> dict:
    """Shallow field dict (dataclasses.asdict deep-copies every value: 30x slower here)."""
    return {n: getattr(obj, n) for n in names}


def encode_swap(s: Swap, e: Enrichment | None, rx: float | None = None) -> bytes:
    d = {"t": "swap", "s": _flat(s, _SWAP_FIELDS)}
    if rx is not None:
        d["rx"] = rx  # wall time the transaction was received (latency metrics only)
    if e is not None:
        d["e"] = [e.first_seen, e.cluster, e.smart]
    return json.dumps(d, separators=(",", ":")).encode()


def encode_event(ev: TokenEvent, tx_index: int | None) -> bytes:
    return json.dumps({"t": "event", "v": ev.to_dict(), "x": tx_index}, separators=(",", ":")).encode()


def encode_transfer(t: SolTransfer) -> bytes:
    return json.dumps({"t": "transfer", "v": _flat(t, _TRANSFER_FIELDS)}, separators=(",", ":")).encode()


def decode(payload: bytes):
    """("swap", (Swap, Enrichment|None, received_at|None)) | ("event", (TokenEvent, tx_index)) | ("transfer", SolTransfer)."""
    d = json.loads(payload)
    kind = d["t"]
    if kind == "swap":
        e = d.get("e")
        return kind, (Swap(**d["s"]), Enrichment(*e) if e else None, d.get("rx"))
    if kind == "event":
        return kind, (TokenEvent(**d["v"]), d.get("x"))
    if kind == "transfer":
        return kind, SolTransfer(**d["v"])
    raise ValueError(f"unknown record type {kind!r}")
