"""uvicorn servers for the API: live streams end when a stop begins.

uvicorn's shutdown waits for every response in progress to finish, with no limit by default; a Server-Sent Events
stream never finishes, so one open dashboard kept ``kalshi-analytics api`` (and ``up``) from stopping on SIGTERM.
These servers first end every stream of the process (clients reconnect with ``Last-Event-ID``), and give other
responses :data:`GRACE_SECONDS` before they are cancelled.
"""

from __future__ import annotations

import socket

import uvicorn

from kalshi_analytics.markets.stream import end_streams
from kalshi_analytics.web.server import EmbeddedServer

#: How long a stop waits for requests in flight (after the streams were ended) before cancelling them.
GRACE_SECONDS = 10


class ApiServer(uvicorn.Server):
    """``kalshi-analytics api``'s server (each worker's): uvicorn's own signal handling."""

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        end_streams()
        await super().shutdown(sockets)


class EmbeddedApiServer(EmbeddedServer):
    """``up``'s API server: stopped by the program that runs it (no signal handlers of its own)."""

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        end_streams()
        await super().shutdown(sockets)
