"""One error body for everything: RFC 9457 ``application/problem+json`` plus the request's path and method.

``{"type", "title", "status", "detail", "instance", "path", "method", "error"}`` (``error``: the message, as the
seed's error body names it — ``detail``, or the title when there is none) and, for validation errors,
``errors: [{"field", "message"}]``. Services raise the project's errors (:mod:`kalshi_analytics.errors`) and
one handler maps their class to a status (:data:`STATUS`); unknown routes, wrong methods, validation failures,
rate limits and unexpected exceptions all come out in the same shape, and an unexpected exception is logged
with its traceback but answered with a generic 500.

A driver's exception that means the database cannot be reached (:func:`~kalshi_analytics.db.outage.unreachable`)
is a 503 with ``Retry-After``, like any :class:`UnavailableError`, and is reported to the app's
:class:`~kalshi_analytics.db.outage.DatabaseGate` (which logs the outage once). Driver exceptions are handled
inside the app, never by Starlette's last-resort middleware, which re-raises to the server: uvicorn then logs
the traceback a second time and drops the client's keep-alive connection.
"""

from __future__ import annotations

import copy
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import asyncpg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlalchemy.exc import SQLAlchemyError
from starlette.exceptions import HTTPException as StarletteHTTPException

from kalshi_analytics.db.engine import DatabaseUnavailableError
from kalshi_analytics.db.outage import DatabaseGate, unreachable
from kalshi_analytics.errors import (
    AppError,
    ConflictError,
    InvalidInputError,
    NoDataError,
    NotFoundError,
    UnavailableError,
)
from kalshi_analytics.logs import get_logger

log = get_logger(__name__)

PROBLEM_JSON = "application/problem+json"
TYPE_BASE = "https://kalshi-analytics.dev/problems/"


class FieldError(BaseModel):
    field: str = Field(description="where the bad value is, e.g. `query.limit`")
    message: str


class Problem(BaseModel):
    """RFC 9457 problem details, plus the request path and method."""

    type: str = Field(description="URI naming the kind of problem")
    title: str
    status: int
    detail: str | None = None
    instance: str = Field(description="this occurrence: the request path (plus an id for server errors)")
    path: str
    method: str
    error: str = Field(description="the message (the seed's error member): `detail`, else `title`")
    errors: list[FieldError] | None = None


class RateLimitedError(AppError):
    """A client spent its request budget (HTTP 429, with ``Retry-After``): an HTTP-only condition."""

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


#: ``Retry-After`` of a 503 whose error does not say.
DEFAULT_RETRY_AFTER_SECONDS = 2

#: The status of each error class; a subclass takes its nearest ancestor's. An :class:`AppError` of no class
#: here (the exchange's errors, say) was not meant for an HTTP client: it becomes a generic 500.
STATUS: dict[type[AppError], int] = {
    InvalidInputError: 422,
    NotFoundError: 404,
    ConflictError: 409,
    RateLimitedError: 429,
    UnavailableError: 503,
}


#: Error classes with a problem type of their own (slug, title) within their status.
KINDS: dict[type[AppError], tuple[str, str]] = {NoDataError: ("no-data", "No data")}


def status_of(exc: AppError) -> int | None:
    return next((STATUS[c] for c in type(exc).__mro__ if c in STATUS), None)


@contextmanager
def inputs_from(location: str) -> Iterator[None]:
    """Name the input at fault the way validation errors do: a service's ``InvalidInputError(field="cursor")``
    raised inside becomes ``query.cursor`` (``location`` is ``query``, ``body`` or ``path``)."""
    try:
        yield
    except InvalidInputError as exc:
        # A copy: one exception may reach several requests (the response cache shares a build and its error).
        located = copy.copy(exc)
        located.field = None if exc.field is None else f"{location}.{exc.field}"
        located.errors = [(f"{location}.{field}", message) for field, message in exc.errors]
        raise located from exc


