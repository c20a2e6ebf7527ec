"""The notebook module reads times in the project's one grammar."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from kalshi_analytics import research
from kalshi_analytics.errors import NoDataError
from kalshi_analytics.recorder.rows import SnapshotRow
from kalshi_analytics.times import TimeParseError
from tests.fixtures.app import market, ticker, write


async def test_load_snapshots_takes_relative_times(database_url: str, engine: AsyncEngine) -> None:
    t = ticker("KXRES")
    hour_ago = datetime.now(UTC) - timedelta(hours=1)
    row = SnapshotRow(t, hour_ago, "poll", hour_ago, yes_bid=Decimal("0.40"), yes_ask=Decimal("0.44"))
    await write(engine, market(t), row)

    frame = await asyncio.to_thread(research.load_snapshots, "-1d", "now", tickers=[t], url=database_url)
    assert list(frame["ticker"]) == [t]
    assert frame["mid"].iloc[0] == pytest.approx(0.42)
    older = await asyncio.to_thread(research.load_snapshots, "-1w", "-2h", tickers=[t], url=database_url)
    assert older.empty

    with pytest.raises(TimeParseError, match="cannot read time 'yesterday'"):
        research.load_snapshots("yesterday", "now", tickers=[t], url=database_url)


async def stored_runs(engine: AsyncEngine) -> int:
    async with engine.connect() as c:
        return int((await c.execute(text("SELECT count(*) FROM backtest_results"))).scalar_one())


async def test_run_backtest_on_no_data_raises_no_data_and_stores_nothing_unless_kept(
    database_url: str, engine: AsyncEngine
) -> None:
    t = ticker("KXRESBT")
    ts = datetime(2026, 1, 5, 12, tzinfo=UTC)
    await write(engine, market(t), SnapshotRow(t, ts, "poll", ts, yes_bid=Decimal("0.40"), yes_ask=Decimal("0.44")))
    before = await stored_runs(engine)
    window = ("2026-01-01", "2026-02-01")

    def run(**kw: object) -> research.ResearchResult:
        return research.run_backtest("buy_and_hold", {}, *window, url=database_url, **kw)  # type: ignore[arg-type]

    # The service's own answers, word for word: the CLI and the API give the same.
    with pytest.raises(NoDataError, match=r"^no recorded market 'NOPE'$") as unknown:
        await asyncio.to_thread(run, tickers=["NOPE"])
    assert unknown.value.field == "market_filter.tickers"
    with pytest.raises(NoDataError, match=r"^no recorded market in series 'KXNOSUCH'$"):
        await asyncio.to_thread(run, series=["KXNOSUCH"])
    with pytest.raises(NoDataError, match=r"^no snapshots between 2026-01-06T00:00:00Z and 2026-01-07T00:00:00Z"):
        await asyncio.to_thread(research.run_backtest, "buy_and_hold", {}, "2026-01-06", "2026-01-07", tickers=[t],
                                url=database_url)  # fmt: skip
    with pytest.raises(NoDataError):  # not stored either way: an empty answer is no answer
        await asyncio.to_thread(run, tickers=["NOPE"], save=False)
    assert await stored_runs(engine) == before

    kept = await asyncio.to_thread(run, tickers=["NOPE"], keep_empty=True)
    assert kept.id is not None
    assert kept.metrics["message"] == "no snapshots in the window for the selected markets"
    assert await stored_runs(engine) == before + 1
    ran = await asyncio.to_thread(run, tickers=[t])
    assert (ran.metrics["snapshots"], ran.metrics["num_trades"]) == (1, 1)
