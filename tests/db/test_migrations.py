from __future__ import annotations

import pytest
from sqlalchemy import text

from kalshi_analytics.db import migrations
from kalshi_analytics.db.engine import create_engine
from kalshi_analytics.models import Base
from tests.conftest import create_database, drop_database

EXPECTED_TABLES = {t.name for t in Base.metadata.sorted_tables}


async def _tables(url: str) -> set[str]:
    engine = create_engine(url, pool_size=1)
    try:
        async with engine.connect() as conn:
            rows = await conn.execute(
                text(
                    "SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename NOT LIKE '%\\_y____m__'"
                )
            )
            return {r[0] for r in rows} - {"alembic_version"}
    finally:
        await engine.dispose()


async def test_upgrade_downgrade_upgrade_round_trip_on_every_server(all_server_urls: list[str]) -> None:
    for server in all_server_urls:
        url = await create_database(server)
        engine = create_engine(url, pool_size=1)
        try:
            await migrations.upgrade(engine)
            assert (await migrations.status(engine)).at_head
            assert await _tables(url) >= EXPECTED_TABLES

            await migrations.downgrade(engine, "base")
            assert (await migrations.status(engine)).current is None
            assert await _tables(url) == set(), "downgrade to base must leave no table behind"
            async with engine.connect() as conn:
                fn = await conn.execute(text("SELECT count(*) FROM pg_proc WHERE proname LIKE 'ka\\_%'"))
                assert fn.scalar_one() == 0

            await migrations.upgrade(engine)
            assert (await migrations.status(engine)).at_head
            assert await _tables(url) >= EXPECTED_TABLES
        finally:
            await engine.dispose()
            await drop_database(server, url)


@pytest.mark.parametrize("table", ["market_snapshots", "orderbook_snapshots"])
async def test_no_index_duplicates_the_natural_key(conn, table: str) -> None:  # type: ignore[no-untyped-def]
    # Every index costs ingest (DESIGN.md §10): the partitioned tables carry only their primary key.
    rows = await conn.execute(
        text("SELECT indexname FROM pg_indexes WHERE tablename = :t"),
        {"t": table},
    )
    assert [r[0] for r in rows] == [f"pk_{table}"]


async def test_schema_matches_the_models(engine) -> None:  # type: ignore[no-untyped-def]
    """Autogenerate finds nothing to do: the migration and the ORM tables describe the same schema."""
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    def diff(sync_conn):  # type: ignore[no-untyped-def]
        ctx = MigrationContext.configure(sync_conn, opts={"compare_type": True})
        return compare_metadata(ctx, Base.metadata)

    async with engine.connect() as c:
        changes = await c.run_sync(diff)
    # Partitions and the default partitions are created by the migration, not the models.
    changes = [
        ch for ch in changes if not (ch[0] == "remove_table" and ch[1].name.startswith(("market_", "orderbook_")))
    ]
    assert changes == []
