"""Programmatic Alembic: upgrade, downgrade and status on an engine we already hold."""

from __future__ import annotations

from dataclasses import dataclass
from importlib.resources import files
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from kalshi_analytics.errors import InvalidInputError


def alembic_config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(files("kalshi_analytics") / "db" / "alembic"))
    cfg.set_main_option("file_template", "%%(year)d_%%(month).2d_%%(day).2d_%%(rev)s-%%(slug)s")
    return cfg


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


async def _with_config(engine: AsyncEngine, action: Any, *args: Any) -> None:
    def run(connection: Connection) -> None:
        cfg = alembic_config()
        cfg.attributes["connection"] = connection
        action(cfg, *args)

    async with engine.begin() as conn:
        await conn.run_sync(run)


async def _migrate(engine: AsyncEngine, action: Any, revision: str) -> None:
    try:
        await _with_config(engine, action, revision)
    except CommandError as exc:  # a revision that does not exist or cannot be reached from here
        known = ", ".join(s.revision for s in ScriptDirectory.from_config(alembic_config()).walk_revisions())
        raise InvalidInputError(
            f"revision {revision!r}: {exc} (use head, base, -1, +1 or one of: {known})", field="revision"
        ) from None


async def upgrade(engine: AsyncEngine, revision: str = "head") -> None:
    await _migrate(engine, command.upgrade, revision)


async def downgrade(engine: AsyncEngine, revision: str = "-1") -> None:
    await _migrate(engine, command.downgrade, revision)


@dataclass(frozen=True)
class MigrationStatus:
    current: str | None
    head: str | None

    @property
    def at_head(self) -> bool:
        return self.current == self.head


async def status(engine: AsyncEngine) -> MigrationStatus:
    def current(connection: Connection) -> str | None:
        return MigrationContext.configure(connection).get_current_revision()

    async with engine.connect() as conn:
        rev = await conn.run_sync(current)
    return MigrationStatus(current=rev, head=head_revision())
