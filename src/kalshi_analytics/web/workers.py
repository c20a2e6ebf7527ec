"""Several API worker processes on one port, each with a listening socket of its own (``SO_REUSEPORT``).

uvicorn's ``--workers`` binds one socket and lets every worker accept from it: whichever wakes first takes the
connection, so a busy worker keeps taking more — measured with 100 connections and 2 workers: 91 against 31
sockets, the crowded worker's requests waiting ~4× longer and p95 twice p50 on every route (bench/README §4).
With a socket per worker the kernel spreads connections over them by their address hash, evenly. The parent
only supervises: it starts the workers, restarts one that dies, and passes SIGINT/SIGTERM on (each worker then
finishes its requests and stops, as uvicorn does).
"""

from __future__ import annotations

import contextlib
import multiprocessing
import signal
import socket
import time
from typing import Any

import uvicorn

from kalshi_analytics.logs import get_logger

log = get_logger(__name__)

#: How often a worker that dies is started again before the parent gives up (a worker that cannot start at all).
MAX_RESTARTS = 10


def reuse_port_supported() -> bool:
    return hasattr(socket, "SO_REUSEPORT")


def listening_socket(host: str, port: int) -> socket.socket:
    """A socket of this worker's own on ``host:port``, sharing the port with the other workers."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def _worker(app: str, host: str, port: int, server_class: type[uvicorn.Server], options: dict[str, Any]) -> None:
    sock = listening_socket(host, port)
    server = server_class(uvicorn.Config(app, factory=True, host=host, port=port, **options))
    server.run(sockets=[sock])


def serve_workers(
    app: str, host: str, port: int, workers: int, server_class: type[uvicorn.Server] = uvicorn.Server, **options: Any
) -> int:
    """Run ``workers`` processes serving the uvicorn factory ``app`` on ``host:port`` with ``server_class`` until
    SIGINT/SIGTERM; returns the exit code (0 after a requested stop)."""
    ctx = multiprocessing.get_context("spawn")  # a fresh interpreter each: no state of this process shared
    stopping = False

    def stop(_sig: int, _frame: Any) -> None:
        nonlocal stopping
        stopping = True

    previous = {s: signal.signal(s, stop) for s in (signal.SIGINT, signal.SIGTERM)}

    def start() -> Any:
        p = ctx.Process(
            target=_worker, args=(app, host, port, server_class, options), name="kalshi-analytics-api", daemon=False
        )
        p.start()
        return p

    procs = [start() for _ in range(workers)]
    restarts = 0
    code = 0
    try:
        while not stopping:
            time.sleep(0.2)
            for i, p in enumerate(procs):
                if p.is_alive() or stopping:
                    continue
                restarts += 1
                if restarts > MAX_RESTARTS:
                    log.error("api_workers_failing", exitcode=p.exitcode, restarts=restarts - 1)
                    stopping, code = True, 1
                    break
                log.warning("api_worker_died", pid=p.pid, exitcode=p.exitcode, restarting=True)
                procs[i] = start()
    finally:
        for p in procs:
            if p.is_alive() and p.pid is not None:
                with contextlib.suppress(ProcessLookupError):
                    p.terminate()  # SIGTERM: uvicorn finishes what is in flight, then stops
        deadline = time.monotonic() + 30
        for p in procs:
            p.join(max(0.0, deadline - time.monotonic()))
            if p.is_alive():
                p.kill()
                p.join()
        for s, handler in previous.items():
            signal.signal(s, handler)
    return code
