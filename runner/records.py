"""What travels through the swap streams: one JSON record per swap, token event or SOL transfer.

The record carries everything detect needs to commit and evaluate it — the swap with its
exact block time and the wallet stamps computed at ingest — so a partition can be
processed (and re-processed after a crash) without any other source.

A swap travels as a JSON array of its fields in declaration order (``"s": [...]``),
encoded with orjson: it is the runner's hottest serialisation, twice per swap. New Swap
fields must therefore be appended with defaults, so records already in a stream still
decode; records of earlier versions (``"s": {name: value}``) decode too.
"""

from __future__ import annotations

import json
from dataclasses import fields

import orjson

from pocketwatcher.enrich.wallets import Enrichment
from pocketwatcher.parse import SolTransfer, Swap, TokenEvent

_SWAP_FIELDS = tuple(f.name for f in fields(Swap))
_TRANSFER_FIELDS = tuple(f.name for f in fields(SolTransfer))


def _dumps(d: dict) -> bytes:
    try:
        return orjson.dumps(d)
    except orjson.JSONEncodeError:  # an integer past 64 bits: the standard library takes any size
        return json.dumps(d, separators=(",", ":")).encode()


def encode_swap(s: Swap, e: Enrichment | None, rx: float | None = None) -> bytes:
    d = {"t": "swap", "s": [getattr(s, n) for n in _SWAP_FIELDS]}
    if rx is not None:
        d["rx"] = rx  # wall time the transaction was received (latency metrics only)
    if e is not None:
        d["e"] = [e.first_seen, e.cluster, e.smart]
    return _dumps(d)


def encode_event(ev: TokenEvent, tx_index: int | None) -> bytes:
    return _dumps({"t": "event", "v": ev.to_dict(), "x": tx_index})


def encode_transfer(t: SolTransfer) -> bytes:
    return _dumps({"t": "transfer", "v": {n: getattr(t, n) for n in _TRANSFER_FIELDS}})


def decode(payload: bytes):
    """("swap", (Swap, Enrichment|None, received_at|None)) | ("event", (TokenEvent, tx_index)) | ("transfer", SolTransfer)."""
    try:
        d = orjson.loads(payload)
    except orjson.JSONDecodeError:
        d = json.loads(payload)  # big integers; a payload that is not JSON at all raises here
    kind = d["t"]
    if kind == "swap":
        e = d.get("e")
        s = d["s"]
        swap = Swap(*s) if isinstance(s, list) else Swap(**s)
        return kind, (swap, Enrichment(*e) if e else None, d.get("rx"))
    if kind == "event":
        return kind, (TokenEvent(**d["v"]), d.get("x"))
    if kind == "transfer":
        return kind, SolTransfer(**d["v"])
    raise ValueError(f"unknown record type {kind!r}")
