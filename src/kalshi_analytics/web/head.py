"""``HEAD`` on every ``GET`` route (RFC 9110 §9.3.2): the ``GET`` answer's status and headers, without its body.

FastAPI routes answer only the methods they declare, so ``HEAD /api/v1/health`` was a 405. This pure ASGI
middleware runs a ``HEAD`` request as a ``GET`` through everything inside it (routing, rate limits, the response
cache, metrics) and sends only the response start. A streaming answer (the SSE stream) is ended after its first
chunk by telling it that the client went away, so a ``HEAD`` never holds a stream open.
"""

from __future__ import annotations

import asyncio
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

_DISCONNECT: Message = {"type": "http.disconnect"}


class HeadAsGet:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "HEAD":
            await self.app(scope, receive, send)
            return
        answered = asyncio.Event()

        async def head_receive() -> Message:
            if answered.is_set():
                return _DISCONNECT
            real = asyncio.ensure_future(receive())
            gone = asyncio.ensure_future(answered.wait())
            done, pending = await asyncio.wait({real, gone}, return_when=asyncio.FIRST_COMPLETED)
            for task in pending:
                task.cancel()
            return real.result() if real in done else _DISCONNECT

        async def head_send(message: Message) -> None:
            if answered.is_set():
                return
            if message["type"] == "http.response.body":
                answered.set()
                await send({"type": "http.response.body", "body": b"", "more_body": False})
                return
            await send(message)

        get: dict[str, Any] = {**scope, "method": "GET"}
        await self.app(get, head_receive, head_send)
