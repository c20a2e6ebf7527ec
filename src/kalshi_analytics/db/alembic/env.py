"""Alembic environment.

Runs on a connection handed in by :mod:`kalshi_analytics.db.migrations` (``kalshi-analytics db upgrade``, the
tests, ``up``), or from the ``alembic`` command line with the repository's ``alembic.ini``: then the database is
chosen exactly as the CLI chooses it (``DB_URL``, else the embedded server — see
:func:`kalshi_analytics.db.connect.choose_database`); ``alembic -x db_url=…`` or ``sqlalchemy.url`` override it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from logging.config import fileConfig
from typing import Any

from alembic import context
from sqlalchemy import text
from sqlalchemy.engine import Connection

from kalshi_analytics.models import Base

target_metadata = Base.metadata


def partitions(connection: Connection) -> set[str]:
    """The tables of this database that are partitions of another table."""
    rows = connection.execute(text("SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"))
    return set(rows.scalars())


def object_filter(skip_tables: set[str]) -> Callable[..., bool]:
    """Autogenerate's ``include_object``: every model table, and no partition.

    ``market_snapshots`` and ``orderbook_snapshots`` are range-partitioned by ``ts`` (migration 0001); their
    monthly partitions are created ahead by the recorder and dropped for retention, so they come and go with
    time and no model describes them. Reflected, each would show as a table to drop. Only reflected tables with
    no model counterpart that are partitions are skipped: a model table missing from the database, or a stray
    table that is not a partition, still shows in the comparison.
    """

    def include_object(obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any) -> bool:
        return not (type_ == "table" and reflected and compare_to is None and name in skip_tables)

    return include_object


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        compare_type=True,
        include_object=object_filter(partitions(connection)),
        transaction_per_migration=True,
    )
    with context.begin_transaction():
        context.run_migrations()


async def _run_on_url(url: str) -> None:
    from kalshi_analytics.db.engine import create_engine

    engine = create_engine(url, pool_size=1)
    try:
        async with engine.connect() as conn:
            await conn.run_sync(_run)
            await conn.commit()
    finally:
        await engine.dispose()


def _cli_url() -> str:
    """The database for the ``alembic`` command line: ``-x db_url``, ``sqlalchemy.url``, else the CLI's choice."""
    url = context.get_x_argument(as_dictionary=True).get("db_url") or context.config.get_main_option("sqlalchemy.url")
    if url:
        return url
    from kalshi_analytics.config import load_settings
    from kalshi_analytics.db.connect import choose_database

    return asyncio.run(choose_database(load_settings())).url


connection = context.config.attributes.get("connection")
if connection is not None:
    _run(connection)
else:
    if context.config.config_file_name is not None:
        fileConfig(context.config.config_file_name, disable_existing_loggers=False)
    asyncio.run(_run_on_url(_cli_url()))
