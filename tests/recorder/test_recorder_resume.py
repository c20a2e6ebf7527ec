"""Coverage through every failure: what happens while no recorder writes is repaired by the next leader.

Against the simulator and a real PostgreSQL: a recorder dies (SIGKILL, in a process of its own) or stops cleanly,
markets trade, settle and vanish from the exchange meanwhile, a new recorder starts; every trade of the
simulator's log is stored, settled markets have their final status and result, no gap stays open and the
causes say what happened.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from kalshi_analytics.db.engine import create_engine
from kalshi_analytics.recorder.resume import Resume, previous_writer
from kalshi_analytics.recorder.service import RecorderService
from kalshi_analytics.simulator.server import Simulator, SimulatorConfig, run_simulator
from tests.conftest import wait_until
from tests.fixtures.app import market, ticker, write
from tests.recorder.conftest import fast_config, sim_settings

REPO = Path(__file__).resolve().parents[2]


def _sim() -> SimulatorConfig:
    return SimulatorConfig(seed=21, markets=10, speed=25, port=0, rate_limit=None)


async def _scalar(engine: AsyncEngine, sql: str, **params: object) -> Any:
    async with engine.connect() as c:
        return (await c.execute(text(sql), params)).scalar_one()


async def _rows(engine: AsyncEngine, sql: str, **params: object) -> list[Any]:
    async with engine.connect() as c:
        return list((await c.execute(text(sql), params)).all())


async def _insert_open_gap(engine: AsyncEngine, key: str, start: datetime) -> None:
    """A gap a previous leader opened and never closed (it died while repairing)."""
    async with engine.begin() as c:
        await c.execute(
            text(
                "INSERT INTO feed_gaps (key, detected_at, channel, sid, cause, gap_start, details) "
                "VALUES (:k, :t, 'trade', 1, 'seq_jump', :t, '{}'::jsonb)"
            ),
            {"k": key, "t": start},
        )


def _traded_while_down(sim: Simulator, since_index: int, stored: set[str]) -> list[str]:
    """Tickers that traded since ``since_index`` and are still open, recorded before: the markets to settle."""
    out: list[str] = []
    for t in sim.model.trades_since(since_index):
        m = sim.model.markets.get(t.ticker)
        if m is not None and m.status == "active" and t.ticker in stored and t.ticker not in out:
            out.append(t.ticker)
    return out


@dataclass
class Running:
    service: RecorderService
    task: asyncio.Task[None]
    stop: asyncio.Event

    async def close(self) -> None:
        self.stop.set()
        await asyncio.wait_for(self.task, 30)


async def _start_and_settle_down(
    engine: AsyncEngine, sim: Simulator, tmp: Path, lock_key: int, instance_id: str
) -> Running:
    """A new recorder: wait until it records and its resume is done, everything committed."""
    service = RecorderService(engine, sim_settings(sim), fast_config(tmp, lock_key=lock_key, instance_id=instance_id))
    stop = asyncio.Event()
    running = Running(service, asyncio.create_task(service.run(stop)), stop)
    await asyncio.wait_for(service.ready.wait(), 60)
    assert service.gaps is not None
    assert service.sink is not None
    async with asyncio.timeout(120):
        await service.gaps.wait_idle()
    await service.sink.flush()
    return running


async def test_after_a_sigkill_the_next_leader_stores_every_trade_and_settlement_and_closes_every_gap(
    recorder_db_url: str, tmp_path: Path
) -> None:
    engine = create_engine(recorder_db_url)
    lock_key = fast_config(tmp_path).lock_key
    try:
        async with asyncio.timeout(240), run_simulator(_sim()) as sim:
            child_log = (tmp_path / "child.log").open("wb")
            proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "tests.recorder.recorder_child",
                recorder_db_url,
                sim.base_url,
                sim.ws_url,
                str(lock_key),
                "rec-crash",
                str(tmp_path),
                cwd=REPO,
                stdout=child_log,
                stderr=asyncio.subprocess.STDOUT,
            )
            try:
                await wait_until(
                    lambda: (tmp_path / "ready").exists() or proc.returncode is not None,
                    "the first recorder to record",
                    seconds=60,
                )
                assert proc.returncode is None, (tmp_path / "child.log").read_text()[-2000:]
                first = sim.model.trades_offset + len(sim.model.trades)

                async def child_stored_trades() -> bool:
                    return await _scalar(engine, "SELECT count(*) FROM trades") >= 10

                await wait_until(child_stored_trades, "the first recorder to store trades", seconds=60)
            finally:
                os.kill(proc.pid, signal.SIGKILL)  # no finally, no flush, no clean heartbeat: a crash
                await asyncio.wait_for(proc.wait(), 30)
                child_log.close()

            down_from = sim.model.trades_offset + len(sim.model.trades)
            stored_markets = {r[0] for r in await _rows(engine, "SELECT ticker FROM markets")}
            await wait_until(
                lambda: (
                    len(_traded_while_down(sim, down_from, stored_markets)) >= 3
                    and len(list(sim.model.trades_since(down_from))) >= 30
                ),
                "30 trades, in three recorded markets at least, while nothing records",
                seconds=90,
            )
            won, lost, gone = _traded_while_down(sim, down_from, stored_markets)[:3]
            sim.settle(won, "yes", finalize=True)
            sim.settle(lost, "no", finalize=True)
            sim.settle(gone, "yes", finalize=True)
            del sim.model.markets[gone]  # out of every listing; GET /markets/{gone} answers 404
            sim.pause()
            trades_while_down = list(sim.model.trades_since(down_from))
            gone_status = await _scalar(engine, "SELECT status FROM markets WHERE ticker = :t", t=gone)
            now = datetime.now(UTC)
            await _insert_open_gap(engine, "left-open-recent", now - timedelta(minutes=1))
            await _insert_open_gap(engine, "left-open-ancient", now - timedelta(days=2))

            second = await _start_and_settle_down(engine, sim, tmp_path, lock_key, "rec-new")
            try:
                stored = {r[0] for r in await _rows(engine, "SELECT trade_id FROM trades")}
                markets = {
                    r[0]: r[1:]
                    for r in await _rows(
                        engine, "SELECT ticker, status, result, raw #>> '{_recorder,reason}' FROM markets"
                    )
                }
                gaps = {
                    r[0]: r[1:]
                    for r in await _rows(
                        engine,
                        "SELECT key, cause, market_ticker, repaired_at IS NOT NULL, unrepairable_reason, details "
                        "FROM feed_gaps",
                    )
                }
            finally:
                await second.close()
    finally:
        await engine.dispose()

    expected = list(sim.model.trades_since(first))
    assert len(trades_while_down) > 20, "trades happened while nothing recorded"
    missing = [t.trade_id for t in expected if t.trade_id not in stored]
    assert missing == [], f"{len(missing)} of {len(expected)} trades missing ({len(trades_while_down)} while down)"
    assert markets[won][:2] == ("finalized", "yes")
    assert markets[lost][:2] == ("finalized", "no")
    # The vanished market keeps its last known status and says why it is not final.
    assert gone_status == "active"
    assert markets[gone][0] == "closed", "a market the exchange forgot while open is closed, without a result"
    assert markets[gone][1] is None
    assert "404" in (markets[gone][2] or "")
    open_gaps = [k for k, (_, _, repaired, reason, _) in gaps.items() if not repaired and reason is None]
    assert open_gaps == [], "no gap stays open"
    resume = [g for g in gaps.values() if g[1] is None and g[0] == "crash"]
    assert len(resume) == 1, gaps
    assert resume[0][2], "the crash gap is repaired"
    assert resume[0][4]["previous_instance"] == "rec-crash"
    assert gaps["left-open-recent"][2], "a gap the dead leader left open is repaired by the next one"
    assert "older than the repair horizon" in gaps["left-open-ancient"][3]
    per_market = [g for g in gaps.values() if g[1] == gone]
    assert len(per_market) == 1
    assert per_market[0][0] == "crash"
    assert "404" in per_market[0][3]


async def test_after_a_clean_stop_the_next_leader_records_the_markets_that_settled_meanwhile(
    recorder_db_url: str, tmp_path: Path
) -> None:
    engine = create_engine(recorder_db_url)
    lock_key = fast_config(tmp_path).lock_key
    try:
        async with asyncio.timeout(240), run_simulator(_sim()) as sim:
            first_run = await _start_and_settle_down(engine, sim, tmp_path, lock_key, "rec-first")
            first = sim.model.trades_offset + len(sim.model.trades)

            async def stored_trades() -> bool:
                return await _scalar(engine, "SELECT count(*) FROM trades") >= 10

            await wait_until(stored_trades, "the first recorder to store trades", seconds=60)
            await first_run.close()

            down_from = sim.model.trades_offset + len(sim.model.trades)
            stored_markets = {r[0] for r in await _rows(engine, "SELECT ticker FROM markets")}
            await wait_until(
                lambda: len(_traded_while_down(sim, down_from, stored_markets)) >= 2,
                "two recorded markets to trade while nothing records",
                seconds=60,
            )
            finalized, determined = _traded_while_down(sim, down_from, stored_markets)[:2]
            sim.settle(finalized, "no", finalize=True)
            sim.settle(determined, "yes")  # closed and determined; finalized only after its timer
            sim.pause()

            second = await _start_and_settle_down(engine, sim, tmp_path, lock_key, "rec-second")
            try:
                stored = {r[0] for r in await _rows(engine, "SELECT trade_id FROM trades")}
                markets = {r[0]: r[1:] for r in await _rows(engine, "SELECT ticker, status, result FROM markets")}
                gaps = await _rows(
                    engine,
                    "SELECT cause, repaired_at IS NOT NULL, unrepairable_reason, details FROM feed_gaps "
                    "WHERE market_ticker IS NULL AND channel = 'all'",
                )
                assert second.service.poller is not None
                followed = determined in second.service.poller.tracked
            finally:
                await second.close()
    finally:
        await engine.dispose()

    missing = [t.trade_id for t in sim.model.trades_since(first) if t.trade_id not in stored]
    assert missing == []
    assert markets[finalized] == ("finalized", "no")
    assert markets[determined] == (sim.model.markets[determined].status, "yes")
    assert followed, "a closed market not yet final is polled until it is"
    causes = sorted(c for c, _, _, _ in gaps)
    assert causes == ["failover"], gaps  # the first start had nothing to repair: no startup gap at all
    assert all(repaired for _, repaired, _, _ in gaps)
    assert gaps[0][3]["previous_instance"] == "rec-first"


async def test_the_cause_says_who_wrote_before(recorder_db_url: str) -> None:
    engine = create_engine(recorder_db_url)
    now = datetime.now(UTC)

    async def beat(instance: str, role: str, at: datetime) -> None:
        async with engine.begin() as c:
            await c.execute(
                text(
                    "INSERT INTO recorder_heartbeats (instance_id, role, hostname, pid, started_at, heartbeat_at) "
                    "VALUES (:i, :r, 'h', 1, :t, :t) ON CONFLICT (instance_id) DO UPDATE SET role = :r, "
                    "heartbeat_at = :t"
                ),
                {"i": instance, "r": role, "t": at},
            )

    async def cause(me: str = "me", led_before: bool = False) -> tuple[str, str | None]:
        async with engine.connect() as c:
            p = await previous_writer(c, me, led_before)
        return p.cause, p.instance_id

    try:
        assert await cause() == ("startup", None)
        await beat("me", "leader", now)
        assert await cause() == ("startup", None), "this instance's own row says nothing about the past"
        assert await cause(led_before=True) == ("outage", "me")
        await beat("old", "stopped", now - timedelta(minutes=5))
        assert await cause() == ("failover", "old")
        await beat("dead", "leader", now - timedelta(minutes=1))
        assert await cause() == ("crash", "dead")
        await beat("standby", "standby", now)
        assert await cause() == ("crash", "dead"), "a standby never wrote"
        await beat("later", "stopped", now)
        assert await cause() == ("failover", "later"), "a clean stop after the crash was repaired by then"
        await beat("frozen", "deposed", now + timedelta(seconds=1))
        assert await cause() == ("crash", "frozen"), "a leader the lease deposed never stopped cleanly"
    finally:
        await engine.dispose()


async def test_a_first_start_repairs_nothing_though_its_first_poll_stored_markets(recorder_db_url: str) -> None:
    engine = create_engine(recorder_db_url)
    try:
        t = ticker("KXFIRST")
        await write(engine, market(t))  # what the first poll stores before the resume plans
        poller = SimpleNamespace(tickers=[t])
        plan = await Resume(engine, None, poller, None).plan("me", led_before=False)  # type: ignore[arg-type]
    finally:
        await engine.dispose()
    assert plan is None, "no recorder wrote here before: nothing was missed, no 6-hour read-back"


async def test_a_closed_market_the_exchange_forgets_while_recording_is_flagged_not_left_active(
    recorder_db_url: str, tmp_path: Path
) -> None:
    engine = create_engine(recorder_db_url)
    lock_key = fast_config(tmp_path).lock_key
    try:
        async with asyncio.timeout(120), run_simulator(_sim()) as sim:
            running = await _start_and_settle_down(engine, sim, tmp_path, lock_key, "rec-live")
            try:
                poller = running.service.poller
                assert poller is not None
                ticker = next(
                    m.ticker for m in sim.model.market_list if m.status == "active" and m.ticker in poller.state
                )
                sim.settle(ticker, "no")  # determined: out of the open listing, followed by ticker until final
                await wait_until(
                    lambda: ticker in poller.tracked and poller.status.get(ticker) == "determined",
                    "the poll loop to follow the determined market",
                    seconds=30,
                )
                del sim.model.markets[ticker]  # the exchange forgets it before it is finalized
                await wait_until(lambda: ticker not in poller.tracked, "the poll loop to let it go", seconds=30)
                assert running.service.sink is not None

                async def flagged() -> bool:
                    sql = "SELECT count(*) FROM feed_gaps WHERE market_ticker = :t AND unrepairable_reason IS NOT NULL"
                    return await _scalar(engine, sql, t=ticker) == 1

                await wait_until(flagged, "the vanished market's unrepairable gap", seconds=30)
                row = (
                    await _rows(
                        engine, "SELECT status, raw #>> '{_recorder,reason}' FROM markets WHERE ticker = :t", t=ticker
                    )
                )[0]
                cause = await _scalar(engine, "SELECT cause FROM feed_gaps WHERE market_ticker = :t", t=ticker)
            finally:
                await running.close()
    finally:
        await engine.dispose()
    assert row[0] == "determined", "the last known status is kept"
    assert "404" in row[1]
    assert cause == "other"


async def test_a_hole_longer_than_the_horizon_says_which_part_was_not_read_back(
    recorder_db_url: str, tmp_path: Path
) -> None:
    engine = create_engine(recorder_db_url)
    lock_key = fast_config(tmp_path).lock_key
    try:
        async with asyncio.timeout(180), run_simulator(_sim()) as sim:
            first = await _start_and_settle_down(engine, sim, tmp_path, lock_key, "rec-one")

            async def stored_trades() -> bool:
                return await _scalar(engine, "SELECT count(*) FROM trades") >= 5

            await wait_until(stored_trades, "the first recorder to store trades", seconds=60)
            await first.close()
            stopped = datetime.now(UTC)
            # The hole itself: longer than the next leader's 1 s horizon.
            await wait_until(lambda: datetime.now(UTC) - stopped > timedelta(seconds=3), "3 s without a recorder")

            cfg = fast_config(tmp_path, lock_key=lock_key, instance_id="rec-two", resume_max=timedelta(seconds=1))
            service = RecorderService(engine, sim_settings(sim), cfg)
            stop = asyncio.Event()
            second = Running(service, asyncio.create_task(service.run(stop)), stop)
            try:
                await asyncio.wait_for(service.ready.wait(), 60)
                assert service.gaps is not None
                assert service.sink is not None
                async with asyncio.timeout(60):
                    await service.gaps.wait_idle()
                await service.sink.flush()
                gaps = await _rows(
                    engine,
                    "SELECT gap_start, gap_end, repaired_at IS NOT NULL, unrepairable_reason FROM feed_gaps "
                    "WHERE cause = 'failover' ORDER BY gap_start",
                )
            finally:
                await second.close()
    finally:
        await engine.dispose()
    assert len(gaps) == 2, gaps
    (_, early_end, early_repaired, reason), (start, _, repaired, _) = gaps
    assert not early_repaired
    assert "before the repair horizon" in reason
    assert early_end == start, "the unread part ends where the repaired part begins"
    assert repaired


async def test_a_standby_taking_over_from_a_leader_that_stopped_cleanly_labels_the_gap_failover(
    recorder_db_url: str, tmp_path: Path
) -> None:
    engine = create_engine(recorder_db_url)
    lock_key = fast_config(tmp_path).lock_key
    try:
        async with asyncio.timeout(120), run_simulator(_sim()) as sim:
            leader = await _start_and_settle_down(engine, sim, tmp_path, lock_key, "rec-a")
            cfg = fast_config(tmp_path, lock_key=lock_key, instance_id="rec-b")
            standby_service = RecorderService(engine, sim_settings(sim), cfg)
            stop_b = asyncio.Event()
            standby = Running(standby_service, asyncio.create_task(standby_service.run(stop_b)), stop_b)
            try:

                async def b_stands_by() -> bool:
                    sql = "SELECT count(*) FROM recorder_heartbeats WHERE instance_id = 'rec-b' AND role = 'standby'"
                    return await _scalar(engine, sql) == 1

                await wait_until(b_stands_by, "the standby's heartbeat", seconds=30)
                await leader.close()
                await asyncio.wait_for(standby_service.ready.wait(), 30)
                assert standby_service.gaps is not None
                async with asyncio.timeout(60):
                    await standby_service.gaps.wait_idle()
                assert standby_service.sink is not None
                await standby_service.sink.flush()
                gaps = await _rows(
                    engine,
                    "SELECT cause, repaired_at IS NOT NULL, details ->> 'previous_instance' FROM feed_gaps "
                    "WHERE channel = 'all' AND market_ticker IS NULL",
                )
            finally:
                await standby.close()
    finally:
        await engine.dispose()
    assert gaps == [("failover", True, "rec-a")]
