"""Telling a database outage from any other failure, and living through one.

:func:`unreachable` reads a driver's exception (asyncpg, SQLAlchemy, the OS) and says whether it means "the
database cannot be reached now" (refused, reset, shut down, a connection found dead, no answer in time) rather
than a bug or a bad query. :class:`DatabaseGate` is what a server keeps per process: the first such failure
opens the gate — one log line, and every later request is refused at once (no connection attempt, no wait)
with :class:`DatabaseUnavailableError` — while a probe tries to connect a few times a second; its first
success closes the gate (one log line) and makes the pools replace the connections that died meanwhile.
"""

from __future__ import annotations

import asyncio
import errno
import socket
import time
from collections.abc import Callable
from contextlib import suppress

import asyncpg
from sqlalchemy import event
from sqlalchemy import exc as sa_exc
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.pool import ConnectionPoolEntry, PoolProxiedConnection

from kalshi_analytics.db.engine import DatabaseUnavailableError
from kalshi_analytics.logs import get_logger

log = get_logger(__name__)

#: OS errors that mean "nobody answers there" (a Unix socket that is gone is ENOENT).
_UNREACHABLE_ERRNOS = {
    errno.ENOENT,
    errno.ECONNREFUSED,
    errno.ECONNRESET,
    errno.ECONNABORTED,
    errno.EHOSTUNREACH,
    errno.ENETUNREACH,
    errno.ETIMEDOUT,
    errno.EPIPE,
}
#: The connection failed (SQLSTATE class 08), or the server is shutting down or starting (57P01-57P03).
_SERVER_GOING = (
    asyncpg.PostgresConnectionError,
    asyncpg.AdminShutdownError,
    asyncpg.CrashShutdownError,
    asyncpg.CannotConnectNowError,
)
POOL_EXHAUSTED = "connection pool exhausted"
TOO_MANY = "too many connections"
BROKEN = "connection broken"
#: Exception classes that mean the database cannot serve a request now, with the reason to give (None: the
#: class name).
_KINDS: tuple[tuple[type[BaseException] | tuple[type[BaseException], ...], str | None], ...] = (
    (sa_exc.TimeoutError, POOL_EXHAUSTED),
    (asyncpg.TooManyConnectionsError, TOO_MANY),
    # The protocol state of one connection broke, e.g. the server ended it in the middle of an exchange.
    (asyncpg.InternalClientError, BROKEN),
    (_SERVER_GOING, None),
    ((ConnectionError, TimeoutError, socket.gaierror), None),
)
#: Modules whose OS errors are about the database.
_DRIVERS = ("asyncpg", "sqlalchemy")
PROBE_SECONDS = 0.5
PROBE_TIMEOUT_SECONDS = 2.0


def unreachable(exc: BaseException) -> str | None:
    """A short reason when ``exc`` (or what it wraps) means the database cannot be reached; None otherwise.

    OS errors (refused, reset, a Unix socket that is gone, no answer in time) count only when the driver raised
    them: the same errors from elsewhere (a missing file) are not the database's.

    Pool exhaustion, "too many connections" and a connection whose protocol state broke count as well: the
    database cannot serve this request now, and a retry may succeed. Query errors, bad input and bugs do not.
    """
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        reason = _reason(current)
        if reason is not None:
            return reason
        orig = getattr(current, "orig", None) if isinstance(current, sa_exc.DBAPIError) else None
        current = orig or current.__cause__ or current.__context__
    return None


def _reason(exc: BaseException) -> str | None:
    if isinstance(exc, DatabaseUnavailableError):
        return str(exc)
    if isinstance(exc, sa_exc.DBAPIError) and exc.connection_invalidated:
        return "connection lost"
    if isinstance(exc, OSError) and not _raised_by_driver(exc):
        return None  # a file that is not there, say: not the database's doing
    for kinds, reason in _KINDS:
        if isinstance(exc, kinds):
            return reason or type(exc).__name__
    if isinstance(exc, asyncpg.InterfaceError) and any(w in str(exc).lower() for w in ("closed", "connection")):
        return "connection closed"
    # Refused at the door: a database not accepting connections (maintenance, ALLOW_CONNECTIONS false), one
    # dropped, a password rotated. No request can be served until that changes; not a fault of the request.
    refused = isinstance(exc, asyncpg.PostgresError) and _raised_while_connecting(exc)
    gone = isinstance(exc, OSError) and exc.errno in _UNREACHABLE_ERRNOS
    return type(exc).__name__ if refused or gone else None


def _raised_by_driver(exc: BaseException) -> bool:
    """Whether the driver (asyncpg, SQLAlchemy) is on the way from where ``exc`` was raised."""
    tb = exc.__traceback__
    while tb is not None:
        if str(tb.tb_frame.f_globals.get("__name__", "")).startswith(_DRIVERS):
            return True
        tb = tb.tb_next
    return False


