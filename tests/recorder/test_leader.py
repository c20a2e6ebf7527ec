"""Leader election on a real PostgreSQL: one leader, fast failover, fencing, heartbeats."""

from __future__ import annotations

import asyncio
import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from kalshi_analytics.recorder.leader import LeaderElection, LeadershipLost, latest_leader_heartbeat
from kalshi_analytics.recorder.rows import SnapshotRow
from kalshi_analytics.recorder.sink import Sink, SinkClosedError
from tests.conftest import wait_until


def _key() -> int:
    return random.randrange(1, 2**62)  # a lock of this test's own: the session database is shared


def _election(engine: AsyncEngine, key: int, name: str) -> LeaderElection:
    return LeaderElection(
        engine,
        lock_key=key,
        instance_id=f"{name}-{key}",
        poll_interval=0.2,
        check_interval=0.2,
        heartbeat_interval=0.2,
        info=lambda: {"rows": 7},
    )


async def _terminate(engine: AsyncEngine, pid: int) -> None:
    async with engine.connect() as c:
        assert (await c.execute(text("SELECT pg_terminate_backend(:p)"), {"p": pid})).scalar_one()


async def test_one_leader_that_survives_a_connection_blip_and_the_standby_takes_over_when_it_dies(
    engine: AsyncEngine,
) -> None:
    key = _key()
    async with _election(engine, key, "a") as a, _election(engine, key, "b") as b:
        await asyncio.wait_for(a.wait_until_leader(), 5)
        standby = asyncio.create_task(b.wait_until_leader())
        await asyncio.sleep(1.0)
        assert a.is_leader
        assert not b.is_leader
        assert not standby.done(), "never two leaders"
        assert a.metrics.value("kalshi_recorder_leader") == 1
        epoch = a.epoch

        body_outcome: list[str] = []
        working = asyncio.Event()

        async def leader_work() -> None:
            try:
                async with a.leadership():
                    working.set()
                    await asyncio.sleep(60)  # work that outlasts the test unless leadership is lost
                body_outcome.append("finished")
            except LeadershipLost:
                body_outcome.append("lost")

        work = asyncio.create_task(leader_work())
        await asyncio.wait_for(working.wait(), 5)

        # The lock connection dies under a live leader (a network blip): it re-takes its lease, same epoch.
        assert a.backend_pid is not None
        await _terminate(engine, a.backend_pid)
        outages = "kalshi_recorder_lease_outages_total"
        await wait_until(lambda: a.metrics.value(outages) == 1 and not a.holding, "the leader to re-take its lease")
        assert a.is_leader
        assert a.epoch == epoch
        assert not standby.done(), "the standby waits for a leader whose connection blipped"
        assert not work.done()

        # Now the leader dies: nothing of it runs any more, and its session ends with it.
        for task in (a._monitor, a._heartbeat):
            assert task is not None
            task.cancel()
        assert a.backend_pid is not None
        killed_at = asyncio.get_running_loop().time()
        await _terminate(engine, a.backend_pid)

        await asyncio.wait_for(standby, 10)
        took = asyncio.get_running_loop().time() - killed_at
        assert b.is_leader
        assert b.epoch == (epoch or 0) + 1
        assert took < 10
        # Were it still running, its next batch would find the new epoch, and its work would be cancelled.
        async with engine.connect() as c:
            with pytest.raises(LeadershipLost):
                await a.fence((await c.get_raw_connection()).driver_connection)
        await asyncio.wait_for(work, 5)
        assert body_outcome == ["lost"], "the deposed leader's work is cancelled"
        assert not a.is_leader
        assert a.metrics.value("kalshi_recorder_leader") == 0
        a._heartbeat = asyncio.create_task(a._heartbeat_loop())  # back as a standby

        # The old leader now waits as a standby; it does not get the lock back while b holds it.
        back = asyncio.create_task(a.wait_until_leader())
        await asyncio.sleep(0.6)
        assert not back.done()
        back.cancel()
        with pytest.raises(asyncio.CancelledError):
            await back

        async def heartbeat_roles() -> dict[str, str]:
            async with engine.connect() as c:
                return dict(
                    (
                        await c.execute(
                            text("SELECT instance_id, role FROM recorder_heartbeats WHERE instance_id IN (:a, :b)"),
                            {"a": a.instance_id, "b": b.instance_id},
                        )
                    ).all()
                )

        async def both_heartbeat() -> bool:
            return await heartbeat_roles() == {a.instance_id: "standby", b.instance_id: "leader"}

        await wait_until(both_heartbeat, "both to heartbeat their new roles")
        async with engine.connect() as c:
            latest = await latest_leader_heartbeat(c)
            info = (
                await c.execute(
                    text("SELECT info FROM recorder_heartbeats WHERE instance_id = :b"), {"b": b.instance_id}
                )
            ).scalar_one()
        assert latest is not None
        assert latest[0] == b.instance_id
        assert datetime.now(UTC) - latest[1] < timedelta(seconds=5)
        assert info == {"rows": 7, "epoch": b.epoch}, "the info of the service, and the epoch it leads under"

    async with engine.connect() as c:
        roles = {
            r[0]
            for r in await c.execute(
                text("SELECT role FROM recorder_heartbeats WHERE instance_id IN (:a, :b)"),
                {"a": a.instance_id, "b": b.instance_id},
            )
        }
    assert roles == {"stopped"}


