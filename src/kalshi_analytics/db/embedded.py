"""The embedded PostgreSQL (``pgserver``) used when ``DB_URL`` is unset: created once, then reused."""

from __future__ import annotations

import logging
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kalshi_analytics.logs import get_logger

DATABASE_NAME = "kalshi"
log = get_logger(__name__)


@dataclass(frozen=True)
class EmbeddedDatabase:
    url: str  # libpq form, unix socket
    pgdata: Path
    created: bool  # True when this call ran initdb
    started: bool  # True when this call started the server (False: it was already running)


def _pgserver() -> Any:
    """The pgserver module, quietened: it narrates every pg_ctl call at INFO and warns about XDG_RUNTIME_DIR,
    neither of which helps a user. Imported lazily: it is only needed when no DB_URL is given."""
    logging.getLogger("pgserver").setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")
    import pgserver

    return pgserver


def _server_running(pgdata: Path) -> bool:
    """A postmaster lives for ``pgdata`` (a pid file left by a crash names a dead process, or a reused pid)."""
    try:
        pid = int((pgdata / "postmaster.pid").read_text().split("\n", 1)[0])
        os.kill(pid, 0)
    except (OSError, ValueError):
        return False
    return True


def start_embedded(pgdata: Path, database: str = DATABASE_NAME) -> EmbeddedDatabase:
    """Start (or attach to) the private server in ``pgdata`` and make sure ``database`` exists.

    The server outlives this process on purpose: the next run attaches to it instead of starting again.
    Blocking; call it from a thread inside an event loop.
    """
    pgserver = _pgserver()
    created = not (pgdata / "PG_VERSION").exists()
    running = _server_running(pgdata)
    pgdata.mkdir(parents=True, exist_ok=True)
    if running:
        log.debug("embedded_postgres_attaching", pgdata=str(pgdata))
    else:
        log.info("embedded_postgres_starting", pgdata=str(pgdata), initdb=created)
    server = pgserver.get_server(pgdata, cleanup_mode=None)
    exists = server.psql(f"SELECT 1 FROM pg_database WHERE datname = '{database}';")
    if "(1 row)" not in exists:
        server.psql(f'CREATE DATABASE "{database}";')
    return EmbeddedDatabase(url=server.get_uri(database), pgdata=pgdata, created=created, started=not running)


def stop_embedded(pgdata: Path) -> bool:
    """Stop the embedded server if one runs in ``pgdata``; True when one was stopped."""
    if not (pgdata / "postmaster.pid").exists():
        return False
    server = _pgserver().get_server(pgdata, cleanup_mode="stop")
    # A server started by this very process is cached by pgserver with the cleanup mode it was started with
    # (None: keep running), and cleanup() would then leave it running.
    server.cleanup_mode = "stop"
    server.cleanup()
    return True
