"""Read transactions from JSON files in every shape people save them in.

- JSON-RPC ``getTransaction`` results: bare, in a ``{"jsonrpc", "result"}`` envelope, or a list;
- Yellowstone messages written as JSON (camelCase field names; ``bytes`` as Node Buffers
  ``{"type": "Buffer", "data": [...]}`` or as base58 strings; 64-bit integers as strings):
  a ``SubscribeUpdate``, an object of several, or a block subscription.

Each item comes out as either a dict (RPC result) or a ``SubscribeUpdate`` message,
ready for :func:`pocketwatcher.parse.parse_transaction` / :func:`parse_update`.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import based58
from google.protobuf import json_format
from google.protobuf.descriptor import FieldDescriptor

from .txview import TxError

_UPDATE_KEYS = {"transaction", "block", "blockMeta", "account", "slot", "ping", "pong", "entry",
                "transactionStatus"}


def _is_update(obj) -> bool:
    return isinstance(obj, dict) and "filters" in obj and _UPDATE_KEYS & obj.keys()


def _bytes_value(v) -> str:
    if isinstance(v, dict):
        if v.get("type") == "Buffer":
            return base64.b64encode(bytes(v.get("data") or [])).decode()
        if not v:
            return ""
    if isinstance(v, list):
        return base64.b64encode(bytes(v)).decode()
    if isinstance(v, str):
        return base64.b64encode(based58.b58decode(v.encode()) if v else b"").decode()
    raise TxError("bad_bytes", f"cannot read a bytes field from {type(v).__name__}")


def _to_proto_json(desc, obj: dict) -> dict:
    out = {}
    by_json = {f.json_name: f for f in desc.fields}
    by_name = desc.fields_by_name
    for k, v in obj.items():
        f = by_json.get(k) or by_name.get(k)
        if f is None or v is None:
            continue
        repeated = f.is_repeated
        if f.type == FieldDescriptor.TYPE_MESSAGE:
            if f.message_type.full_name == "google.protobuf.Timestamp":
                if isinstance(v, str):
                    out[f.json_name] = v
                elif isinstance(v, dict) and v.get("seconds") is not None:
                    ts = datetime.fromtimestamp(int(v["seconds"]), tz=UTC)
                    ts = ts.replace(microsecond=int(v.get("nanos") or 0) // 1000)
                    out[f.json_name] = ts.isoformat().replace("+00:00", "Z")
            elif f.message_type.GetOptions().map_entry:
                out[f.json_name] = v
            elif repeated:
                out[f.json_name] = [_to_proto_json(f.message_type, x) for x in v]
            else:
                out[f.json_name] = _to_proto_json(f.message_type, v)
        elif f.type == FieldDescriptor.TYPE_BYTES:
            out[f.json_name] = [_bytes_value(x) for x in v] if repeated else _bytes_value(v)
        else:
            out[f.json_name] = v
    return out


def update_from_json(obj: dict):
    """A Yellowstone ``SubscribeUpdate`` written as JSON → the protobuf message."""
    from ..proto import geyser_pb2

    msg = geyser_pb2.SubscribeUpdate()
    json_format.ParseDict(_to_proto_json(msg.DESCRIPTOR, obj), msg, ignore_unknown_fields=True)
    return msg


def block_to_updates(update) -> list:
    """Split a block update into per-transaction updates (block_time is lost: use blocks_meta)."""
    from ..proto import geyser_pb2

    out = []
    blk = update.block
    for info in blk.transactions:
        u = geyser_pb2.SubscribeUpdate(filters=list(update.filters))
        u.transaction.slot = blk.slot
        u.transaction.transaction.CopyFrom(info)
        out.append(u)
    return out


def iter_items(obj) -> Iterator:
    """Transactions inside a decoded JSON document (dicts or SubscribeUpdate messages)."""
    if isinstance(obj, list):
        for x in obj:
            yield from iter_items(x)
        return
    if not isinstance(obj, dict):
        raise TxError("not_a_transaction", f"expected an object or a list, got {type(obj).__name__}")
    if "transaction" in obj and "meta" in obj:
        yield obj
        return
    if "result" in obj and "transaction" not in obj:
        if obj["result"] is not None:
            yield from iter_items(obj["result"])
        return
    if _is_update(obj):
        u = update_from_json(obj)
        which = u.WhichOneof("update_oneof")
        if which == "block":
            yield from block_to_updates(u)
        elif which == "transaction":
            yield u
        return
    # an object whose values are updates ({"tx": ..., "tx2": ...} or {"blockSubscribe": ...})
    found = False
    for v in obj.values():
        if _is_update(v) or (isinstance(v, dict) and "transaction" in v and "meta" in v):
            found = True
            yield from iter_items(v)
    if not found:
        raise TxError("not_a_transaction", "no transaction, envelope or Yellowstone update found")


def load_file(path: str | Path) -> list:
    with open(path, "rb") as fh:
        try:
            doc = json.load(fh)
        except json.JSONDecodeError as e:
            raise TxError("bad_json", f"{path}: line {e.lineno} column {e.colno}: {e.msg}") from e
    return list(iter_items(doc))
