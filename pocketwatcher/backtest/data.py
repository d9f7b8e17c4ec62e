"""Swaps for the backtest: where they are, and reading them in stream order with DuckDB.

PATH may be the folder ``export-swaps``/``export`` writes (``DIR/swaps/*.parquet`` and
``DIR/events.parquet``), a Parquet file, or a glob. Trades come out in the order the
chain executed them: (slot, position in block, instruction path), optionally only one
partition of the mints (``hash(mint) % parts = part``) so workers can share the work
the way runner processes share stream partitions.

``stream_batches`` gives them as column lists in the engine's ``BATCH_COLUMNS`` order
(Arrow record batches from DuckDB, one ``to_pylist`` per column: no per-row objects);
``iter_stream`` gives the same stream as ("create", args) / ("trade", Trade) items.
"""

from __future__ import annotations

import glob as globmod
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pyarrow as pa

from ..triggers.engine import BATCH_COLUMNS
from ..triggers.trade import WSOL, Trade

ORDER = "slot, coalesce(tx_index, 0), ix_outer, ix_inner"
IX_OUTER = "CAST(split_part(ix, '.', 1) AS INTEGER)"
IX_INNER = "CASE WHEN ix LIKE '%.%' THEN CAST(split_part(ix, '.', 2) AS INTEGER) + 1 ELSE 0 END"


def resolve(path: str | Path) -> tuple[str, str | None]:
    """(swaps glob, events file or None) for a user-given PATH; errors name the path."""
    p = Path(path)
    if p.is_dir():
        if (p / "swaps").is_dir():
            swaps = str(p / "swaps" / "*.parquet")
        else:
            swaps = str(p / "*.parquet")
        events = p / "events.parquet"
        if not globmod.glob(swaps):
            raise FileNotFoundError(f"{path}: no Parquet swaps found (expected {swaps})")
        return swaps, str(events) if events.exists() else None
    if p.is_file():
        ev = p.parent.parent / "events.parquet" if p.parent.name == "swaps" else p.parent / "events.parquet"
        return str(p), str(ev) if ev.exists() else None
    if globmod.glob(str(path)):
        return str(path), None
    raise FileNotFoundError(f"{path}: no such file, folder or glob match")


def connect(threads: int | None = None) -> duckdb.DuckDBPyConnection:
    import tempfile

    con = duckdb.connect()
    con.execute("SET preserve_insertion_order = false")
    if threads:
        con.execute(f"SET threads = {int(threads)}")
    # spill to the system temp dir, never into the working directory (a checkout)
    con.execute(f"SET temp_directory = '{_q(tempfile.gettempdir())}/pocketwatcher-duckdb'")
    return con


def swaps_view(con: duckdb.DuckDBPyConnection, swaps_glob: str) -> None:
    con.execute(f"""
        CREATE OR REPLACE VIEW swaps AS
        SELECT *, {IX_OUTER} AS ix_outer, {IX_INNER} AS ix_inner
        FROM read_parquet('{_q(swaps_glob)}', union_by_name = true)
    """)


def _q(s: str) -> str:
    return s.replace("'", "''")


# the engine's input per swap, as SQL over the swaps view: a column an export lacks is NULL
_TRADE_SQL = {
    "k": "true",
    "mint": "mint",
    "t": "coalesce(CAST(block_time AS BIGINT), 0)",
    "slot": "coalesce(CAST(slot AS BIGINT), 0)",
    "is_buy": "coalesce(side = 'buy', false)",
    "tokens": "token_amount",
    "lamports": f"CASE WHEN quote_mint = '{WSOL}' THEN CAST(quote_amount AS BIGINT) ELSE 0 END",
    "price": f"CASE WHEN quote_mint = '{WSOL}' THEN CAST(price AS DOUBLE) END",
    "program": "program",
    "vtok": "virtual_token_reserves",
    "mcap": "CAST(mcap_sol AS DOUBLE)",
    "trader": "trader",
    "first_seen": "CAST(first_seen AS BIGINT)",
    "cluster": "cluster",
    "smart": "coalesce(smart, false)",
    "signature": "signature",
    "ix": "ix",
}
_NEEDS_COLUMN = {"tokens": "token_amount", "vtok": "virtual_token_reserves", "mcap": "mcap_sol",
                 "first_seen": "first_seen", "cluster": "cluster", "smart": "smart"}
# a create: the creator rides in ``trader``; the launch slot as stored
_CREATE_SQL = {"k": "false", "mint": "mint", "t": "coalesce(CAST(block_time AS BIGINT), 0)",
               "slot": "CAST(slot AS BIGINT)", "program": "program", "trader": 'coalesce(creator, "user")',
               "ix": "ix"}
_TYPES = {"k": "BOOLEAN", "mint": "VARCHAR", "t": "BIGINT", "slot": "BIGINT", "is_buy": "BOOLEAN",
          "tokens": "UBIGINT", "lamports": "BIGINT", "price": "DOUBLE", "program": "VARCHAR", "vtok": "UBIGINT",
          "mcap": "DOUBLE", "trader": "VARCHAR", "first_seen": "BIGINT", "cluster": "VARCHAR",
          "smart": "BOOLEAN", "signature": "VARCHAR", "ix": "VARCHAR"}


