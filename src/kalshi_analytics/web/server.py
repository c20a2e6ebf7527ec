"""uvicorn embedded in a program that owns its own Ctrl-C handling (``up``, tests, the simulator)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import uvicorn


class EmbeddedServer(uvicorn.Server):
    """uvicorn without its signal handlers.

    A plain ``uvicorn.Server`` replaces the program's SIGINT/SIGTERM handlers while it serves and re-raises the
    signal afterwards, which turns a clean stop of everything else into a cancellation (the recorder would then
    skip its final flush).
    """

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield
