"""One recorder writes; the others wait. Leader election on a PostgreSQL advisory lock plus a lease.

The lock lives on a dedicated asyncpg connection (not from the pool): when the leader dies, PostgreSQL releases
the lock and a standby — polling about every second — takes over once the lease has gone unrenewed for
``takeover_grace_seconds`` (3 s: a live leader whose connection merely blipped re-takes it sooner). A leader
that is frozen or cut off keeps its session, and so the lock, open; for that the leader renews a lease
(:mod:`~kalshi_analytics.recorder.lease`, ``lease_until = now() + lease_seconds`` by the database's clock) every
``check_interval`` on its lock connection, and a standby that sees the deadline pass ends the holder's session,
takes the lock and starts a new epoch. The sink's :meth:`LeaderElection.fence` checks the epoch inside every
batch's transaction, so a leader that wakes up deposed has its late batches refused — never two writers.

When the leader's own connection fails (PostgreSQL restarting, a network cut) it does not give up: it holds on
(the sink keeps what the loops record), reconnects, and carries on under the same epoch if nobody took over —
after a restart a standby leaves it a lease period to come back. If it finds a new epoch it has been deposed:
the work under :meth:`LeaderElection.leadership` is cancelled with :class:`LeadershipLost` and the instance
goes back to standby; the new leader's resume repair covers the interval.

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

from kalshi_analytics.db import locks
from kalshi_analytics.db.engine import libpq_url
from kalshi_analytics.logs import get_logger
from kalshi_analytics.recorder import lease
from kalshi_analytics.recorder.metrics import RecorderMetrics

log = get_logger(__name__)

#: The recorder's advisory lock key: "KALSHI" then 0001 (one bigint, so ``pg_locks`` shows it as classid/objid).
DEFAULT_LOCK_KEY = locks.RECORDER_LEADER


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
        lease_seconds: float = 10.0,
        takeover_grace_seconds: float = 3.0,
        info: Callable[[], Mapping[str, Any]] | None = None,
        metrics: RecorderMetrics | None = None,
        log_every_seconds: float = 30.0,
        tables: lease.LeaseTables = lease.RECORDER,
        name: str = "recorder",
    ) -> None:
        self._engine = engine
        self._dsn = libpq_url(engine.url)
        self.lock_key = lock_key
        self.tables = tables
        self.name = name  # in log events and messages: what this election is for
        self._heartbeat_sql = text(tables.sql(str(UPSERT_HEARTBEAT_SQL)))
        self.instance_id = instance_id or f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self.hostname = socket.gethostname()
        self.pid = os.getpid()
        self.started_at = datetime.now(UTC)
        self.poll_interval = poll_interval
        self.check_interval = check_interval
        self.check_timeout = check_timeout
        self.heartbeat_interval = heartbeat_interval
        self.connect_timeout = connect_timeout
        self.lease_seconds = lease_seconds
        self.takeover_grace = takeover_grace_seconds
        self.epoch: int | None = None
        self.holding_since: datetime | None = None  # leading, but without a database connection
        self.on_reconnected: Callable[[], None] | None = None  # called when a holding leader has its lease back
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
        conn, epoch = self._conn, self.epoch
        if was_leader and conn is not None and not conn.is_closed() and epoch is not None:
            with suppress(Exception):  # the lease then simply runs out
                await asyncio.wait_for(
                    lease.release(conn, self.lock_key, holder=self.instance_id, epoch=epoch, tables=self.tables),
                    self.check_timeout,
                )
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
    def holding(self) -> bool:
        return self.holding_since is not None

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
                got = await asyncio.wait_for(self._try_acquire(conn), self.check_timeout + 5.0)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # whatever a dying server does to a query in flight: try again
                self._throttled("lock_db", "leader_election_database_unavailable", error=repr(exc))
                await self._close_conn()
                got = False
            if got:
                self._become_leader()
                return
            if not announced:
                log.info(f"{self.name}_standby", instance_id=self.instance_id, lock_key=self.lock_key)
                announced = True
            await asyncio.sleep(self.poll_interval)

    async def _try_acquire(self, conn: Any) -> bool:
        """One standby round: take the lock and a new epoch if the lease allows it, ending a holder whose lease
        ran out."""
        st = await lease.read_state(conn, self.lock_key, self.lease_seconds, self.takeover_grace, self.tables)
        if st is not None and st.holder != self.instance_id:
            # After a restart the holder may be reconnecting with what it held through the outage; with the lock
            # free and the lease fresh, its connection blipped a moment ago and it is re-taking the lease; with
            # the lock held, the holder's session lives on and only its lease's deadline can depose it.
            if st.restart_grace or (st.lock_pid is None and not st.stale) or (st.lock_pid and not st.expired):
                return False
            if st.lock_pid is not None:
                log.warning(
                    f"{self.name}_lease_expired_taking_over",
                    instance_id=self.instance_id,
                    holder=st.holder,
                    epoch=st.epoch,
                    holder_backend_pid=st.lock_pid,
                )
                await lease.terminate(conn, st.lock_pid)
                self.metrics.takeovers.inc()
                # The lock goes when that backend has exited, a moment after it was told to.
                for _ in range(30):
                    if await conn.fetchval("SELECT pg_try_advisory_lock($1)", self.lock_key):
                        break
                    await asyncio.sleep(0.1)
                else:
                    return False
                return await self._start_epoch(conn)
        if not await conn.fetchval("SELECT pg_try_advisory_lock($1)", self.lock_key):
            return False
        return await self._start_epoch(conn)

    async def _start_epoch(self, conn: Any) -> bool:
        assert self.backend_pid is not None
        try:
            self.epoch = await lease.take(
                conn,
                self.lock_key,
                holder=self.instance_id,
                backend_pid=self.backend_pid,
                ttl=self.lease_seconds,
                tables=self.tables,
            )
        except BaseException:
            with suppress(Exception):
                await conn.fetchval("SELECT pg_advisory_unlock($1)", self.lock_key)
            raise
        deposed = await lease.mark_deposed(conn, self.instance_id, self.tables)
        if deposed:
            log.info(f"{self.name}_marked_old_leaders_deposed", rows=deposed)
        return True

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
        """Raise :class:`LeadershipLost` unless the lease is still ours under the epoch we took.

        Run by the sink inside each batch's transaction (on that transaction's connection), so a deposed leader
        that has not noticed yet — a frozen one waking up — still cannot commit. Not the lock itself: while the
        leader holds on through an outage its lock session is gone, yet nobody else leads until the epoch moves.
        """
        epoch = self.epoch
        if not self.is_leader or epoch is None:
            raise LeadershipLost("not the leader")
        if not await lease.holds(pg, self.lock_key, self.instance_id, epoch, self.tables):
            self._lose(f"fence: the lease is no longer ours (epoch {epoch})")
            raise LeadershipLost("the recorder lease is held by another instance or epoch")

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
        self.holding_since = None
        self._lost = asyncio.Event()
        self.metrics.leader.set(1)
        log.info(
            f"{self.name}_became_leader", instance_id=self.instance_id, backend_pid=self.backend_pid, epoch=self.epoch
        )
        self._monitor = asyncio.create_task(self._monitor_loop(), name="recorder-leader-monitor")
        beat = asyncio.create_task(self._write_heartbeat())  # announce the new role now, not in 2 s
        self._background.add(beat)
        beat.add_done_callback(self._background.discard)

    def _lose(self, reason: str) -> None:
        if not self.is_leader:
            return
        self._leader_since = None
        self.holding_since = None
        self.metrics.leader.set(0)
        log.warning(f"{self.name}_leadership_lost", instance_id=self.instance_id, reason=reason, epoch=self.epoch)
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
            conn, epoch = self._conn, self.epoch
            try:
                if conn is None or conn.is_closed():
                    raise ConnectionError("lock connection closed")
                ours = await asyncio.wait_for(self._renew(conn), self.check_timeout)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                await self._hold(exc)
                continue
            if not ours:
                self._lose(f"deposed: the lease moved on from epoch {epoch}")
                return

    async def _hold(self, error: BaseException) -> None:
        """Lead on without a database: reconnect until the lease is renewed under our epoch (back), or found to
        have a new one (deposed)."""
        self.holding_since = datetime.now(UTC)
        self.metrics.lease_outages.inc()
        log.warning(f"{self.name}_leader_holding", instance_id=self.instance_id, epoch=self.epoch, error=repr(error))
        await self._close_conn()
        while self.is_leader:
            try:
                conn = await self._connection()
                if await asyncio.wait_for(self._retake(conn), self.check_timeout + 3.0):
                    down = (datetime.now(UTC) - (self.holding_since or datetime.now(UTC))).total_seconds()
                    self.holding_since = None
                    log.info(f"{self.name}_leader_reconnected", epoch=self.epoch, held_seconds=round(down, 3))
                    if self.on_reconnected is not None:
                        self.on_reconnected()
                    beat = asyncio.create_task(self._write_heartbeat())
                    self._background.add(beat)
                    beat.add_done_callback(self._background.discard)
                    return
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self._throttled("hold", f"{self.name}_leader_still_holding", error=repr(exc))
                await self._close_conn()
            if self.is_leader:
                await asyncio.sleep(self.poll_interval)

    async def _renew(self, conn: Any) -> bool:
        epoch, pid = self.epoch, self.backend_pid
        if epoch is None or pid is None:
            raise ConnectionError("no lock connection")
        return await lease.renew(
            conn,
            self.lock_key,
            holder=self.instance_id,
            epoch=epoch,
            backend_pid=pid,
            ttl=self.lease_seconds,
            tables=self.tables,
        )

    async def _retake(self, conn: Any) -> bool:
        st = await lease.read_state(conn, self.lock_key, self.lease_seconds, self.takeover_grace, self.tables)
        if st is None or st.holder != self.instance_id or st.epoch != self.epoch:
            found = "none" if st is None else f"{st.holder} epoch {st.epoch}"
            self._lose(f"deposed while the database was away: the lease is now {found}")
            return False
        if not await conn.fetchval("SELECT pg_try_advisory_lock($1)", self.lock_key):
            if st.lock_pid is not None and st.lock_pid == st.backend_pid:
                # Our own earlier session, still open on the server after a network cut: end it.
                await lease.terminate(conn, st.lock_pid)
            return False
        if not await self._renew(conn):
            self._lose(f"deposed: the lease moved on from epoch {self.epoch}")
            return False
        return True

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
        if self.is_leader:
            info["epoch"] = self.epoch
            if self.holding_since is not None:
                info["leader_holding_since"] = self.holding_since.isoformat()
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
                await conn.execute(self._heartbeat_sql, params)
            self.heartbeats_written += 1
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the database may be down; the next beat tries again
            self.metrics.heartbeat_failures.inc()
            self._throttled("heartbeat", f"{self.name}_heartbeat_failed", error=repr(exc))

    def _throttled(self, key: str, event: str, **kw: Any) -> None:
        now = time.monotonic()
        if now - self._last_log.get(key, -1e9) >= self._log_every:
            self._last_log[key] = now
            log.warning(event, **kw)
