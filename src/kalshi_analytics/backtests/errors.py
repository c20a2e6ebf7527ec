"""Typed backtest errors. Each ``BacktestInputError`` is the caller's fault: the API maps it to 422."""

from __future__ import annotations


class BacktestError(Exception):
    """Base of the backtest errors."""


class BacktestInputError(BacktestError, ValueError):
    """The request cannot run as given (HTTP 422). ``field`` names the offending input when known."""

    status_code = 422

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class UnknownStrategyError(BacktestInputError):
    pass


class InvalidParametersError(BacktestInputError):
    pass


class InvalidWindowError(BacktestInputError):
    pass


class BacktestNotFoundError(BacktestError, LookupError):
    status_code = 404