def stream_query(con: duckdb.DuckDBPyConnection, swaps_glob: str, events_path: str | None, *, part: int = 0,
                 parts: int = 1, with_ord: bool = False) -> str:
    """SQL of the engine's input in chain order: ``BATCH_COLUMNS``, creates (``k`` false)
    before the trades of their instruction. ``with_ord`` adds ``ord``: a trade's 1-based
    position among all trades (every partition) in chain order."""
    swaps_view(con, swaps_glob)
    have = {r[0] for r in con.execute("DESCRIBE swaps").fetchall()}

    def trade_col(c: str) -> str:
        if c in _NEEDS_COLUMN and _NEEDS_COLUMN[c] not in have:
            return f"CAST(NULL AS {_TYPES[c]})"
        return f"CAST({_TRADE_SQL[c]} AS {_TYPES[c]})"

    order = "slot AS o_slot, coalesce(tx_index, 0) AS o_tx"
    ord_col = f", row_number() OVER (ORDER BY {ORDER}) AS ord" if with_ord else ""
    trades = (f"SELECT {', '.join(f'{trade_col(c)} AS {c}' for c in BATCH_COLUMNS)}, {order}, ix_outer, ix_inner"
              f"{ord_col} FROM swaps")
    if parts > 1:
        trades = f"SELECT * FROM ({trades}) WHERE hash(mint) % {parts} = {part}"
    if not events_path:
        return f"{trades} ORDER BY o_slot, o_tx, ix_outer, ix_inner"
    ew = f"AND hash(mint) % {parts} = {part}" if parts > 1 else ""
    create_cols = ", ".join(f"CAST({_CREATE_SQL.get(c, 'NULL')} AS {_TYPES[c]})" for c in BATCH_COLUMNS)
    creates = (f"SELECT {create_cols}, {order}, {IX_OUTER}, {IX_INNER}{', NULL' if with_ord else ''} "
               f"FROM read_parquet('{_q(events_path)}') WHERE kind = 'create' {ew}")
    return f"{trades} UNION ALL {creates} ORDER BY o_slot, o_tx, ix_outer, ix_inner, k"


def stream_record_batches(swaps_glob: str, events_path: str | None, *, part: int = 0, parts: int = 1,
                          batch: int = 65_536, threads: int | None = None,
                          with_ord: bool = False) -> Iterator[pa.RecordBatch]:
    """The engine's input in chain order, as Arrow record batches (``BATCH_COLUMNS``, then
    the order keys, then ``ord`` if asked for)."""
    con = connect(threads)
    try:
        query = stream_query(con, swaps_glob, events_path, part=part, parts=parts, with_ord=with_ord)
        reader = con.sql(query).to_arrow_reader(batch)
        for rb in reader:
            if rb.num_rows:
                yield rb
    finally:
        con.close()


def to_columns(rb: pa.RecordBatch, *, swap_ids: bool = True) -> list[list]:
    """A record batch as the column lists ``TriggerEngine.feed_columns`` takes; without
    ``swap_ids``, all but signature and ix (see ``swap_ids_of``)."""
    return [rb.column(i).to_pylist() for i in range(len(BATCH_COLUMNS) - (0 if swap_ids else 2))]


def swap_ids_of(rb: pa.RecordBatch):
    """row -> (signature, ix) of a batch: what ``feed_columns(..., swap=)`` asks for a firing swap."""
    sig, ix = rb.column(len(BATCH_COLUMNS) - 2), rb.column(len(BATCH_COLUMNS) - 1)
    return lambda row: (sig[row].as_py(), ix[row].as_py())


def stream_batches(swaps_glob: str, events_path: str | None, *, part: int = 0, parts: int = 1,
                   batch: int = 65_536, threads: int | None = None) -> Iterator[list[list]]:
    """The engine's input in chain order, as lists of column lists (``BATCH_COLUMNS``)."""
    for rb in stream_record_batches(swaps_glob, events_path, part=part, parts=parts, batch=batch, threads=threads):
        yield to_columns(rb)


def iter_stream(swaps_glob: str, events_path: str | None, *, part: int = 0, parts: int = 1,
                batch: int = 65_536):
    """Yield ("create", (mint, creator, t, slot)) and ("trade", Trade) in chain order
    (``Trade.vsol`` is not read: the engine does not use it)."""
    for cols in stream_batches(swaps_glob, events_path, part=part, parts=parts, batch=batch):
        for (k, mint, t, slot, is_buy, tokens, lamports, price, program, vtok, mcap, trader, first_seen, cluster,
             smart, sig, ix) in zip(*cols, strict=True):
            if not k:
                yield "create", (mint, trader, t, slot)
                continue
            yield "trade", Trade(f"{sig}:{ix}", sig, ix, slot, t, mint, trader, is_buy, tokens, lamports, price,
                                 program, None, vtok, mcap, first_seen, cluster, smart)
