"""The ``kalshi-analytics`` command line. Each capability adds its sub-commands here."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable
from typing import Annotated, NoReturn, TypeVar

import typer

from kalshi_analytics import __version__, migrate
from kalshi_analytics.api import cli as api_cli
from kalshi_analytics.backtests.cli import backtest_app
from kalshi_analytics.config import Settings, SettingsError, load_settings
from kalshi_analytics.database import choose_database, database_status, open_database
from kalshi_analytics.db import DatabaseUnavailableError, create_engine
from kalshi_analytics.embedded import stop_embedded
from kalshi_analytics.logging import configure_logging
from kalshi_analytics.recorder import cli as recorder_cli
from kalshi_analytics.recorder.commands import backfill, recorder, run_up
from kalshi_analytics.simulator.cli import simulate

T = TypeVar("T")

app = typer.Typer(
    name="kalshi-analytics",
    help="Record Kalshi markets into PostgreSQL, serve them, backtest and paper-trade strategies.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
db_app = typer.Typer(help="Database: migrations, status and the embedded server.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(backtest_app, name="backtest")
app.command("simulate")(simulate)
app.command("recorder")(recorder)
app.command("backfill")(backfill)
app.command("gaps")(recorder_cli.gaps)
app.command("api")(api_cli.api)


class CliError(Exception):
    """A user-facing failure: printed as one line, exit code 1."""


def fail(message: str, code: int = 1) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def settings() -> Settings:
    try:
        s = load_settings()
    except SettingsError as exc:
        fail(str(exc), 2)
    configure_logging(s.log_level, s.log_format)
    return s


def run(coro_fn: Callable[[], Awaitable[T]]) -> T:
    """Run a command's coroutine; expected failures become one line on stderr, never a traceback."""
    try:
        return asyncio.run(coro_fn())  # type: ignore[arg-type]
    except (DatabaseUnavailableError, CliError) as exc:
        fail(str(exc))
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        raise typer.Exit(130) from None


@app.callback()
def _root(
    version: Annotated[bool, typer.Option("--version", help="Print the version and exit.")] = False,
) -> None:
    if version:
        typer.echo(__version__)
        raise typer.Exit()


@db_app.command("upgrade")
def db_upgrade(
    revision: Annotated[str, typer.Argument(help="Target revision (default: the newest).")] = "head",
) -> None:
    """Apply migrations up to REVISION (creating the embedded database first when DB_URL is unset)."""
    s = settings()

    async def go() -> None:
        choice, engine = await open_database(s, upgrade=False)
        try:
            await migrate.upgrade(engine, revision)
            st = await migrate.status(engine)
            typer.echo(f"{choice.display}: migrated to {st.current}")
        finally:
            await engine.dispose()

    run(go)


@db_app.command("downgrade")
def db_downgrade(
    revision: Annotated[str, typer.Argument(help="Target revision: -1 (one step), base (empty) or an id.")] = "-1",
) -> None:
    """Revert migrations down to REVISION."""
    s = settings()

    async def go() -> None:
        choice, engine = await open_database(s, upgrade=False)
        try:
            await migrate.downgrade(engine, revision)
            st = await migrate.status(engine)
            typer.echo(f"{choice.display}: now at {st.current or 'base (empty)'}")
        finally:
            await engine.dispose()

    run(go)


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


@app.command("up")
def up(
    check: Annotated[
        bool, typer.Option("--check", help="Only prepare the database (start, migrate), print its status, exit.")
    ] = False,
    duration: Annotated[
        float | None, typer.Option(help="Stop after this many seconds (default: run until Ctrl-C).")
    ] = None,
    metrics_port: Annotated[
        int | None, typer.Option("--metrics-port", help="Recorder metrics port (0 = any free port).")
    ] = 9464,
) -> None:
    """Run everything for one person on one machine: database (embedded unless DB_URL), simulator, recorder."""
    s = settings()

    async def go() -> None:
        choice, engine = await open_database(s, upgrade=True)
        try:
            if choice.embedded:
                verb = "created" if choice.created else "reused"
                typer.echo(f"embedded PostgreSQL {verb} in {s.embedded_pgdata}")
            for line in (await database_status(engine, choice)).lines():
                typer.echo(line)
            if not check:
                await run_up(s, engine, duration=duration, metrics_port=metrics_port)
        finally:
            await engine.dispose()

    run(go)


def main() -> None:
    try:
        app()
    except CliError as exc:  # raised outside a command's own handling: still one line, no traceback
        typer.echo(f"error: {exc}", err=True)
        sys.exit(1)
