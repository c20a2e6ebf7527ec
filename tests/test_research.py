"""The notebook module: times in the project's one grammar, backtests, paper sessions as DataFrames."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import numpy as np
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from kalshi_analytics import research
from kalshi_analytics.backtests.data import MarketFilter
from kalshi_analytics.errors import InvalidInputError, NoDataError, NotFoundError
from kalshi_analytics.live import service as live
from kalshi_analytics.live.schemas import PaperSessionCreate
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


async def test_load_paper_session_gives_every_fill_position_equity_point_and_event(
    database_url: str, engine: AsyncEngine
) -> None:
    t = ticker("KXRESPAPER")
    ts = datetime.now(UTC) - timedelta(hours=1)
    await write(engine, market(t), SnapshotRow(t, ts, "poll", ts, yes_bid=Decimal("0.40"), yes_ask=Decimal("0.44")))
    body = PaperSessionCreate(strategy="buy_and_hold", market_filter=MarketFilter(tickers=[t]), name="research")
    sid = await live.create_session(engine, body)
    # What a runner would have committed: more fills than one page of the service (1000), a position closed and
    # one open, equity points.
    async with engine.begin() as c:
        await c.execute(
            text(
                "INSERT INTO paper_fills (session_id, ticker, side, action, price, count, fee, cash_after, "
                "snapshot_ts, snapshot_source, seq, signal, event_id) SELECT :s, :t, 'yes', "
                "CASE WHEN i % 2 = 0 THEN 'buy' ELSE 'sell' END, 0.4400, 2, 0.01, 10000 - i * 0.01, "
                "CAST(:ts AS timestamptz) + i * interval '1 second', 'poll', 0, '{\"n\": 1}'::jsonb, i "
                "FROM generate_series(1, 1001) i"
            ),
            {"s": sid, "t": t, "ts": ts},
        )
        await c.execute(
            text(
                "INSERT INTO paper_positions (session_id, ticker, side, contracts, avg_price, mark, updated_at) "
                "VALUES (:s, :t, 'yes', 2, 0.4400, 0.4000, :ts), (:s, :t, 'no', 0, NULL, NULL, :ts)"
            ),
            {"s": sid, "t": t, "ts": ts},
        )
        await c.execute(
            text(
                "INSERT INTO paper_equity (session_id, ts, equity, cash) "
                "SELECT :s, CAST(:ts AS timestamptz) + i * interval '1 minute', 10000 - i, 9999 - i "
                "FROM generate_series(0, 2) i"
            ),
            {"s": sid, "ts": ts},
        )

    paper = await asyncio.to_thread(research.load_paper_session, str(sid), url=database_url)
    assert paper.id == sid
    assert (paper.session["name"], paper.session["tickers"], paper.session["status"]) == ("research", [t], "running")
    assert paper.session["initial_capital"] == Decimal(10_000)  # the summary keeps exact decimals
    assert {"total_pnl", "unrealized_pnl", "sharpe_ratio", "positions"} <= paper.performance.keys()

    fills = paper.fills
    assert len(fills) == 1001
    assert fills["id"].is_unique
    assert fills["id"].is_monotonic_increasing
    assert list(fills.columns[:8]) == ["id", "ticker", "side", "action", "price", "count", "fee", "cash_after"]
    assert (fills["price"] == 0.44).all()
    assert fills["count"].sum() == 2002
    assert fills["cash_after"].iloc[-1] == pytest.approx(10000 - 10.01)
    assert str(fills["ts"].dt.tz) == "UTC"
    assert fills["ts"].is_monotonic_increasing
    assert fills["signal"].iloc[0] == {"n": 1}

    positions = paper.positions.set_index("side")
    assert (positions.loc["yes", "contracts"], positions.loc["no", "contracts"]) == (2.0, 0.0)  # closed: kept
    assert positions.loc["yes", "unrealized_pnl"] == pytest.approx(-0.08)
    assert np.isnan(positions.loc["no", "avg_price"])
    assert list(paper.equity["equity"]) == [10000.0, 9999.0, 9998.0]
    assert list(paper.equity.columns) == ["ts", "equity", "cash"]
    assert list(paper.events["kind"]) == ["started"]

    with pytest.raises(NotFoundError):
        await asyncio.to_thread(research.load_paper_session, uuid.uuid4(), url=database_url)
    with pytest.raises(InvalidInputError, match="not a session id"):
        research.load_paper_session("nope", url=database_url)

    # A session that did nothing: empty frames with their columns.
    other = await live.create_session(engine, body)
    empty = await asyncio.to_thread(research.load_paper_session, other, url=database_url)
    assert empty.fills.empty
    assert "cash_after" in empty.fills.columns
    assert empty.positions.empty
    assert empty.equity.empty
    for s in (sid, other):  # no running session left behind in the shared database
        await live.stop_session(engine, s)
