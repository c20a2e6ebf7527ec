"""What every sub-command shares: one-line errors, running a coroutine, loading settings.

Imports nothing of the project but the base modules (errors, config, logs), so any feature's CLI may use it
and nothing here reaches back into a feature.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import NoReturn, TypeVar

import typer

from kalshi_analytics.config import Settings, SettingsError, load_settings
from kalshi_analytics.errors import AppError, InvalidInputError
from kalshi_analytics.logs import configure_logging
from kalshi_analytics.times import parse_window

T = TypeVar("T")

#: Exit codes: 1 for a failure the user can act on, 2 for bad settings or usage, 130 for Ctrl-C.
EXIT_FAILURE, EXIT_USAGE, EXIT_INTERRUPTED = 1, 2, 130


def fail(message: str, code: int = EXIT_FAILURE) -> NoReturn:
    """Print ``error: message`` on stderr and exit with ``code``."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def error_line(exc: AppError) -> str:
    """The one line a person reads for an error of the project's family."""
    return str(exc)


def settings() -> Settings:
    """The settings of this process (one line and exit 2 when a variable is bad); logging configured from them."""
    try:
        s = load_settings()
    except SettingsError as exc:
        fail(error_line(exc), EXIT_USAGE)
    configure_logging(s.log_level, s.log_format)
    return s


def run(coro_fn: Callable[[], Awaitable[T]]) -> T:
    """Run a command's coroutine; the project's errors become one line on stderr, never a traceback."""
    try:
        return asyncio.run(coro_fn())  # type: ignore[arg-type]
    except AppError as exc:
        fail(error_line(exc))
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        raise typer.Exit(EXIT_INTERRUPTED) from None


def window(start: str, end: str, names: tuple[str, str] = ("--start", "--end")) -> tuple[datetime, datetime]:
    """A command's time window from two options of the one time grammar (one line and exit 1 when unreadable)."""
    try:
        return parse_window(start, end, fields=names)
    except InvalidInputError as exc:
        fail(error_line(exc))
