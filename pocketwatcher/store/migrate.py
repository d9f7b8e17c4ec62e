"""Apply ``migrations/*.sql`` to a PostgreSQL database, in order, once each.

Every process that needs the schema (the runner, the dispatcher, ``alerts send-test``)
calls ``migrate`` on start, so several may race on an empty database. One transaction
takes a transaction-scoped advisory lock first, then creates ``schema_migrations`` if
needed, applies what is missing and records it: a second caller waits on the lock and
then finds everything applied. A failing migration rolls back all of that run, so the
schema is never half-applied.

Migrations run inside that transaction: they must not use statements PostgreSQL refuses
in one (``CREATE INDEX CONCURRENTLY``, ``VACUUM``). Versions are the file names without
``.sql`` (``001_init``), ordered by their numeric prefix.
"""

from __future__ import annotations

import re
from pathlib import Path

import asyncpg

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
LOCK_KEY = 0x706F636B65747761  # "pocketwa": one advisory lock for every migrator of this schema
_NAME = re.compile(r"^(\d+)_[A-Za-z0-9_]+\.sql$")


class MigrationError(RuntimeError):
    """A migration file is misnamed or failed to apply; the message names the file."""


def migration_files(directory: Path = MIGRATIONS_DIR) -> list[Path]:
    files = []
    for path in directory.glob("*.sql"):
        m = _NAME.match(path.name)
        if not m:
            raise MigrationError(f"{path}: migration files are named NNN_description.sql; rename it")
        files.append((int(m.group(1)), path))
    numbers = [n for n, _ in files]
    if len(numbers) != len(set(numbers)):
        raise MigrationError(f"{directory}: two migration files share a number; renumber one")
    return [p for _, p in sorted(files)]


async def migrate(conn_or_dsn: asyncpg.Connection | asyncpg.Pool | str,
                  directory: Path = MIGRATIONS_DIR) -> list[str]:
    """Apply the missing migrations; return the versions applied by this call."""
    if isinstance(conn_or_dsn, str):
        conn = await asyncpg.connect(conn_or_dsn, timeout=30)
        try:
            return await _migrate(conn, directory)
        finally:
            await conn.close()
    if isinstance(conn_or_dsn, asyncpg.Pool):
        async with conn_or_dsn.acquire() as conn:
            return await _migrate(conn, directory)
    return await _migrate(conn_or_dsn, directory)


async def _migrate(conn: asyncpg.Connection, directory: Path) -> list[str]:
    files = migration_files(directory)
    applied: list[str] = []
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", LOCK_KEY)
        await conn.execute("CREATE TABLE IF NOT EXISTS schema_migrations ("
                           " version text PRIMARY KEY,"
                           " applied_at timestamptz NOT NULL DEFAULT now())")
        done = {r[0] for r in await conn.fetch("SELECT version FROM schema_migrations")}
        for path in files:
            version = path.stem
            if version in done:
                continue
            try:
                await conn.execute(path.read_text())
            except asyncpg.PostgresError as e:
                raise MigrationError(f"{path.name}: {type(e).__name__}: {e}; nothing was applied "
                                     "(fix the file and run again)") from e
            await conn.execute("INSERT INTO schema_migrations (version) VALUES ($1)", version)
            applied.append(version)
    return applied
