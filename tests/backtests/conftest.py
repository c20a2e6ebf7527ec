"""Backtest tests need committed rows (the engine reads through its own connections), so they get a database
of their own, migrated once per session, instead of the rolled-back ``conn`` fixture."""

from __future__ import annotations

import csv
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime
from decimal import ROUND_CEILING
from decimal import Decimal as D
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from kalshi_analytics.backtests.data import Dataset, MarketInfo, empty_dataset
from kalshi_analytics.db.engine import create_engine
from kalshi_analytics.trading.fees import SeriesFees
from tests.conftest import SHARED_DATA, create_migrated_database, drop_database, require_shared_data

NBA_DIR = SHARED_DATA / "nba_candles"
T0 = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)
WIDE = (datetime(2020, 1, 1, tzinfo=UTC), datetime(2030, 1, 1, tzinfo=UTC))


@pytest.fixture(scope="session")
def nba_dir() -> Path:
    """The shared NBA candle files; only the tests that read them ask for this (skip locally, fail in CI)."""
    return require_shared_data(NBA_DIR)


@pytest.fixture(scope="session")
def nba_files(nba_dir: Path) -> list[Path]:
    return sorted(nba_dir.glob("*.csv"))


@pytest.fixture(scope="session")
async def bt_database_url(server_url: str) -> AsyncIterator[str]:
    url = await create_migrated_database(server_url)
    yield url
    await drop_database(server_url, url)


@pytest.fixture(scope="session")
async def bt_engine(bt_database_url: str) -> AsyncIterator[AsyncEngine]:
    eng = create_engine(bt_database_url)
    yield eng
    await eng.dispose()


def make_dataset(
    markets: Sequence[tuple[str, str | None, Sequence[tuple[float, float]]]],
    *,
    step_seconds: int = 60,
    sizes: Sequence[tuple[float, float]] | None = None,
    close_after_end: bool = False,
    starts: Sequence[datetime] | None = None,
    window: tuple[datetime, datetime] = WIDE,
) -> Dataset:
    """An in-memory dataset: per market (ticker, result, [(yes_bid, yes_ask), ...]) one snapshot a minute from
    ``T0`` (or that market's entry of ``starts``); it closes one step after its last snapshot."""
    infos: list[MarketInfo] = []
    offsets = [0]
    ts_parts, cols = [], {k: [] for k in ("yes_bid", "yes_ask", "yes_bid_size", "yes_ask_size")}
    for i, (ticker, result, quotes) in enumerate(markets):
        start = starts[i] if starts is not None else T0
        t0 = int(start.timestamp() * 1_000_000)
        n = len(quotes)
        ts_parts.append(t0 + np.arange(n, dtype=np.int64) * step_seconds * 1_000_000)
        cols["yes_bid"].append(np.array([q[0] for q in quotes], float))
        cols["yes_ask"].append(np.array([q[1] for q in quotes], float))
        sz = sizes if sizes is not None else [(np.nan, np.nan)] * n
        cols["yes_bid_size"].append(np.array([s[0] for s in sz], float))
        cols["yes_ask_size"].append(np.array([s[1] for s in sz], float))
        close = (
            datetime(2031, 1, 1, tzinfo=UTC)
            if close_after_end
            else datetime.fromtimestamp(start.timestamp() + n * step_seconds, UTC)
        )
        infos.append(MarketInfo(ticker, "EV", "SER", "Test", "finalized", result, None, close, SeriesFees()))
        offsets.append(offsets[-1] + n)
    if not infos:
        return empty_dataset(*window)
    ts_us = np.concatenate(ts_parts)
    yb, ya = np.concatenate(cols["yes_bid"]), np.concatenate(cols["yes_ask"])
    columns = {
        "ts": ts_us / 1e6,
        "yes_bid": yb,
        "yes_ask": ya,
        "no_bid": 1 - ya,
        "no_ask": 1 - yb,
        "last_price": (yb + ya) / 2,
        "yes_bid_size": np.concatenate(cols["yes_bid_size"]),
        "yes_ask_size": np.concatenate(cols["yes_ask_size"]),
        "volume": np.zeros(len(ts_us)),
    }
    return Dataset(infos, np.array(offsets, np.int64), ts_us, np.zeros(len(ts_us), np.int8), columns, *window)


def expected_game(path: Path, size: int) -> tuple[str, D, D, D]:
    """Read the CSV independently: (ticker, entry price, fee, P&L) of buying ``size`` YES at the first traded
    minute. The candles record no quote, so the fill is at that minute's trade price (the close)."""
    with path.open() as fh:
        rows = [r for r in csv.DictReader(fh) if r["close"]]
    first, last = D(rows[0]["close"]) / 100, D(rows[-1]["close"]) / 100
    ask = first
    fee = (D("0.07") * size * ask * (1 - ask)).quantize(D("0.01"), rounding=ROUND_CEILING)
    outcome = D(1) if last >= D("0.5") else D(0)
    return rows[0]["ticker"], ask, fee, size * (outcome - ask) - fee
