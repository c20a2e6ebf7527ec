"""History from REST: 1-minute candlesticks → snapshots, and the public trades, for a window.

``kalshi-analytics backfill --ticker T --since 2026-11-01 --until 2026-11-02`` (or ``--series`` / ``--event``):

- each 1-minute candle → a :class:`SnapshotRow` (``source="backfill"``, ``ts`` = candle end, ``yes_bid`` /
  ``yes_ask`` = the bid/ask closes, ``no_*`` derived, ``last_price`` = the trade-price close, ``open_interest``).
  A candle's ``volume`` is the volume *of that minute*, while ``market_snapshots.volume`` is the market's
  cumulative volume; so the column stays empty and the minute's volume is kept in ``raw_data``
  (``{"candle_volume": ..., "period_minutes": 1}``);
- every trade of the window → a :class:`TradeRow` (``source="backfill"``).

Monthly partitions for the window are created first (:func:`.partitions.ensure_partitions`). Writes go through the
sink (idempotent: snapshots by ``(ticker, ts, source)``, trades by ``trade_id``), so re-running adds nothing;
the result reports new vs duplicate rows.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncEngine

from kalshi_analytics.errors import InvalidInputError
from kalshi_analytics.kalshi.domain import ONE, Candlestick
from kalshi_analytics.kalshi.rest import KalshiRestClient
from kalshi_analytics.logs import get_logger
from kalshi_analytics.recorder.partitions import ensure_partitions, month_start
from kalshi_analytics.recorder.poll import Catalog
from kalshi_analytics.recorder.rows import SnapshotRow, trade_row
from kalshi_analytics.recorder.sink import Sink

log = get_logger(__name__)

CANDLE_CHUNK = timedelta(days=5)  # 7,200 one-minute candles per request, below the 10,000 cap


class BackfillError(InvalidInputError):
    """Bad input (unknown ticker, empty window): one line for the user."""


@dataclass
class BackfillResult:
    markets: list[str] = field(default_factory=list)
    candles: int = 0
    trades: int = 0
    new: dict[str, int] = field(default_factory=dict)
    duplicates: dict[str, int] = field(default_factory=dict)

    def lines(self) -> list[str]:
        out = [f"markets:   {len(self.markets)}", f"read:      {self.candles} candles, {self.trades} trades"]
        for table in ("market_snapshots", "trades"):
            out.append(f"{table + ':':<18}{self.new.get(table, 0)} new, {self.duplicates.get(table, 0)} duplicate")
        return out


def candle_snapshot(ticker: str, c: Candlestick, received_at: datetime) -> SnapshotRow | None:
    yb, ya, last = c.yes_bid.close, c.yes_ask.close, c.price.close
    if yb is None and ya is None and last is None:
        return None
    return SnapshotRow(
        ticker=ticker,
        ts=c.end_period_ts,
        source="backfill",
        received_at=received_at,
        yes_bid=yb,
        yes_ask=ya,
        no_bid=ONE - ya if ya is not None else None,
        no_ask=ONE - yb if yb is not None else None,
        last_price=last,
        volume=None,
        open_interest=c.open_interest,
        raw_data={"candle_volume": str(c.volume) if c.volume is not None else None, "period_minutes": 1},
    )


def _months(since: datetime, until: datetime) -> tuple[date, int]:
    n = (until.year - since.year) * 12 + until.month - since.month + 1
    return month_start(since), n


async def resolve_tickers(
    rest: KalshiRestClient, tickers: Sequence[str], series: Sequence[str], events: Sequence[str]
) -> list[str]:
    out = list(tickers)
    for s in series:
        out.extend([m.ticker async for m in rest.iter_markets(series_ticker=s)])
    for e in events:
        out.extend([m.ticker async for m in rest.iter_markets(event_ticker=e)])
    return list(dict.fromkeys(out))


async def backfill(
    rest: KalshiRestClient,
    engine: AsyncEngine,
    *,
    tickers: Sequence[str] = (),
    series: Sequence[str] = (),
    events: Sequence[str] = (),
    since: datetime,
    until: datetime,
    on_progress: Callable[[str, int, int], None] | None = None,
    concurrency: int = 4,
) -> BackfillResult:
    """Backfill the window for the named markets; ``on_progress(ticker, done, total)`` after each market."""
    if until <= since:
        raise BackfillError(f"--until ({until.isoformat()}) must be after --since ({since.isoformat()})")
    names = await resolve_tickers(rest, tickers, series, events)
    if not names:
        raise BackfillError("no markets matched (give --ticker, --series or --event)")
    catalog = Catalog(rest)
    markets = []
    for t in names:
        try:
            markets.append(await rest.get_market(t))
        except Exception as exc:
            raise BackfillError(f"unknown market {t!r} ({type(exc).__name__})") from None
    await ensure_partitions(engine, *_months(since, until), lock_timeout=None)
    result = BackfillResult(markets=names)
    sem = asyncio.Semaphore(concurrency)
    done = 0
    async with Sink(engine) as sink:

        async def one(ticker: str, event_ticker: str | None) -> None:
            nonlocal done
            async with sem:
                series_ticker = await catalog.series_of(event_ticker)
                received = datetime.now(UTC)
                if series_ticker is not None:
                    start = since
                    while start < until:
                        end = min(until, start + CANDLE_CHUNK)
                        for c in await rest.get_market_candlesticks(
                            series_ticker, ticker, start_ts=start, end_ts=end, period_interval=1
                        ):
                            row = candle_snapshot(ticker, c, received)
                            if row is not None:
                                await sink.put(row)
                                result.candles += 1
                        start = end
                async for t in rest.iter_trades(
                    ticker=ticker, min_ts=int(since.timestamp()), max_ts=int(until.timestamp())
                ):
                    tr = trade_row(t, received, "backfill")
                    if tr is not None:
                        await sink.put(tr)
                        result.trades += 1
                done += 1
                if on_progress is not None:
                    on_progress(ticker, done, len(markets))

        await asyncio.gather(*(one(m.ticker, m.event_ticker) for m in markets))
        await sink.flush()
        st = sink.stats
    result.new = {k: v for k, v in st.new.items() if k in ("market_snapshots", "trades")}
    result.duplicates = {k: v for k, v in st.duplicates.items() if k in ("market_snapshots", "trades")}
    return result