async def test_leader_releases_the_lock_on_close(engine: AsyncEngine) -> None:
    key = _key()
    async with _election(engine, key, "b") as b:
        async with _election(engine, key, "a") as a:
            await asyncio.wait_for(a.wait_until_leader(), 5)
        await asyncio.wait_for(b.wait_until_leader(), 3)  # well under the failover of a dead leader
        assert b.is_leader


async def test_fence_stops_a_deposed_leaders_sink_before_it_commits(engine: AsyncEngine) -> None:
    key = _key()
    t0 = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
    ticker = f"KXFENCE-{key}"
    async with _election(engine, key, "a") as a:
        a.check_interval = 60  # the monitor would notice late: the fence must catch it
        await a.wait_until_leader()
        sink = Sink(engine, batch_max_seconds=0.01, fence=a.fence)
        sink.start()
        await sink.put(SnapshotRow(ticker, t0, "poll", t0, last_price=Decimal("0.5")))
        await sink.flush()
        assert sink.stats.new["market_snapshots"] == 1

        assert a.backend_pid is not None
        await _terminate(engine, a.backend_pid)
        # Another instance takes the lock before `a` notices anything.
        async with _election(engine, key, "b") as b:
            await asyncio.wait_for(b.wait_until_leader(), 5)
            await sink.put(SnapshotRow(ticker, t0 + timedelta(seconds=1), "poll", t0, last_price=Decimal("0.5")))
            with pytest.raises(SinkClosedError) as err:
                await sink.flush()
            assert isinstance(err.value.__cause__, LeadershipLost)
            assert not a.is_leader
        await sink.close()
    async with engine.connect() as c:
        n = (
            await c.execute(text("SELECT count(*) FROM market_snapshots WHERE ticker = :t"), {"t": ticker})
        ).scalar_one()
    assert n == 1, "nothing committed without the lock"


async def test_heartbeats_are_tolerant_of_an_unreachable_database() -> None:
    from kalshi_analytics.db.engine import create_engine

    dead = create_engine("postgresql://nobody@127.0.0.1:1/none", pool_size=1)
    try:
        e = LeaderElection(dead, lock_key=_key(), heartbeat_interval=0.05, connect_timeout=0.5, poll_interval=0.05)
        async with e:
            failures = "kalshi_recorder_heartbeat_failures_total"
            await wait_until(lambda: e.metrics.value(failures) >= 2, "two failed heartbeats")
            waiting = asyncio.create_task(e.wait_until_leader())
            await asyncio.sleep(0.3)  # a while without a database: it must not have become leader
            assert not waiting.done()
            waiting.cancel()
            with pytest.raises(asyncio.CancelledError):
                await waiting
        assert e.heartbeats_written == 0
        assert e.metrics.value(failures) >= 2
    finally:
        await dead.dispose()


async def test_a_takeover_ends_a_frozen_leaders_open_batch_and_refuses_its_late_ones(engine: AsyncEngine) -> None:
    import asyncpg

    from kalshi_analytics.db.engine import libpq_url

    key = _key()
    # `a` never renews (its monitor sleeps for an hour): as if frozen right after it took a 1 s lease.
    a = LeaderElection(
        engine, lock_key=key, instance_id=f"a-{key}", lease_seconds=1.0, check_interval=3600, heartbeat_interval=3600
    )
    dsn = libpq_url(engine.url)
    async with a:
        await asyncio.wait_for(a.wait_until_leader(), 5)
        old_epoch = a.epoch
        # One of its batches passed the fence and froze before committing: it holds the lease row.
        batch = await asyncpg.connect(dsn)
        try:
            tx = batch.transaction()
            await tx.start()
            await a.fence(batch)
            async with _election(engine, key, "b") as b:
                started = asyncio.get_running_loop().time()
                await asyncio.wait_for(b.wait_until_leader(), 10)
                took = asyncio.get_running_loop().time() - started
                assert b.epoch == (old_epoch or 0) + 1
                assert took < 5, "the expired lease is taken over without waiting for the frozen batch"
                assert b.metrics.value("kalshi_recorder_takeovers_total") == 1
                # Its session was ended: the frozen batch never commits. How asyncpg says so depends on when the
                # termination notice reaches it (mid-protocol it is an InternalClientError).
                ended = (
                    asyncpg.PostgresError,
                    asyncpg.InterfaceError,
                    asyncpg.exceptions.InternalClientError,
                    ConnectionError,
                    OSError,
                )
                with pytest.raises(ended):
                    await tx.commit()

                # A batch `a` starts after waking is refused by the epoch, and `a` knows it is no leader.
                late = await asyncpg.connect(dsn)
                try:
                    async with late.transaction():
                        with pytest.raises(LeadershipLost):
                            await a.fence(late)
                finally:
                    await late.close()
                assert not a.is_leader
                assert b.is_leader
        finally:
            batch.terminate()
