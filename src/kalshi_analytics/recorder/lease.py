"""The recorder lease in SQL: who leads, until when by the database's clock, under which epoch.

The advisory lock alone cannot depose a leader that is frozen or cut off while its lock connection stays open:
PostgreSQL keeps the lock as long as the session lives. So the leader renews ``lease_until = now() + ttl`` every few
seconds on its lock connection, and a standby that sees the deadline pass ends the holder's session
(``pg_terminate_backend``, which releases the lock), takes the lock and bumps the epoch. Every batch the leader
writes first locks the lease row ``FOR KEY SHARE`` with its epoch; the takeover locks it ``FOR UPDATE``, which
waits for (or, after the holder's write sessions are ended, follows) those batches — so a batch commits wholly
before a takeover or is refused after it, never in between. Renewals change no key, so they never wait for a
batch.

All functions take a raw asyncpg connection, and the :class:`LeaseTables` of the component that leads (the recorder's
by default; the live runner has its own, so that taking one lease never ends the other's writers).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class LeaseTables:
    """Where one component's lease and heartbeats live (our own identifiers, never user text)."""

    lease: str = "recorder_lease"
    heartbeats: str = "recorder_heartbeats"

    def sql(self, statement: str) -> str:
        return statement.replace("recorder_lease", self.lease).replace("recorder_heartbeats", self.heartbeats)


RECORDER = LeaseTables()
LIVE_RUNNER = LeaseTables("live_runner_lease", "live_runner_heartbeats")


def lock_tag(key: int) -> tuple[int, int]:
    """How ``pg_locks`` shows a bigint advisory key: (classid, objid) = (high, low) 32 bits."""
    unsigned = key & 0xFFFFFFFFFFFFFFFF
    return unsigned >> 32, unsigned & 0xFFFFFFFF


@dataclass(frozen=True)
class LeaseState:
    """The lease row as a standby (or a reconnecting leader) sees it, all judged by the database's clock."""

    holder: str
    epoch: int
    backend_pid: int | None
    expired: bool
    # The server restarted while the holder's lease still ran (not after it released it on a clean stop) and the
    # holder has not had a lease period since to come back: it may be reconnecting with rows it held through the
    # outage, so it keeps its turn.
    restart_grace: bool
    lock_pid: int | None  # the backend holding the advisory lock now, if any
    # Not renewed for the takeover grace: with the lock free too, the holder is gone (a live holder whose
    # connection blipped re-takes its lease well within the grace).
    stale: bool


# Locks are per database, but pg_locks shows the whole server (other databases may use the same key).
THIS_DATABASE = "(SELECT oid FROM pg_database WHERE datname = current_database())"

_STATE_SQL = """
SELECT l.holder, l.epoch, l.backend_pid, l.lease_until < now() AS expired,
       l.lease_until <= now() OR l.renewed_at < now() - make_interval(secs => $5::float8) AS stale,
       pg_postmaster_start_time() > l.renewed_at AND l.lease_until > pg_postmaster_start_time()
         AND now() < pg_postmaster_start_time() + make_interval(secs => $2::float8) AS restart_grace,
       (SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND database = {THIS_DATABASE}
          AND classid = $3::bigint::oid AND objid = $4::bigint::oid AND objsubid = 1 AND granted LIMIT 1) AS lock_pid
FROM recorder_lease l WHERE l.lock_key = $1
""".replace("{THIS_DATABASE}", THIS_DATABASE)


async def read_state(
    conn: Any, key: int, ttl: float, grace: float, tables: LeaseTables = RECORDER
) -> LeaseState | None:
    classid, objid = lock_tag(key)
    row = await conn.fetchrow(tables.sql(_STATE_SQL), key, ttl, classid, objid, grace)
    if row is None:
        return None
    return LeaseState(
        holder=row["holder"],
        epoch=row["epoch"],
        backend_pid=row["backend_pid"],
        expired=row["expired"],
        restart_grace=bool(row["restart_grace"]),
        lock_pid=row["lock_pid"],
        stale=row["stale"],
    )


async def terminate(conn: Any, pid: int) -> bool:
    """End a backend (the old holder's lock session); its advisory lock goes with it."""
    return bool(await conn.fetchval("SELECT pg_terminate_backend($1)", pid))


