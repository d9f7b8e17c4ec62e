"""Ground truth of a simulation, written beside the capture as Parquet.

``DIR/truth/``:

- ``mints.parquet`` — mint, archetype, launch_slot, creator, bonding_curve, name, symbol,
  complete_slot, migrated_slot, pool, pre_existing (live before the capture began),
  dev_actor, bundler_actor;
- ``actors.parquet`` — actor_id, kind, wallet, role (one row per wallet; role
  ``funder`` is the common wallet that tops up the others), prefunded (had SOL before the
  capture; the others receive their first SOL from a funding transfer in the stream);
- ``trades.parquet`` — every trade that executed, exactly as the parser must report it:
  signature, ix ("3" or "3.0"), slot, tx_index, block_time, mint, trader, actor_id, side,
  token_amount, quote_amount (lamports; pump.fun: the TradeEvent's sol_amount, fees
  excluded; PumpSwap: the quote that moved between the user and the pool vault), program;
- ``failed.parquet`` — trade attempts that failed on chain (no swap may be reported):
  signature, slot, tx_index, mint, trader, actor_id, side, program, error;
- ``funding.parquet`` — slot, tx_index, signature, from, to, lamports, actor_id;
- ``summary.json`` — run figures (``simulate`` returns the same dict).
"""

from __future__ import annotations

import json
from operator import attrgetter
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from solders.signature import Signature

_sig = Signature.from_bytes


def sig_b58(sig: bytes) -> str:
    return str(_sig(sig))


def _sigs(sigs) -> list[str]:
    """``sig_b58`` of each, without a Python frame per signature (tables have ~100k of them)."""
    return list(map(str, map(_sig, sigs)))


_b58 = attrgetter("b58")
_wallet_b58 = attrgetter("acct.b58")
_actor_id = attrgetter("actor.id")


TRADE_COLUMNS = ("signature", "ix", "slot", "tx_index", "block_time", "mint", "trader", "actor_id", "side",
                 "token_amount", "quote_amount", "program")

FAILED_COLUMNS = ("signature", "slot", "tx_index", "mint", "trader", "actor_id", "side", "program", "error")
TABLES = ("mints", "actors", "trades", "failed", "funding")


class Truth:
    def __init__(self) -> None:
        self.wallet_rows: list[tuple] = []
        self.trade_rows: list[tuple] = []
        self.failed_rows: list[tuple] = []
        self.funding: dict[str, list] = {k: [] for k in ("slot", "tx_index", "signature", "from", "to", "lamports",
                                                          "actor_id")}
        self.tokens: list = []

    def wallet(self, actor, w) -> None:
        self.wallet_rows.append((actor, w, w.acct.lam > 0))

    @property
    def actors(self) -> dict[str, list]:
        cols: dict[str, list] = {k: [] for k in ("actor_id", "kind", "wallet", "role", "prefunded")}
        for actor, w, prefunded in self.wallet_rows:
            for k, v in (("actor_id", actor.id), ("kind", actor.kind), ("wallet", w.acct.b58), ("role", w.role),
                         ("prefunded", prefunded)):
                cols[k].append(v)
        return cols

    def trade(self, sig: bytes, ix: str, slot: int, index: int, block_time: int, mint, w, side: str,
              token_amount: int, quote_amount: int, program: str) -> None:
        """One executed trade; keys stay raw (signature bytes, mint Account) until the table is written."""
        self.trade_rows.append((sig, ix, slot, index, block_time, mint, w, side, token_amount, quote_amount,
                                program))

    @property
    def trades(self) -> dict[str, list]:
        if not self.trade_rows:
            return {k: [] for k in TRADE_COLUMNS}
        sig, ix, slot, index, bt, mint, w, side, tok, quote, prog = zip(*self.trade_rows, strict=True)
        return dict(zip(TRADE_COLUMNS, (
            _sigs(sig), list(ix), list(slot), list(index), list(bt), list(map(_b58, mint)),
            list(map(_wallet_b58, w)), list(map(_actor_id, w)), list(side), list(tok), list(quote), list(prog),
        ), strict=True))

    def fail(self, sig: bytes, slot: int, index: int, mint, w, side: str, program: str, error: int) -> None:
        self.failed_rows.append((sig, slot, index, mint, w, side, program, error))

    @property
    def failed(self) -> dict[str, list]:
        if not self.failed_rows:
            return {k: [] for k in FAILED_COLUMNS}
        sig, slot, index, mint, w, side, program, error = zip(*self.failed_rows, strict=True)
        return dict(zip(FAILED_COLUMNS, (
            _sigs(sig), list(slot), list(index), list(map(_b58, mint)), list(map(_wallet_b58, w)),
            list(map(_actor_id, w)), list(side), list(program), list(error),
        ), strict=True))

    def fund(self, slot: int, index: int, sig: bytes, src, dst, lamports: int) -> None:
        f = self.funding
        for k, v in (("slot", slot), ("tx_index", index), ("signature", sig_b58(sig)), ("from", src.acct.b58), ("to", dst.acct.b58),
                     ("lamports", lamports), ("actor_id", dst.actor.id)):
            f[k].append(v)

    def mint_rows(self) -> dict[str, list]:
        cols: dict[str, list] = {k: [] for k in (
            "mint", "archetype", "launch_slot", "creator", "bonding_curve", "name", "symbol", "complete_slot",
            "migrated_slot", "pool", "pre_existing", "dev_actor", "bundler_actor", "trades")}
        for t in self.tokens:
            for k, v in (("mint", t.mint.b58), ("archetype", t.archetype), ("launch_slot", t.launch_slot),
                         ("creator", t.dev.acct.b58), ("bonding_curve", t.bc.b58), ("name", t.name),
                         ("symbol", t.symbol), ("complete_slot", t.complete_slot),
                         ("migrated_slot", t.migrated_slot), ("pool", t.pool.b58 if t.pool else None),
                         ("pre_existing", t.pre_existing), ("dev_actor", t.dev.actor.id),
                         ("bundler_actor", t.bundler.id if t.bundler else None), ("trades", t.trades)):
                cols[k].append(v)
        return cols

    def tables(self) -> dict[str, dict[str, list]]:
        """Every table as plain columns; ``tx_index`` is still the shard's transaction number."""
        return {"mints": self.mint_rows(), "actors": self.actors, "trades": self.trades, "failed": self.failed,
                "funding": self.funding}


