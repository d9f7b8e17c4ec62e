"""Fixtures of the alerting tests: the fake chat server and a migrated database."""

from __future__ import annotations

import asyncio

import pytest

from pocketwatcher.alerting.testing import FakeChatServer
from pocketwatcher.store.migrate import migrate


@pytest.fixture
def fake():
    with FakeChatServer() as server:
        yield server


@pytest.fixture
def db(pg_url):
    """A migrated database's URL."""
    asyncio.run(migrate(pg_url))
    return pg_url
