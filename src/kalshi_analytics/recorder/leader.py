"""One recorder writes; the others wait. Leader election on a PostgreSQL session-level advisory lock.

The lock lives on a dedicated asyncpg connection (not from the pool): when the leader dies, or its connection
does, PostgreSQL releases the lock and a standby — polling ``pg_try_advisory_lock`` about every second — takes
over. The leader pings its lock connection; when the ping fails it stops being leader at once, cancels the
work running under :meth:`LeaderElection.leadership` with :class:`LeadershipLost`, and the sink's
:meth:`LeaderElection.fence` refuses any commit not covered by the lock — never two writers.

Every instance (standbys too) upserts a ``recorder_heartbeats`` row every ~2 s in its own short unit of
work; the API's readiness check reads the leader's with :func:`latest_leader_heartbeat`.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import time
import uuid
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager, suppress
from datetime import UTC, datetime
from types import TracebackType
from typing import Any

import asyncpg
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession

from kalshi_analytics.db.engine import libpq_url
from kalshi_analytics.logs import get_logger
from kalshi_analytics.recorder.metrics import RecorderMetrics

log = get_logger(__name__)

#: The recorder's advisory lock key: "KALSHI" then 0001 (one bigint, so ``pg_locks`` shows it as classid/objid).
DEFAULT_LOCK_KEY = 0x4B414C5348490001


class LeadershipLost(Exception):
    """This instance no longer holds the recorder lock: stop writing, exit or re-enter standby."""

    fatal_for_sink = True  # the sink must stop, not retry or bisect


UPSERT_HEARTBEAT_SQL = text(
    "INSERT INTO recorder_heartbeats (instance_id, role, hostname, pid, started_at, heartbeat_at, leader_since, info) "
    "VALUES (:instance_id, :role, :hostname, :pid, :started_at, now(), :leader_since, CAST(:info AS jsonb)) "
    "ON CONFLICT (instance_id) DO UPDATE SET role = EXCLUDED.role, heartbeat_at = EXCLUDED.heartbeat_at, "
    "leader_since = EXCLUDED.leader_since, info = EXCLUDED.info, hostname = EXCLUDED.hostname, pid = EXCLUDED.pid"
)


async def latest_leader_heartbeat(session: AsyncSession | AsyncConnection) -> tuple[str, datetime] | None:
    """``(instance_id, heartbeat_at)`` of the most recent heartbeat of a leader, or None (for readiness checks)."""
    row = (
        await session.execute(
            text(
                "SELECT instance_id, heartbeat_at FROM recorder_heartbeats WHERE role = 'leader' "
                "ORDER BY heartbeat_at DESC LIMIT 1"
            )
        )
    ).first()
    return None if row is None else (str(row[0]), row[1])


def _lock_tag(key: int) -> tuple[int, int]:
    """How ``pg_locks`` shows a bigint advisory key: (classid, objid) = (high, low) 32 bits."""
    unsigned = key & 0xFFFFFFFFFFFFFFFF
    return unsigned >> 32, unsigned & 0xFFFFFFFF


class LeaderElection:
    """Use as ``async with LeaderElection(engine) as election:`` then ``async with election.leadership(): ...``."""

    def __init__(
        self,
        engine: AsyncEngine,
        *,
        lock_key: int = DEFAULT_LOCK_KEY,
        instance_id: str | None = None,
        poll_interval: float = 1.0,
        check_interval: float = 1.0,
        check_timeout: float = 3.0,
        heartbeat_interval: float = 2.0,
        connect_timeout: float = 5.0,
        info: Callable[[], Mapping[str, Any]] | None = None,
        metrics: RecorderMetrics | None = None,
        log_every_seconds: float = 30.0,
    ) -> None:
        self._engine = engine
        self._dsn = libpq_url(engine.url)
        self.lock_key = lock_key
        self.instance_id = instance_id or f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self.hostname = socket.gethostname()
        self.pid = os.getpid()
        self.started_at = datetime.now(UTC)
        self.poll_interval = poll_interval
        self.check_interval = check_interval
        self.check_timeout = check_timeout
        self.heartbeat_interval = heartbeat_interval
        self.connect_timeout = connect_timeout
        self._info = info
        self.metrics = metrics if metrics is not None else RecorderMetrics()
        self._log_every = log_every_seconds
        self._conn: Any = None
        self.backend_pid: int | None = None
        self._leader_since: datetime | None = None
        self._lost = asyncio.Event()
        self._on_lost: set[Callable[[], None]] = set()
        self._monitor: asyncio.Task[None] | None = None
        self._heartbeat: asyncio.Task[None] | None = None
        self._last_log: dict[str, float] = {}
        self.heartbeats_written = 0
        self._background: set[asyncio.Task[None]] = set()

    # ----------------------------------------------------------------------------------------------- lifecycle
    async def __aenter__(self) -> LeaderElection:
        self._heartbeat = asyncio.create_task(self._heartbeat_loop(), name="recorder-heartbeat")
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Give up the lock (if held), stop the heartbeat and record this instance as stopped."""
        for task in (self._monitor, self._heartbeat):
            if task is not None:
                task.cancel()
                with suppress(asyncio.CancelledError):
                    await task
        self._monitor = self._heartbeat = None
        was_leader = self.is_leader
        self._leader_since = None
        self.metrics.leader.set(0)
        await self._close_conn()
        if was_leader:
            log.info("leadership_released", instance_id=self.instance_id)
        await self._write_heartbeat(role="stopped")

    # ------------------------------------------------------------------------------------------------- queries
    @property
    def is_leader(self) -> bool:
        return self._leader_since is not None

    @property
    def leader_since(self) -> datetime | None:
        return self._leader_since

    @property
    def role(self) -> str:
        return "leader" if self.is_leader else "standby"

    # ------------------------------------------------------------------------------------------------- election
    async def wait_until_leader(self) -> None:
        """Return once this instance holds the lock; a standby retries every ``poll_interval`` seconds."""
        if self.is_leader:
            return
        announced = False
        while True:
            try:
                conn = await self._connection()
                got = await asyncio.wait_for(
                    conn.fetchval("SELECT pg_try_advisory_lock($1)", self.lock_key), self.check_timeout
                )
            except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                self._throttled("lock_db", "leader_election_database_unavailable", error=repr(exc))
                await self._close_conn()
                got = False
            if got:
                self._become_leader()
                return
            if not announced:
                log.info("recorder_standby", instance_id=self.instance_id, lock_key=self.lock_key)
                announced = True
            await asyncio.sleep(self.poll_interval)

    async def wait_lost(self) -> None:
        """Return when leadership (held now) is lost."""
        await self._lost.wait()

    @asynccontextmanager
    async def leadership(self) -> AsyncIterator[None]:
        """Wait for the lock, then run the body as leader; if the lock is lost the body is cancelled and
        :class:`LeadershipLost` raised here."""
        await self.wait_until_leader()
        task = asyncio.current_task()
        assert task is not None
        fired = False

        def on_lost() -> None:
            nonlocal fired
            fired = True
            task.cancel()

        self._on_lost.add(on_lost)
        try:
            if not self.is_leader:
                raise LeadershipLost("lost the recorder lock before starting")
            yield
        except asyncio.CancelledError:
            if fired:
                task.uncancel()
                raise LeadershipLost("lost the recorder lock") from None
            raise
        finally:
            self._on_lost.discard(on_lost)
        if fired:
            raise LeadershipLost("lost the recorder lock")

    async def fence(self, pg: Any) -> None:
        """Raise :class:`LeadershipLost` unless our lock connection holds the lock right now.

        Run by the sink inside each batch's transaction (on that transaction's connection), so a deposed leader
        that has not noticed yet still cannot commit.
        """
        if not self.is_leader or self.backend_pid is None:
            raise LeadershipLost("not the leader")
        classid, objid = _lock_tag(self.lock_key)
        held = await pg.fetchval(
            "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND classid = $1::bigint::oid "
            "AND objid = $2::bigint::oid AND objsubid = 1 AND pid = $3 AND granted)",
            classid,
            objid,
            self.backend_pid,
        )
        if not held:
            self._lose("fence: lock not held by our connection")
            raise LeadershipLost("the recorder lock is not held by this instance")

    # --------------------------------------------------------------------------------------------- internals
    async def _connection(self) -> Any:
        if self._conn is None or self._conn.is_closed():
            self._conn = await asyncpg.connect(
                self._dsn,
                timeout=self.connect_timeout,
                server_settings={
                    "application_name": "kalshi-analytics-recorder-lock",
                    # A dead peer over TCP is noticed by the server within ~25 s, releasing the lock.
                    "tcp_keepalives_idle": "10",
                    "tcp_keepalives_interval": "5",
                    "tcp_keepalives_count": "3",
                },
            )
            self.backend_pid = self._conn.get_server_pid()
            self._conn.add_termination_listener(lambda _c: self._lose("lock connection terminated"))
        return self._conn

    async def _close_conn(self) -> None:
        conn, self._conn = self._conn, None
        self.backend_pid = None
        if conn is not None and not conn.is_closed():
            try:
                await asyncio.wait_for(conn.close(), 2)
            except Exception:  # dead already; do not wait for it
                conn.terminate()

    def _become_leader(self) -> None:
        self._leader_since = datetime.now(UTC)
        self._lost = asyncio.Event()
        self.metrics.leader.set(1)
        log.info("recorder_became_leader", instance_id=self.instance_id, backend_pid=self.backend_pid)
        self._monitor = asyncio.create_task(self._monitor_loop(), name="recorder-leader-monitor")
        beat = asyncio.create_task(self._write_heartbeat())  # announce the new role now, not in 2 s
        self._background.add(beat)
        beat.add_done_callback(self._background.discard)

    def _lose(self, reason: str) -> None:
        if not self.is_leader:
            return
        self._leader_since = None
        self.metrics.leader.set(0)
        log.warning("recorder_leadership_lost", instance_id=self.instance_id, reason=reason)
        self._lost.set()
        for cb in list(self._on_lost):
            cb()
        monitor, self._monitor = self._monitor, None
        if monitor is not None and monitor is not asyncio.current_task():
            monitor.cancel()
        conn, self._conn = self._conn, None
        self.backend_pid = None
        if conn is not None and not conn.is_closed():
            conn.terminate()  # make sure the lock is gone with it

    async def _monitor_loop(self) -> None:
        while self.is_leader:
            await asyncio.sleep(self.check_interval)
            conn = self._conn
            try:
                if conn is None or conn.is_closed():
                    raise ConnectionError("lock connection closed")
                await asyncio.wait_for(conn.fetchval("SELECT 1"), self.check_timeout)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self._lose(f"lock connection check failed: {exc!r}")
                return

    async def _heartbeat_loop(self) -> None:
        while True:
            await self._write_heartbeat()
            await asyncio.sleep(self.heartbeat_interval)

    async def _write_heartbeat(self, role: str | None = None) -> None:
        info: dict[str, Any] = {}
        if self._info is not None:
            try:
                info = dict(self._info())
            except Exception as exc:
                info = {"info_error": repr(exc)}
        params = {
            "instance_id": self.instance_id,
            "role": role or self.role,
            "hostname": self.hostname,
            "pid": self.pid,
            "started_at": self.started_at,
            "leader_since": self._leader_since,
            "info": json.dumps(info, default=str),
        }
        try:
            async with asyncio.timeout(self.check_timeout + self.connect_timeout), self._engine.begin() as conn:
                await conn.execute(UPSERT_HEARTBEAT_SQL, params)
            self.heartbeats_written += 1
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the database may be down; the next beat tries again
            self.metrics.heartbeat_failures.inc()
            self._throttled("heartbeat", "recorder_heartbeat_failed", error=repr(exc))

    def _throttled(self, key: str, event: str, **kw: Any) -> None:
        now = time.monotonic()
        if now - self._last_log.get(key, -1e9) >= self._log_every:
            self._last_log[key] = now
            log.warning(event, **kw)
