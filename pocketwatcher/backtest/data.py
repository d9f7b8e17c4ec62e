"""Swaps for the backtest: where they are, and reading them in stream order with DuckDB.

PATH may be the folder ``export-swaps``/``export`` writes (``DIR/swaps/*.parquet`` and
``DIR/events.parquet``), a Parquet file, or a glob. Trades come out in the order the
chain executed them: (slot, position in block, instruction path), optionally only one
partition of the mints (``hash(mint) % parts = part``) so workers can share the work
the way runner processes share stream partitions.
"""

from __future__ import annotations

import glob as globmod
from pathlib import Path

import duckdb

from ..triggers.trade import Trade

ORDER = "slot, coalesce(tx_index, 0), ix_outer, ix_inner"


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


def connect() -> duckdb.DuckDBPyConnection:
    import tempfile

    con = duckdb.connect()
    con.execute("SET preserve_insertion_order = false")
    # spill to the system temp dir, never into the working directory (a checkout)
    con.execute(f"SET temp_directory = '{_q(tempfile.gettempdir())}/pocketwatcher-duckdb'")
    return con


def swaps_view(con: duckdb.DuckDBPyConnection, swaps_glob: str) -> None:
    con.execute(f"""
        CREATE OR REPLACE VIEW swaps AS
        SELECT *, CAST(split_part(ix, '.', 1) AS INTEGER) AS ix_outer,
               CASE WHEN ix LIKE '%.%' THEN CAST(split_part(ix, '.', 2) AS INTEGER) + 1 ELSE 0 END AS ix_inner
        FROM read_parquet('{_q(swaps_glob)}', union_by_name = true)
    """)


def _q(s: str) -> str:
    return s.replace("'", "''")


TRADE_COLS = ["signature", "ix", "slot", "block_time", "mint", "trader", "side", "token_amount", "quote_mint",
              "quote_amount", "price", "program", "virtual_sol_reserves", "virtual_token_reserves", "mcap_sol",
              "first_seen", "cluster", "smart"]


def iter_stream(swaps_glob: str, events_path: str | None, *, part: int = 0, parts: int = 1,
                batch: int = 200_000):
    """Yield ("create", (mint, creator, t, slot)) and ("trade", Trade) in chain order."""
    con = connect()
    swaps_view(con, swaps_glob)
    cols = {r[0] for r in con.execute("DESCRIBE swaps").fetchall()}
    sel = ", ".join(c if c in cols else f"NULL AS {c}" for c in TRADE_COLS)
    where = f"WHERE hash(mint) % {parts} = {part}" if parts > 1 else ""
    trades = f"SELECT 1 AS k, {sel}, slot AS o_slot, coalesce(tx_index, 0) AS o_tx, ix_outer, ix_inner FROM swaps {where}"
    if events_path:
        ew = f"AND hash(mint) % {parts} = {part}" if parts > 1 else ""
        creates = f"""SELECT 0 AS k, NULL, ix, slot, block_time, mint, coalesce(creator, "user"),
                             NULL, NULL, NULL, NULL, NULL, program, NULL, NULL, NULL, NULL, NULL, NULL,
                             slot, coalesce(tx_index, 0),
                             CAST(split_part(ix, '.', 1) AS INTEGER),
                             CASE WHEN ix LIKE '%.%' THEN CAST(split_part(ix, '.', 2) AS INTEGER) + 1 ELSE 0 END
                      FROM read_parquet('{_q(events_path)}') WHERE kind = 'create' {ew}"""
        query = f"{trades} UNION ALL {creates} ORDER BY o_slot, o_tx, ix_outer, ix_inner, k"
    else:
        query = f"{trades} ORDER BY o_slot, o_tx, ix_outer, ix_inner"
    cur = con.execute(query)
    wsol = "So11111111111111111111111111111111111111112"
    while True:
        rows = cur.fetchmany(batch)
        if not rows:
            break
        for r in rows:
            if r[0] == 0:
                yield "create", (r[5], r[6], r[4] or 0, r[3])
                continue
            (_k, sig, ix, slot, bt, mint, trader, side, tok, qmint, qamt, price, prog, vs, vt, mcap,
             fs, cl, smart) = r[:19]
            sol_quote = qmint == wsol
            yield "trade", Trade(f"{sig}:{ix}", sig, ix, slot or 0, bt or 0, mint, trader, side == "buy", tok,
                                 qamt if sol_quote else 0, price if sol_quote else None, prog, vs, vt, mcap,
                                 fs, cl, bool(smart))
    con.close()
