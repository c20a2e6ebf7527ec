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
from kalshi_analytics.recorder import cli as recorder_cli
from kalshi_analytics.simulator.cli import simulate
from kalshi_analytics.stack import up

app = typer.Typer(
    name="kalshi-analytics",
    help="Record Kalshi markets into PostgreSQL, serve them, backtest and paper-trade strategies.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.add_typer(db_app, name="db")
app.add_typer(backtest_app, name="backtest")
app.command("up")(up)
app.command("simulate")(simulate)
app.command("recorder")(recorder_cli.recorder)
app.command("backfill")(recorder_cli.backfill)
app.command("gaps")(recorder_cli.gaps)
app.command("api")(api_cli.api)


@app.callback()
def _root(
    version: Annotated[bool, typer.Option("--version", help="Print the version and exit.")] = False,
) -> None:
    if version:
        typer.echo(__version__)
        raise typer.Exit()


def main() -> None:
    try:
        app()
    except AppError as exc:  # raised outside a command's own handling: still one line, no traceback
        typer.echo(f"error: {error_line(exc)}", err=True)
        sys.exit(1)