_END_WRITERS_SQL = """
SELECT count(pg_terminate_backend(pid)) FROM pg_locks
WHERE locktype = 'relation' AND database = {THIS_DATABASE} AND relation = 'recorder_lease'::regclass
  AND mode = 'RowShareLock' AND granted AND pid <> pg_backend_pid()
""".replace("{THIS_DATABASE}", THIS_DATABASE)


async def take(
    conn: Any,
    key: int,
    *,
    holder: str,
    backend_pid: int,
    ttl: float,
    lock_timeout: float = 5.0,
    tables: LeaseTables = RECORDER,
) -> int:
    """Start a new epoch for ``holder`` (who holds the advisory lock) and return it.

    Batches of the previous holder that are still open (a frozen leader mid-transaction) hold the row ``FOR KEY
    SHARE``; their sessions are ended first, so the ``FOR UPDATE`` below does not wait on a process that may never
    run again.
    """
    await conn.fetchval(tables.sql(_END_WRITERS_SQL))
    async with conn.transaction():
        await conn.execute(f"SET LOCAL lock_timeout = {int(lock_timeout * 1000)}")
        await conn.execute(tables.sql("SELECT 1 FROM recorder_lease WHERE lock_key = $1 FOR UPDATE"), key)
        epoch: int = await conn.fetchval(
            tables.sql(
                "INSERT INTO recorder_lease AS l (lock_key, epoch, holder, backend_pid, acquired_at, renewed_at, "
                "lease_until) VALUES ($1, 1, $2, $3, now(), now(), now() + make_interval(secs => $4::float8)) "
                "ON CONFLICT (lock_key) DO UPDATE SET epoch = l.epoch + 1, holder = EXCLUDED.holder, "
                "backend_pid = EXCLUDED.backend_pid, acquired_at = now(), renewed_at = now(), "
                "lease_until = EXCLUDED.lease_until RETURNING epoch"
            ),
            key,
            holder,
            backend_pid,
            ttl,
        )
        return epoch


async def renew(
    conn: Any, key: int, *, holder: str, epoch: int, backend_pid: int, ttl: float, tables: LeaseTables = RECORDER
) -> bool:
    """Push the deadline out; False when the lease is no longer ours (deposed)."""
    renewed = await conn.fetchval(
        tables.sql(
            "UPDATE recorder_lease SET renewed_at = now(), lease_until = now() + make_interval(secs => $5::float8), "
            "backend_pid = $4 WHERE lock_key = $1 AND holder = $2 AND epoch = $3 RETURNING true"
        ),
        key,
        holder,
        epoch,
        backend_pid,
        ttl,
    )
    return bool(renewed)


async def release(conn: Any, key: int, *, holder: str, epoch: int, tables: LeaseTables = RECORDER) -> None:
    """A leader stopping cleanly ends its lease now, so a standby need not wait out the grace."""
    await conn.execute(
        tables.sql("UPDATE recorder_lease SET lease_until = now() WHERE lock_key = $1 AND holder = $2 AND epoch = $3"),
        key,
        holder,
        epoch,
    )


async def holds(conn: Any, key: int, holder: str, epoch: int, tables: LeaseTables = RECORDER) -> bool:
    """The fence, run inside a batch's transaction: whether ``holder`` still leads under ``epoch``. The row lock
    it takes lasts until that transaction ends, so no takeover slips in between this check and the commit."""
    ok = await conn.fetchval(
        tables.sql("SELECT holder = $2 AND epoch = $3 FROM recorder_lease WHERE lock_key = $1 FOR KEY SHARE"),
        key,
        holder,
        epoch,
    )
    return bool(ok)


async def mark_deposed(conn: Any, holder: str, tables: LeaseTables = RECORDER) -> int:
    """The new leader's word on the heartbeats: any other row still claiming ``leader`` is not one any more."""
    status: str = await conn.execute(
        tables.sql(
            "UPDATE recorder_heartbeats SET role = 'deposed', leader_since = NULL "
            "WHERE role = 'leader' AND instance_id <> $1"
        ),
        holder,
    )
    return int(status.rsplit(maxsplit=1)[-1])
