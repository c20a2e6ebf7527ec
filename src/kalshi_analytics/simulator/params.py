"""Query-parameter readers and Kalshi's error body for the simulated REST API.

A documented parameter is either honoured or refused with 400 ``invalid_parameters`` (Kalshi's nested error shape),
never silently ignored: a client bug that sends a malformed filter must show up against the simulator.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

Handler = Callable[[Request], Awaitable[Response]]


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, details: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details

    def response(self) -> JSONResponse:
        return error_response(self.status, self.code, self.message, self.details)


def error_response(status: int, code: str, message: str, details: str = "") -> JSONResponse:
    """Kalshi's observed error body: ``{"error": {"code", "message", "details"}}``."""
    return JSONResponse({"error": {"code": code, "message": message, "details": details}}, status_code=status)


def bad(message: str) -> ApiError:
    return ApiError(400, "invalid_parameters", "invalid parameters", message)


def not_found(what: str) -> ApiError:
    return ApiError(404, "not_found", f"{what} not found")


# ------------------------------------------------------------------------------------------- query helpers


def int_param(
    q: Any, name: str, default: int | None = None, lo: int | None = None, hi: int | None = None
) -> int | None:
    raw = q.get(name)
    if raw is None or raw == "":
        return default
    try:
        v = int(raw)
    except ValueError:
        raise bad(f"{name} must be an integer") from None
    if (lo is not None and v < lo) or (hi is not None and v > hi):
        raise bad(f"{name} must be between {lo} and {hi}")
    return v


def bool_param(q: Any, name: str) -> bool:
    raw = q.get(name)
    if raw is None or raw == "":
        return False
    if raw.lower() in ("true", "1"):
        return True
    if raw.lower() in ("false", "0"):
        return False
    raise bad(f"{name} must be true or false")


def encode_cursor(kind: str, key: int) -> str:
    return base64.urlsafe_b64encode(f"{kind}:{key}".encode()).decode()


def decode_cursor(raw: str | None, kind: str) -> int | None:
    if not raw:
        return None
    try:
        text = base64.urlsafe_b64decode(raw.encode()).decode()
        k, _, key = text.partition(":")
        if k != kind:
            raise ValueError(k)
        return int(key)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise bad("invalid cursor") from None


def comma_list(q: Any, name: str) -> list[str] | None:
    raw = q.get(name)
    if raw is None or raw == "":
        return None
    return [t.strip() for t in raw.split(",") if t.strip()]


def api_handler(fn: Handler) -> Handler:
    """``fn`` with its :class:`ApiError` answered as Kalshi's error body."""

    async def wrapped(request: Request) -> Response:
        try:
            return await fn(request)
        except ApiError as exc:
            return exc.response()

    return wrapped
