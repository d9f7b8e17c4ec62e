"""PostgreSQL persistence for the runner: one idempotent transaction per batch.

A Redis stream entry is acknowledged only after its effects are committed (DESIGN,
Delivery), so after a crash or a lost connection the same batch is committed again.
Every insert is therefore ``ON CONFLICT DO NOTHING`` on the record's identity, and a
failed commit is retried as a whole (:func:`with_retry`) instead of being patched up.

Swaps travel by binary COPY into a per-connection staging table (created once per
connection by :func:`setup_connection`, emptied by ``ON COMMIT DELETE ROWS``) and one
``INSERT ... SELECT``: one round trip per table however large the batch, and no
catalog churn from creating temp tables per transaction. This needs session-level
connections (no PgBouncer in transaction mode).

jsonb columns (fees, features, runner_state values) take and return Python objects on
connections made here; amounts are Python ints in, ints out (numeric(20,0) holds any u64).
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import random
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from contextlib import asynccontextmanager, suppress
from typing import Any, TypeVar
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import asyncpg
import orjson

from ..enrich.wallets import Enrichment
from ..parse import SolTransfer
from ..parse.programs.pumpfun import TokenEvent
from ..parse.swap import Swap
from ..triggers.engine import Alert
from .streams import partition_of  # one partition function for streams and store

log = logging.getLogger("pocketwatcher.store")
T = TypeVar("T")
OUTBOX_CHANNEL = "pw_outbox"  # NOTIFYed with the number of new deliveries, for a LISTENing dispatcher


# -- staging tables: one per target, same column types, no constraints ------------------
_COLUMNS: dict[str, list[tuple[str, str]]] = {
    "swaps": [
        ("signature", "text"), ("ix", "text"), ("slot", "bigint"), ("block_time", "bigint"),
        ("block_time_estimated", "boolean"), ("tx_index", "integer"), ("program", "text"),
        ("router", "text"), ("pool", "text"), ("trader", "text"), ("mint", "text"), ("side", "text"),
        ("token_amount", "numeric(20,0)"), ("token_decimals", "smallint"), ("quote_mint", "text"),
        ("quote_amount", "numeric(20,0)"), ("quote_decimals", "smallint"), ("price", "double precision"),
        ("virtual_sol_reserves", "numeric(20,0)"), ("virtual_token_reserves", "numeric(20,0)"),
        ("mcap_sol", "double precision"), ("fees", "jsonb"), ("fee_payer", "text"),
        ("first_seen", "bigint"), ("cluster", "text"), ("smart", "boolean"),
    ],
    "token_events": [
        ("signature", "text"), ("ix", "text"), ("kind", "text"), ("mint", "text"), ("slot", "bigint"),
        ("tx_index", "integer"), ("block_time", "bigint"), ("program", "text"), ("user", "text"),
        ("creator", "text"), ("bonding_curve", "text"), ("name", "text"), ("symbol", "text"),
        ("uri", "text"), ("pool", "text"),
    ],
    "sol_transfers": [
        ("signature", "text"), ("ix", "text"), ("slot", "bigint"), ("block_time", "bigint"),
        ("source", "text"), ("destination", "text"), ("lamports", "numeric(20,0)"), ("tx_index", "integer"),
    ],
    "alerts": [
        ("id", "text"), ("trigger", "text"), ("trigger_version", "integer"), ("mint", "text"),
        ("signature", "text"), ("ix", "text"), ("slot", "bigint"), ("block_time", "bigint"),
        ("severity", "text"), ("channels", "text[]"), ("features", "jsonb"),
    ],
}
_KEYS = {"swaps": "signature, ix", "token_events": "signature, ix, kind", "sol_transfers": "signature, ix"}
_NUMERIC = {"token_amount", "quote_amount", "virtual_sol_reserves", "virtual_token_reserves", "lamports"}
SWAP_COLUMNS = tuple(c for c, _ in _COLUMNS["swaps"])


def _q(col: str) -> str:
    return f'"{col}"'


def _cols(table: str) -> str:
    return ", ".join(_q(c) for c, _ in _COLUMNS[table])


_STAGING_DDL = "\n".join(
    f"CREATE TEMP TABLE IF NOT EXISTS _pw_in_{t} ({', '.join(f'{_q(c)} {ty}' for c, ty in cols)})"
    " ON COMMIT DELETE ROWS;" for t, cols in _COLUMNS.items())
_INSERT = {t: f"INSERT INTO {t} ({_cols(t)}) SELECT {_cols(t)} FROM _pw_in_{t} ON CONFLICT ({k}) DO NOTHING"
           for t, k in _KEYS.items()}
# Deliveries only for alerts this statement inserted: a replayed alert keeps its outbox state.
_INSERT_ALERTS = f"""
WITH ins AS (
    INSERT INTO alerts ({_cols("alerts")}, token_name, token_symbol)
    SELECT {", ".join(f"a.{_q(c)}" for c, _ in _COLUMNS["alerts"])}, te.name, te.symbol
    FROM _pw_in_alerts a
    LEFT JOIN LATERAL (SELECT name, symbol FROM token_events
                       WHERE kind = 'create' AND mint = a.mint LIMIT 1) te ON true
    ON CONFLICT (id) DO NOTHING
    RETURNING id, channels
), d AS (
    INSERT INTO alert_deliveries (alert_id, channel)
    SELECT ins.id, ch FROM ins, unnest(ins.channels) AS ch
    ON CONFLICT DO NOTHING
    RETURNING 1
)
SELECT (SELECT count(*) FROM ins) AS alerts, (SELECT count(*) FROM d) AS deliveries"""
_UPSERT_STATE = """
INSERT INTO runner_state (key, value, updated_at)
SELECT k, v, now() FROM unnest($1::text[], $2::jsonb[]) AS s(k, v)
ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, updated_at = now()"""
_CHAIN_ORDER = "slot, tx_index NULLS LAST, signature, string_to_array(ix, '.')::int[]"


# -- JSON -------------------------------------------------------------------------------
def _default(o: Any) -> Any:
    if hasattr(o, "item"):  # numpy scalars
        return o.item()
    if isinstance(o, (set, frozenset)):
        return sorted(o)
    raise TypeError(f"{type(o).__name__} is not JSON serializable")


def _finite(o: Any) -> Any:
    if isinstance(o, float):
        return o if math.isfinite(o) else None
    if isinstance(o, dict):
        return {str(k): _finite(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [_finite(v) for v in o]
    return o


def dumps(o: Any) -> bytes:
    """JSON PostgreSQL accepts, as UTF-8: NaN/inf (which jsonb rejects) become null.

    orjson first (every committed swap's fees go through here: ~10x the stdlib's speed;
    it writes non-finite floats as null too); the stdlib for what orjson refuses, such as
    integers beyond 64 bits."""
    try:
        return orjson.dumps(o, default=_default, option=orjson.OPT_NON_STR_KEYS)
    except (orjson.JSONEncodeError, TypeError):
        pass
    try:
        return json.dumps(o, separators=(",", ":"), allow_nan=False, default=_default).encode()
    except ValueError:
        return json.dumps(_finite(o), separators=(",", ":"), default=_default).encode()



async def setup_connection(conn: asyncpg.Connection) -> None:
    """Per-connection set-up (pool ``init``): the jsonb codec and the staging tables.

    The codec is binary because COPY is binary; the jsonb wire format is a version byte
    followed by the JSON text.
    """
    await conn.set_type_codec("jsonb", schema="pg_catalog", format="binary",
                              encoder=lambda v: b"\x01" + dumps(v),
                              decoder=lambda b: json.loads(b[1:]))
    await conn.execute(_STAGING_DDL)


# -- connecting -------------------------------------------------------------------------
class StoreUnavailable(ConnectionError):
    """PostgreSQL could not be reached (transient: :func:`with_retry` retries it)."""


class StoreConfigError(RuntimeError):
    """PostgreSQL refused us for a reason retrying will not fix (password, database, DSN)."""


def redact_dsn(dsn: str) -> str:
    """The DSN with any password replaced by ``***``: safe for logs and error messages."""
    try:
        u = urlsplit(dsn)
        netloc = u.netloc
        if "@" in netloc:
            userinfo, _, hostport = netloc.rpartition("@")
            user, colon, _ = userinfo.partition(":")
            netloc = f"{user}{':***' if colon else ''}@{hostport}"
        query = urlencode([(k, "***" if "password" in k.lower() else v)
                           for k, v in parse_qsl(u.query, keep_blank_values=True)], safe="/")
        return urlunsplit((u.scheme, netloc, u.path, query, u.fragment))
    except ValueError:
        return "<unparseable DSN>"


def _scrub(text: str, dsn: str) -> str:
    try:
        u = urlsplit(dsn)
        secrets = [u.password] + [v for k, v in parse_qsl(u.query) if "password" in k.lower()]
    except ValueError:
        secrets = []
    for s in secrets:
        if s:
            text = text.replace(s, "***")
    return text


async def connect_pool(dsn: str, *, min_size: int = 1, max_size: int = 4, connect_timeout: float = 10.0,
                       command_timeout: float = 60.0) -> asyncpg.Pool:
    """A pool set up for :class:`Store`; errors name the server, never the password."""
    try:
        return await asyncpg.create_pool(
            dsn, min_size=min_size, max_size=max_size, timeout=connect_timeout,
            command_timeout=command_timeout, max_inactive_connection_lifetime=300.0,
            init=setup_connection, server_settings={"application_name": "pocketwatcher"})
    except Exception as e:  # noqa: BLE001 - re-raised with a redacted message
        where = redact_dsn(dsn)
        msg = _scrub(f"{type(e).__name__}: {e}", dsn)
        if is_transient(e):
            raise StoreUnavailable(
                f"cannot reach PostgreSQL at {where} ({msg}); is the server running? Check DATABASE_URL, "
                "or unset it to use the embedded server") from None
        raise StoreConfigError(
            f"PostgreSQL at {where} refused the connection ({msg}); fix DATABASE_URL "
            "(user, password, database name)") from None


# -- retrying ---------------------------------------------------------------------------
_TRANSIENT = (
    OSError,  # refused, reset, TimeoutError (connect or command), StoreUnavailable
    asyncpg.PostgresConnectionError,  # 08xxx, incl. ConnectionDoesNotExistError
    asyncpg.exceptions.AdminShutdownError,  # 57P01: terminated / server shutting down
    asyncpg.exceptions.CrashShutdownError,
    asyncpg.exceptions.CannotConnectNowError,  # 57P03: starting up / recovering
    asyncpg.exceptions.TooManyConnectionsError,
    asyncpg.exceptions.DeadlockDetectedError,
    asyncpg.exceptions.SerializationError,
    # asyncpg can report a connection killed under it as a protocol-state error
    # (MagicStack/asyncpg#1069); the connection is discarded (Store.connection), so a retry is clean.
    asyncpg.exceptions.InternalClientError,
)


def is_transient(e: BaseException) -> bool:
    """Whether retrying the same (idempotent) work can succeed: connection loss and friends."""
    if isinstance(e, _TRANSIENT):
        return True
    if isinstance(e, asyncpg.InterfaceError):
        msg = str(e).lower()
        # "another operation is in progress": a ROLLBACK sent on a connection whose COPY or
        # query was cut off by a lost server; the connection is thrown away (Store.connection)
        return "pool is clos" not in msg and ("closed" in msg or "connection" in msg
                                              or "another operation is in progress" in msg)
    return False


async def with_retry(fn: Callable[[], Awaitable[T]], *, attempts: int | None = 10, base_delay: float = 0.2,
                     max_delay: float = 5.0, what: str = "PostgreSQL operation") -> T:
    """Await ``fn()``, retrying transient failures with exponential backoff and jitter.

    ``fn`` must be safe to run again as a whole (every Store write is). ``attempts=None``
    retries until it succeeds, for a runner that would rather wait out a database restart
    than drop work; anything not transient is raised at once.
    """
    attempt = 0
    while True:
        attempt += 1
        try:
            return await fn()
        except Exception as e:
            if not is_transient(e) or (attempts is not None and attempt >= attempts):
                raise
            delay = min(max_delay, base_delay * 2 ** (attempt - 1)) * random.uniform(0.5, 1.0)
            log.warning("%s failed (%s: %s); retry %d in %.2fs", what, type(e).__name__, e, attempt, delay)
            await asyncio.sleep(delay)


# -- records ----------------------------------------------------------------------------
def _swap_row(s: Swap, e: Enrichment | None) -> tuple:
    return (s.signature, s.ix, s.slot, s.block_time, s.block_time_estimated, s.tx_index, s.program,
            s.router, s.pool, s.trader, s.mint, s.side, s.token_amount, s.token_decimals, s.quote_mint,
            s.quote_amount, s.quote_decimals, s.price, s.virtual_sol_reserves, s.virtual_token_reserves,
            s.mcap_sol, s.fees, s.fee_payer, e.first_seen if e else None, e.cluster if e else None,
            e.smart if e else None)


def _event_row(ev: TokenEvent) -> tuple:
    return (ev.signature, ev.ix, ev.kind, ev.mint, ev.slot, getattr(ev, "tx_index", None), ev.block_time,
            ev.program, ev.user,
            ev.creator, ev.bonding_curve, ev.name, ev.symbol, ev.uri, ev.pool)


def _transfer_row(t: SolTransfer) -> tuple:
    return (t.signature, t.ix, t.slot, t.block_time, t.source, t.destination, t.lamports, t.tx_index)


def _alert_row(a: Alert) -> tuple:
    return (a.id, a.trigger, a.version, a.mint, a.signature, a.ix, a.slot, a.block_time, a.severity,
            list(a.channels), a.features)


def _record(r: asyncpg.Record) -> dict:
    return {k: (int(v) if k in _NUMERIC and v is not None else v) for k, v in r.items()}


_SWAP_FIELDS = tuple(f for f in Swap.__slots__ if f in SWAP_COLUMNS)


def row_to_swap(row: dict) -> tuple[Swap, Enrichment | None]:
    """A :meth:`Store.recent_swaps` row back as the records the engine is fed."""
    s = Swap(**{f: row[f] for f in _SWAP_FIELDS})
    if s.fees is None:
        s.fees = {}
    enr = Enrichment(row["first_seen"], row["cluster"], bool(row["smart"])) if row["cluster"] is not None else None
    return s, enr


class Store:
    """The runner's reads and writes; ``pool`` comes from :func:`connect_pool`."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[asyncpg.Connection]:
        """A pooled connection that is thrown away, not reused, after a connection-level failure
        or a cancellation: asyncpg may otherwise hand its broken protocol state to the next user.
        Other users of the pool (dispatcher, dashboard) should borrow through this too."""
        conn = await self.pool.acquire()
        try:
            yield conn
        except BaseException as e:
            if is_transient(e) or isinstance(e, asyncio.CancelledError):
                with suppress(asyncpg.InterfaceError):  # already closed: the pool detached it
                    conn.terminate()
            raise
        finally:
            try:
                await self.pool.release(conn)
            except Exception as e:  # noqa: BLE001 - the pool terminated it; the work itself is done
                log.debug("discarded a broken PostgreSQL connection on release: %s: %s", type(e).__name__, e)

    async def commit_batch(self, swaps: Sequence[tuple[Swap, Enrichment | None]],
                           events: Iterable[TokenEvent] = (), transfers: Iterable[SolTransfer] = (),
                           alerts: Iterable[Alert] = (), *, state: dict | None = None) -> dict:
        """Store a batch and its bookkeeping in ONE transaction; safe to repeat.

        Returns how many of each were inserted and how many were already there (``*_dup``)
        and the number of deliveries created. ``state`` (e.g. the partition's last
        committed stream id) is upserted into ``runner_state`` in the same transaction,
        so it can never run ahead of the data.
        """
        rows = {"swaps": [_swap_row(s, e) for s, e in swaps],
                "token_events": [_event_row(ev) for ev in events],
                "sol_transfers": [_transfer_row(t) for t in transfers],
                "alerts": [_alert_row(a) for a in alerts]}
        counts = {"swaps": 0, "swaps_dup": 0, "events": 0, "events_dup": 0, "transfers": 0,
                  "transfers_dup": 0, "alerts": 0, "alerts_dup": 0, "deliveries": 0}
        names = {"swaps": "swaps", "token_events": "events", "sol_transfers": "transfers"}
        async with self.connection() as conn, conn.transaction():
            for table, name in names.items():
                if rows[table]:
                    await conn.copy_records_to_table(f"_pw_in_{table}", records=rows[table])
                    status = await conn.execute(_INSERT[table])
                    counts[name] = int(status.rsplit(" ", 1)[1])
                    counts[name + "_dup"] = len(rows[table]) - counts[name]
            if rows["alerts"]:
                await conn.copy_records_to_table("_pw_in_alerts", records=rows["alerts"])
                r = await conn.fetchrow(_INSERT_ALERTS)
                counts["alerts"], counts["deliveries"] = r["alerts"], r["deliveries"]
                counts["alerts_dup"] = len(rows["alerts"]) - r["alerts"]
                if r["deliveries"]:
                    await conn.execute("SELECT pg_notify($1, $2)", OUTBOX_CHANNEL, str(r["deliveries"]))
            if state:
                await conn.execute(_UPSERT_STATE, list(state), list(state.values()))
        return counts

    # -- reads -----------------------------------------------------------------------
    async def recent_swaps(self, *, since_block_time: int,
                           partition: tuple[int, int] | None = None) -> list[dict]:
        """Swaps since a block time in chain order, to rebuild the engine's windows on start.

        ``partition=(k, P)`` keeps the mints with ``partition_of(mint, P) == k``. The hash is
        not computable in SQL, so the distinct mints are fetched first and the rows after,
        by the (mint, block_time) index.
        """
        cols = ", ".join(_q(c) for c in SWAP_COLUMNS)
        async with self.connection() as conn:
            if partition is None:
                rows = await conn.fetch(f"SELECT {cols} FROM swaps WHERE block_time >= $1 "
                                        f"ORDER BY {_CHAIN_ORDER}", since_block_time)
            else:
                k, parts = partition
                mints = await conn.fetch("SELECT DISTINCT mint FROM swaps WHERE block_time >= $1",
                                         since_block_time)
                mine = [r["mint"] for r in mints if partition_of(r["mint"], parts) == k]
                rows = await conn.fetch(f"SELECT {cols} FROM swaps WHERE block_time >= $1 AND mint = ANY($2) "
                                        f"ORDER BY {_CHAIN_ORDER}", since_block_time, mine) if mine else []
        return [_record(r) for r in rows]

    async def token_creates(self, mints: Iterable[str]) -> list[dict]:
        """The create events of these mints (name, symbol, creator, launch slot/time)."""
        async with self.connection() as conn:
            rows = await conn.fetch(
                "SELECT * FROM token_events WHERE kind = 'create' AND mint = ANY($1) ORDER BY "
                + _CHAIN_ORDER, list(mints))
        return [_record(r) for r in rows]

    async def get_state(self, key: str, default: Any = None) -> Any:
        async with self.connection() as conn:
            row = await conn.fetchrow("SELECT value FROM runner_state WHERE key = $1", key)
        return default if row is None else row["value"]

    async def set_state(self, key: str, value: Any) -> None:
        async with self.connection() as conn:
            await conn.execute(_UPSERT_STATE, [key], [value])

    async def counts(self) -> dict:
        """Totals for the dashboard/metrics. The swap count is the planner's estimate once the
        table is large (an exact count(*) over millions of rows takes seconds)."""
        async with self.connection() as conn:
            est = await conn.fetchval("SELECT reltuples::bigint FROM pg_class WHERE oid = 'swaps'::regclass")
            exact = est is None or est < 1_000_000
            swaps = await conn.fetchval("SELECT count(*) FROM swaps") if exact else est
            alerts = await conn.fetchval("SELECT count(*) FROM alerts")
            states = await conn.fetch("SELECT state, count(*) AS n FROM alert_deliveries GROUP BY state")
        deliveries = {s: 0 for s in ("pending", "sending", "sent", "dead")}
        deliveries.update({r["state"]: r["n"] for r in states})
        return {"swaps": swaps, "swaps_estimated": not exact, "alerts": alerts, "deliveries": deliveries}

    async def alerts_page(self, limit: int = 50, before: str | None = None) -> list[dict]:
        """Newest alerts first with their deliveries; ``before`` is the last id of the previous page."""
        args: list[Any] = [limit]
        where = ""
        if before is not None:
            where = "WHERE (a.block_time, a.id) < (SELECT block_time, id FROM alerts WHERE id = $2)"
            args.append(before)
        async with self.connection() as conn:
            rows = await conn.fetch(f"""
                SELECT a.*, COALESCE((SELECT jsonb_agg(jsonb_build_object(
                        'channel', d.channel, 'state', d.state, 'attempts', d.attempts,
                        'last_status', d.last_status, 'last_error', d.last_error,
                        'sent_at', d.sent_at, 'dead_reason', d.dead_reason) ORDER BY d.channel)
                    FROM alert_deliveries d WHERE d.alert_id = a.id), '[]'::jsonb) AS deliveries
                FROM alerts a {where} ORDER BY a.block_time DESC, a.id DESC LIMIT $1""", *args)
        return [dict(r) for r in rows]