_SLUGS = {
    400: ("bad-request", "Bad request"),
    401: ("unauthorized", "Unauthorized"),
    403: ("forbidden", "Forbidden"),
    404: ("not-found", "Not found"),
    405: ("method-not-allowed", "Method not allowed"),
    406: ("not-acceptable", "Not acceptable"),
    409: ("conflict", "Conflict"),
    413: ("too-large", "Request too large"),
    415: ("unsupported-media-type", "Unsupported media type"),
    422: ("validation-error", "Validation error"),
    429: ("rate-limited", "Too many requests"),
    500: ("internal-error", "Internal server error"),
    503: ("unavailable", "Service unavailable"),
}


def problem_response(
    request: Request,
    status: int,
    *,
    detail: str | None = None,
    slug: str | None = None,
    title: str | None = None,
    errors: list[dict[str, str]] | None = None,
    headers: dict[str, str] | None = None,
    instance: str | None = None,
    extra: dict[str, Any] | None = None,
) -> JSONResponse:
    default_slug, default_title = _SLUGS.get(status, ("error", "Error"))
    body: dict[str, Any] = {
        "type": TYPE_BASE + (slug or default_slug),
        "title": title or default_title,
        "status": status,
        "detail": detail,
        "instance": instance or request.url.path,
        "path": request.url.path,
        "method": request.method,
        "error": detail or title or default_title,
    }
    if errors is not None:
        body["errors"] = errors
    if extra:
        body.update(extra)
    return JSONResponse(body, status_code=status, headers=headers, media_type=PROBLEM_JSON)


def _field(loc: tuple[Any, ...] | list[Any]) -> str:
    return ".".join(str(p) for p in loc)


async def _app_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, AppError)
    status = status_of(exc)
    if status is None:
        return await _unexpected(request, exc)
    detail, errors = str(exc), None
    if isinstance(exc, InvalidInputError) and (exc.errors or exc.field):
        pairs = exc.errors or [(exc.field or "", detail)]
        errors = [{"field": field, "message": message} for field, message in pairs]
        if exc.errors:
            detail = "invalid request: " + ", ".join(dict.fromkeys(field for field, _ in pairs))
        else:
            detail = f"invalid request: {exc.field}: {detail}"
    headers = None
    if isinstance(exc, RateLimitedError | UnavailableError):
        headers = {"Retry-After": str(exc.retry_after or DEFAULT_RETRY_AFTER_SECONDS)}
    slug, title = next((KINDS[c] for c in type(exc).__mro__ if c in KINDS), (None, None))
    return problem_response(request, status, detail=detail, slug=slug, title=title, errors=errors, headers=headers)


async def _driver_error(request: Request, exc: Exception) -> JSONResponse:
    gate: DatabaseGate | None = getattr(request.app.state, "database_gate", None)
    if gate is not None:
        unavailable = gate.failed(exc)
    elif (reason := unreachable(exc)) is not None:
        unavailable = DatabaseUnavailableError(f"the database cannot be reached now ({reason})")
    else:
        unavailable = None
    if unavailable is None:
        return await _unexpected(request, exc)
    return await _app_error(request, unavailable)


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    detail = exc.detail if isinstance(exc.detail, str) else None
    if exc.status_code == 404 and detail == "Not Found":
        detail = f"no route {request.method} {request.url.path}"
    return problem_response(request, exc.status_code, detail=detail, headers=getattr(exc, "headers", None))


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = [{"field": _field(e.get("loc", ())), "message": str(e.get("msg", "invalid"))} for e in exc.errors()]
    fields = ", ".join(dict.fromkeys(e["field"] for e in errors))
    return problem_response(request, 422, detail=f"invalid request: {fields}", errors=errors)


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    incident = uuid.uuid4().hex[:12]
    log.error("api_unhandled_error", path=request.url.path, method=request.method, incident=incident, exc_info=exc)
    return problem_response(
        request,
        500,
        detail=f"an unexpected error occurred (incident {incident})",
        instance=f"{request.url.path}#incident-{incident}",
    )


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(AppError, _app_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    for driver_error in (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, SQLAlchemyError):
        app.add_exception_handler(driver_error, _driver_error)
    app.add_exception_handler(Exception, _unexpected)


#: For ``responses=`` in route declarations, so the OpenAPI document names the error body.
def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    return {
        s: {"model": Problem, "description": _SLUGS.get(s, ("", "Error"))[1], "content": {PROBLEM_JSON: {}}}
        for s in statuses
    }
