"""The migration runner: in order, once each, safe when several processes start together."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from pocketwatcher.store.migrate import MigrationError, migrate, migration_files

pytestmark = pytest.mark.integration


def test_applies_once_and_records_versions(pg_url):
    async def go():
        first = await migrate(pg_url)
        second = await migrate(pg_url)
        conn = await asyncpg.connect(pg_url)
        try:
            rows = await conn.fetch("SELECT version FROM schema_migrations ORDER BY version")
            tables = {r[0] for r in await conn.fetch(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}
        finally:
            await conn.close()
        return first, second, [r[0] for r in rows], tables

    first, second, versions, tables = asyncio.run(go())
    assert first == [p.stem for p in migration_files()] and second == []
    assert versions == first
    assert {"alerts", "alert_deliveries", "alert_attempts", "schema_migrations"} <= tables


def test_concurrent_migrators_apply_each_file_once(pg_url):
    async def go():
        return await asyncio.gather(*(migrate(pg_url) for _ in range(6)))

    results = asyncio.run(go())
    applied = [v for r in results for v in r]
    assert sorted(applied) == [p.stem for p in migration_files()]


def test_a_failing_migration_applies_nothing_and_names_the_file(pg_url, tmp_path):
    (tmp_path / "001_ok.sql").write_text("CREATE TABLE t1 (x int);")
    (tmp_path / "002_broken.sql").write_text("CREATE TABLE t2 (x nonexistent_type);")
    with pytest.raises(MigrationError, match="002_broken.sql"):
        asyncio.run(migrate(pg_url, tmp_path))

    async def tables():
        conn = await asyncpg.connect(pg_url)
        try:
            return {r[0] for r in await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}
        finally:
            await conn.close()

    assert "t1" not in asyncio.run(tables())
    (tmp_path / "bad name.sql").write_text("")
    with pytest.raises(MigrationError, match="NNN_description.sql"):
        migration_files(tmp_path)
