"""Choosing the database for a process: ``DB_URL`` when given, else the embedded server (migrated on request)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncEngine

from kalshi_analytics.config import Settings
from kalshi_analytics.db import migrations
from kalshi_analytics.db.embedded import start_embedded
from kalshi_analytics.db.engine import check_connection, create_engine, display_url
from kalshi_analytics.logs import get_logger

log = get_logger(__name__)


@dataclass(frozen=True)
class DatabaseChoice:
    url: str
    embedded: bool
    created: bool  # the embedded server was initialised by this call
    started: bool = False  # the embedded server was started by this call (it was not running before)
    env: str = ""  # the KALSHI_ENV whose data this database holds
    notice: str | None = None  # what a person should read before using it (e.g. a database moved)

    @property
    def display(self) -> str:
        return display_url(self.url)


async def choose_database(settings: Settings) -> DatabaseChoice:
    env = str(settings.kalshi_env)
    if settings.db_url:
        return DatabaseChoice(url=settings.db_url, embedded=False, created=False, env=env)
    emb = await asyncio.to_thread(start_embedded, settings.embedded_pgdata, settings.embedded_database, env)
    if emb.notice:
        log.warning("embedded_database_notice", notice=emb.notice)
    return DatabaseChoice(
        url=emb.url, embedded=True, created=emb.created, started=emb.started, env=env, notice=emb.notice
    )


async def open_database(settings: Settings, *, upgrade: bool) -> tuple[DatabaseChoice, AsyncEngine]:
    """Choose, connect (failing fast with a masked URL) and, when asked, migrate to head."""
    choice = await choose_database(settings)
    engine = create_engine(choice.url)
    try:
        await check_connection(engine)
        if upgrade:
            before = (await migrations.status(engine)).current
            await migrations.upgrade(engine)
            head = migrations.head_revision()
            if before != head:  # said once, when something changed
                log.info("database_migrated", database=choice.display, revision_before=before, head=head)
    except BaseException:
        await engine.dispose()
        raise
    return choice, engine
