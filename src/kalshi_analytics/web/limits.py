"""Limits on what one request, or one client, may hold: the request body's size and concurrent streams.

Both are pure ASGI middleware answering with the problem body before the app reads anything.

:class:`BodyLimit` refuses a body over ``max_bytes``: at once when its ``Content-Length`` says so (none of it is
read), else when the bytes actually received pass the limit (a chunked body is cut off there). Starlette's
``RequestBodyLimitMiddleware`` (FastAPI's ``max_body_size``) does the same counting, but answers in plain text
and replaces any answer given without reading the body (a 429, say) by its own 413.

:class:`StreamSlots` bounds the concurrent requests to long-lived routes (the SSE stream): per client address
(429) and in all (503), each with ``Retry-After``. A slot is held while the app runs, which for a stream is until
the client goes away; the route itself knows nothing of it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection
from dataclasses import dataclass, field

from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from kalshi_analytics.web.problems import problem_response

#: ``Retry-After`` of a refused stream: about when a dashboard's reconnecting stream would try again.
STREAM_RETRY_AFTER_SECONDS = 5


class BodyLimit:
    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    def detail(self) -> str:
        return f"request body larger than {self.max_bytes} bytes (API_MAX_BODY_BYTES)"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        declared = headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await problem_response(Request(scope), 413, detail=self.detail())(scope, receive, send)
            return
        if "transfer-encoding" not in headers:
            # The server reads no more than Content-Length says (none without it): nothing to count. Most
            # requests are body-less GETs; they pass without wrapping every message of their answer.
            await self.app(scope, receive, send)
            return
        received = 0
        answer = ""  # "" → "started" → "complete"
        cut = False

        async def counted() -> Message:
            nonlocal received, cut
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    if answer:  # an answer (a stream) is under way: it ends as if the client had gone
                        cut = True
                        return {"type": "http.disconnect"}
                    # Raised to whoever reads the body (FastAPI re-raises it): answered by the problem handler.
                    raise HTTPException(413, detail=self.detail())
            return message

        async def sending(message: Message) -> None:
            nonlocal answer
            answer = "started"
            if message["type"] == "http.response.body" and not message.get("more_body", False):
                answer = "complete"
            await send(message)

        await self.app(scope, counted, sending)
        if cut and answer == "started":  # end the answer the app dropped, so the connection ends cleanly
            await send({"type": "http.response.body", "body": b"", "more_body": False})


@dataclass
class StreamCounts:
    """The streams open now, per client address, and the bounds (the app keeps one, for /metrics too)."""

    per_client: int
    total: int
    open: Counter[str] = field(default_factory=Counter)

    def refusal(self, client: str) -> tuple[int, str] | None:
        if self.open[client] >= self.per_client:
            return 429, f"at most {self.per_client} concurrent streams per client (API_STREAMS_PER_CLIENT)"
        if self.open.total() >= self.total:
            return 503, f"this server holds its {self.total} concurrent streams (API_STREAMS_TOTAL)"
        return None


class StreamSlots:
    def __init__(self, app: ASGIApp, paths: Collection[str], counts: StreamCounts) -> None:
        self.app = app
        self.paths = frozenset(paths)
        self.counts = counts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] not in self.paths:
            await self.app(scope, receive, send)
            return
        client = scope["client"][0] if scope.get("client") else "unknown"
        refusal = self.counts.refusal(client)
        if refusal is not None:
            status, detail = refusal
            headers = {"Retry-After": str(STREAM_RETRY_AFTER_SECONDS)}
            await problem_response(Request(scope), status, detail=detail, headers=headers)(scope, receive, send)
            return
        open_ = self.counts.open
        open_[client] += 1
        try:
            await self.app(scope, receive, send)
        finally:
            open_[client] -= 1
            if not open_[client]:
                del open_[client]
