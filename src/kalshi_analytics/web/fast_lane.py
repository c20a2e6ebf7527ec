"""A lane past FastAPI's per-request parameter machinery for the hottest reads, with the same answers.

FastAPI re-analyses a route's parameter annotations on every request (routing, ``solve_dependencies``,
``request_params_to_args``): measured in process, ~200 µs of CPU a request on ``/markets/{t}/latest`` and the
history routes, more than their endpoint's own work and three times ``/health``'s whole request. Those
endpoints are plain async functions of already-typed values, so a request whose path and query are of the
plain, valid form is answered here by calling the endpoint directly: it is charged to the route's rate-limit
classes first (what its ``dependencies`` do), labelled with the route for the metrics, and errors become the app's
own problem responses through its exception handlers. Anything else — an unknown or repeated parameter, an
empty or out-of-range value, a refused rate limit — goes on to FastAPI untouched, which validates and words it
(the lane never charges a request it then passes on). ``tests/web/test_fast_lane.py`` sends the same requests
through both and compares the answers.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Receive, Scope, Send

from kalshi_analytics.web.cache import Allow

#: What a query parameter's text must look like to be taken here (else FastAPI reads it); the value passed on.
Reader = Callable[[str], Any]
Endpoint = Callable[..., Awaitable[Response]]


@dataclass(frozen=True)
class FastRoute:
    """One route of the lane: its path pattern (one group: the path parameter ``path_param``), the endpoint, the
    query parameters it takes with a reader each (a reader returns ``None`` for a value it leaves to FastAPI),
    and the rate-limit classes its dependencies charge."""

    route: BaseRoute  # the route it stands for (the metrics label requests by it)
    pattern: re.Pattern[str]
    path_param: str
    path_reader: Reader
    endpoint: Endpoint
    query: Mapping[str, Reader]
    charges: tuple[str, ...] = ("read",)


class FastLane:
    """Pure ASGI, innermost: answers a GET of a :class:`FastRoute` in its plain form, else passes it on."""

    def __init__(self, app: ASGIApp, routes: Sequence[FastRoute], allow: Allow, fastapi_app: Any) -> None:
        self.app = app
        self.routes = routes
        self.allow = allow  # the rate limits, as the cached answers are charged to them
        self.fastapi_app = fastapi_app  # for its exception handlers

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "GET":
            for fast in self.routes:
                m = fast.pattern.fullmatch(scope["path"])
                if m is not None:
                    if await self._answer(fast, m.group(1), scope, receive, send):
                        return
                    break
        await self.app(scope, receive, send)

    async def _answer(self, fast: FastRoute, raw_path_value: str, scope: Scope, receive: Receive, send: Send) -> bool:
        path_value = fast.path_reader(raw_path_value)
        kwargs = _read_query(scope["query_string"], fast.query)
        if path_value is None or kwargs is None:
            return False
        if not self.allow(fast.charges, scope):
            return False  # FastAPI refuses it with the usual 429 (nothing was charged here)
        scope["route"] = fast.route
        request = Request(scope, receive)
        request.state.charges = fast.charges
        try:
            response = await fast.endpoint(request=request, **{fast.path_param: path_value}, **kwargs)
        except Exception as exc:
            handler = self._handler(exc)
            if handler is None:
                raise  # to the server-error middleware, as from a route
            response = await handler(request, exc)
        await response(scope, receive, send)
        return True

    def _handler(self, exc: Exception) -> Callable[[Request, Exception], Awaitable[Response]] | None:
        """The app's handler for ``exc`` as Starlette's exception middleware finds it (its class, then bases);
        ``Exception``'s own is the server-error middleware's, outside this lane."""
        handlers = self.fastapi_app.exception_handlers
        for cls in type(exc).__mro__:
            if cls is Exception:
                return None
            if cls in handlers:
                return handlers[cls]  # type: ignore[no-any-return]
        return None


def _read_query(query_string: bytes, readers: Mapping[str, Reader]) -> dict[str, Any] | None:
    """The query as keyword arguments, or ``None`` when any part of it is for FastAPI to judge."""
    if not query_string:
        return {}
    # Starlette's own decoding of a query string (``QueryParams``), so the values are the ones a route sees.
    pairs = parse_qsl(query_string.decode("latin-1"), keep_blank_values=True)
    out: dict[str, Any] = {}
    for name, text in pairs:
        reader = readers.get(name)
        if reader is None or name in out:
            return None
        value = reader(text)
        if value is None:
            return None
        out[name] = value
    return out


def text_reader(max_length: int) -> Reader:
    """A non-empty text of at most ``max_length`` characters without NUL (the routes' ``NO_NUL`` rule)."""

    def read(text: str) -> str | None:
        return text if 0 < len(text) <= max_length and "\x00" not in text else None

    return read


def int_reader(low: int, high: int) -> Reader:
    """Plain decimal digits within ``[low, high]`` (signs, spaces and other forms pydantic may accept go on)."""

    def read(text: str) -> int | None:
        if not (0 < len(text) <= 9 and text.isascii() and text.isdigit()) or (text[0] == "0" and len(text) > 1):
            return None
        value = int(text)
        return value if low <= value <= high else None

    return read


def choice_reader(choices: Sequence[str]) -> Reader:
    allowed = frozenset(choices)

    def read(text: str) -> str | None:
        return text if text in allowed else None

    return read
