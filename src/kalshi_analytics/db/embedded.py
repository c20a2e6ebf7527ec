"""The embedded PostgreSQL (``pgserver``) used when ``DB_URL`` is unset: created once, then reused.

One server, one database per ``KALSHI_ENV`` (``kalshi_sim``, ``kalshi_demo``, ``kalshi`` for prod), each marked
with its environment (a database comment), so simulated and real data never share tables. A ``kalshi`` database
made before environments were separated (unmarked; every environment recorded there, the simulator by default)
is settled once: holding simulated markets it becomes ``kalshi_sim``, else it stays the prod database.
"""

from __future__ import annotations

import logging
import os
import subprocess
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kalshi_analytics.errors import UnavailableError
from kalshi_analytics.logs import get_logger

DATABASE_NAME = "kalshi"
LEGACY_DATABASE = "kalshi"  # the one database of every environment before they were separated
SIM_DATABASE = "kalshi_sim"
ENV_MARK = "kalshi-analytics KALSHI_ENV="
# The simulator writes this into every market's rules (simulator/wire.py); no real market says it.
_SIMULATED_MARKETS_SQL = (
    "SELECT to_regclass('public.markets') IS NOT NULL AND EXISTS "
    "(SELECT 1 FROM markets WHERE raw->>'rules_secondary' LIKE 'Simulated market:%')"
)
log = get_logger(__name__)


@dataclass(frozen=True)
class EmbeddedDatabase:
    url: str  # libpq form, unix socket
    pgdata: Path
    created: bool  # True when this call ran initdb
    started: bool  # True when this call started the server (False: it was already running)
    notice: str | None = None  # something a person should know about this start (e.g. a database moved)


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


def _psql(server: Any, sql: str, database: str = "postgres") -> list[str]:
    """Run one statement in ``database``; the rows as ``|``-separated lines."""
    from pgserver._commands import POSTGRES_BIN_PATH

    out = subprocess.run(  # noqa: S603 - our own psql and our own statements
        [str(POSTGRES_BIN_PATH / "psql"), server.get_uri(database), "-X", "-q", "-t", "-A", "-v", "ON_ERROR_STOP=1"],
        input=sql,
        capture_output=True,
        text=True,
        check=False,
    )
    if out.returncode != 0:
        raise UnavailableError(f"embedded database: {sql.split(' ', 2)[:2]}: {out.stderr.strip()[:300]}")
    return [line for line in out.stdout.splitlines() if line]


def _marks(server: Any) -> dict[str, str]:
    """Every database of the server → its comment ('' when none)."""
    rows = _psql(server, "SELECT datname, coalesce(shobj_description(oid, 'pg_database'), '') FROM pg_database;")
    return dict(row.split("|", 1) for row in rows)


def _mark(server: Any, database: str, env: str) -> None:
    _psql(server, f"COMMENT ON DATABASE \"{database}\" IS '{ENV_MARK}{env}';")


def _settle_legacy_database(server: Any, marks: dict[str, str]) -> str | None:
    """Give an unmarked ``kalshi`` database its environment; a notice when it had to move."""
    if marks.get(LEGACY_DATABASE, ENV_MARK).startswith(ENV_MARK):
        return None
    holds_sim = _psql(server, _SIMULATED_MARKETS_SQL, LEGACY_DATABASE) == ["t"]
    if not holds_sim:
        _mark(server, LEGACY_DATABASE, "prod")
        return None
    if SIM_DATABASE in marks:
        log.warning("embedded_database_mixed", database=LEGACY_DATABASE, holds="simulated markets", used_for="prod")
        return None
    try:
        _psql(server, f'ALTER DATABASE "{LEGACY_DATABASE}" RENAME TO "{SIM_DATABASE}";')
    except UnavailableError:
        raise UnavailableError(
            f"the embedded database {LEGACY_DATABASE!r} holds simulated markets and moves to {SIM_DATABASE!r}, "
            "but another process uses it: stop the other kalshi-analytics processes and run this again"
        ) from None
    _mark(server, SIM_DATABASE, "sim")
    notice = (
        f"the database {LEGACY_DATABASE!r} held simulated markets (recorded before environments were separated) "
        f"and is now {SIM_DATABASE!r}; prod data goes to a new {LEGACY_DATABASE!r}"
    )
    log.warning("embedded_database_moved", source=LEGACY_DATABASE, target=SIM_DATABASE)
    return notice


def start_embedded(pgdata: Path, database: str = DATABASE_NAME, env: str | None = None) -> EmbeddedDatabase:
    """Start (or attach to) the private server in ``pgdata`` and make sure ``database`` exists; with ``env``,
    marked as that environment's database (and an unmarked ``kalshi`` settled first, see the module doc).

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
    marks = _marks(server)
    notice = None
    if env is not None and not created:
        notice = _settle_legacy_database(server, marks)
        marks = _marks(server)
    if database not in marks:
        _psql(server, f'CREATE DATABASE "{database}";')
    if env is not None and not marks.get(database, "").startswith(ENV_MARK):
        _mark(server, database, env)
    url = server.get_uri(database)
    return EmbeddedDatabase(url=url, pgdata=pgdata, created=created, started=not running, notice=notice)


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