def merge(parts: list[dict[str, dict[str, list]]], indexes: list[list[int]]) -> dict[str, dict[str, list]]:
    """One run's tables from its shards' (:meth:`Truth.tables`), in stream order.

    ``indexes[k][n]`` is the index in block the merger gave shard ``k``'s ``n``-th
    transaction. Trades, failed attempts and funding are ordered by (slot, index in
    block); mints by launch slot; actors by shard.
    """
    out: dict[str, dict[str, list]] = {}
    for name in TABLES:
        cols = list(parts[0][name])
        if "tx_index" in cols:
            for part, idx in zip(parts, indexes, strict=True):
                part[name]["tx_index"] = [idx[n] for n in part[name]["tx_index"]]
        merged = {k: [v for part in parts for v in part[name][k]] for k in cols}
        if name == "actors" or not merged[cols[0]]:
            out[name] = merged
            continue
        if name == "mints":
            order = sorted(range(len(merged["launch_slot"])), key=merged["launch_slot"].__getitem__)
        else:
            pos = list(zip(merged["slot"], merged["tx_index"], strict=True))
            order = sorted(range(len(pos)), key=pos.__getitem__)
        out[name] = {k: [v[i] for i in order] for k, v in merged.items()}
    return out


def write(out_dir: Path, tables: dict[str, dict[str, list]], summary: dict) -> None:
    """``DIR/truth/``: the tables as Parquet, and ``summary.json``."""
    d = Path(out_dir) / "truth"
    d.mkdir(parents=True, exist_ok=True)
    for name in TABLES:
        pq.write_table(pa.table(_typed(tables[name])), d / f"{name}.parquet", compression="zstd")
    (d / "summary.json").write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n")


_INT64 = {"slot", "tx_index", "block_time", "launch_slot", "complete_slot", "migrated_slot", "lamports", "error",
          "trades"}
_UINT64 = {"token_amount", "quote_amount"}
_BOOL = {"pre_existing", "prefunded"}


def _typed(cols: dict[str, list]) -> dict[str, pa.Array]:
    """The columns as Arrow arrays, built from their buffers.

    ``pa.array`` would do the same, but its first call imports pandas (0.3-0.8 s, more
    than writing all the tables) only to learn that a list is not a pandas object.
    """
    out = {}
    for k, v in cols.items():
        if k in _UINT64:
            out[k] = _array(v, pa.uint64(), np.uint64)
        elif k in _INT64:
            out[k] = _array(v, pa.int64(), np.int64)
        elif k in _BOOL:
            out[k] = _array(v, pa.bool_(), bool)
        else:
            out[k] = _array(v, pa.string(), str)
    return out


def _array(values: list, typ: pa.DataType, kind) -> pa.Array:
    """An Arrow array of ``values`` (None = null): validity bitmap, then offsets + bytes or fixed-width values."""
    n = len(values)
    valid = None
    if None in values:
        valid = _bits([v is not None for v in values])
        values = [kind() if v is None else v for v in values]
    if kind is str:
        offsets = np.zeros(n + 1, np.int32)
        text = "".join(values)
        if text.isascii():  # one byte per character: one encode, lengths counted in C (map), not per value
            data = text.encode()
            np.cumsum(np.fromiter(map(len, values), np.int32, n), out=offsets[1:])
        else:
            parts = [s.encode() for s in values]
            data = b"".join(parts)
            np.cumsum([len(d) for d in parts], out=offsets[1:])
        return pa.Array.from_buffers(typ, n, [valid, pa.py_buffer(offsets), pa.py_buffer(data)])
    if kind is bool:
        return pa.Array.from_buffers(typ, n, [valid, _bits(values)])
    return pa.Array.from_buffers(typ, n, [valid, pa.py_buffer(np.array(values, kind))])


def _bits(flags: list[bool]) -> pa.Buffer:
    return pa.py_buffer(np.packbits(np.array(flags, bool), bitorder="little"))


def read(out_dir: Path, name: str) -> pa.Table:
    """One truth table of a simulation directory."""
    return pq.read_table(Path(out_dir) / "truth" / f"{name}.parquet")
