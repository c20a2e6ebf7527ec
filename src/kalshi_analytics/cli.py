"""The ``kalshi-analytics`` command line: the root Typer app, registering each feature's commands.

Nothing imports this module back; the helpers every command shares live in :mod:`kalshi_analytics.clihelp`.
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from kalshi_analytics import __version__
from kalshi_analytics.api import cli as api_cli
from kalshi_analytics.backtests.cli import backtest_app
from kalshi_analytics.clihelp import error_line
from kalshi_analytics.db.cli import db_app
from kalshi_analytics.errors import AppError
from kalshi_analytics.live.cli import live_app
from kalshi_analytics.recorder import cli as recorder_cli
from kalshi_analytics.simulator.cli import simulate
from kalshi_analytics.stack import up

app = typer.Typer(
    name="kalshi-analytics",
    help="Record Kalshi markets into PostgreSQL, serve them through an API, and backtest strategies on them.",
    no_args_is_help=True,
    rich_markup_mode=None,  # plain help: the rich panels label every flag "<bool>"
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.add_typer(db_app, name="db")
app.add_typer(backtest_app, name="backtest")
app.add_typer(live_app, name="live")
app.command("up", short_help="Everything on one machine: database, simulator, recorder, live runner, API.")(up)
app.command("simulate", short_help="The built-in exchange (Kalshi's REST + WebSocket protocol).")(simulate)
app.command("recorder", short_help="Record markets into PostgreSQL (leader-elected).")(recorder_cli.recorder)
app.command("backfill", short_help="Fill history from the exchange's REST API.")(recorder_cli.backfill)
app.command("gaps", short_help="Feed coverage: gaps, their repairs, rows per source.")(recorder_cli.gaps)
app.command("api", short_help="Serve the HTTP API.")(api_cli.api)


def _print_version(value: bool) -> None:
    if value:
        typer.echo(__version__)
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option("--version", help="Print the version and exit.", callback=_print_version, is_eager=True),
    ] = False,
) -> None:
    """Record Kalshi markets into PostgreSQL, serve them through an API, and backtest strategies on them."""


def main() -> None:
    try:
        app()
    except AppError as exc:  # raised outside a command's own handling: still one line, no traceback
        typer.echo(f"error: {error_line(exc)}", err=True)
        sys.exit(1)
