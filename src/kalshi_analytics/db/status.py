"""The state of a database: its server and where its migrations stand (``db status``, ``up``, readiness)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from kalshi_analytics.db import migrations
from kalshi_analytics.db.connect import DatabaseChoice
from kalshi_analytics.db.engine import ServerInfo, check_connection


@dataclass(frozen=True)
class DatabaseStatus:
    choice: DatabaseChoice
    server: ServerInfo
    migrations: migrations.MigrationStatus

    def lines(self) -> list[str]:
        choice = self.choice
        if choice.embedded:
            kind = f"embedded (pgserver), the KALSHI_ENV={choice.env} database"
        else:
            kind = f"external (DB_URL), used for KALSHI_ENV={choice.env}"
        mig = self.migrations
        state = "at head" if mig.at_head else f"behind head {mig.head} — run `kalshi-analytics db upgrade`"
        return [
            f"environment: {choice.env}",
            f"database:   {choice.display}",
            f"kind:       {kind}",
            f"server:     PostgreSQL {self.server.version}",
            f"migrations: {mig.current or 'none'} ({state})",
            *([f"note:       {choice.notice}"] if choice.notice else []),
        ]


async def database_status(engine: AsyncEngine, choice: DatabaseChoice) -> DatabaseStatus:
    server = await check_connection(engine)
    return DatabaseStatus(choice=choice, server=server, migrations=await migrations.status(engine))


async def current_revision(conn: AsyncConnection) -> str | None:
    """The migration the database is at, None when it was never migrated; read on a connection the caller
    holds (readiness bounds all its reads with one timeout)."""
    migrated = (await conn.execute(text("SELECT to_regclass('alembic_version') IS NOT NULL"))).scalar()
    if not migrated:
        return None
    revision = (await conn.execute(text("SELECT version_num FROM alembic_version"))).scalar()
    return None if revision is None else str(revision)
