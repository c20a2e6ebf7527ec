"""A CloudFront-like cache in front of the simulated REST API (the ``rest_stale_seconds`` fault).

Kalshi's public REST answers come through a CDN with ``Cache-Control: public, max-age=15`` (KALSHI_API.md §1):
a poll can return a state older than what the WebSocket already delivered. With the fault on, every successful
GET is cached per URL (path and query) and served to everyone until it is ``max_age`` seconds old, with the
headers CloudFront sends (``Cache-Control``, ``Age``, ``X-Cache``), so clients meet that hazard offline.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

Asgi = Any


@dataclass(frozen=True, slots=True)
class CachedAnswer:
    stored_at: float  # the cache's clock when the origin answered
    status: int
    headers: tuple[tuple[bytes, bytes], ...]
    body: bytes


class RestCache:
    """Answers per URL; an entry is served while younger than the ``max_age`` of the request being served.

    ``clock`` is the exchange's (the simulator passes its model clock: wall time at speed 1), so ``Age`` and
    the origin's ``Date`` are on one time base at any speed."""

    def __init__(self, clock: Any = time.monotonic) -> None:
        self._clock = clock
        self._answers: dict[str, CachedAnswer] = {}
        self.hits = 0
        self.misses = 0

    def clear(self) -> None:
        self._answers.clear()

    async def serve(self, scope: dict[str, Any], receive: Asgi, send: Asgi, app: Asgi, max_age: float) -> None:
        key = scope["path"] + "?" + scope.get("query_string", b"").decode("latin-1")
        now = self._clock()
        cached = self._answers.get(key)
        if cached is not None and now - cached.stored_at < max_age:
            self.hits += 1
            await _send(send, cached, max_age, int(now - cached.stored_at), b"Hit from cloudfront")
            return
        self.misses += 1
        start: dict[str, Any] = {}
        body = bytearray()

        async def capture(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                start.update(message)
            else:
                body.extend(message.get("body", b""))

        await app(scope, receive, capture)
        headers = tuple(
            (k, v) for k, v in start.get("headers", []) if k.lower() not in (b"cache-control", b"age", b"x-cache")
        )
        answer = CachedAnswer(now, int(start.get("status", 500)), headers, bytes(body))
        if answer.status == 200:  # CloudFront caches errors only briefly; the simulator not at all
            self._answers[key] = answer
        await _send(send, answer, max_age, 0, b"Miss from cloudfront")


async def _send(send: Asgi, answer: CachedAnswer, max_age: float, age: int, x_cache: bytes) -> None:
    headers = [
        *answer.headers,
        (b"cache-control", f"public, max-age={int(max_age)}".encode()),
        (b"age", str(age).encode()),
        (b"x-cache", x_cache),
    ]
    await send({"type": "http.response.start", "status": answer.status, "headers": headers})
    await send({"type": "http.response.body", "body": answer.body})
