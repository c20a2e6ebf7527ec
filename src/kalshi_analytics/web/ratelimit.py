"""Per-client rate limits by route class ("read", "expensive"), configured by settings.

Built on ``limits`` — the engine slowapi wraps — used through a FastAPI dependency rather than slowapi's
decorator, because the decorator binds its limits at import time while our limits come from the
``Settings`` handed to :func:`~kalshi_analytics.api.app.create_app` (tests build apps with tiny limits).
The key is the client address as slowapi's ``get_remote_address`` sees it. Counters live in process memory
(moving window): with N replicas/workers a client may get up to N× the limit — fine for abuse protection;
use a shared ``limits`` storage (Redis) if exact global limits are ever needed.
A refused request gets 429 problem+json with ``Retry-After`` (seconds).

FastAPI reads a request's body before it runs the route's dependencies, so a client over its limit would still
make the server read (and parse) the body it then refuses. Routers with body routes use
:class:`ChargedBeforeBody` as their ``route_class``: it charges the route's ``rate_limit`` classes before the
body is read; the dependencies then see the request charged and do nothing.
"""

from __future__ import annotations

import math
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any, Literal

from fastapi import Request, Response
from fastapi.routing import APIRoute
from limits import RateLimitItem, parse
from limits.strategies import MovingWindowRateLimiter
from slowapi.util import get_remote_address
from starlette.types import Scope

from kalshi_analytics.config import Settings
from kalshi_analytics.web.limiter_storage import InlineExpiryMemoryStorage
from kalshi_analytics.web.problems import RateLimitedError

RouteClass = Literal["read", "expensive"]


@dataclass
class RateLimits:
    enabled: bool
    items: dict[str, RateLimitItem]
    limiter: MovingWindowRateLimiter

    @classmethod
    def from_settings(cls, settings: Settings) -> RateLimits:
        return cls(
            enabled=settings.api_rate_limit_enabled,
            items={"read": parse(settings.api_rate_read), "expensive": parse(settings.api_rate_expensive)},
            limiter=MovingWindowRateLimiter(InlineExpiryMemoryStorage()),
        )

    def allow(self, route_classes: tuple[str, ...], key: str) -> bool:
        """Charge one request to each of ``route_classes`` if all have room (nothing is charged otherwise)."""
        if not self.enabled or not route_classes:
            return True
        # A hit tests and charges at once, so the last class needs no test of its own: once the others have
        # room and it was charged, their hits cannot fail (nothing runs between these calls in the event loop).
        *first, last = route_classes
        if not all(self.limiter.test(self.items[c], c, key) for c in first):
            return False
        if not self.limiter.hit(self.items[last], last, key):
            return False
        return all([self.limiter.hit(self.items[c], c, key) for c in first])

    def check(self, route_class: str, key: str) -> None:
        if not self.enabled:
            return
        item = self.items[route_class]
        if not self.limiter.hit(item, route_class, key):
            reset, _ = self.limiter.get_window_stats(item, route_class, key)
            retry = max(1, math.ceil(reset - time.time()))
            raise RateLimitedError(
                f"rate limit {item} for {route_class} requests exceeded; retry in {retry} s", retry_after=retry
            )


def scope_client(scope: Scope) -> str:
    """The key a request is charged under, from its ASGI scope (what ``get_remote_address`` reads from a request:
    the connection's address, 127.0.0.1 when there is none)."""
    client = scope.get("client")
    return client[0] if client else "127.0.0.1"


def charge(request: Request, route_class: RouteClass) -> None:
    """Charge one request of ``route_class`` from inside an endpoint (when the class depends on parameters)."""
    if route_class in getattr(request.state, "charges", ()):
        return  # charged before its body was read (ChargedBeforeBody)
    limits: RateLimits = request.app.state.rate_limits
    limits.check(route_class, get_remote_address(request))
    # What this request was charged: a cached answer to the same request is charged the same.
    request.state.charges = (*getattr(request.state, "charges", ()), route_class)


def rate_limit(route_class: RouteClass) -> Callable[[Request], Awaitable[None]]:
    """A dependency charging one request of ``route_class`` to the calling client."""

    async def dependency(request: Request) -> None:
        charge(request, route_class)

    dependency.route_class = route_class  # type: ignore[attr-defined]  # read by ChargedBeforeBody
    return dependency


class ChargedBeforeBody(APIRoute):
    """A route whose ``rate_limit`` dependencies are charged before FastAPI reads the request body."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        classes = [c for d in self.dependencies if (c := getattr(d.dependency, "route_class", None)) is not None]
        if not classes:
            return handler

        async def charged_first(request: Request) -> Response:
            for route_class in classes:
                charge(request, route_class)
            return await handler(request)

        return charged_first
