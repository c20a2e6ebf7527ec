"""uvicorn servers for the API: live streams end when a stop begins.

uvicorn's shutdown waits for every response in progress to finish, with no limit by default; a Server-Sent Events
stream never finishes, so one open dashboard kept ``kalshi-analytics api`` (and ``up``) from stopping on SIGTERM.
These servers first end every stream of the process (clients reconnect with ``Last-Event-ID``), and give other
responses :data:`GRACE_SECONDS` before they are cancelled.
"""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Generator

import uvicorn

from kalshi_analytics.markets.stream import end_streams
from kalshi_analytics.web.server import EmbeddedServer

#: How long a stop waits for requests in flight (after the streams were ended) before cancelling them.
GRACE_SECONDS = 10


class ApiServer(uvicorn.Server):
    """``kalshi-analytics api``'s server (each worker's): uvicorn's own signal handling, except that a stop asked
    for by SIGTERM or Ctrl-C and carried out ends the process with status 0 (uvicorn raises the signal again once
    it has shut down, so the process would die of it: a container stopped on purpose would show as killed)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None]:
        with super().capture_signals():
            yield
            captured = getattr(self, "_captured_signals", None)
            if isinstance(captured, list):
                captured.clear()

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        end_streams()
        await super().shutdown(sockets)


class EmbeddedApiServer(EmbeddedServer):
    """``up``'s API server: stopped by the program that runs it (no signal handlers of its own)."""

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        end_streams()
        await super().shutdown(sockets)
