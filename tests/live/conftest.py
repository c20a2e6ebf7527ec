"""Paper trading fixtures: a database of the test's own; the test strategy (registered on import)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from kalshi_analytics.db.engine import create_engine
from tests.conftest import create_migrated_database, drop_database
from tests.live import strategies  # noqa: F401  (registers test_every_few)


@pytest.fixture
async def own_db(server_url: str) -> AsyncIterator[tuple[str, AsyncEngine]]:
    """A migrated database of this test's own (the recorder and the runner commit into it)."""
    url = await create_migrated_database(server_url)
    engine = create_engine(url)
    try:
        yield url, engine
    finally:
        await engine.dispose()
        await drop_database(server_url, url)
