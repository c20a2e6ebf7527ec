"""What live data does to a session, written through the recorder's own sink so every step is known: a feed gap
makes a market stale (no fill on it until the gap is repaired, and the session says so), and a market that
settles pays its position at its settlement time ($1 or $0 per contract) into the cash the performance shows."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from kalshi_analytics.backtests.data import MarketFilter
from kalshi_analytics.live import service
from kalshi_analytics.live.runner import LiveRunner, missed_journal
from kalshi_analytics.live.schemas import PaperSessionCreate
from kalshi_analytics.recorder.rows import GapOpened, GapRepaired, SnapshotRow
from tests.fixtures.app import market, ticker, write

pytestmark = pytest.mark.timeout(120)
D = Decimal


@pytest.fixture
async def runner(own_db: tuple[str, AsyncEngine]) -> AsyncIterator[tuple[AsyncEngine, LiveRunner]]:
    _url, engine = own_db
    live = LiveRunner(engine, lock_key=random.randrange(1, 2**62), idle_wait=0.05, refresh_seconds=0.1)
    stop = asyncio.Event()
    task = asyncio.create_task(live.run(stop))
    try:
        yield engine, live
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)


def snap(t: str, ts: datetime, bid: str = "0.40", ask: str = "0.42") -> SnapshotRow:
    return SnapshotRow(t, ts, "websocket", ts, yes_bid=D(bid), yes_ask=D(ask), yes_bid_size=D(500), yes_ask_size=D(500))


async def applied(engine: AsyncEngine, sid: Any, ts: datetime) -> None:
    """Wait until the runner has committed the session up to the snapshot at ``ts``."""
    deadline = time.monotonic() + 20
    while True:
        view = await service.get_session(engine, sid)
        if view.processed_until is not None and view.processed_until >= ts:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"the runner did not get to {ts} (at {view.processed_until})")
        await asyncio.sleep(0.05)


async def fills(engine: AsyncEngine, sid: Any) -> list[Any]:
    async with engine.connect() as c:
        return list(
            await c.execute(
                text("SELECT ticker, snapshot_ts, side, action, count, price FROM paper_fills WHERE session_id = :s"),
                {"s": sid},
            )
        )


async def events(engine: AsyncEngine, sid: Any) -> list[Any]:
    async with engine.connect() as c:
        return list(
            await c.execute(
                text(
                    "SELECT kind, ticker, at, until, details FROM paper_session_events WHERE session_id = :s "
                    "ORDER BY id"
                ),
                {"s": sid},
            )
        )


async def test_no_fill_on_a_market_while_its_feed_gap_is_open(runner: tuple[AsyncEngine, LiveRunner]) -> None:
    engine, live = runner
    a, b = ticker("KXGAPA"), ticker("KXGAPB")
    await write(engine, market(a), market(b))
    sid = await service.create_session(
        engine,
        PaperSessionCreate(strategy="test_every_few", params={"every": 1}, market_filter=MarketFilter(tickers=[a, b])),
    )
    t0 = datetime.now(UTC) + timedelta(seconds=1)

    def at(i: int) -> datetime:
        return t0 + timedelta(seconds=i)

    # Before the gap: both markets trade (buy, sell, buy, sell: every snapshot flips the position).
    await write(engine, *(snap(t, at(i)) for i in range(4) for t in (a, b)))
    await applied(engine, sid, at(3))
    assert {f.ticker for f in await fills(engine, sid)} == {a, b}

    # A gap opens on market a: its snapshots still arrive (the strategy sees them, stale), nothing of a fills.
    await write(engine, GapOpened("gap-a", at(4), "ticker", 1, a, "seq_jump", 10, 12, at(4)))
    await write(engine, *(snap(t, at(i)) for i in range(5, 9) for t in (a, b)))
    await applied(engine, sid, at(8))
    during = [f for f in await fills(engine, sid) if at(4) <= f.snapshot_ts <= at(8)]
    assert during, "market b should have traded on"
    assert {f.ticker for f in during} == {b}
    view = await service.get_session(engine, sid)
    assert view.skipped.get("stale") == 4  # one intent per snapshot of a
    assert live.metrics.value("kalshi_live_stale_markets") == 1  # what an operator sees meanwhile

    # Repaired: a trades again.
    await write(engine, GapRepaired("gap-a", at(9), at(9), "get_snapshot"))
    await write(engine, *(snap(t, at(i)) for i in range(10, 12) for t in (a, b)))
    await applied(engine, sid, at(11))
    after = [f for f in await fills(engine, sid) if f.snapshot_ts >= at(10)]
    assert {f.ticker for f in after} == {a, b}

    kinds = [(e.kind, e.ticker) for e in await events(engine, sid)]
    assert ("stale", a) in kinds
    assert ("repaired", a) in kinds
    stale = next(e for e in await events(engine, sid) if e.kind == "stale")
    assert stale.at == at(4)
    assert "no order fills" in stale.details["note"]
    assert live.sessions  # still running it
    assert live.metrics.value("kalshi_live_stale_markets") == 0
    assert live.metrics.value("kalshi_live_fills_total") == len(await fills(engine, sid))
    assert live.metrics.value("kalshi_live_leader") == 1


async def test_a_market_settling_pays_its_position_at_its_settlement_time(
    runner: tuple[AsyncEngine, LiveRunner],
) -> None:
    engine, _live = runner
    a, b = ticker("KXSETA"), ticker("KXSETB")
    await write(engine, market(a), market(b))
    sid = await service.create_session(
        engine,
        PaperSessionCreate(
            strategy="test_every_few",
            params={"every": 1, "size": "10"},
            market_filter=MarketFilter(tickers=[a, b]),
            initial_capital=D(1000),
        ),
    )
    t0 = datetime.now(UTC) + timedelta(seconds=1)
    # Three snapshots of a: buy 10 at 0.42, sell at 0.40, buy 10 at 0.42 — it ends holding 10 YES.
    await write(engine, *(snap(a, t0 + timedelta(seconds=i)) for i in range(3)))
    last = t0 + timedelta(seconds=2)
    await applied(engine, sid, last)
    held = await service.get_positions(engine, sid)
    assert [(p.ticker, p.side, p.contracts) for p in held] == [(a, "yes", D(10))]
    cash_before = (await service.get_session(engine, sid)).cash

    settled_at = t0 + timedelta(seconds=5)
    await write(engine, market(a, status="finalized", result="yes", settled_at=settled_at))
    # Data time goes on elsewhere (market b), past the settlement.
    await write(engine, snap(b, t0 + timedelta(seconds=6)))
    await applied(engine, sid, t0 + timedelta(seconds=6))

    view = await service.get_session(engine, sid)
    # Market b's snapshot was a buy of its own (10 at 0.42): the rest of the cash move is a's payout.
    async with engine.connect() as c:
        b_cost = (
            await c.execute(
                text("SELECT sum(count * price + fee) FROM paper_fills WHERE session_id = :s AND ticker = :t"),
                {"s": sid, "t": b},
            )
        ).scalar_one()
    assert view.cash == cash_before + D(10) - b_cost  # $1 per YES contract of a, no fee on settlement
    assert [(p.ticker, p.contracts) for p in await service.get_positions(engine, sid)] == [(b, D(10))]
    settled = [e for e in await events(engine, sid) if e.kind == "settled"]
    assert [(e.ticker, e.at, e.details["yes_payout"]) for e in settled] == [(a, settled_at, "1")]
    perf = await service.session_performance(engine, view)
    # Realised on a: bought 0.42, sold 0.40, bought 0.42 and paid out 1.00, less a's fees.
    async with engine.connect() as c:
        a_fees = (
            await c.execute(
                text("SELECT sum(fee) FROM paper_fills WHERE session_id = :s AND ticker = :t"), {"s": sid, "t": a}
            )
        ).scalar_one()
    assert perf.realized_pnl == D(10) * (D("0.40") - D("0.42")) + D(10) * (D(1) - D("0.42")) - a_fees
    # Unrealised on b: marked at its bid (0.40) against what it cost.
    assert perf.unrealized_pnl == D(10) * D("0.40") - b_cost
    assert perf.total_pnl == perf.realized_pnl + perf.unrealized_pnl


def test_missed_journal() -> None:
    assert not missed_journal(10, 10, None)  # nothing handed out after the cursor
    assert not missed_journal(10, 15, 11)  # the next event is still kept
    assert not missed_journal(10, 15, 5)
    assert missed_journal(10, 15, 12)  # event 11 was pruned
    assert missed_journal(10, 15, None)  # everything was pruned


async def test_events_pruned_before_the_runner_read_them_are_a_downtime_not_a_silent_skip(
    own_db: tuple[str, AsyncEngine],
) -> None:
    _url, engine = own_db
    a = ticker("KXPRUNE")
    await write(engine, market(a))
    sid = await service.create_session(
        engine,
        PaperSessionCreate(strategy="test_every_few", params={"every": 1}, market_filter=MarketFilter(tickers=[a])),
    )
    t0 = datetime.now(UTC) + timedelta(seconds=1)
    await write(engine, *(snap(a, t0 + timedelta(seconds=i)) for i in range(5)))
    async with engine.begin() as c:  # the journal kept minutes, and no runner ran meanwhile: all pruned
        await c.execute(text("DELETE FROM stream_batches"))
    live = LiveRunner(engine, lock_key=random.randrange(1, 2**62), idle_wait=0.05, refresh_seconds=0.1)
    stop = asyncio.Event()
    task = asyncio.create_task(live.run(stop))
    try:
        deadline = time.monotonic() + 20
        while not [e for e in await events(engine, sid) if e.kind == "downtime"]:
            assert time.monotonic() < deadline, "no downtime recorded"
            await asyncio.sleep(0.05)
        assert await fills(engine, sid) == []  # nothing traded on what it never saw live
        # The views were rebuilt from the tables: the strategy goes on from the sixth snapshot (a buy: flat).
        await write(engine, snap(a, t0 + timedelta(seconds=6)))
        await applied(engine, sid, t0 + timedelta(seconds=6))
        assert [(f.action, f.snapshot_ts) for f in await fills(engine, sid)] == [("buy", t0 + timedelta(seconds=6))]
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)
    (down,) = [e for e in await events(engine, sid) if e.kind == "downtime"]
    assert down.details["snapshots_rebuilt"] == 5


async def test_a_strategy_that_raises_fails_its_session_and_nothing_else(
    runner: tuple[AsyncEngine, LiveRunner],
) -> None:
    engine, live = runner
    a = ticker("KXBOOM")
    await write(engine, market(a))
    bad = await service.create_session(
        engine, PaperSessionCreate(strategy="test_explodes", market_filter=MarketFilter(tickers=[a]))
    )
    good = await service.create_session(
        engine,
        PaperSessionCreate(strategy="test_every_few", params={"every": 1}, market_filter=MarketFilter(tickers=[a])),
    )
    t0 = datetime.now(UTC) + timedelta(seconds=1)
    await write(engine, *(snap(a, t0 + timedelta(seconds=i)) for i in range(5)))
    await applied(engine, good, t0 + timedelta(seconds=4))
    deadline = time.monotonic() + 20
    while (view := await service.get_session(engine, bad)).status != "failed":
        assert time.monotonic() < deadline, "the session did not fail"
        await asyncio.sleep(0.05)
    assert view.stop_reason == "ZeroDivisionError: the strategy divided by zero"
    assert [f.action for f in await fills(engine, bad)] == ["buy"]  # what it did before the error stays
    failed = [e for e in await events(engine, bad) if e.kind == "failed"]
    assert failed[0].details["error"] == view.stop_reason
    assert len(await fills(engine, good)) == 5  # the other session, on the same market, traded every snapshot
    assert live.metrics.value("kalshi_live_step_failures_total") == 0  # handled per session, not as a failed step
    assert bad not in live.sessions
