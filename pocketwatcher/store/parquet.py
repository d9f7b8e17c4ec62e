"""Swaps, token events and SOL transfers as Parquet: the backtest's and notebooks' input.

``export_capture`` reads a ``.pwcap`` capture, stamps every swap with the block time of
its slot (from the capture's BlockMeta updates; interpolated and flagged when a slot
has none) and writes::

    DIR/swaps/part-00000.parquet ...   one row per swap (columns: SWAP_SCHEMA)
    DIR/events.parquet                 pump.fun create / complete / migrate
    DIR/transfers.parquet              plain SOL transfers (wallet funding)
    DIR/export.json                    counts and the no-swap reasons

Amounts stay integers (uint64); only price and market cap are floats.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

SWAP_SCHEMA = pa.schema([
    ("signature", pa.string()), ("ix", pa.string()), ("slot", pa.uint64()),
    ("block_time", pa.int64()), ("block_time_estimated", pa.bool_()), ("tx_index", pa.uint32()),
    ("program", pa.string()), ("router", pa.string()), ("pool", pa.string()),
    ("trader", pa.string()), ("mint", pa.string()), ("side", pa.string()),
    ("token_amount", pa.uint64()), ("token_decimals", pa.uint8()),
    ("quote_mint", pa.string()), ("quote_amount", pa.uint64()), ("quote_decimals", pa.uint8()),
    ("price", pa.float64()), ("virtual_sol_reserves", pa.uint64()),
    ("virtual_token_reserves", pa.uint64()), ("mcap_sol", pa.float64()), ("fees", pa.string()),
    ("fee_payer", pa.string()),
    # stream-wide wallet facts stamped in stream order (pocketwatcher.enrich.wallets)
    ("first_seen", pa.int64()), ("cluster", pa.string()), ("smart", pa.bool_()),
])
EVENT_SCHEMA = pa.schema([
    ("kind", pa.string()), ("signature", pa.string()), ("ix", pa.string()), ("slot", pa.uint64()),
    ("tx_index", pa.uint32()), ("block_time", pa.int64()), ("program", pa.string()), ("mint", pa.string()),
    ("user", pa.string()), ("creator", pa.string()), ("bonding_curve", pa.string()),
    ("name", pa.string()), ("symbol", pa.string()), ("uri", pa.string()), ("pool", pa.string()),
])
TRANSFER_SCHEMA = pa.schema([
    ("signature", pa.string()), ("ix", pa.string()), ("slot", pa.uint64()), ("block_time", pa.int64()),
    ("source", pa.string()), ("destination", pa.string()), ("lamports", pa.uint64()),
])


def swap_row(s, enrichment=None) -> dict:
    d = asdict(s)
    d["fees"] = json.dumps(d["fees"], separators=(",", ":")) if d["fees"] else None
    if enrichment is not None:
        d["first_seen"], d["cluster"], d["smart"] = enrichment.first_seen, enrichment.cluster, enrichment.smart
    return {k: d.get(k) for k in SWAP_SCHEMA.names}


class SwapParquetWriter:
    """Writes swaps in parts of ``rows_per_part`` rows under ``DIR/swaps/``."""

    def __init__(self, out_dir: Path, rows_per_part: int = 1_000_000, batch: int = 50_000) -> None:
        self.dir = Path(out_dir) / "swaps"
        self.dir.mkdir(parents=True, exist_ok=True)
        for old in self.dir.glob("part-*.parquet"):
            old.unlink()
        self.rows_per_part = rows_per_part
        self.batch = batch
        self._rows: list[dict] = []
        self._writer: pq.ParquetWriter | None = None
        self._part = 0
        self._in_part = 0
        self.count = 0

    def add(self, swap, enrichment=None) -> None:
        self._rows.append(swap_row(swap, enrichment))
        if len(self._rows) >= self.batch:
            self._flush()

    def _flush(self) -> None:
        if not self._rows:
            return
        if self._writer is None:
            path = self.dir / f"part-{self._part:05d}.parquet"
            self._writer = pq.ParquetWriter(path, SWAP_SCHEMA, compression="zstd")
        table = pa.Table.from_pylist(self._rows, schema=SWAP_SCHEMA)
        self._writer.write_table(table)
        self.count += len(self._rows)
        self._in_part += len(self._rows)
        self._rows = []
        if self._in_part >= self.rows_per_part:
            self._writer.close()
            self._writer = None
            self._part += 1
            self._in_part = 0

    def close(self) -> None:
        self._flush()
        if self._writer is not None:
            self._writer.close()
        elif self.count == 0:  # an empty export is still a readable table
            pq.write_table(pa.Table.from_pylist([], schema=SWAP_SCHEMA), self.dir / "part-00000.parquet")


def write_table(rows: list[dict], schema: pa.Schema, path: Path) -> None:
    pq.write_table(pa.Table.from_pylist([{k: r.get(k) for k in schema.names} for r in rows], schema=schema),
                   path, compression="zstd")


def export_capture(capture: Path, out_dir: Path, *, progress: bool = True) -> dict:
    """Parse a capture into Parquet swaps (two passes: block times first, then transactions).

    Transactions of a slot the capture marks dead (``SLOT_DEAD``: a dropped fork, seen in
    processed captures recorded with interslot statuses) are left out and counted in
    ``dead_slot_transactions``.
    """
    from ..enrich.wallets import Enricher
    from ..geyser.capture import CaptureReader
    from ..geyser.clock import SlotClock
    from ..parse import STATS, parse_update_full
    from ..progress import progress_bar
    from ..proto import geyser_pb2

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    reader = CaptureReader(capture)
    clock = SlotClock(max_slots=10_000_000)
    enricher = Enricher()
    total = 0
    msg = geyser_pb2.SubscribeUpdate()
    dead: set[int] = set()  # slots of a dropped fork (a processed capture recorded with interslot statuses)
    for raw in reader:  # pass 1: the slot clock, dead slots (and the record count, for the bar)
        total += 1
        msg.ParseFromString(raw)
        kind = msg.WhichOneof("update_oneof")
        if kind == "block_meta":
            bm = msg.block_meta
            clock.observe(bm.slot, bm.block_time.timestamp)
        elif kind == "slot" and msg.slot.status == geyser_pb2.SLOT_DEAD:
            dead.add(msg.slot.slot)
    STATS.reset()
    swaps = SwapParquetWriter(out_dir)
    events: list[dict] = []
    transfers: list[dict] = []
    txs = dropped = 0
    with progress_bar(total, f"exporting {Path(capture).name}", unit="upd", enabled=progress) as advance:
        for raw in CaptureReader(capture):
            advance()
            msg.ParseFromString(raw)
            if msg.WhichOneof("update_oneof") != "transaction":
                continue
            if msg.transaction.slot in dead:
                dropped += 1
                continue
            txs += 1
            res = parse_update_full(msg, transfers=True)
            if res.view is None:
                continue
            bt, est = clock.time_of(res.view.slot)
            for t in res.transfers:
                t.block_time = bt
                transfers.append(asdict(t))
                enricher.on_transfer(t.source, t.destination, t.lamports, bt)
            for e in res.events:
                e.block_time = bt
                events.append({**e.to_dict(), "tx_index": res.view.index})
            for s in res.swaps:
                s.block_time, s.block_time_estimated = bt, est
                swaps.add(s, enricher.on_swap(s, s.fee_payer))
    swaps.close()
    write_table(events, EVENT_SCHEMA, out_dir / "events.parquet")
    write_table(transfers, TRANSFER_SCHEMA, out_dir / "transfers.parquet")
    summary = {"capture": str(capture), "updates": total, "transactions": txs, "swaps": swaps.count,
               "events": len(events), "transfers": len(transfers), "slots_with_time": len(clock),
               "no_swap_reasons": dict(STATS.reasons), "truncated_capture": reader.truncated,
               "damaged_capture": reader.damaged,
               "dead_slot_transactions": dropped}
    (out_dir / "export.json").write_text(json.dumps(summary, indent=2))
    return summary
