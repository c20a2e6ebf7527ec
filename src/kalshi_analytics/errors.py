"""The project's one error family.

Services raise these; the API's one handler (:mod:`kalshi_analytics.web.problems`) maps each class to an HTTP
status and a problem+json body, and the CLI's one function (:func:`kalshi_analytics.clihelp.run`) prints it as
one line. ``str(error)`` is written for a person.
"""

from __future__ import annotations

from collections.abc import Sequence


class AppError(Exception):
    """A failure the caller can act on (never a bug: those stay ordinary exceptions and become 500s)."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field  # the input at fault, as the caller named it (``query.start``, ``--since``), if any


class InvalidInputError(AppError, ValueError):
    """The input cannot be used as given (HTTP 422).

    ``errors`` lists ``(field, message)`` for each input at fault when there are several (a strategy's
    parameters); ``str(error)`` stays the one line the CLI prints.
    """

    def __init__(self, message: str, *, field: str | None = None, errors: Sequence[tuple[str, str]] = ()) -> None:
        super().__init__(message, field=field)
        self.errors = list(errors)


class NoDataError(InvalidInputError):
    """The input is valid but selects no data — a market nobody recorded, a window without snapshots (HTTP 422
    of type ``no-data``; the CLI exits with its own code so scripts can tell it from a mistake)."""


class NotFoundError(AppError, LookupError):
    """The thing asked for does not exist (HTTP 404)."""


class ConflictError(AppError):
    """The request contradicts the current state (HTTP 409)."""


class UnavailableError(AppError):
    """Something we depend on (the database, the exchange) cannot be reached now, or a capacity is used up;
    retrying may work (HTTP 503). ``retry_after`` says when, in seconds, if known (the ``Retry-After`` header)."""

    def __init__(self, message: str, *, field: str | None = None, retry_after: int | None = None) -> None:
        super().__init__(message, field=field)
        self.retry_after = retry_after