def _raised_while_connecting(exc: BaseException) -> bool:
    """Whether ``exc`` came out of the driver's connection set-up (the same error from a query is the query's)."""
    tb = exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_globals.get("__name__") == "asyncpg.connect_utils":
            return True
        tb = tb.tb_next
    return False


def is_outage(reason: str) -> bool:
    """Whether a reason from :func:`unreachable` means the server is gone (not busy, not one bad connection)."""
    return reason not in (POOL_EXHAUSTED, TOO_MANY, BROKEN)


class DatabaseGate:
    """One per server process: refuses requests at once while the database is known to be unreachable.

    ``dsn`` is what the probe connects to; ``engines`` (SQLAlchemy) and ``pools`` (asyncpg) get their
    connections from before the outage replaced when it ends, so the first requests after it do not meet them
    dead. ``retry_after`` is the ``Retry-After`` the refusals carry.
    """

    def __init__(
        self,
        dsn: str,
        *,
        retry_after: int,
        engines: tuple[AsyncEngine, ...] = (),
        pools: tuple[asyncpg.Pool, ...] = (),
        who: str = "api",
        probe_seconds: float = PROBE_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.dsn = dsn
        self.retry_after = retry_after
        self.who = who
        self.probe_seconds = probe_seconds
        self._clock = clock
        self._pools = pools
        self._engines = engines
        self.down_since: float | None = None
        self.reason: str | None = None
        self.outages = 0
        self._recovered_at = 0.0  # wall clock: connections made before it may be dead
        self._probe: asyncio.Task[None] | None = None
        for engine in engines:
            event.listen(engine.sync_engine.pool, "connect", self._on_connect)
            event.listen(engine.sync_engine.pool, "checkout", self._on_checkout)

    @property
    def down(self) -> bool:
        return self.down_since is not None

    def error(self) -> DatabaseUnavailableError:
        return DatabaseUnavailableError(
            f"the database cannot be reached now; retry in {self.retry_after} s", retry_after=self.retry_after
        )

    def check(self) -> None:
        """Raise :class:`DatabaseUnavailableError` while the database is known to be unreachable."""
        if self.down_since is not None:
            raise self.error()

    def failed(self, exc: BaseException) -> DatabaseUnavailableError | None:
        """The error to answer with if ``exc`` means the database is unreachable (opening the gate when the
        server is gone), else None: ``exc`` is some other failure."""
        reason = unreachable(exc)
        if reason is None:
            return None
        if is_outage(reason) and self.down_since is None:
            self.down_since = self._clock()
            self.reason = reason
            self.outages += 1
            log.warning("database_unreachable", who=self.who, reason=reason, probe_every_s=self.probe_seconds)
            self._probe = asyncio.get_running_loop().create_task(self._wait_for_return(), name="db-gate-probe")
        return self.error()

    async def close(self) -> None:
        for engine in self._engines:
            event.remove(engine.sync_engine.pool, "connect", self._on_connect)
            event.remove(engine.sync_engine.pool, "checkout", self._on_checkout)
        if self._probe is not None:
            self._probe.cancel()
            with suppress(asyncio.CancelledError):
                await self._probe

    async def _wait_for_return(self) -> None:
        while True:
            await asyncio.sleep(self.probe_seconds)
            try:
                conn = await asyncpg.connect(self.dsn, timeout=PROBE_TIMEOUT_SECONDS)
                try:
                    await conn.fetchval("SELECT 1", timeout=PROBE_TIMEOUT_SECONDS)
                finally:
                    await conn.close(timeout=PROBE_TIMEOUT_SECONDS)
            except Exception:  # noqa: S112 - still away: the next probe will tell
                continue
            break
        self._recovered_at = time.time()
        for pool in self._pools:
            await pool.expire_connections()
        assert self.down_since is not None
        log.info("database_reachable", who=self.who, outage_s=round(self._clock() - self.down_since, 1))
        self.down_since = None
        self.reason = None

    # A pooled SQLAlchemy connection made before the end of an outage is dead: refused at checkout, so the pool
    # makes a new one (SQLAlchemy's "pessimistic" disconnect handling, applied only when it can matter).
    def _on_connect(self, _dbapi: object, record: ConnectionPoolEntry) -> None:
        record.info["born"] = time.time()

    def _on_checkout(self, _dbapi: object, record: ConnectionPoolEntry, _proxy: PoolProxiedConnection) -> None:
        if record.info.get("born", 0.0) < self._recovered_at:
            raise sa_exc.DisconnectionError("connection made before the database's outage ended")
