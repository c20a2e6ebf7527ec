"""Helpers of the live-stream tests: the API on a real socket, and a reader of Server-Sent Events."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from typing import Any

import httpx
import uvicorn
from fastapi import FastAPI

from tests.conftest import wait_until


@asynccontextmanager
async def running_api(app: FastAPI) -> AsyncIterator[str]:
    """``app`` served by uvicorn on 127.0.0.1 (any free port), lifespan and all; yields its base URL once the
    stream's listener is connected."""
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_config=None, access_log=False))
    task = asyncio.create_task(server.serve())
    try:
        await wait_until(lambda: server.started or task.done(), "the API server to start")
        assert not task.done(), "the API server stopped at start-up"
        port = server.servers[0].sockets[0].getsockname()[1]
        await asyncio.wait_for(app.state.stream_hub.listening.wait(), 10)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 10)


@dataclass(frozen=True)
class Sse:
    """One Server-Sent Event as a client sees it (``event`` is "comment" for a ``:`` line)."""

    event: str
    data: str
    id: str | None = None

    def json(self) -> Any:
        return json.loads(self.data)


class SseReader:
    """Parses a ``text/event-stream`` response into :class:`Sse` items (the SSE spec's field rules, enough for
    this API: ``id``, ``event``, ``data``, ``retry`` and comments).

    The response is read by a task of its own: a wait that times out must not cancel httpx's line iterator
    (cancelling an async generator ends it, and the stream with it).
    """

    def __init__(self, response: httpx.Response) -> None:
        self.response = response
        self.retry: int | None = None
        self._items: asyncio.Queue[Sse | BaseException] = asyncio.Queue()
        self._task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        event, data, id_ = "message", [], None
        try:
            async for line in self.response.aiter_lines():
                if line.startswith(":"):
                    self._items.put_nowait(Sse("comment", line[1:].strip()))
                    continue
                name, _, value = line.partition(":")
                value = value.removeprefix(" ")
                if name == "event":
                    event = value
                elif name == "data":
                    data.append(value)
                elif name == "id":
                    id_ = value
                elif name == "retry":
                    self.retry = int(value)
                elif line == "" and (data or id_ is not None):
                    self._items.put_nowait(Sse(event, "\n".join(data), id_))
                    event, data, id_ = "message", [], None
            self._items.put_nowait(EOFError("the stream ended"))
        except Exception as exc:
            self._items.put_nowait(exc)

    async def close(self) -> None:
        self._task.cancel()
        with suppress(asyncio.CancelledError):
            await self._task

    async def next(self, seconds: float = 10.0) -> Sse:
        item = await asyncio.wait_for(self._items.get(), seconds)
        if isinstance(item, BaseException):
            self._items.put_nowait(item)  # the end stays the end
            raise item
        return item

    async def events(self, seconds: float = 10.0) -> Sse:
        """The next event that is not a comment."""
        while True:
            item = await self.next(seconds)
            if item.event != "comment":
                return item

    async def until(self, event: str, seconds: float = 10.0) -> Sse:
        """Skip to the next ``event`` (comments and other events are dropped)."""
        async with asyncio.timeout(seconds):
            while True:
                item = await self.next(seconds)
                if item.event == event:
                    return item

    async def collect(self, seconds: float) -> list[Sse]:
        """Every non-comment event that arrives within ``seconds``."""
        got: list[Sse] = []
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        while (left := deadline - loop.time()) > 0:
            try:
                item = await self.next(left)
            except TimeoutError:
                break
            if item.event != "comment":
                got.append(item)
        return got

    async def quiet(self, seconds: float, *, limit: float = 30.0) -> list[Sse]:
        """Every non-comment event until none arrived for ``seconds`` (at most ``limit`` seconds in all)."""
        got: list[Sse] = []
        loop = asyncio.get_running_loop()
        async with asyncio.timeout(limit):
            quiet_from = loop.time()
            while (left := quiet_from + seconds - loop.time()) > 0:
                try:
                    item = await self.next(left)
                except TimeoutError:
                    break
                if item.event != "comment":
                    got.append(item)
                    quiet_from = loop.time()
        return got


@asynccontextmanager
async def sse(
    client: httpx.AsyncClient, params: dict[str, str], headers: dict[str, str] | None = None
) -> AsyncIterator[SseReader]:
    """An open ``GET /api/v1/stream`` (checked to be 200 and an event stream)."""
    async with client.stream("GET", "/api/v1/stream", params=params, headers=headers or {}) as r:
        assert r.status_code == 200, (await r.aread()).decode()
        assert r.headers["content-type"].startswith("text/event-stream")
        reader = SseReader(r)
        try:
            yield reader
        finally:
            await reader.close()
