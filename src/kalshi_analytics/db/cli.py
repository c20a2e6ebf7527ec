"""``kalshi-analytics db …``: migrations, status and the embedded server."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

import typer
from sqlalchemy.ext.asyncio import AsyncEngine

from kalshi_analytics.clihelp import run, settings
from kalshi_analytics.db import migrations
from kalshi_analytics.db.connect import choose_database, open_database
from kalshi_analytics.db.embedded import stop_embedded
from kalshi_analytics.db.engine import create_engine
from kalshi_analytics.db.status import database_status

db_app = typer.Typer(
    help="Database: migrations, status and the embedded server.", no_args_is_help=True, rich_markup_mode=None
)


def _migrate(move: Callable[[AsyncEngine, str], Awaitable[None]], revision: str, verb: str) -> None:
    """Move the schema to ``revision`` and say where it is now (``verb``: "migrated to", "now at")."""
    s = settings()

    async def go() -> None:
        choice, engine = await open_database(s, upgrade=False)
        try:
            await move(engine, revision)
            current = (await migrations.status(engine)).current
            typer.echo(f"{choice.display}: {verb} {current or 'base (empty)'}")
        finally:
            await engine.dispose()

    run(go)


@db_app.command("upgrade")
def db_upgrade(
    revision: Annotated[str, typer.Argument(help="Target revision (default: the newest).")] = "head",
) -> None:
    """Apply migrations up to REVISION (creating the embedded database first when DB_URL is unset)."""
    _migrate(migrations.upgrade, revision, "migrated to")


@db_app.command("downgrade")
def db_downgrade(
    revision: Annotated[str, typer.Argument(help="Target revision: -1 (one step), base (empty) or an id.")] = "-1",
) -> None:
    """Revert migrations down to REVISION."""
    _migrate(migrations.downgrade, revision, "now at")


@db_app.command("status")
def db_status() -> None:
    """Print which database is in use (password masked), its server version and the migration state."""
    s = settings()

    async def go() -> None:
        choice = await choose_database(s)
        engine = create_engine(choice.url)
        try:
            for line in (await database_status(engine, choice)).lines():
                typer.echo(line)
        finally:
            await engine.dispose()

    run(go)


@db_app.command("stop")
def db_stop() -> None:
    """Stop the embedded PostgreSQL server (it is otherwise kept running for the next command)."""
    s = settings()
    stopped = stop_embedded(s.embedded_pgdata)
    typer.echo("embedded database stopped" if stopped else "no embedded database running")
