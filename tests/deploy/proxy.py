"""A tiny reverse proxy for the scale-out test: several API processes behind one loopback port.

What a load balancer in front of the ``api`` replicas does (Cloud Run's, or nginx/Traefik with passive health
checks), cut down to what the test needs: requests go round robin over the upstreams; a GET or HEAD whose upstream
refused the connection, reset it, or closed it before the whole answer arrived is sent to the next upstream (an
idempotent request is safe to repeat), and that upstream is skipped for ``hold_off`` seconds. Ordinary answers are
read whole before they are passed on, so a reply cut short is retried, never forwarded half; an event stream is
passed on as it comes, and when its upstream dies the client sees the stream end (it reconnects with
``Last-Event-ID``, as browsers do). Each answer says which upstream gave it (``x-upstream``).
"""

from __future__ import annotations

import asyncio
import time
import traceback
from collections import Counter
from typing import Any

import httpx
from starlette.types import Receive, Scope, Send

IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS"})
#: Not forwarded either way (RFC 9110 §7.6.1), plus what this proxy sets itself.
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "host",
        "content-length",
    }
)
#: An upstream gone: nothing (or not all) of its answer arrived.
UPSTREAM_GONE = (httpx.TransportError,)


class Proxy:
    """An ASGI app spreading requests over ``upstreams`` (base URLs), with the retry rule of the module's doc."""

    def __init__(self, upstreams: list[str], *, hold_off: float = 1.0) -> None:
        self.upstreams = upstreams
        self.hold_off = hold_off
        self.client = httpx.AsyncClient(
            timeout=httpx.Timeout(10.0, read=None),  # streams are quiet between heartbeats
            limits=httpx.Limits(max_connections=200, max_keepalive_connections=50),
        )
        self._next = 0
        self._down_until: dict[str, float] = {}
        self.in_flight: Counter[str] = Counter()  # ordinary requests being answered, per upstream
        self.streams: Counter[str] = Counter()  # event streams open, per upstream
        self.answered: Counter[str] = Counter()
        self.retried = 0  # requests sent again to another upstream
        self.failed = 0  # requests answered 502: every upstream gone
        self.errors: list[str] = []  # what the proxy itself raised (none expected)

    def _order(self) -> list[str]:
        """Every upstream, starting at the next in turn; those held off go last."""
        n = len(self.upstreams)
        start, self._next = self._next, (self._next + 1) % n
        turn = [self.upstreams[(start + i) % n] for i in range(n)]
        now = time.monotonic()
        return sorted(turn, key=lambda u: self._down_until.get(u, 0.0) > now)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await self._handle(scope, receive, send)
        except Exception as exc:
            self.errors.append(f"{scope.get('path')}: {exc!r}\n{traceback.format_exc()}")
            raise

    async def _handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        assert scope["type"] == "http", scope["type"]
        body = bytearray()
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        method: str = scope["method"]
        target = scope["raw_path"].decode() + (f"?{scope['query_string'].decode()}" if scope["query_string"] else "")
        headers = [(k, v) for k, v in scope["headers"] if k.decode().lower() not in HOP_BY_HOP]
        order = self._order()
        for attempt, upstream in enumerate(order):
            request = self.client.build_request(method, upstream + target, headers=headers, content=bytes(body))
            self.in_flight[upstream] += 1
            counted = True
            try:
                response = await self.client.send(request, stream=True)
                try:
                    if response.headers.get("content-type", "").startswith("text/event-stream"):
                        self.in_flight[upstream] -= 1
                        counted = False
                        await self._stream(response, upstream, send, receive)
                        return
                    raw = b"".join([chunk async for chunk in response.aiter_raw()])
                finally:
                    await response.aclose()
            except UPSTREAM_GONE:
                self._down_until[upstream] = time.monotonic() + self.hold_off
                if method in IDEMPOTENT and attempt + 1 < len(order):
                    self.retried += 1
                    continue
                self.failed += 1
                await _answer(send, 502, [(b"content-type", b"text/plain")], b"upstream gone\n")
                return
            finally:
                if counted:
                    self.in_flight[upstream] -= 1
            self.answered[upstream] += 1
            out = [*_forwarded(response, upstream), (b"content-length", str(len(raw)).encode())]
            await _answer(send, response.status_code, out, raw)
            return

    async def _stream(self, response: httpx.Response, upstream: str, send: Send, receive: Receive) -> None:
        """Pass an event stream on as it comes; if the upstream goes, end it (the client reconnects); if the
        client goes, close it upstream."""

        async def pump() -> None:
            start = {"type": "http.response.start", "status": response.status_code}
            await send(start | {"headers": _forwarded(response, upstream)})
            try:
                async for chunk in response.aiter_raw():
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
            except UPSTREAM_GONE:
                self._down_until[upstream] = time.monotonic() + self.hold_off
            await send({"type": "http.response.body", "body": b"", "more_body": False})

        async def client_gone() -> None:
            while (await receive())["type"] != "http.disconnect":
                pass

        self.streams[upstream] += 1
        tasks = [asyncio.create_task(pump()), asyncio.create_task(client_gone())]
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            self.streams[upstream] -= 1
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def aclose(self) -> None:
        await self.client.aclose()


def _forwarded(response: httpx.Response, upstream: str) -> list[tuple[bytes, bytes]]:
    kept = [(k, v) for k, v in response.headers.raw if k.decode().lower() not in HOP_BY_HOP]
    return [*kept, (b"x-upstream", upstream.encode())]


async def _answer(send: Send, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
    start: dict[str, Any] = {"type": "http.response.start", "status": status, "headers": headers}
    await send(start)
    await send({"type": "http.response.body", "body": body, "more_body": False})
