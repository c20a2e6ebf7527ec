"""uvicorn embedded in a program that owns its own Ctrl-C handling (``up``, tests, the simulator)."""

from __future__ import annotations

import contextlib
import errno
import logging
import socket
from collections.abc import Iterator
from typing import Any

import uvicorn

from kalshi_analytics.config import Settings
from kalshi_analytics.errors import ConflictError

#: What uvicorn says at INFO about its own life. A program that embeds servers announces their addresses itself;
#: two or three servers in one process would otherwise say "Started server process [pid]" once each.
_LIFECYCLE_LINES = (
    "Started server process",
    "Waiting for application",
    "Application startup complete",
    "Application shutdown complete",
    "Uvicorn running on",
    "Shutting down",
    "Finished server process",
    # One line per WebSocket connection: the simulator's clients log their own connects.
    "connection open",
    "connection closed",
    '%s - "WebSocket %s"',
)


class _QuietLifecycle(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno > logging.INFO or not str(record.msg).startswith(_LIFECYCLE_LINES)


_quiet = _QuietLifecycle()


def proxy_options(settings: Settings) -> dict[str, Any]:
    """uvicorn's proxy-header options, the same for every server of the API (``api`` and ``up``):
    ``X-Forwarded-For``/``-Proto`` are believed only from the addresses in ``FORWARDED_ALLOW_IPS``, and from
    nobody when it is empty (the default). uvicorn would otherwise trust loopback, so that anyone on the
    machine could claim any client address (and with it a fresh rate-limit budget per request)."""
    if not settings.forwarded_allow_ips:
        return {"proxy_headers": False}
    return {"proxy_headers": True, "forwarded_allow_ips": list(settings.forwarded_allow_ips)}


def ensure_port_free(host: str, port: int, what: str, setting: str) -> None:
    """Raise one clear :class:`ConflictError` when ``host:port`` is taken, before anything else has started.

    Binds the way uvicorn will (``SO_REUSEADDR``), so a port in TIME_WAIT after a clean stop counts as free.
    """
    if port == 0:
        return
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            if exc.errno != errno.EADDRINUSE:
                raise ConflictError(f"{what}: cannot listen on {host}:{port}: {exc.strerror}", field=setting) from None
            raise ConflictError(
                f"{what}: port {port} on {host} is already in use (another `kalshi-analytics up`?); "
                f"stop that process or choose another port with {setting}",
                field=setting,
            ) from None


class EmbeddedServer(uvicorn.Server):
    """uvicorn without its signal handlers, and without its start/stop chatter at INFO (errors still show).

    A plain ``uvicorn.Server`` replaces the program's SIGINT/SIGTERM handlers while it serves and re-raises the
    signal afterwards, which turns a clean stop of everything else into a cancellation (the recorder would then
    skip its final flush).
    """

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        logger = logging.getLogger("uvicorn.error")
        if _quiet not in logger.filters:
            logger.addFilter(_quiet)

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield
