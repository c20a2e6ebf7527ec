"""What every sub-command shares: one-line errors, running a coroutine, loading settings.

Imports nothing of the project but the base modules (errors, config, logs), so any feature's CLI may use it
and nothing here reaches back into a feature.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime
from typing import NoReturn, TypeVar

import typer

from kalshi_analytics.config import Settings, SettingsError, load_settings
from kalshi_analytics.errors import AppError, InvalidInputError, NoDataError
from kalshi_analytics.logs import configure_logging
from kalshi_analytics.times import parse_window

T = TypeVar("T")

#: Exit codes: 1 for a failure the user can act on, 2 for bad settings or usage, 3 when the input selects no
#: data (an unknown market, an empty window: a script may skip it and go on), 130 for Ctrl-C.
EXIT_FAILURE, EXIT_USAGE, EXIT_NO_DATA, EXIT_INTERRUPTED = 1, 2, 3, 130


def fail(message: str, code: int = EXIT_FAILURE) -> NoReturn:
    """Print ``error: message`` on stderr and exit with ``code``."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def error_line(exc: AppError, options: Mapping[str, str] | None = None) -> str:
    """The one line a person reads for an error of the project's family.

    ``options`` names the command's option for each field a service reports (``{"start": "--start"}``), so the
    line says which option to change: ``start must lie …`` reads ``--start must lie …``, ``no recorded market``
    of ``market_filter.tickers`` reads ``--ticker: no recorded market``, and with ``params`` mapped to
    ``--param``, ``params.size`` reads ``--param size``. An error of several fields, or of a field no option
    names, stays as the service wrote it."""
    message = str(exc)
    errors: list[tuple[str, str]] = exc.errors if isinstance(exc, InvalidInputError) else []
    if len(errors) == 1:  # the most precise place (``params.size`` rather than ``params``)
        field, text = errors[0]
    elif exc.field is not None and not errors:
        field, text = exc.field, message
    else:
        return message
    label = _option(field, options or {})
    if label is None:
        return message
    if text.startswith(field + " "):  # the message names its field first: name the option instead
        return label + text[len(field) :]
    return f"{label}: {text}"


def _option(field: str, options: Mapping[str, str]) -> str | None:
    parts = field.split(".")
    for n in range(len(parts), 0, -1):
        head = ".".join(parts[:n])
        if head in options:
            return " ".join([options[head], *([".".join(parts[n:])] if n < len(parts) else [])])
    return None


def settings() -> Settings:
    """The settings of this process (one line and exit 2 when a variable is bad); logging configured from them."""
    try:
        s = load_settings()
    except SettingsError as exc:
        fail(error_line(exc), EXIT_USAGE)
    configure_logging(s.log_level, s.log_format)
    return s


def run(coro_fn: Callable[[], Awaitable[T]], options: Mapping[str, str] | None = None) -> T:
    """Run a command's coroutine; the project's errors become one line on stderr (fields named by their option in
    ``options``, see :func:`error_line`), never a traceback."""
    try:
        return asyncio.run(coro_fn())  # type: ignore[arg-type]
    except AppError as exc:
        fail(error_line(exc, options), EXIT_NO_DATA if isinstance(exc, NoDataError) else EXIT_FAILURE)
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        raise typer.Exit(EXIT_INTERRUPTED) from None


def window(start: str, end: str, names: tuple[str, str] = ("--start", "--end")) -> tuple[datetime, datetime]:
    """A command's time window from two options of the one time grammar (one line and exit 1 when unreadable)."""
    try:
        return parse_window(start, end, fields=names)
    except InvalidInputError as exc:
        fail(error_line(exc))
